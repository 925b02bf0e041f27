"""Convolutions for the vocoder, channels-last activations with PyTorch-layout weights and weight norm.

Activations are channels-last: 1-D `[B, T, C]`, 2-D `[B, H, W, C]`. Weights are stored in PyTorch's layout so
that a published state_dict maps onto the params by renaming only (no transposes to get wrong):

  layer            `kernel` / `v`                     `g` (weight norm)   `bias`
  Conv1d           [out, in // groups, k]             [out, 1, 1]         [out]
  Conv2d           [out, in // groups, kh, kw]        [out, 1, 1, 1]      [out]
  ConvTranspose1d  [in, out, k]                       [in, 1, 1]          [out]

With `weight_norm=True` a layer holds `v` and `g` instead of `kernel`, and its weight is `g * v / ||v||` with
the norm over every axis but the first (PyTorch's `weight_norm(dim=0)`; for ConvTranspose1d the first axis is
the input channels, as in PyTorch). `g` starts at `||v||`, so a fresh layer's weight equals its `v`.
`fold_weight_norm` turns such params into plain ones and `unfold_weight_norm` goes back (the way PyTorch's
`weight_norm` wraps an existing layer).

Padding is explicit, as in PyTorch: an int pads both ends of every spatial axis by that many zeros; a pair
`(lo, hi)` (1-D) or per-axis pairs (2-D) pad unevenly. Default initialisation is PyTorch's for convolutions:
weight and bias U(+-1/sqrt(fan_in)), fan_in = (in // groups) * prod(kernel) (for ConvTranspose1d PyTorch takes
fan_in from the weight's second axis: out * k). `kernel_init` replaces the weight's initialiser (`v`'s with
weight norm); biases always keep PyTorch's default.

The functional cores `conv_nd` and `conv_transpose_1d` take a PyTorch-layout weight directly: a layer whose
weight is computed some other way (spectral norm) calls them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = [
    "Conv1d",
    "Conv2d",
    "ConvTranspose1d",
    "WNConv1d",
    "WNConv2d",
    "WNConvTranspose1d",
    "conv_nd",
    "conv_transpose_1d",
    "conv_weight_shape",
    "fold_weight_norm",
    "normal_init",
    "torch_uniform_init",
    "unfold_weight_norm",
    "weight_norm_g",
    "weight_norm_weight",
]

Initializer = Callable[..., jax.Array]
IntOrSeq = int | Sequence[int]
Padding = int | Sequence[int] | Sequence[Sequence[int]]

_DIMS = {1: ("NWC", "OIW", "NWC"), 2: ("NHWC", "OIHW", "NHWC")}


def _tuple(value: IntOrSeq, rank: int, what: str) -> tuple[int, ...]:
    """An int or a length-`rank` sequence -> a tuple of `rank` ints."""
    out = (int(value),) * rank if isinstance(value, int) else tuple(int(v) for v in value)
    if len(out) != rank:
        raise ValueError(f"{what}={value!r}: expected an int or {rank} ints")
    return out


def _pairs(padding: Padding, rank: int) -> tuple[tuple[int, int], ...]:
    """PyTorch-style padding -> one (lo, hi) pair per spatial axis.

    int p -> (p, p) on each axis; for 1-D a pair (lo, hi); for 2-D a pair of ints (ph, pw) pads each axis
    symmetrically, a pair of pairs pads unevenly."""
    if isinstance(padding, int):
        return ((padding, padding),) * rank
    items = list(padding)
    if rank == 1 and len(items) == 2 and all(isinstance(v, int) for v in items):
        return ((int(items[0]), int(items[1])),)
    if len(items) != rank:
        raise ValueError(f"padding={padding!r}: expected an int, or one entry per spatial axis ({rank})")
    out = []
    for item in items:
        lo, hi = (item, item) if isinstance(item, int) else item
        out.append((int(lo), int(hi)))
    return tuple(out)


def torch_uniform_init(fan_in: int) -> Initializer:
    """U(+-1/sqrt(fan_in)): PyTorch's default for a conv weight (kaiming_uniform with a=sqrt(5)) and bias."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def normal_init(std: float, mean: float = 0.0) -> Initializer:
    """N(mean, std^2), e.g. the published generator's N(0, 0.01) for its upsampling and residual convs."""

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return mean + std * jax.random.normal(key, shape, dtype)

    return init


