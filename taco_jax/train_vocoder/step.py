"""The pure vocoder steps: module-level functions, jit-compiled by `jit_train_step` / `jit_val_step`.

train_step(state, batch, *, models, tx, weights) -> (state, StepMetrics)
val_step(gen_params, mel, audio, n_samples, *, models) -> (l1_sum, count, generated wav, its loss mel, real's)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from taco_jax.train.step import StepMetrics
from taco_jax.train_vocoder.config import VocoderLossConfig
from taco_jax.train_vocoder.data import SegmentBatch
from taco_jax.train_vocoder.models import VocoderModels
from taco_jax.train_vocoder.state import VocoderTrainState
from taco_jax.vocoder.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss, mel_l1

__all__ = ["LossWeights", "jit_train_step", "jit_val_step", "train_step", "val_step"]


class LossWeights(NamedTuple):
    mel: float
    feature: float
    adversarial: float

    @classmethod
    def from_config(cls, c: VocoderLossConfig) -> LossWeights:
        return cls(c.mel_weight, c.feature_weight, c.adversarial_weight)


def train_step(
    state: VocoderTrainState,
    batch: SegmentBatch,
    *,
    models: VocoderModels,
    tx: optax.GradientTransformation,
    weights: LossWeights,
) -> tuple[VocoderTrainState, StepMetrics]:
    """One HiFi-GAN training step: a discriminator update, then a generator update against the updated
    discriminators, as the published training does.

    batch.mel [B, F, n_mels] taco_jax mels, batch.audio [B, F * hop] the matching audio. Real and generated
    segments go through each discriminator together, concatenated along the batch (one program, and every layer
    treats rows independently); so the first scale's spectral norm takes one power-iteration step per update
    where PyTorch, calling it on real and generated audio apart, takes two.
    """
    n = batch.audio.shape[0]
    real = batch.audio
    # The generator runs once: its VJP carries the generator loss's gradient (taken with respect to the
    # generated audio below) back to its parameters.
    fake, gen_vjp = jax.vjp(lambda p: models.generate(p, batch.mel), state.gen_params)
    both = jnp.concatenate([real, jax.lax.stop_gradient(fake)])

    # Discriminators: least squares, real -> 1, generated -> 0, on generated audio that carries no gradient.
    def disc_loss(params):
        mpd, msd, stats = models.discriminate(params, state.disc_stats, both)
        (mpd_real, mpd_fake), (msd_real, msd_fake) = mpd.split(n), msd.split(n)
        loss_p, _, _ = discriminator_loss(mpd_real.logits, mpd_fake.logits)
        loss_s, _, _ = discriminator_loss(msd_real.logits, msd_fake.logits)
        return loss_p + loss_s, stats

    (d_loss, disc_stats), d_grads = jax.value_and_grad(disc_loss, has_aux=True)(state.disc_params)
    d_updates, disc_opt = tx.update(d_grads, state.disc_opt, state.disc_params)
    disc_params = optax.apply_updates(state.disc_params, d_updates)

    # Generator: fool the updated discriminators, match their features on real audio, and the loss mel.
    real_mel = models.loss_mel(real)

    def gen_loss(fake_wav):
        mpd, msd, stats = models.discriminate(disc_params, disc_stats, jnp.concatenate([real, fake_wav]))
        (mpd_real, mpd_fake), (msd_real, msd_fake) = mpd.split(n), msd.split(n)
        adv = generator_adversarial_loss(mpd_fake.logits)[0] + generator_adversarial_loss(msd_fake.logits)[0]
        fm = feature_matching_loss(mpd_real.features, mpd_fake.features)
        fm = fm + feature_matching_loss(msd_real.features, msd_fake.features)
        mel = mel_l1(real_mel, models.loss_mel(fake_wav))
        total = weights.adversarial * adv + weights.feature * fm + weights.mel * mel
        return total, (stats, {"g_adv": adv, "g_fm": fm, "mel_l1": mel})

    (g_loss, (disc_stats, terms)), d_fake = jax.value_and_grad(gen_loss, has_aux=True)(fake)
    (g_grads,) = gen_vjp(d_fake)
    g_updates, gen_opt = tx.update(g_grads, state.gen_opt, state.gen_params)
    gen_params = optax.apply_updates(state.gen_params, g_updates)

    means = {"train/d_loss": d_loss, "train/g_loss": g_loss, **{f"train/{k}": v for k, v in terms.items()}}
    means["train/d_grad_norm"] = optax.tree.norm(d_grads)
    means["train/g_grad_norm"] = optax.tree.norm(g_grads)
    new_state = state.replace(
        step=state.step + 1, gen_params=gen_params, disc_params=disc_params, disc_stats=disc_stats,
        gen_opt=gen_opt, disc_opt=disc_opt,
    )  # fmt: skip
    return new_state, StepMetrics(means, {})


def val_step(
    gen_params, mel: jax.Array, audio: jax.Array, n_samples: jax.Array, *, models: VocoderModels
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """Whole utterances: mel [N, T, n_mels], audio [N, T * hop] zero-padded, n_samples [N] true lengths.

    Returns (sum and count of |loss mel(real) - loss mel(generated)| over the frames that lie within each
    utterance (t < n_samples // hop) and every mel bin, generated wav [N, T * hop], its loss mel and the real
    audio's, [N, T, num_mels]).
    """
    fake = models.generate(gen_params, mel)
    fake_mel, real_mel = models.loss_mel(fake), models.loss_mel(audio)
    hop = models.hifigan.hop_size
    valid = jnp.arange(fake_mel.shape[1])[None, :] < (n_samples // hop)[:, None]  # [N, T]
    diff = jnp.abs(fake_mel - real_mel) * valid[..., None]
    count = jnp.sum(valid) * fake_mel.shape[2]
    return jnp.sum(diff), count.astype(jnp.float32), fake, fake_mel, real_mel


def jit_train_step(models: VocoderModels, tx: optax.GradientTransformation, weights: LossWeights) -> Callable:
    """`train_step` bound to its networks, optimizer and loss weights, compiled; the state is donated."""
    return jax.jit(functools.partial(train_step, models=models, tx=tx, weights=weights), donate_argnums=0)


def jit_val_step(models: VocoderModels) -> Callable:
    return jax.jit(functools.partial(val_step, models=models))
