"""Tacotron 2 (NVIDIA architecture and initialisation), channels-last.

text [B, N] int32 -> embedding -> encoder -> memory [B, N, 512]
(optional, Tacotron2-New) memory + style: GST from a reference mel (the teacher mel in training), a single
  style token, or TPS-GST's prediction from the text; added through a projection or concatenated
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
from taco_jax.losses import sequence_mask
from taco_jax.model.decoder import Decoder
from taco_jax.model.encoder import Encoder
from taco_jax.model.layers import ConvBNStack, LinearNorm
from taco_jax.model.style import GlobalStyleTokens, MIEstimator, TextPredictedStyle


class Tacotron2Outputs(NamedTuple):
    mel: jax.Array  # [B, T, n_mels] decoder output (log-mel), zero on padded frames
    mel_post: jax.Array  # [B, T, n_mels] after the residual postnet, zero on padded frames
    gate: jax.Array  # [B, T/r] stop logits per decoder step, +1e3 on padded steps
    alignments: jax.Array  # [B, T/r, N] attention weights per decoder step
    gst_style: jax.Array | None = None  # [B, E] style of the reference (model.gst)
    tpse_style: jax.Array | None = None  # [B, E] style predicted from the text (model.tpse)
    mmi_features: jax.Array | None = None  # [B, T/r, mmi_dim] projection the gate reads (model.mmi)
    mi_logits: jax.Array | None = None  # [B, T/r, mmi_vocab] MI estimator's CTC logits (model.mmi)
    coarse_mel: jax.Array | None = None  # [B, T, n_mels] the DDC coarse decoder's output (model.ddc), zero-padded
    coarse_alignments: jax.Array | None = None  # [B, ceil(T/r_coarse), N] (model.ddc)


class InferenceOutputs(NamedTuple):
    mel: jax.Array  # [B, S*r, n_mels] decoder output, zero after each item's length
    mel_post: jax.Array  # [B, S*r, n_mels]
    gate: jax.Array  # [B, S] stop logits
    alignments: jax.Array  # [B, S, N]
    lengths: jax.Array  # [B] int32, frames (decoder steps * r)
    stopped: jax.Array  # [B] bool, True when the gate ended the item (not max_decoder_steps)


def memory_width(cfg: ModelConfig) -> int:
    """Width of the decoder's memory: the encoder's, plus the style embedding when GST is concatenated,
    plus the speaker embedding of a multi-speaker model."""
    style = cfg.gst_token_embedding_size if cfg.gst == "concat" else 0
    return cfg.encoder_embedding_dim + style + (cfg.speaker_embedding_dim if cfg.n_speakers else 0)


def mmi_vocab(cfg: ModelConfig, n_symbols: int) -> int:
    """CTC classes of the MI estimator: the symbol ids plus a blank. A first blank takes the pad id 0's
    place (the pad is never a label); a last one is appended."""
    return cfg.mmi_vocab or n_symbols + (1 if cfg.mmi_blank == "last" else 0)


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
        self.decoder = self._decoder(c.n_frames_per_step)
        if c.ddc:
            self.decoder_coarse = self._decoder(c.ddc_reduction_factor)
        if c.gst != "none":
            self.gst = GlobalStyleTokens(
                c.gst_token_num, c.gst_token_embedding_size, c.gst_num_heads, tuple(c.gst_ref_filters),
                c.gst_ref_gru_size, c.gst_reference_layout,
            )  # fmt: skip
            if c.gst == "add":
                self.gst_proj = LinearNorm(c.encoder_embedding_dim)
            if c.tpse:
                self.tpse = TextPredictedStyle(c.gst_token_embedding_size, c.tpse_gru_size, c.tpse_max_norm)
        if c.n_speakers:
            self.speaker_embedding = nn.Embed(
                c.n_speakers, c.speaker_embedding_dim, embedding_init=nn.initializers.normal(0.3)
            )
        if c.mmi:
            self.mi = MIEstimator(c.mmi_dim, mmi_vocab(c, self.n_symbols), c.mmi_dropout)
        n_post = c.postnet_n_convolutions
        self.postnet = ConvBNStack(
            channels=(c.postnet_embedding_dim,) * (n_post - 1) + (self.n_mels,),
            kernel_size=c.postnet_kernel_size,
            activations=("tanh",) * (n_post - 1) + ("linear",),
            dropout=c.postnet_dropout,
        )

    def _decoder(self, r: int) -> Decoder:
        c = self.cfg
        return Decoder(
            n_mels=self.n_mels, r=r, prenet_dim=c.prenet_dim, prenet_dropout=c.prenet_dropout,
            attention_rnn_dim=c.attention_rnn_dim, attention_dim=c.attention_dim,
            location_filters=c.attention_location_n_filters, location_kernel=c.attention_location_kernel_size,
            attention_dropout=c.attention_dropout, decoder_rnn_dim=c.decoder_rnn_dim, decoder_dropout=c.decoder_dropout,
            memory_dim=memory_width(c), mask_value=c.mask_value, custom_vjp=c.decoder_custom_vjp,
            scan_unroll=c.decoder_scan_unroll, remat=c.decoder_remat, mmi_dim=c.mmi_dim if c.mmi else 0,
            mmi_dropout=c.mmi_dropout,
        )  # fmt: skip

    def _coarse_decode(self, memory, text_mask, mel, frame_mask, train) -> tuple[jax.Array, jax.Array]:
        """DDC's coarse decoder on the same teacher mel, padded to a multiple of its reduction factor.
        Returns (mel [B, T, n_mels] zero-padded, alignments [B, ceil(T / r_coarse), N])."""
        r = self.cfg.ddc_reduction_factor
        t = mel.shape[1]
        padded = jnp.pad(mel, ((0, 0), (0, -t % r), (0, 0)))
        coarse, _, alignments, _ = self.decoder_coarse(memory, text_mask, padded, train)
        return jnp.where(frame_mask[..., None], coarse[:, :t], 0.0), alignments

    def encode(self, text: jax.Array, text_len: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """text [B, N] int32 -> (memory [B, N, M], text_mask [B, N])."""
        mask = sequence_mask(text_len, max_len=text.shape[1])
        memory = self.encoder(self.embedding(text), text_len, mask, train)
        return memory, mask

    def _postnet(self, mel: jax.Array, frame_mask: jax.Array, train: bool) -> jax.Array:
        return mel + self.postnet(mel, frame_mask, train)

    def _with_speaker(self, memory: jax.Array, speaker: jax.Array | int | None) -> jax.Array:
        """Append the speaker's embedding to every memory position (multi-speaker models only)."""
        n = self.cfg.n_speakers
        if not n:
            if speaker is not None:
                raise ValueError("a speaker was given to a single-speaker model (config key 'model.n_speakers' = 0)")
            return memory
        if speaker is None:
            raise ValueError(f"this model has {n} speakers (model.n_speakers): name one (speaker id 0..{n - 1})")
        if isinstance(speaker, int) and not 0 <= speaker < n:  # a traced id would be clamped
            raise ValueError(f"speaker {speaker} out of range: the model has {n} (model.n_speakers)")
        b = memory.shape[0]
        emb = self.speaker_embedding(jnp.broadcast_to(jnp.asarray(speaker, jnp.int32), (b,)))
        return jnp.concatenate([memory, jnp.broadcast_to(emb[:, None, :], memory.shape[:2] + emb.shape[-1:])], -1)

    def _with_style(self, memory: jax.Array, style: jax.Array) -> jax.Array:
        """memory [B, N, M_enc] + style [B, E] -> decoder memory [B, N, memory_width]; the same in training
        and inference (padded positions change too; attention masks them)."""
        if self.cfg.gst == "add":
            return memory + self.gst_proj(style)[:, None, :]
        return jnp.concatenate([memory, jnp.broadcast_to(style[:, None, :], memory.shape[:2] + style.shape[-1:])], -1)

    def __call__(
        self, text: jax.Array, text_len: jax.Array, mel: jax.Array, mel_len: jax.Array, train: bool = False,
        reference: jax.Array | None = None, reference_len: jax.Array | None = None,
        speaker: jax.Array | None = None,
    ) -> Tacotron2Outputs:  # fmt: skip
        """Teacher-forced forward. mel [B, T, n_mels] with T a multiple of r; lengths [B] int32.

        With GST the style comes from `reference` [B, T_ref, n_mels] (lengths reference_len), by default the
        teacher mel itself. speaker [B] int32: the speaker ids of a multi-speaker model.
        """
        c = self.cfg
        r = c.n_frames_per_step
        if mel.shape[1] % r:
            raise ValueError(f"mel frames {mel.shape[1]} must be a multiple of n_frames_per_step={r}")
        memory, text_mask = self.encode(text, text_len, train)
        gst_style = tpse_style = None
        if c.gst != "none":
            if reference is None:
                reference, reference_len = mel, mel_len
            gst_style = self.gst(reference, reference_len, train)
            if c.tpse:
                tpse_style = self.tpse(memory, text_len, text_mask, train)
            memory = self._with_style(memory, gst_style)
        memory = self._with_speaker(memory, speaker)
        mel_out, gate, alignments, mmi_features = self.decoder(memory, text_mask, mel, train)
        mi_logits = self.mi(mmi_features, train) if c.mmi else None
        frame_mask = sequence_mask(mel_len, max_len=mel.shape[1])
        coarse_mel = coarse_alignments = None
        if c.ddc:
            coarse_mel, coarse_alignments = self._coarse_decode(memory, text_mask, mel, frame_mask, train)
        mel_post = self._postnet(mel_out, frame_mask, train)
        step_mask = sequence_mask((mel_len + r - 1) // r, max_len=gate.shape[1])
        keep = frame_mask[..., None]
        return Tacotron2Outputs(
            jnp.where(keep, mel_out, 0.0), jnp.where(keep, mel_post, 0.0), jnp.where(step_mask, gate, 1e3), alignments,
            gst_style, tpse_style, mmi_features, mi_logits, coarse_mel, coarse_alignments,
        )  # fmt: skip

    def infer(
        self, text: jax.Array, text_len: jax.Array, max_decoder_steps: int | None = None,
        prenet_dropout: bool | None = None, reference: jax.Array | None = None,
        reference_len: jax.Array | None = None, style_token: jax.Array | int | None = None,
        style_scale: float = 1.0, speaker: jax.Array | int | None = None,
    ) -> InferenceOutputs:  # fmt: skip
        """Free-running synthesis. max_decoder_steps is in frames (default from the config).

        Prenet dropout at inference (NVIDIA's behaviour) needs a 'dropout' rng when enabled.
        With GST the style is, in this order of precedence: the GST of `reference` [B, T_ref, n_mels]
        (lengths reference_len, default all frames), the style token `style_token` (int or [B] int) alone,
        TPS-GST's prediction from the text (model.tpse), or no style (zeros); times style_scale.
        A multi-speaker model needs `speaker` (int or [B] int).
        """
        c = self.cfg
        r = c.n_frames_per_step
        max_frames = c.max_decoder_steps if max_decoder_steps is None else max_decoder_steps
        use_dropout = c.prenet_dropout_at_inference if prenet_dropout is None else prenet_dropout
        memory, text_mask = self.encode(text, text_len, train=False)
        if c.gst != "none":
            style = self._inference_style(memory, text_len, text_mask, reference, reference_len, style_token)
            memory = self._with_style(memory, style * style_scale)
        elif reference is not None or style_token is not None:
            raise ValueError("a style reference or token needs a model with GST (config key 'model.gst')")
        memory = self._with_speaker(memory, speaker)
        steps = -(-max_frames // r)
        mel, gate, alignments, step_len, stopped = self.decoder.infer(
            memory, text_mask, steps, c.gate_threshold, use_dropout
        )
        lengths = step_len * r
        frame_mask = sequence_mask(lengths, max_len=mel.shape[1])
        mel_post = self._postnet(mel, frame_mask, train=False)
        keep = frame_mask[..., None]
        return InferenceOutputs(
            jnp.where(keep, mel, 0.0), jnp.where(keep, mel_post, 0.0), gate, alignments, lengths, stopped
        )

    def _inference_style(self, memory, text_len, text_mask, reference, reference_len, style_token) -> jax.Array:
        b = memory.shape[0]
        if reference is not None:
            if reference_len is None:
                reference_len = jnp.full((reference.shape[0],), reference.shape[1], jnp.int32)
            return jnp.broadcast_to(self.gst(reference, reference_len, False), (b, self.cfg.gst_token_embedding_size))
        if style_token is not None:
            n = self.cfg.gst_token_num
            if isinstance(style_token, int) and not 0 <= style_token < n:  # a traced index would be clamped
                raise ValueError(f"style token {style_token} out of range: the model has {n} (model.gst_token_num)")
            token = jnp.broadcast_to(jnp.asarray(style_token, jnp.int32), (b,))
            return self.gst.token_style(token)
        if self.cfg.tpse:
            return self.tpse(memory, text_len, text_mask, False)
        return jnp.zeros((b, self.cfg.gst_token_embedding_size), memory.dtype)


def build_model(cfg: ModelConfig, n_symbols: int, n_mels: int = 80) -> Tacotron2:
    if cfg.n_symbols and cfg.n_symbols != n_symbols:
        raise ValueError(f"config key 'model.n_symbols'={cfg.n_symbols} but the symbol table has {n_symbols}")
    return Tacotron2(cfg, n_symbols, n_mels)