def weight_norm_g(v: jax.Array) -> jax.Array:
    """||v|| over every axis but the first, kept as [n, 1, ..., 1] (the shape of PyTorch's `weight_g`): the g
    that makes g * v / ||v|| equal v (bit-exactly, the ratio being x / x)."""
    return jnp.sqrt(jnp.sum(jnp.square(v), axis=tuple(range(1, v.ndim)), keepdims=True))


def weight_norm_weight(v: jax.Array, g: jax.Array) -> jax.Array:
    """The weight g * v / ||v|| (norm over all axes but the first; g: [n, 1, ..., 1]), as PyTorch computes it."""
    return v * (g / weight_norm_g(v))


def conv_nd(
    x: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    *,
    stride: IntOrSeq = 1,
    dilation: IntOrSeq = 1,
    padding: Padding = 0,
    groups: int = 1,
    precision: Any = None,
) -> jax.Array:
    """PyTorch's Conv1d/Conv2d forward on channels-last input.

    x: [B, T, C_in] or [B, H, W, C_in]; weight: [C_out, C_in // groups, *kernel] (PyTorch layout);
    bias: [C_out] or None. Returns [B, T_out, C_out] / [B, H_out, W_out, C_out] with, per axis,
    T_out = (T + lo + hi - dilation * (k - 1) - 1) // stride + 1.
    """
    rank = weight.ndim - 2
    y = jax.lax.conv_general_dilated(
        x,
        weight.astype(x.dtype),
        window_strides=_tuple(stride, rank, "stride"),
        padding=_pairs(padding, rank),
        rhs_dilation=_tuple(dilation, rank, "dilation"),
        dimension_numbers=_DIMS[rank],
        feature_group_count=groups,
        precision=precision,
    )
    return y if bias is None else y + bias.astype(y.dtype)


def conv_transpose_1d(
    x: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    *,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
    precision: Any = None,
) -> jax.Array:
    """PyTorch's ConvTranspose1d forward (groups=1) on channels-last input.

    x: [B, T, C_in]; weight: [C_in, C_out, k] (PyTorch layout); bias: [C_out] or None.
    Returns [B, (T - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1, C_out].

    A transposed conv is the gradient of a strided conv: put stride - 1 zeros between input samples
    (lhs_dilation), pad each end by dilation * (k - 1) - padding (negative padding crops), and correlate with
    the kernel flipped in time and its channel axes swapped.
    """
    k = weight.shape[-1]
    edge = dilation * (k - 1) - padding
    kernel = jnp.flip(jnp.swapaxes(weight, 0, 1), axis=-1)  # [C_out, C_in, k], time-reversed
    y = jax.lax.conv_general_dilated(
        x,
        kernel.astype(x.dtype),
        window_strides=(1,),
        padding=((edge, edge + output_padding),),
        lhs_dilation=(stride,),
        rhs_dilation=(dilation,),
        dimension_numbers=_DIMS[1],
        precision=precision,
    )
    return y if bias is None else y + bias.astype(y.dtype)


class _WeightedConv(nn.Module):
    """Shared parameter handling: `kernel` (plain) or `v` and `g` (weight norm), and `bias`."""

    def _weight(self, shape: tuple[int, ...], fan_in: int) -> jax.Array:
        init = self.kernel_init if self.kernel_init is not None else torch_uniform_init(fan_in)
        if not self.weight_norm:
            return self.param("kernel", init, shape)
        v = self.param("v", init, shape)
        # g starts at ||v||, as PyTorch's weight_norm does when it wraps a layer: the weight is v at first.
        g = self.param("g", lambda _key, _shape: weight_norm_g(v), (shape[0],) + (1,) * (len(shape) - 1))
        return weight_norm_weight(v, g)

    def _bias(self, n: int, fan_in: int) -> jax.Array | None:
        return self.param("bias", torch_uniform_init(fan_in), (n,)) if self.use_bias else None


