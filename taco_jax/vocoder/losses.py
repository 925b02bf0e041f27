"""HiFi-GAN's training losses and its loss mel spectrogram, as pure jnp functions (jit-able, differentiable).

Discriminator outputs come as the discriminators return them (`taco_jax.vocoder.discriminators`): a list of
logits `[B, n_i]`, one per sub-discriminator, and a list (per sub-discriminator) of lists (per layer) of
feature maps of any shape. The adversarial losses are least-squares GAN losses (real -> 1, fake -> 0), summed
over the sub-discriminators; each term is a mean over its own logits, so sub-discriminators with more outputs
do not weigh more.

Loss weights as published: the generator minimises `adv_mpd + adv_msd + fm_mpd + fm_msd + 45 * mel_l1`,
the discriminators `discriminator_loss(mpd) + discriminator_loss(msd)` (`MEL_LOSS_WEIGHT`).

`hifigan_mel` is HiFi-GAN's own mel (not taco_jax's centred NVIDIA mel, `taco_jax.audio.mel_spectrogram`):
the waveform is reflect-padded by (n_fft - hop) / 2 on each side and framed without centring, so a segment of
S samples (S a multiple of hop) gives exactly S // hop frames, frame t centred at sample t*hop + hop/2.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "FEATURE_LOSS_WEIGHT",
    "MEL_LOSS_WEIGHT",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_adversarial_loss",
    "hifigan_mel",
    "mel_l1",
]

MEL_LOSS_WEIGHT = 45.0  # weight of mel_l1 in the generator's loss
FEATURE_LOSS_WEIGHT = 2.0  # applied inside feature_matching_loss
MAGNITUDE_EPS = 1e-9  # added to |X|^2 before the square root, which keeps the gradient finite at |X| = 0
LOG_FLOOR = 1e-5  # mel values are clamped to this before the natural log


def discriminator_loss(
    real_logits: Sequence[jax.Array], fake_logits: Sequence[jax.Array]
) -> tuple[jax.Array, list[jax.Array], list[jax.Array]]:
    """Least-squares discriminator loss: sum_d [mean((1 - D_d(real))^2) + mean(D_d(fake)^2)].

    real_logits, fake_logits: per sub-discriminator `[B, n_d]` (same order, same length).
    Returns (total f32 scalar, per-discriminator real terms, per-discriminator fake terms) for logging.
    """
    _same_length(real_logits, fake_logits, "real_logits", "fake_logits")
    real_terms = [jnp.mean(jnp.square(1.0 - r.astype(jnp.float32))) for r in real_logits]
    fake_terms = [jnp.mean(jnp.square(f.astype(jnp.float32))) for f in fake_logits]
    return sum(real_terms) + sum(fake_terms), real_terms, fake_terms


def generator_adversarial_loss(fake_logits: Sequence[jax.Array]) -> tuple[jax.Array, list[jax.Array]]:
    """Least-squares generator loss: sum_d mean((1 - D_d(fake))^2).

    fake_logits: per sub-discriminator `[B, n_d]`. Returns (total f32 scalar, per-discriminator terms).
    """
    terms = [jnp.mean(jnp.square(1.0 - f.astype(jnp.float32))) for f in fake_logits]
    return sum(terms), terms


def feature_matching_loss(
    real_features: Sequence[Sequence[jax.Array]], fake_features: Sequence[Sequence[jax.Array]]
) -> jax.Array:
    """2 * sum over sub-discriminators and layers of mean |real - fake| (f32 scalar).

    real_features, fake_features: per sub-discriminator, per layer, maps of matching shapes. Gradient flows
    into both (as published); in the generator step only the fake side depends on the generator.
    """
    _same_length(real_features, fake_features, "real_features", "fake_features")
    total = jnp.zeros((), jnp.float32)
    for d, (real_maps, fake_maps) in enumerate(zip(real_features, fake_features, strict=True)):
        _same_length(real_maps, fake_maps, f"real_features[{d}]", f"fake_features[{d}]")
        for real, fake in zip(real_maps, fake_maps, strict=True):
            total = total + jnp.mean(jnp.abs(real.astype(jnp.float32) - fake.astype(jnp.float32)))
    return FEATURE_LOSS_WEIGHT * total


def mel_l1(mel_a: jax.Array, mel_b: jax.Array) -> jax.Array:
    """Mean absolute difference of two log-mel spectrograms of the same shape (f32 scalar, unweighted)."""
    if mel_a.shape != mel_b.shape:
        raise ValueError(f"mel_l1: shapes differ: {mel_a.shape} vs {mel_b.shape}")
    return jnp.mean(jnp.abs(mel_a.astype(jnp.float32) - mel_b.astype(jnp.float32)))


def hifigan_mel(
    wav: jax.Array,
    *,
    sampling_rate: int,
    n_fft: int,
    hop: int,
    win: int,
    n_mels: int,
    fmin: float,
    fmax: float | None,
) -> jax.Array:
    """HiFi-GAN's natural-log mel spectrogram `[B, S // hop, n_mels]` f32 of waveforms `[B, S]` in [-1, 1].

    Reflect padding of (n_fft - hop) // 2 samples on each side, frames of n_fft samples every `hop` samples
    (no centring), periodic Hann window of `win` samples centred in n_fft, magnitude sqrt(re^2 + im^2 + 1e-9),
    Slaney mel basis (librosa's default) over [fmin, fmax] Hz (fmax None: sampling_rate / 2),
    log(max(mel, 1e-5)). Frame t covers padded samples [t*hop, t*hop + n_fft), i.e. it is centred at
    sample t*hop + hop/2 of `wav` (for S not a multiple of hop the count is (S - hop) // hop + 1).
    """
    if wav.ndim != 2:
        raise ValueError(f"hifigan_mel: expected waveforms [B, samples], got shape {wav.shape}")
    if (n_fft - hop) % 2:
        raise ValueError(f"hifigan_mel: n_fft - hop must be even, got n_fft={n_fft}, hop={hop}")
    pad = (n_fft - hop) // 2
    if wav.shape[1] <= pad or wav.shape[1] < hop:
        raise ValueError(f"hifigan_mel: {wav.shape[1]} samples is too short for n_fft={n_fft}, hop={hop}")
    padded = jnp.pad(wav.astype(jnp.float32), ((0, 0), (pad, pad)), mode="reflect")
    n_frames = (padded.shape[1] - n_fft) // hop + 1
    # A gather of overlapping frames: [n_frames, n_fft] indices, a constant folded by XLA.
    index = np.arange(n_frames)[:, None] * hop + np.arange(n_fft)[None, :]
    frames = padded[:, index] * jnp.asarray(_window(win, n_fft))  # [B, n_frames, n_fft]
    spec = jnp.fft.rfft(frames, axis=-1)  # [B, n_frames, n_fft // 2 + 1]
    magnitude = jnp.sqrt(jnp.real(spec) ** 2 + jnp.imag(spec) ** 2 + MAGNITUDE_EPS)
    basis = _mel_basis(sampling_rate, n_fft, n_mels, float(fmin), None if fmax is None else float(fmax))
    # HIGHEST: the default TPU/GPU matmul precision (bf16 passes) would put ~1e-3 relative noise into the loss.
    mel = jnp.matmul(magnitude, jnp.asarray(basis.T), precision=jax.lax.Precision.HIGHEST)
    return jnp.log(jnp.maximum(mel, LOG_FLOOR))


@functools.lru_cache(maxsize=8)
def _mel_basis(sampling_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """Slaney mel filterbank `[n_mels, n_fft // 2 + 1]` float32 (librosa: htk=False, norm='slaney'), read-only."""
    import librosa  # only here: importing the loss module stays light

    basis = librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    basis = basis.astype(np.float32)
    basis.flags.writeable = False
    return basis


@functools.lru_cache(maxsize=8)
def _window(win: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window of `win` samples, zero-padded (centred) to `[n_fft]` float32, read-only."""
    if not 0 < win <= n_fft:
        raise ValueError(f"hifigan_mel: window length {win} must be in (0, n_fft={n_fft}]")
    n = np.arange(win)
    window = np.zeros(n_fft, np.float32)
    left = (n_fft - win) // 2
    window[left : left + win] = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win)  # periodic: the DFT-even form
    window.flags.writeable = False
    return window


def _same_length(a: Sequence, b: Sequence, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} has {len(a)} entries but {name_b} has {len(b)}")
