"""HiFi-GAN's multi-period and multi-scale discriminators in Flax (channels-last, PyTorch-layout weights).

Both take waveforms `[B, S]` (float32 in [-1, 1]) and return `(logits, feature_maps)`:
  logits        list, one `[B, n_d]` array per sub-discriminator (its last layer's output, flattened);
  feature_maps  list, per sub-discriminator, of every layer's activation (after leaky ReLU 0.1; the last entry
                is the un-activated output layer): MPD `[B, H_j, period, C]` (H = ceil(S / period), divided
                by 3, rounding up, at each stride-3 conv), MSD `[B, T_j, C]`. Channels-last, so each is the transpose of
                PyTorch's map (`[B, C, H, W]` / `[B, C, T]`); the losses do not care.
Unlike PyTorch's modules, which take a (real, fake) pair, one call scores one batch: call twice (or on the
two concatenated along the batch axis; every layer treats batch items independently, but the spectral norm
then takes one power step where PyTorch takes two).

MultiPeriodDiscriminator: periods 2, 3, 5, 7, 11; the waveform is reflect-padded on the right to a multiple
of the period and folded to `[B, S_p / period, period, 1]`; five (5, 1) convs (strides 3, 3, 3, 3, 1;
1 -> 32 -> 128 -> 512 -> 1024 -> 1024) and a (3, 1) output conv, all weight-normed.
MultiScaleDiscriminator: three 1-D discriminators on the waveform, its 2x and its 4x average-pooled versions
(window 4, stride 2, padding 2 counted as zeros); the first spectral-normed, the others weight-normed.

Variables (the PyTorch state_dict key `discriminators.{i}.convs.{j}.weight_v` is at
`params/discriminators_{i}/convs_{j}/v`; `taco_jax.convert.hifigan_discriminators` converts):
  params       weight-normed convs: `v`, `g`, `bias` (see `taco_jax.vocoder.layers`); the spectral-normed
               scale's convs: `weight_orig`, `bias`.
  batch_stats  MSD only: `u`, `v` of each spectral-normed conv (`taco_jax.vocoder.spectral_norm`).

Call convention:
  mpd, msd = MultiPeriodDiscriminator(), MultiScaleDiscriminator()
  mpd_vars = mpd.init(rng, wav)                   # {"params"}
  msd_vars = msd.init(rng, wav)                   # {"params", "batch_stats"}
  logits, feats = mpd.apply(mpd_vars, wav)
  # training forward: one power-iteration step per spectral-normed conv, new u and v returned:
  (logits, feats), updates = msd.apply(msd_vars, wav, update_stats=True, mutable=["batch_stats"])
  msd_vars = {"params": msd_vars["params"], "batch_stats": updates["batch_stats"]}
  # evaluation: the stored u and v
  logits, feats = msd.apply(msd_vars, wav)
`channel_divisor` (default 1, the published width) divides every conv's output channels except the
1-channel output conv (MSD groups unchanged, so 1, 2, 4 and 8 work): narrower discriminators for CPU
demos and tests (published `do_` files are at 1).
`update_stats` is accepted (and ignored) by the MPD too, so a trainer can treat both alike. PyTorch's
training does one power step per forward of each input: two per (real, fake) pair, i.e. one per call here.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from taco_jax.vocoder.layers import WNConv1d, WNConv2d
from taco_jax.vocoder.spectral_norm import SpectralNormConv1d

__all__ = [
    "LRELU_SLOPE",
    "MPD_PERIODS",
    "MSD_LAYERS",
    "DiscriminatorP",
    "DiscriminatorS",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
]

LRELU_SLOPE = 0.1
MPD_PERIODS = (2, 3, 5, 7, 11)
MPD_CHANNELS = (32, 128, 512, 1024, 1024)
MPD_STRIDES = (3, 3, 3, 3, 1)
# DiscriminatorS convs: (out channels, kernel, stride, groups, padding); the output conv is (1, 3, 1, 1, 1).
MSD_LAYERS = (
    (128, 15, 1, 1, 7),
    (128, 41, 2, 4, 20),
    (256, 41, 2, 16, 20),
    (512, 41, 4, 16, 20),
    (1024, 41, 4, 16, 20),
    (1024, 41, 1, 16, 20),
    (1024, 5, 1, 1, 2),
)
MSD_POST = (1, 3, 1, 1, 1)

Outputs = tuple[list[jax.Array], list[list[jax.Array]]]


def _check_wav(wav: jax.Array, who: str) -> None:
    if wav.ndim != 2:
        raise ValueError(f"{who}: expected waveforms [B, samples], got shape {wav.shape}")


class DiscriminatorP(nn.Module):
    """One period: wav [B, S] -> (logits [B, H_out * period], feature maps [B, H_j, period, C_j])."""

    period: int
    channel_divisor: int = 1
    precision: Any = None

    @nn.compact
    def __call__(self, wav: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        _check_wav(wav, "DiscriminatorP")
        batch, samples = wav.shape
        if samples % self.period:
            # Reflect (not zero) padding, as published; PyTorch's reflect needs the pad shorter than the input.
            n_pad = self.period - samples % self.period
            if n_pad >= samples:
                raise ValueError(f"DiscriminatorP: {samples} samples is too short for period {self.period}")
            wav = jnp.pad(wav, ((0, 0), (0, n_pad)), mode="reflect")
            samples += n_pad
        # Row-major fold: x[b, h, w] = wav[b, h * period + w], PyTorch's view(B, 1, S / p, p).
        x = wav.reshape(batch, samples // self.period, self.period, 1)
        features = []
        for j, (channels, stride) in enumerate(zip(MPD_CHANNELS, MPD_STRIDES, strict=True)):
            conv = WNConv2d(
                _narrow(channels, 1, self.channel_divisor),
                (5, 1),
                stride=(stride, 1),
                padding=(2, 0),
                precision=self.precision,
                name=f"convs_{j}",
            )
            x = nn.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = WNConv2d(1, (3, 1), padding=(1, 0), precision=self.precision, name="conv_post")(x)
        features.append(x)
        return x.reshape(batch, -1), features


class DiscriminatorS(nn.Module):
    """One scale: wav [B, S] -> (logits [B, T_out], feature maps [B, T_j, C_j]); spectral or weight norm."""

    use_spectral_norm: bool = False
    channel_divisor: int = 1
    precision: Any = None

    @nn.compact
    def __call__(self, wav: jax.Array, update_stats: bool = False) -> tuple[jax.Array, list[jax.Array]]:
        _check_wav(wav, "DiscriminatorS")
        x = wav[:, :, None]
        features = []
        for j, layer in enumerate(MSD_LAYERS):
            x = nn.leaky_relu(self._conv(layer, f"convs_{j}", x, update_stats), LRELU_SLOPE)
            features.append(x)
        x = self._conv(MSD_POST, "conv_post", x, update_stats)
        features.append(x)
        return x.reshape(x.shape[0], -1), features

    def _conv(self, layer: tuple[int, ...], name: str, x: jax.Array, update_stats: bool) -> jax.Array:
        features, kernel, stride, groups, padding = layer
        if layer is not MSD_POST:
            features = _narrow(features, groups, self.channel_divisor)
        kw = dict(stride=stride, padding=padding, groups=groups, precision=self.precision, name=name)
        if self.use_spectral_norm:
            return SpectralNormConv1d(features, kernel, **kw)(x, update_stats)
        return WNConv1d(features, kernel, **kw)(x)


class MultiPeriodDiscriminator(nn.Module):
    """wav [B, S] -> (logits, feature maps) of the five period discriminators (see the module docstring)."""

    periods: tuple[int, ...] = MPD_PERIODS
    channel_divisor: int = 1
    precision: Any = None

    @nn.compact
    def __call__(self, wav: jax.Array, update_stats: bool = False) -> Outputs:
        del update_stats  # no running state: accepted so that both discriminators are called alike
        _check_wav(wav, "MultiPeriodDiscriminator")
        logits, features = [], []
        for i, period in enumerate(self.periods):
            disc = DiscriminatorP(period, self.channel_divisor, precision=self.precision, name=f"discriminators_{i}")
            out, fmap = disc(wav)
            logits.append(out)
            features.append(fmap)
        return logits, features


class MultiScaleDiscriminator(nn.Module):
    """wav [B, S] -> (logits, feature maps) of the three scale discriminators (see the module docstring)."""

    channel_divisor: int = 1
    precision: Any = None

    @nn.compact
    def __call__(self, wav: jax.Array, update_stats: bool = False) -> Outputs:
        _check_wav(wav, "MultiScaleDiscriminator")
        logits, features = [], []
        for i in range(3):
            if i > 0:
                wav = _mean_pool(wav)
            disc = DiscriminatorS(
                use_spectral_norm=i == 0, channel_divisor=self.channel_divisor, precision=self.precision,
                name=f"discriminators_{i}",
            )  # fmt: skip
            out, fmap = disc(wav, update_stats)
            logits.append(out)
            features.append(fmap)
        return logits, features


def _narrow(channels: int, groups: int, divisor: int) -> int:
    """channels // divisor, checked to stay a whole number divisible by the conv's groups."""
    if divisor < 1 or channels % divisor or (channels // divisor) % groups:
        raise ValueError(
            f"channel_divisor={divisor}: {channels} channels / {divisor} must be a whole multiple of {groups} groups"
        )
    return channels // divisor


def _mean_pool(wav: jax.Array) -> jax.Array:
    """Average pool, window 4, stride 2, 2 zeros each side counted in the mean: [B, S] -> [B, S // 2 + 1]."""
    pooled = nn.avg_pool(wav[:, :, None], (4,), strides=(2,), padding=((2, 2),), count_include_pad=True)
    return pooled[:, :, 0]
