"""Controllers from the config: the optimizer chain, the guided-attention weight and phase controllers, and
their joint state (the `control` field of the train state)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from taco_jax.config import Config, ConfigError, GuidedAttentionConfig
from taco_jax.control.alignment import (
    Controller,
    GAWeightState,
    PhaseController,
    PhaseState,
    ga_weight_controller,
    phase_controller,
)
from taco_jax.control.optim import build_controlled_optimizer
from taco_jax.train.optimizer import lr_schedule


class ControlState(NamedTuple):
    """Controllers that are not gradient transformations (those live in the optimizer state)."""

    ga: GAWeightState  # guided-attention multiplier, EMA of train band diagonality, cooldown
    phase: PhaseState  # training phase and its hysteresis / plateau counters


def ga_schedule(cfg: GuidedAttentionConfig) -> Callable[[jax.Array], jax.Array]:
    """Scheduled guided-attention weight as a function of the step (0 when guided attention is disabled)."""
    if not cfg.enabled:
        return lambda step: jnp.zeros((), jnp.float32)
    if cfg.schedule == "constant":
        return lambda step: jnp.asarray(cfg.weight, jnp.float32)
    if cfg.schedule == "exponential":
        return lambda step: jnp.maximum(cfg.floor, cfg.weight * jnp.power(cfg.decay, jnp.asarray(step, jnp.float32)))
    if cfg.schedule == "piecewise":
        boundaries = jnp.asarray(list(cfg.boundaries), jnp.int32)
        values = jnp.asarray([cfg.weight, *cfg.values], jnp.float32)
        return lambda step: values[jnp.sum(jnp.asarray(step, jnp.int32) >= boundaries)]
    raise ConfigError(f"config key 'loss.guided_attention.schedule': unknown schedule {cfg.schedule!r}")


def _configured(section: str, factory, *args, **kwargs):
    try:
        return factory(*args, **kwargs)
    except ValueError as e:  # the factories name the argument; say which config section it came from
        raise ConfigError(f"config section '{section}': {e}") from None


def build_tx(cfg: Config) -> optax.GradientTransformationExtraArgs:
    """The optimizer: NVIDIA's chain plus the clip, LR-scale, non-finite and accumulation controllers.

    Call as `tx.update(grads, opt_state, params, value=loss)`.
    """
    c, o = cfg.control, cfg.optim
    return _configured(
        "control", build_controlled_optimizer,
        lr_schedule=lr_schedule(o), grad_clip=o.grad_clip, adaptive_clip=c.clip.enabled,
        clip_percentile=c.clip.percentile, clip_window=c.clip.window, clip_min=c.clip.min, clip_max=c.clip.max,
        clip_min_history=c.clip.min_history, weight_decay=o.weight_decay, adam_b1=o.adam_b1, adam_b2=o.adam_b2,
        adam_eps=o.adam_eps, plateau_enabled=c.lr_plateau.enabled, plateau_factor=c.lr_plateau.factor,
        plateau_patience=c.lr_plateau.patience, plateau_cooldown=c.lr_plateau.cooldown,
        plateau_accumulation=c.lr_plateau.accumulation, plateau_rtol=c.lr_plateau.rtol,
        plateau_atol=c.lr_plateau.atol, min_lr_scale=c.lr_plateau.min_scale,
        nonfinite_factor=c.nonfinite.lr_factor, guard_enabled=c.nonfinite.enabled,
        max_consecutive_nonfinite=c.nonfinite.max_consecutive, accumulate_steps=c.accumulate_steps,
    )  # fmt: skip


def build_ga_controller(cfg: Config) -> Controller:
    g = cfg.control.ga_weight
    return _configured(
        "control.ga_weight", ga_weight_controller, ga_schedule(cfg.loss.guided_attention),
        enabled=g.enabled and cfg.loss.guided_attention.enabled, raise_thresholds=tuple(g.raise_thresholds),
        raise_factors=tuple(g.raise_factors), decrease_threshold=g.decrease_threshold,
        decrease_factor=g.decrease_factor, interval=g.interval, cooldown=g.cooldown,
        start_delay=g.start_delay, min_progress=g.min_progress, max_loss_ratio=g.max_loss_ratio,
        ema_decay=g.ema_decay,
        cap=g.cap, min_mult=g.min_mult, max_mult=g.max_mult,
    )  # fmt: skip


def build_phase_controller(cfg: Config) -> PhaseController:
    p = cfg.control.phase
    return _configured(
        "control.phase", phase_controller,
        align_start=p.align_start, align_done=p.align_done, patience=p.patience, plateau_evals=p.plateau_evals,
        min_delta=p.min_delta, ga_targets=tuple(p.ga_targets), lr_factors=tuple(p.lr_factors), enabled=p.enabled,
    )  # fmt: skip


def init_control_state(cfg: Config) -> ControlState:
    return ControlState(build_ga_controller(cfg).init(), build_phase_controller(cfg).init())


__all__ = ["ControlState", "build_ga_controller", "build_phase_controller", "build_tx", "ga_schedule",
           "init_control_state"]  # fmt: skip
