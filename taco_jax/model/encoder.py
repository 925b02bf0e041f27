"""Text encoder: 3 x (conv + BatchNorm + ReLU + dropout) and a length-aware BiLSTM."""

from __future__ import annotations

import flax.linen as nn
import jax

from taco_jax.model.layers import ConvBNStack, LSTMParams, bidirectional_lstm


class Encoder(nn.Module):
    """x: embedded text [B, N, E], text_len [B] -> memory [B, N, encoder_embedding_dim], zero at padding."""

    embedding_dim: int = 512
    n_convolutions: int = 3
    kernel_size: int = 5
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, text_len: jax.Array, mask: jax.Array, train: bool) -> jax.Array:
        x = ConvBNStack(
            channels=(self.embedding_dim,) * self.n_convolutions,
            kernel_size=self.kernel_size,
            activations=("relu",) * self.n_convolutions,
            dropout=self.dropout,
            name="convolutions",
        )(x, mask, train)
        hidden = self.embedding_dim // 2
        p_fwd = LSTMParams(self.embedding_dim, hidden, name="lstm_fwd")()
        p_bwd = LSTMParams(self.embedding_dim, hidden, name="lstm_bwd")()
        return bidirectional_lstm(p_fwd, p_bwd, x, text_len)
