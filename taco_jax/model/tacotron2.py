"""Tacotron 2 (NVIDIA architecture and initialisation), channels-last.

text [B, N] int32 -> embedding -> encoder -> memory [B, N, 512]
memory + teacher mel [B, T, n_mels] -> decoder -> mel, gate logits, alignments
mel -> postnet (residual) -> mel_post
"""

from __future__ import annotations

import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from taco_jax.config import ModelConfig
from taco_jax.model.decoder import Decoder
from taco_jax.model.encoder import Encoder
from taco_jax.model.layers import ConvBNStack


class Tacotron2Outputs(NamedTuple):
    mel: jax.Array  # [B, T, n_mels] decoder output (log-mel), zero on padded frames
    mel_post: jax.Array  # [B, T, n_mels] after the residual postnet, zero on padded frames
    gate: jax.Array  # [B, T/r] stop logits per decoder step, +1e3 on padded steps
    alignments: jax.Array  # [B, T/r, N] attention weights per decoder step


class InferenceOutputs(NamedTuple):
    mel: jax.Array  # [B, S*r, n_mels] decoder output, zero after each item's length
    mel_post: jax.Array  # [B, S*r, n_mels]
    gate: jax.Array  # [B, S] stop logits
    alignments: jax.Array  # [B, S, N]
    lengths: jax.Array  # [B] int32, frames (decoder steps * r)
    stopped: jax.Array  # [B] bool, True when the gate ended the item (not max_decoder_steps)


def sequence_mask(lengths: jax.Array, max_len: int) -> jax.Array:
    return jnp.arange(max_len)[None, :] < lengths[:, None]


class Tacotron2(nn.Module):
    cfg: ModelConfig
    n_symbols: int
    n_mels: int = 80

    def setup(self):
        c = self.cfg
        e = c.symbols_embedding_dim
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (self.n_symbols + e))
        self.embedding = nn.Embed(
            self.n_symbols, e, embedding_init=lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound, bound)
        )
        self.encoder = Encoder(
            c.encoder_embedding_dim, c.encoder_n_convolutions, c.encoder_kernel_size, c.encoder_dropout
        )
        self.decoder = Decoder(
            n_mels=self.n_mels, r=c.n_frames_per_step, prenet_dim=c.prenet_dim, prenet_dropout=c.prenet_dropout,
            attention_rnn_dim=c.attention_rnn_dim, attention_dim=c.attention_dim,
            location_filters=c.attention_location_n_filters, location_kernel=c.attention_location_kernel_size,
            attention_dropout=c.attention_dropout, decoder_rnn_dim=c.decoder_rnn_dim, decoder_dropout=c.decoder_dropout,
            memory_dim=c.encoder_embedding_dim, mask_value=c.mask_value, custom_vjp=c.decoder_custom_vjp,
        )  # fmt: skip
        n_post = c.postnet_n_convolutions
        self.postnet = ConvBNStack(
            channels=(c.postnet_embedding_dim,) * (n_post - 1) + (self.n_mels,),
            kernel_size=c.postnet_kernel_size,
            activations=("tanh",) * (n_post - 1) + ("linear",),
            dropout=c.postnet_dropout,
        )

    def encode(self, text: jax.Array, text_len: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """text [B, N] int32 -> (memory [B, N, M], text_mask [B, N])."""
        mask = sequence_mask(text_len, text.shape[1])
        memory = self.encoder(self.embedding(text), text_len, mask, train)
        return memory, mask

    def _postnet(self, mel: jax.Array, frame_mask: jax.Array, train: bool) -> jax.Array:
        return mel + self.postnet(mel, frame_mask, train)

    def __call__(
        self, text: jax.Array, text_len: jax.Array, mel: jax.Array, mel_len: jax.Array, train: bool = False
    ) -> Tacotron2Outputs:
        """Teacher-forced forward. mel [B, T, n_mels] with T a multiple of r; lengths [B] int32."""
        r = self.cfg.n_frames_per_step
        if mel.shape[1] % r:
            raise ValueError(f"mel frames {mel.shape[1]} must be a multiple of n_frames_per_step={r}")
        memory, text_mask = self.encode(text, text_len, train)
        mel_out, gate, alignments = self.decoder(memory, text_mask, mel, train)
        frame_mask = sequence_mask(mel_len, mel.shape[1])
        mel_post = self._postnet(mel_out, frame_mask, train)
        step_mask = sequence_mask((mel_len + r - 1) // r, gate.shape[1])
        keep = frame_mask[..., None]
        return Tacotron2Outputs(
            jnp.where(keep, mel_out, 0.0), jnp.where(keep, mel_post, 0.0), jnp.where(step_mask, gate, 1e3), alignments
        )

    def infer(
        self, text: jax.Array, text_len: jax.Array, max_decoder_steps: int | None = None,
        prenet_dropout: bool | None = None,
    ) -> InferenceOutputs:  # fmt: skip
        """Free-running synthesis. max_decoder_steps is in frames (default from the config).

        Prenet dropout at inference (NVIDIA's behaviour) needs a 'dropout' rng when enabled.
        """
        c = self.cfg
        r = c.n_frames_per_step
        max_frames = c.max_decoder_steps if max_decoder_steps is None else max_decoder_steps
        use_dropout = c.prenet_dropout_at_inference if prenet_dropout is None else prenet_dropout
        memory, text_mask = self.encode(text, text_len, train=False)
        steps = -(-max_frames // r)
        mel, gate, alignments, step_len, stopped = self.decoder.infer(
            memory, text_mask, steps, c.gate_threshold, use_dropout
        )
        lengths = step_len * r
        frame_mask = sequence_mask(lengths, mel.shape[1])
        mel_post = self._postnet(mel, frame_mask, train=False)
        keep = frame_mask[..., None]
        return InferenceOutputs(
            jnp.where(keep, mel, 0.0), jnp.where(keep, mel_post, 0.0), gate, alignments, lengths, stopped
        )


def build_model(cfg: ModelConfig, n_symbols: int, n_mels: int = 80) -> Tacotron2:
    if cfg.n_symbols and cfg.n_symbols != n_symbols:
        raise ValueError(f"config key 'model.n_symbols'={cfg.n_symbols} but the symbol table has {n_symbols}")
    return Tacotron2(cfg, n_symbols, n_mels)
