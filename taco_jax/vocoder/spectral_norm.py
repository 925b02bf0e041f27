"""A 1-D convolution with spectral normalisation, with PyTorch's `spectral_norm` semantics (one power step).

The weight used is `weight_orig / sigma`, sigma an estimate of the largest singular value of `weight_orig`
viewed as a matrix `[out, in // groups * k]` (PyTorch's row-major reshape of its `[out, in // groups, k]`
weight). The estimate comes from the singular-vector estimates `u` `[out]` and `v` `[in // groups * k]`,
kept in the `batch_stats` collection: sigma = u . (W v).

With `update_stats=True` (a training forward) the layer first does one power-iteration step, in PyTorch's
order: v <- normalize(W^T u), then u <- normalize(W v), normalize(x) = x / max(||x||, eps), and uses and stores
the new u and v. `update_stats=False` (evaluation) uses the stored ones unchanged. Gradients flow into the
weight through sigma but not through the power iteration (u and v are constants, as under torch.no_grad).
At initialisation u and v are independent normalised Gaussian vectors (as PyTorch's), and no step is taken.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from taco_jax.vocoder.layers import Padding, conv_nd, conv_weight_shape, torch_uniform_init

__all__ = ["SN_EPS", "SpectralNormConv1d", "l2_normalize", "power_iteration", "spectral_sigma"]

SN_EPS = 1e-12  # PyTorch's default
_HIGHEST = jax.lax.Precision.HIGHEST  # matvecs this small cost nothing at full precision


def l2_normalize(x: jax.Array, eps: float = SN_EPS) -> jax.Array:
    """x / max(||x||_2, eps) for a vector (PyTorch's F.normalize(x, dim=0, eps=eps))."""
    return x / jnp.maximum(jnp.linalg.norm(x), eps)


def power_iteration(weight_mat: jax.Array, u: jax.Array, eps: float = SN_EPS) -> tuple[jax.Array, jax.Array]:
    """One power-iteration step on `weight_mat` [n_out, n_in] from `u` [n_out] -> (new u [n_out], new v [n_in]).

    The previous v is not an input: PyTorch recomputes v from u first. No gradient flows through the result.
    """
    w = jax.lax.stop_gradient(weight_mat)
    v = l2_normalize(jnp.matmul(w.T, u, precision=_HIGHEST), eps)
    u = l2_normalize(jnp.matmul(w, v, precision=_HIGHEST), eps)
    return u, v


def spectral_sigma(weight_mat: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
    """sigma = u . (W v): differentiable in `weight_mat`, constant in u and v (scalar)."""
    u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)
    return jnp.dot(u, jnp.matmul(weight_mat, v, precision=_HIGHEST), precision=_HIGHEST)


class SpectralNormConv1d(nn.Module):
    """PyTorch `spectral_norm(Conv1d(...))`, channels-last. x: [B, T, C_in] -> [B, T_out, features].

    Params: `weight_orig` [features, C_in // groups, kernel_size] (PyTorch layout), `bias` [features], both
    initialised as PyTorch's Conv1d (U(+-1/sqrt(fan_in))). batch_stats: `u` [features],
    `v` [C_in // groups * kernel_size]. `update_stats`: see the module docstring (the caller must then apply
    with mutable=["batch_stats"]).
    """

    features: int
    kernel_size: int
    stride: int = 1
    dilation: int = 1
    padding: Padding = 0
    groups: int = 1
    eps: float = SN_EPS
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, update_stats: bool = False) -> jax.Array:
        shape, fan_in = conv_weight_shape(
            "SpectralNormConv1d", x.shape[-1], self.features, (self.kernel_size,), self.groups
        )
        weight = self.param("weight_orig", torch_uniform_init(fan_in), shape)
        bias = self.param("bias", torch_uniform_init(fan_in), (self.features,))
        u_var = self.variable("batch_stats", "u", self._random_unit, self.features)
        v_var = self.variable("batch_stats", "v", self._random_unit, fan_in)
        weight_mat = weight.reshape(self.features, fan_in)
        u, v = u_var.value, v_var.value
        if update_stats and not self.is_initializing():
            u, v = power_iteration(weight_mat, u, self.eps)
            u_var.value, v_var.value = u, v
        sigma = spectral_sigma(weight_mat, u, v)
        return conv_nd(
            x, weight / sigma, bias, stride=self.stride, dilation=self.dilation, padding=self.padding,
            groups=self.groups, precision=self.precision,
        )  # fmt: skip

    def _random_unit(self, n: int) -> jax.Array:
        """A normalised N(0, 1) vector [n] (PyTorch's starting u and v), drawn from the 'params' rng."""
        return l2_normalize(jax.random.normal(self.make_rng("params"), (n,), jnp.float32), self.eps)
