"""HiFi-GAN generator in Flax: a log-mel spectrogram in, a waveform out.

mel [B, T, num_mels] (natural log, the Tacotron's output) -> wav [B, T * hop] in [-1, 1], hop =
prod(upsample_rates). The network: a k=7 input conv to `upsample_initial_channel` channels; per stage i a
leaky ReLU (slope 0.1), a transposed conv (stride u_i, kernel k_i, padding (k_i - u_i) // 2) halving the
channels, then the mean of the stage's residual blocks (multi-receptive-field fusion); finally a leaky ReLU
with slope 0.01 (the published model uses PyTorch's default slope there, and its weights expect it), a k=7
conv to one channel and tanh.

Parameter tree (`params` collection), named after the PyTorch modules so the converter only renames:
  conv_pre, ups_{i}, resblocks_{i * num_kernels + j}/{convs1_{m}, convs2_{m}} (resblock "1") or
  resblocks_{...}/convs_{m} (resblock "2"), conv_post;
each conv holds `kernel` and `bias` (weight_norm=False) or `v`, `g`, `bias` (weight_norm=True) in PyTorch's
layouts (see taco_jax.vocoder.layers). `fold_weight_norm` maps a weight-normed tree onto a plain one.

Output length: with k_i - u_i even (every published config) each stage multiplies the length by u_i exactly;
otherwise the stage yields T * u_i + 1 samples, as PyTorch's layers do with that padding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from taco_jax.vocoder.config import HifiganConfig
from taco_jax.vocoder.layers import Conv1d, ConvTranspose1d, fold_weight_norm, normal_init, weight_norm_g

__all__ = [
    "Generator",
    "ResBlock1",
    "ResBlock2",
    "fold_weight_norm",
    "generator_param_count",
    "get_padding",
    "init_generator_params",
    "output_length",
]

LRELU_SLOPE = 0.1  # every leaky ReLU inside the network
FINAL_LRELU_SLOPE = 0.01  # the one before conv_post: PyTorch's default slope, which the published model uses
INIT_STD = 0.01  # N(0, 0.01) init of the upsampling and residual convs


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd kernel with a dilation: (k * d - d) // 2."""
    return (kernel_size * dilation - dilation) // 2


class _ResBlock(nn.Module):
    """The fields of both residual block types, and the conv they are built of."""

    channels: int
    kernel_size: int
    dilations: Sequence[int]
    weight_norm: bool = False
    precision: Any = None

    def _conv(self, dilation: int, name: str) -> Conv1d:
        """A residual conv: channels -> channels, kernel k dilated by `dilation`, 'same' padding, N(0, INIT_STD)
        weights. Called from the blocks' compact __call__, where it may create submodules."""
        k = self.kernel_size
        return Conv1d(
            self.channels, k, dilation=dilation, padding=get_padding(k, dilation), weight_norm=self.weight_norm,
            kernel_init=normal_init(INIT_STD), precision=self.precision, name=name,
        )  # fmt: skip


class ResBlock1(_ResBlock):
    """Residual block type 1: per dilation d_m, x += conv(k, 1)(lrelu(conv(k, d_m)(lrelu(x)))).

    x: [B, T, channels] -> [B, T, channels]."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for m, d in enumerate(self.dilations):
            xt = self._conv(d, f"convs1_{m}")(nn.leaky_relu(x, LRELU_SLOPE))
            xt = self._conv(1, f"convs2_{m}")(nn.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


class ResBlock2(_ResBlock):
    """Residual block type 2: per dilation d_m, x += conv(k, d_m)(lrelu(x)). x: [B, T, C] -> [B, T, C]."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for m, d in enumerate(self.dilations):
            x = self._conv(d, f"convs_{m}")(nn.leaky_relu(x, LRELU_SLOPE)) + x
        return x


