"""Where a vocoder run's networks start: random weights from run.seed, or the checkpoints being fine-tuned
(`init.generator`, `init.discriminators`), and the generator configuration the run keeps for its whole life."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax

from taco_jax.config import ConfigError
from taco_jax.train_vocoder.config import VocoderConfig
from taco_jax.train_vocoder.models import (
    VocoderModels,
    fit_generator_params,
    init_variables,
    resolve_hifigan_config,
    training_values,
)
from taco_jax.train_vocoder.state import VocoderTrainState, new_state
from taco_jax.vocoder.config import HifiganConfig, load_hifigan_config

log = logging.getLogger("taco_jax.train_vocoder")

__all__ = ["initial_state", "load_init_discriminators", "load_init_generator", "run_hifigan_config"]


def load_init_generator(cfg: VocoderConfig) -> tuple[HifiganConfig, Any]:
    """(config, params) of `init.generator`: a published generator file (its config from init.generator_config or
    the config.json beside it), a save_vocoder directory or a vocoder run directory. A published file's weight
    norm (g, v) is kept as it was trained; plain weights are unfolded later (`fit_generator_params`).

    Raises:
      ConfigError: a published file without a config; the loaders' errors (naming the file) otherwise.
    """
    from taco_jax.convert.hifigan import hifigan_torch_to_flax, read_hifigan_generator
    from taco_jax.vocoder.files import CONFIG_FILE, load_vocoder

    i = cfg.init
    path = Path(i.generator)
    if path.is_file() and path.suffix != ".msgpack":
        config_path = Path(i.generator_config) if i.generator_config else path.parent / CONFIG_FILE
        if not config_path.is_file():
            raise ConfigError(
                f"config key 'init.generator' = {i.generator}: no {CONFIG_FILE} beside it; set 'init.generator_config' "
                "to the HiFi-GAN config.json it was trained with"
            )
        config = load_hifigan_config(config_path)
        state_dict = read_hifigan_generator(path, i.trust_pickle)
        return config, hifigan_torch_to_flax(state_dict, config, weight_norm=True, source=str(path))
    return load_vocoder(path, config_path=i.generator_config or None, trust_pickle=i.trust_pickle)


def load_init_discriminators(cfg: VocoderConfig) -> tuple[Any, Any]:
    """(params {"mpd", "msd"}, stats {"msd"}) of a published do_XXXXXXXX file (`init.discriminators`). Its
    optimizer state is not taken: both optimizers start afresh (as the generator's must, its g_ file has none)."""
    from taco_jax.convert.hifigan_discriminators import load_discriminator_checkpoint

    checkpoint = load_discriminator_checkpoint(
        cfg.init.discriminators, trust_pickle=cfg.init.trust_pickle, channel_divisor=cfg.discriminator.width_divisor
    )
    params = {"mpd": checkpoint.mpd["params"], "msd": checkpoint.msd["params"]}
    return jax.tree.map(jnp.asarray, params), {"msd": jax.tree.map(jnp.asarray, checkpoint.msd["batch_stats"])}


def run_hifigan_config(cfg: VocoderConfig, stored: Path | None, init_config: HifiganConfig | None) -> HifiganConfig:
    """The generator configuration of the run: the one it stored when it started (`stored`, a resumed run), else
    the one `cfg` resolves to (from `init_config`, the fine-tuned checkpoint's, when given)."""
    if stored is not None and stored.is_file():
        return load_hifigan_config(stored).replace(**training_values(cfg))
    return resolve_hifigan_config(cfg, init_config)


def initial_state(
    cfg: VocoderConfig,
    models: VocoderModels,
    tx: optax.GradientTransformation,
    init_gen: Any | None,
    fine_tune: bool = True,
) -> VocoderTrainState:
    """Step 0: fresh variables from run.seed, with the fine-tuned generator params `init_gen` (plain or weight
    normed; fitted to the run's parametrisation) and, with `fine_tune`, `init.discriminators` loaded when given.
    (A resumed run passes neither: its checkpoint replaces the state.)"""
    k_init, k_train = jax.random.split(jax.random.PRNGKey(cfg.run.seed))
    gen, disc, stats = init_variables(models, k_init)
    if init_gen is not None:
        gen = fit_generator_params(init_gen, gen, models.generator.weight_norm, f"init.generator {cfg.init.generator}")
        log.info("generator initialised from %s", cfg.init.generator)
    if fine_tune and cfg.init.discriminators:
        disc, stats = load_init_discriminators(cfg)
        log.info("discriminators initialised from %s", cfg.init.discriminators)
    return new_state(gen, disc, stats, tx, k_train)
