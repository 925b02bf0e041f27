"""Building blocks with NVIDIA Tacotron 2 initialisation, channels-last.

Linear and conv kernels are xavier-uniform with a per-layer gain (PyTorch's `calculate_gain`), biases
U(+-1/sqrt(fan_in)) as PyTorch's default; LSTM weights U(+-1/sqrt(H)). Recurrent cells keep PyTorch's
fused layout (`x @ w_ih + h @ w_hh + bias`, gate blocks in i, f, g, o order) so checkpoints map one to one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from taco_jax.model.recurrence import lstm_update

GAINS = {"linear": 1.0, "relu": math.sqrt(2.0), "tanh": 5.0 / 3.0, "sigmoid": 1.0}


def xavier_uniform(gain: str) -> nn.initializers.Initializer:
    """Xavier/Glorot uniform scaled by PyTorch's gain for `gain` (a nonlinearity name)."""
    return nn.initializers.variance_scaling(GAINS[gain] ** 2, "fan_avg", "uniform")


def torch_default_bias(fan_in: int) -> nn.initializers.Initializer:
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class LinearNorm(nn.Module):
    """Dense layer with NVIDIA's LinearNorm initialisation. x: [..., in] -> [..., features]."""

    features: int
    use_bias: bool = True
    gain: str = "linear"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(
            self.features,
            use_bias=self.use_bias,
            kernel_init=xavier_uniform(self.gain),
            bias_init=torch_default_bias(x.shape[-1]),
            name="dense",
        )(x)


class ConvNorm(nn.Module):
    """1-D 'same' convolution with NVIDIA's ConvNorm initialisation. x: [B, T, C_in] -> [B, T, features]."""

    features: int
    kernel_size: int
    use_bias: bool = True
    gain: str = "linear"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        pad = (self.kernel_size - 1) // 2
        return nn.Conv(
            self.features,
            (self.kernel_size,),
            padding=((pad, pad),),
            use_bias=self.use_bias,
            kernel_init=xavier_uniform(self.gain),
            bias_init=torch_default_bias(x.shape[-1] * self.kernel_size),
            name="conv",
        )(x)