def conv_weight_shape(
    layer: str, c_in: int, features: int, kernel: Sequence[int], groups: int = 1
) -> tuple[tuple[int, ...], int]:
    """(PyTorch-layout weight shape [features, c_in // groups, *kernel], fan_in = (c_in // groups) * prod(kernel))
    of a Conv1d/Conv2d-like layer.

    Raises:
      ValueError: naming `layer`, when c_in or features is not a multiple of `groups`.
    """
    if c_in % groups or features % groups:
        raise ValueError(f"{layer}: channels {c_in} -> {features} not divisible by groups={groups}")
    return (features, c_in // groups, *kernel), c_in // groups * math.prod(kernel)


class _Conv(_WeightedConv):
    """PyTorch Conv1d/Conv2d over `_rank` spatial axes, channels-last: see Conv1d and Conv2d."""

    _rank: ClassVar[int]

    features: int
    kernel_size: IntOrSeq
    stride: IntOrSeq = 1
    dilation: IntOrSeq = 1
    padding: Padding = 0
    groups: int = 1
    use_bias: bool = True
    weight_norm: bool = False
    kernel_init: Initializer | None = None
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = _tuple(self.kernel_size, self._rank, "kernel_size")
        shape, fan_in = conv_weight_shape(f"Conv{self._rank}d", x.shape[-1], self.features, kernel, self.groups)
        w = self._weight(shape, fan_in)
        b = self._bias(self.features, fan_in)
        return conv_nd(
            x, w, b, stride=self.stride, dilation=self.dilation, padding=self.padding, groups=self.groups,
            precision=self.precision,
        )  # fmt: skip


class Conv1d(_Conv):
    """PyTorch Conv1d, channels-last. x: [B, T, C_in] -> [B, T_out, features].

    kernel_size, stride, dilation: ints; padding: int or (lo, hi).
    T_out = (T + lo + hi - dilation * (kernel_size - 1) - 1) // stride + 1. Params: see the module docstring.
    """

    _rank: ClassVar[int] = 1


class Conv2d(_Conv):
    """PyTorch Conv2d, channels-last. x: [B, H, W, C_in] -> [B, H_out, W_out, features].

    kernel_size, stride, dilation: int or (h, w); padding: int, (ph, pw) or ((top, bottom), (left, right)).
    """

    _rank: ClassVar[int] = 2


class ConvTranspose1d(_WeightedConv):
    """PyTorch ConvTranspose1d (groups=1), channels-last. x: [B, T, C_in] -> [B, T_out, features].

    T_out = (T - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1; e.g. T * stride
    when kernel_size - stride = 2 * padding. Weight layout [C_in, features, k]; weight norm over C_in (axis 0).
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    output_padding: int = 0
    dilation: int = 1
    use_bias: bool = True
    weight_norm: bool = False
    kernel_init: Initializer | None = None
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c_in = x.shape[-1]
        fan_in = self.features * self.kernel_size  # PyTorch reads fan_in off the weight's second axis
        w = self._weight((c_in, self.features, self.kernel_size), fan_in)
        b = self._bias(self.features, fan_in)
        return conv_transpose_1d(
            x, w, b, stride=self.stride, padding=self.padding, output_padding=self.output_padding,
            dilation=self.dilation, precision=self.precision,
        )  # fmt: skip


class WNConv1d(Conv1d):
    """Conv1d with weight norm (params `v`, `g`, `bias`)."""

    weight_norm: bool = True


class WNConv2d(Conv2d):
    """Conv2d with weight norm (params `v`, `g`, `bias`)."""

    weight_norm: bool = True


class WNConvTranspose1d(ConvTranspose1d):
    """ConvTranspose1d with weight norm (params `v`, `g`, `bias`; norm over the input-channel axis 0)."""

    weight_norm: bool = True


def fold_weight_norm(params: Mapping[str, Any]) -> dict[str, Any]:
    """A params tree with every {`v`, `g`} pair replaced by `kernel` = g * v / ||v||; other leaves unchanged.

    Works on any nesting (generator, discriminators, with or without a top-level "params" key)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out[key] = fold_weight_norm(value)
        elif key not in ("v", "g"):
            out[key] = value
    if "v" in params and "g" in params and not isinstance(params["v"], Mapping):
        out["kernel"] = weight_norm_weight(jnp.asarray(params["v"]), jnp.asarray(params["g"]))
    return out


def unfold_weight_norm(params: Mapping[str, Any]) -> dict[str, Any]:
    """A params tree with every `kernel` replaced by `v` = kernel and `g` = ||kernel|| (PyTorch's weight_norm
    wrapping a trained layer): the inverse of `fold_weight_norm` up to rounding; the weight is unchanged."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out[key] = unfold_weight_norm(value)
        elif key == "kernel":
            v = jnp.asarray(value)
            out["v"], out["g"] = v, weight_norm_g(v)
        else:
            out[key] = value
    return out
