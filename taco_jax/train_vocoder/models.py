"""The networks of a vocoder run: the generator's configuration (preset, config.json, overrides or the checkpoint
being fine-tuned), the generator and both discriminators, their fresh or loaded variables.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from taco_jax.config import ConfigError
from taco_jax.train_vocoder.config import VocoderConfig
from taco_jax.vocoder.config import PRESETS, HifiganConfig, hifigan_config_from_dict, load_hifigan_config
from taco_jax.vocoder.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from taco_jax.vocoder.generator import Generator, init_generator_params
from taco_jax.vocoder.layers import fold_weight_norm, unfold_weight_norm

log = logging.getLogger("taco_jax.train_vocoder")

__all__ = [
    "DiscOutputs",
    "VocoderModels",
    "build_models",
    "fit_generator_params",
    "init_variables",
    "resolve_hifigan_config",
    "training_values",
]

# Keys of the published config.json that this trainer's own config sets (and writes back into the exported one).
_ONE_SHOT = {"xla_backend_optimization_level": 0}  # compiler options of programs that run once
_TRAINING_KEYS = ("segment_size", "batch_size", "learning_rate", "adam_b1", "adam_b2", "lr_decay", "seed")


def training_values(cfg: VocoderConfig) -> dict[str, Any]:
    o = cfg.optim
    return dict(
        segment_size=cfg.data.segment_size, batch_size=cfg.data.batch_size, learning_rate=o.lr,
        adam_b1=o.adam_b1, adam_b2=o.adam_b2, lr_decay=o.lr_decay, seed=cfg.run.seed,
    )  # fmt: skip


def _apply_overrides(base: HifiganConfig, overrides: dict[str, Any]) -> HifiganConfig:
    names = {f.name for f in dataclasses.fields(HifiganConfig)}
    for key in overrides:
        if key not in names:
            raise ConfigError(f"config key 'generator.overrides.{key}': not a HiFi-GAN config.json key")
        if key in _TRAINING_KEYS:
            raise ConfigError(
                f"config key 'generator.overrides.{key}': a training setting; set it in this config's data/optim/run"
            )
    merged = base.to_json() | {k: (list(v) if isinstance(v, tuple) else v) for k, v in overrides.items()}
    return hifigan_config_from_dict(merged, source="config key 'generator.overrides'")


def _check_audio(h: HifiganConfig, cfg: VocoderConfig) -> None:
    """The input mels (cfg.audio) must have the generator's rate, hop and mel count."""
    a = cfg.audio
    for key, ours, theirs in (
        ("sampling_rate", a.sampling_rate, h.sampling_rate),
        ("hop_length", a.hop_length, h.hop_size),
        ("n_mels", a.n_mels, h.num_mels),
    ):
        if ours != theirs:
            raise ConfigError(f"config key 'audio.{key}' = {ours}, but the generator's is {theirs}")
    for key, ours, theirs in (("n_fft", a.n_fft, h.n_fft), ("win_length", a.win_length, h.win_size),
                              ("fmin", a.fmin, h.fmin), ("fmax", a.fmax, h.fmax)):  # fmt: skip
        if theirs is not None and float(ours) != float(theirs):
            log.warning("audio.%s = %s differs from the generator config's %s: the generator will see mels "
                        "computed otherwise than in its own training", key, ours, theirs)  # fmt: skip


def resolve_hifigan_config(cfg: VocoderConfig, base: HifiganConfig | None = None) -> HifiganConfig:
    """The generator's HifiganConfig: `base` (the checkpoint being fine-tuned) or generator.config or
    generator.preset, then generator.overrides, with this run's training settings written in.

    Raises:
      ConfigError / VocoderConfigError: an unknown override key, an impossible architecture, or input mel
        settings (audio.*) that do not fit the generator.
    """
    g = cfg.generator
    if base is None:
        base = load_hifigan_config(g.config) if g.config else PRESETS[g.preset]
    h = _apply_overrides(base, dict(g.overrides)) if g.overrides else base
    h = h.replace(**training_values(cfg))
    _check_audio(h, cfg)
    return h


@dataclass(frozen=True)
class DiscOutputs:
    """Both discriminators' outputs for one batch: per sub-discriminator logits [B, n] and feature maps."""

    logits: list[jax.Array]
    features: list[list[jax.Array]]

    def split(self, n: int) -> tuple[DiscOutputs, DiscOutputs]:
        """(first n batch rows, the rest): real and generated halves of a concatenated batch."""
        head = DiscOutputs([x[:n] for x in self.logits], [[f[:n] for f in fs] for fs in self.features])
        tail = DiscOutputs([x[n:] for x in self.logits], [[f[n:] for f in fs] for fs in self.features])
        return head, tail