def rnn_uniform(hidden_size: int) -> nn.initializers.Initializer:
    """PyTorch's initialisation of every RNN weight and bias: U(+-1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class LSTMParams(nn.Module):
    """Parameters of one LSTM cell in PyTorch's fused layout; call returns the dict of arrays.

    w_ih [in, 4H], w_hh [H, 4H], bias [4H] (PyTorch's bias_ih + bias_hh), gate blocks i, f, g, o.
    """

    input_size: int
    hidden_size: int

    @nn.compact
    def __call__(self) -> dict[str, jax.Array]:
        h = self.hidden_size
        uniform = rnn_uniform(h)

        def summed_bias(key, shape, dtype=jnp.float32):
            # PyTorch draws bias_ih and bias_hh independently; their sum is what the cell uses.
            k1, k2 = jax.random.split(key)
            return uniform(k1, shape, dtype) + uniform(k2, shape, dtype)

        return {
            "w_ih": self.param("w_ih", uniform, (self.input_size, 4 * h)),
            "w_hh": self.param("w_hh", uniform, (h, 4 * h)),
            "bias": self.param("bias", summed_bias, (4 * h,)),
        }


def reverse_padded(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Reverse each sequence within its own length; padding stays in place. x: [B, T, ...]."""
    t = jnp.arange(x.shape[1])[None, :]
    idx = jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    idx = idx.reshape(idx.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, idx, axis=1)


def run_lstm(p: dict[str, jax.Array], x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Run an LSTM over x: [B, T, in] from zero state; returns hidden states [B, T, H], zero at padding."""
    batch, _, _ = x.shape
    hidden = p["w_hh"].shape[0]
    x_proj = jnp.einsum("bti,ig->tbg", x, p["w_ih"]) + p["bias"]  # input projection hoisted out of the loop

    def step(carry, xp):
        h, c = lstm_update(xp + carry[0] @ p["w_hh"], carry[1])
        return (h, c), h

    zeros = jnp.zeros((batch, hidden), x.dtype)
    _, hs = jax.lax.scan(step, (zeros, zeros), x_proj)
    hs = jnp.swapaxes(hs, 0, 1)
    mask = jnp.arange(x.shape[1])[None, :] < lengths[:, None]
    return jnp.where(mask[..., None], hs, 0.0)


def bidirectional_lstm(p_fwd, p_bwd, x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Length-aware BiLSTM (as PyTorch's packed sequences): the backward direction starts at each
    sequence's own last token. x: [B, T, in] -> [B, T, 2H] (forward || backward), zero at padding."""
    fwd = run_lstm(p_fwd, x, lengths)
    bwd = reverse_padded(run_lstm(p_bwd, reverse_padded(x, lengths), lengths), lengths)
    return jnp.concatenate([fwd, bwd], axis=-1)


class GRUParams(nn.Module):
    """Parameters of one GRU direction in PyTorch's layout; call returns the dict of arrays.

    w_ih [in, 3H], w_hh [H, 3H], b_ih [3H], b_hh [3H], gate blocks r, z, n. The two biases stay separate:
    b_hh's n block sits inside the reset gate's product.
    """

    input_size: int
    hidden_size: int

    @nn.compact
    def __call__(self) -> dict[str, jax.Array]:
        h = self.hidden_size
        init = rnn_uniform(h)
        return {
            "w_ih": self.param("w_ih", init, (self.input_size, 3 * h)),
            "w_hh": self.param("w_hh", init, (h, 3 * h)),
            "b_ih": self.param("b_ih", init, (3 * h,)),
            "b_hh": self.param("b_hh", init, (3 * h,)),
        }


def gru_final_state(p: dict[str, jax.Array], x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Run a GRU over x [B, T, in] from a zero state; returns the state after each sequence's last valid
    step [B, H] (PyTorch's h_n of a packed sequence). Steps past a sequence's length leave its state alone."""
    hidden = p["w_hh"].shape[0]
    x_proj = jnp.einsum("bti,ig->tbg", x, p["w_ih"]) + p["b_ih"]
    valid = (jnp.arange(x.shape[1])[:, None] < lengths[None, :])[..., None]  # [T, B, 1]

    def step(h, inputs):
        xp, keep = inputs
        hp = h @ p["w_hh"] + p["b_hh"]
        x_r, x_z, x_n = jnp.split(xp, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(hp, 3, axis=-1)
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + r * h_n)
        return jnp.where(keep, (1.0 - z) * n + z * h, h), None

    h, _ = jax.lax.scan(step, jnp.zeros((x.shape[0], hidden), x.dtype), (x_proj, valid))
    return h


class ConvBNStack(nn.Module):
    """Conv + BatchNorm (+ activation) + dropout layers, as NVIDIA's encoder and postnet.

    x: [B, T, C] -> [B, T, channels[-1]]. BatchNorm statistics use valid frames only (`mask` [B, T]).
    Padded positions are zeroed before every conv, so a valid position near the end sees exactly the conv's
    own zero padding, whatever the bucket's length: outputs do not depend on how much padding a batch has
    (NVIDIA's convs read pad-token embeddings and decoder output past the end; an unpadded batch is the same
    in both).
    """

    channels: Sequence[int]
    kernel_size: int
    activations: Sequence[str]  # "relu" | "tanh" | "linear", per layer (also the init gain)
    dropout: float

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, train: bool) -> jax.Array:
        bn_mask = mask[..., None]
        for i, (features, act) in enumerate(zip(self.channels, self.activations, strict=True)):
            x = jnp.where(bn_mask, x, 0.0)
            x = ConvNorm(features, self.kernel_size, gain=act, name=f"conv_{i}")(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=f"bn_{i}")(
                x, mask=jnp.broadcast_to(bn_mask, x.shape)
            )
            if act == "relu":
                x = nn.relu(x)
            elif act == "tanh":
                x = jnp.tanh(x)
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return jnp.where(bn_mask, x, 0.0)