class Generator(nn.Module):
    """HiFi-GAN generator. mel [B, T, num_mels] (natural-log mel) -> wav [B, output_length(config, T)].

    weight_norm=False: plain kernels (inference, converted checkpoints); True: `v` and `g` per conv, as the
    published training code holds them (training, fine-tuning). `precision` is passed to every conv
    (None: the backend's default; jax.lax.Precision.HIGHEST for float32-exact convs on accelerators).
    """

    config: HifiganConfig
    weight_norm: bool = False
    precision: Any = None

    @nn.compact
    def __call__(self, mel: jax.Array) -> jax.Array:
        c, wn, prec = self.config, self.weight_norm, self.precision
        block = ResBlock1 if c.resblock == "1" else ResBlock2
        nk = c.num_kernels
        x = Conv1d(c.upsample_initial_channel, 7, padding=3, weight_norm=wn, precision=prec, name="conv_pre")(mel)
        for i, (u, k) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes, strict=True)):
            x = nn.leaky_relu(x, LRELU_SLOPE)
            ch = c.stage_channels(i)
            x = ConvTranspose1d(
                ch, k, stride=u, padding=(k - u) // 2, weight_norm=wn, kernel_init=normal_init(INIT_STD),
                precision=prec, name=f"ups_{i}",
            )(x)  # fmt: skip
            # Multi-receptive-field fusion: the blocks all read the same x; sum left to right, then average.
            xs = None
            for j, (rk, dil) in enumerate(zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes, strict=True)):
                y = block(ch, rk, tuple(dil), weight_norm=wn, precision=prec, name=f"resblocks_{i * nk + j}")(x)
                xs = y if xs is None else xs + y
            x = xs / nk
        x = nn.leaky_relu(x, FINAL_LRELU_SLOPE)
        x = Conv1d(1, 7, padding=3, weight_norm=wn, precision=prec, name="conv_post")(x)
        return jnp.tanh(x)[..., 0]


def output_length(config: HifiganConfig, n_frames: int) -> int:
    """Samples the generator makes from `n_frames` mel frames (n_frames * hop for the published configs)."""
    n = n_frames
    for u, k in zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True):
        n = (n - 1) * u - 2 * ((k - u) // 2) + k
    return n


def init_generator_params(config: HifiganConfig, rng: jax.Array | int, weight_norm: bool = False) -> dict[str, Any]:
    """Fresh generator params (the `params` collection's contents) distributed as the published code
    initialises them: upsampling and residual conv weights N(0, 0.01), conv_pre/conv_post weights and all
    biases PyTorch's default U(+-1/sqrt(fan_in)); with weight_norm, v is that weight and g = ||v||.

    The tree comes from `Generator.init`'s shapes, the values from numpy seeded by `rng` (a JAX key or an int):
    compiling Flax's own initialisers for V1 takes half a minute on CPU, numpy draws the same distributions in
    a fraction of a second. Deterministic in `rng`.
    """
    model = Generator(config, weight_norm=weight_norm)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 2, config.num_mels), jnp.float32))
    seed = rng if isinstance(rng, int) else np.asarray(jax.random.key_data(rng)).ravel().tolist()
    gen = np.random.default_rng(seed)
    return _draw(shapes["params"], gen)


def _draw(tree: Mapping[str, Any], gen: np.random.Generator, normal: bool = False) -> dict[str, Any]:
    """Values for one level of the shape tree; `normal`: this layer's weight is N(0, INIT_STD)."""
    out: dict[str, Any] = {}
    for name, sub in tree.items():
        if isinstance(sub, Mapping):
            out[name] = _draw(sub, gen, normal or name.startswith(("ups_", "resblocks_")))
    weight = tree.get("kernel", tree.get("v"))
    if weight is not None and not isinstance(weight, Mapping):
        fan_in = int(np.prod(weight.shape[1:]))  # Conv1d [out, in, k]; ConvTranspose1d [in, out, k]: out * k
        bound = 1.0 / np.sqrt(fan_in)
        if normal:
            w = gen.normal(0.0, INIT_STD, weight.shape)
        else:
            w = gen.uniform(-bound, bound, weight.shape)
        w = jnp.asarray(w, jnp.float32)
        if "kernel" in tree:
            out["kernel"] = w
        else:
            out["v"] = w
            out["g"] = weight_norm_g(w)
        if "bias" in tree:
            out["bias"] = jnp.asarray(gen.uniform(-bound, bound, tree["bias"].shape), jnp.float32)
    return out


def generator_param_count(params: Mapping[str, Any]) -> int:
    """Number of scalars in a params tree (weight-normed trees count v and g both)."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))
