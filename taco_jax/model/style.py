"""Style modules of Tacotron2-New: global style tokens (GST), text-predicted style (TPS-GST), the MI estimator.

GST (Wang et al. 2018, Mellotron's layout): a reference mel [B, T, n_mels] -> 2-D conv stack -> GRU final
state [B, ref_gru] -> multi-head attention over tanh(style tokens) -> style [B, E]. TPS-GST predicts that
style from the (detached) encoder output, so a model can pick a style from the text alone.

Initialisation follows PyTorch's defaults for these layers (nn.Conv2d / nn.Linear: U(+-1/sqrt(fan_in)),
tokens N(0, 0.5)), as in the checkpoints they are converted from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from taco_jax.model.layers import GRUParams, LinearNorm, gru_final_state, reverse_padded, torch_default_bias

# PyTorch's kaiming_uniform(a=sqrt(5)) for nn.Linear / nn.Conv weights: U(+-1/sqrt(fan_in)).
torch_default_kernel = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
REFERENCE_LAYOUTS = ("time_mel", "torch_view")


class ReferenceEncoder(nn.Module):
    """Reference mel [B, T, n_mels], lengths [B] -> [B, gru_size]: 3x3 stride-2 convs + BN + ReLU, then a GRU.

    `layout` "torch_view" reads the mel as T2N did: its channels-first [n_mels, T] buffer reinterpreted as a
    [T, n_mels] image (a C-order reshape, not a transpose). Its trained filters depend on that, so converted
    T2N checkpoints must read references the same way; new models use "time_mel" (time x mel bins).
    """

    filters: Sequence[int] = (32, 32, 64, 64, 128, 128)
    gru_size: int = 128
    layout: str = "time_mel"

    @nn.compact
    def __call__(self, mel: jax.Array, mel_len: jax.Array, train: bool) -> jax.Array:
        if self.layout not in REFERENCE_LAYOUTS:
            raise ValueError(f"reference layout {self.layout!r}; expected one of {REFERENCE_LAYOUTS}")
        b, t, c = mel.shape
        x = jnp.swapaxes(mel, 1, 2).reshape(b, t, c) if self.layout == "torch_view" else mel
        x = x[..., None]  # [B, T, n_mels, 1] image
        for i, features in enumerate(self.filters):
            x = nn.Conv(
                features, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), kernel_init=torch_default_kernel,
                bias_init=torch_default_bias(9 * x.shape[-1]), name=f"conv_{i}",
            )(x)  # fmt: skip
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=f"bn_{i}")(x))
        # [B, T', F', C] -> features ordered channel-major (index c * F' + f), as PyTorch's [B, T', C, F'] view.
        x = jnp.swapaxes(x, 2, 3).reshape(b, x.shape[1], -1)
        stride = 2 ** len(self.filters)
        lengths = jnp.maximum((mel_len + stride - 1) // stride, 1)
        return gru_final_state(GRUParams(x.shape[-1], self.gru_size, name="gru")(), x, lengths)


class StyleTokenLayer(nn.Module):
    """Multi-head attention of a query [B, query_size] over tanh(tokens) -> style [B, embedding_size].

    Tokens are [token_num, embedding_size / num_heads]; each head scores them by scaled dot product.
    """

    token_num: int = 8
    embedding_size: int = 256
    num_heads: int = 4
    query_size: int = 128

    def setup(self):
        if self.embedding_size % self.num_heads:
            raise ValueError(f"embedding_size {self.embedding_size} is not a multiple of num_heads {self.num_heads}")
        d_k = self.embedding_size // self.num_heads
        self.embed = self.param("embed", nn.initializers.normal(0.5), (self.token_num, d_k))
        self.w_query = self.param("w_query", torch_default_kernel, (self.query_size, self.embedding_size))
        self.w_key = self.param("w_key", torch_default_kernel, (d_k, self.embedding_size))
        self.w_value = self.param("w_value", torch_default_kernel, (d_k, self.embedding_size))

    def __call__(self, query: jax.Array) -> jax.Array:
        heads = self.num_heads
        d = self.embedding_size // heads
        keys = jnp.tanh(self.embed)
        q = (query @ self.w_query).reshape(query.shape[0], heads, d)
        k = (keys @ self.w_key).reshape(self.token_num, heads, d)
        v = (keys @ self.w_value).reshape(self.token_num, heads, d)
        scores = jax.nn.softmax(jnp.einsum("bhd,khd->bhk", q, k) / math.sqrt(d), axis=-1)
        return jnp.einsum("bhk,khd->bhd", scores, v).reshape(query.shape[0], self.embedding_size)

    def token_style(self, token: jax.Array) -> jax.Array:
        """The style of one token alone, token [B] int -> [B, embedding_size] (attention over a single key)."""
        return jnp.tanh(self.embed[token]) @ self.w_value


class GlobalStyleTokens(nn.Module):
    """Reference encoder + style token layer. mel [B, T, n_mels], lengths [B] -> style [B, embedding_size]."""

    token_num: int = 8
    embedding_size: int = 256
    num_heads: int = 4
    ref_filters: Sequence[int] = (32, 32, 64, 64, 128, 128)
    ref_gru_size: int = 128
    ref_layout: str = "time_mel"

    def setup(self):
        self.encoder = ReferenceEncoder(self.ref_filters, self.ref_gru_size, self.ref_layout)
        self.stl = StyleTokenLayer(self.token_num, self.embedding_size, self.num_heads, self.ref_gru_size)

    def __call__(self, mel: jax.Array, mel_len: jax.Array, train: bool) -> jax.Array:
        return self.stl(self.encoder(mel, mel_len, train))

    def token_style(self, token: jax.Array) -> jax.Array:
        return self.stl.token_style(token)


class TextPredictedStyle(nn.Module):
    """TPS-GST: encoder output [B, N, M] (gradient stopped), text_len [B], mask [B, N] -> style [B, E].

    Conv(3) + BN + ReLU, a length-aware bidirectional GRU (final states, forward || backward), tanh(Dense).
    T2N HEAD rescales the result (`max_norm` > 0: norm c = clip(|y|, 1e-8, max_norm), y * min(c, 1) / c);
    legacy T2N does not. T2N ran the GRU over padding; here each direction stops at the sequence's end.
    """

    embedding_size: int = 256
    gru_size: int = 128
    max_norm: float = 0.0

    @nn.compact
    def __call__(self, memory: jax.Array, text_len: jax.Array, mask: jax.Array, train: bool) -> jax.Array:
        x = jnp.where(mask[..., None], jax.lax.stop_gradient(memory), 0.0)
        width = 2 * self.gru_size
        x = nn.Conv(width, (3,), padding=((1, 1),), use_bias=False, kernel_init=torch_default_kernel, name="conv")(x)
        bn = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name="bn")
        x = nn.relu(bn(x, mask=jnp.broadcast_to(mask[..., None], x.shape)))
        fwd = gru_final_state(GRUParams(width, self.gru_size, name="gru_fwd")(), x, text_len)
        bwd = gru_final_state(GRUParams(width, self.gru_size, name="gru_bwd")(), reverse_padded(x, text_len), text_len)
        y = jnp.tanh(
            nn.Dense(
                self.embedding_size, kernel_init=torch_default_kernel, bias_init=torch_default_bias(width),
                name="linear",
            )(jnp.concatenate([fwd, bwd], axis=-1))
        )  # fmt: skip
        if self.max_norm > 0:
            c = jnp.clip(jnp.linalg.norm(y, axis=-1, keepdims=True), 1e-8, self.max_norm)
            y = y / c * jnp.minimum(c, 1.0)
        return y


class MIEstimator(nn.Module):
    """CTC head of the MMI objective: decoder features [B, S, D] -> logits [B, S, vocab] (Dense ReLU dropout Dense)."""

    dim: int = 1024
    vocab: int = 49
    dropout: float = 0.5

    @nn.compact
    def __call__(self, features: jax.Array, train: bool) -> jax.Array:
        h = nn.relu(LinearNorm(self.dim, gain="relu", name="hidden")(features))
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return LinearNorm(self.vocab, name="output")(h)