@dataclass(frozen=True)
class VocoderModels:
    """The three networks and the loss mel's settings (static: hashed into the compiled step)."""

    hifigan: HifiganConfig
    generator: Generator
    mpd: MultiPeriodDiscriminator
    msd: MultiScaleDiscriminator

    def generate(self, gen_params: Any, mel: jax.Array) -> jax.Array:
        """mel [B, T, num_mels] -> wav [B, T * hop]."""
        return self.generator.apply({"params": gen_params}, mel)

    def discriminate(self, params: Any, stats: Any, wav: jax.Array) -> tuple[DiscOutputs, DiscOutputs, Any]:
        """(MPD outputs, MSD outputs, new stats) for waveforms [B, S]; one spectral-norm power step (training)."""
        mpd_logits, mpd_feats = self.mpd.apply({"params": params["mpd"]}, wav)
        (msd_logits, msd_feats), updates = self.msd.apply(
            {"params": params["msd"], "batch_stats": stats["msd"]}, wav, update_stats=True, mutable=["batch_stats"]
        )
        return DiscOutputs(mpd_logits, mpd_feats), DiscOutputs(msd_logits, msd_feats), {"msd": updates["batch_stats"]}

    def loss_mel(self, wav: jax.Array) -> jax.Array:
        """HiFi-GAN's training mel of waveforms [B, S]: [B, S // hop, num_mels] (fmax_for_loss, None = Nyquist)."""
        from taco_jax.vocoder.losses import hifigan_mel

        h = self.hifigan
        return hifigan_mel(
            wav, sampling_rate=h.sampling_rate, n_fft=h.n_fft, hop=h.hop_size, win=h.win_size, n_mels=h.num_mels,
            fmin=h.fmin, fmax=h.fmax_for_loss,
        )  # fmt: skip


def build_models(hifigan: HifiganConfig, weight_norm: bool, width_divisor: int = 1) -> VocoderModels:
    """The generator (weight-normed or plain) and both discriminators, their channels divided by `width_divisor`
    (1: the published widths)."""
    kw = {"channel_divisor": width_divisor}
    return VocoderModels(hifigan, Generator(hifigan, weight_norm=weight_norm), MultiPeriodDiscriminator(**kw),
                         MultiScaleDiscriminator(**kw))  # fmt: skip


def init_variables(models: VocoderModels, key: jax.Array) -> tuple[Any, Any, Any]:
    """Fresh (generator params, discriminator params, discriminator stats) from `key`."""
    k_gen, k_mpd, k_msd = jax.random.split(key, 3)
    gen = init_generator_params(models.hifigan, k_gen, weight_norm=models.generator.weight_norm)
    wav = jnp.zeros((1, 2 * models.hifigan.hop_size), jnp.float32)

    def init_discriminators(k_mpd, k_msd, wav):
        return models.mpd.init(k_mpd, wav), models.msd.init(k_msd, wav)

    # Initialising runs both discriminators once, and compiling them with XLA's backend optimisations takes
    # several times longer (tens of seconds on a small CPU) than without; the program runs once.
    compiled = jax.jit(init_discriminators).lower(k_mpd, k_msd, wav).compile(_ONE_SHOT)
    mpd, msd = compiled(k_mpd, k_msd, wav)
    return gen, {"mpd": mpd["params"], "msd": msd["params"]}, {"msd": msd["batch_stats"]}


def fit_generator_params(loaded: Any, fresh: Any, weight_norm: bool, where: str) -> Any:
    """Loaded generator params in the training parametrisation: plain kernels unfolded to (v = kernel,
    g = ||kernel||) for weight-norm training, which leaves every weight as it was (weight-normed ones folded for
    plain training); names and shapes checked against `fresh`.

    Raises:
      ConfigError: naming `where` and the first parameter whose path or shape differs.
    """
    loaded = jax.tree.map(np.asarray, loaded)
    has_v = any(p[-1].key == "v" for p, _ in jax.tree_util.tree_flatten_with_path(loaded)[0])
    if weight_norm and not has_v:
        loaded = unfold_weight_norm(loaded)
    elif has_v and not weight_norm:
        loaded = fold_weight_norm(loaded)
    flat_l = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(loaded)[0]}
    flat_f = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(fresh)[0]}
    for key in sorted(set(flat_l) | set(flat_f)):
        a, b = flat_l.get(key), flat_f.get(key)
        if a is None or b is None or a.shape != b.shape:
            got = "missing" if a is None else ("unexpected" if b is None else f"shape {a.shape}, expected {b.shape}")
            raise ConfigError(f"{where}: generator parameter {key}: {got} (generator.overrides changed its shape?)")
    return jax.tree.map(lambda x, f: jnp.asarray(x, f.dtype), loaded, fresh)
