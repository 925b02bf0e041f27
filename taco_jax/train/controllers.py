"""Every controller of a run, built from the config in one place: `build_controllers(cfg) -> Controllers`.

`Controllers` holds the optax chain (NVIDIA's clip -> coupled L2 -> Adam -> scheduled LR, with the optional
clip, LR-scale, accumulation and non-finite controllers composed around it in `build_optimizer`), the guided-
attention weight and phase controllers, and pure functions the train step and the host loop call:

    ga_weight(control, step)         the GA loss weight of this step
    scale_updates(control, updates)  the phase's LR factor on the optimizer's updates
    on_step(control, ...)            after each optimizer step (the GA controller)
    on_eval(control, val_diag, val_loss)  after each evaluation (the phase machine)
    accepted(opt_state)              whether the step just taken was finite (the one non-finite policy)
    state_values(...)                the controllers' state, logged as it stands (never averaged)

Adding a controller: write it in `taco_jax.control` (a factory returning init/update over a NamedTuple state),
add its state to `ControlState` (or its transformation to `build_optimizer`), and call it from `on_step` or
`on_eval` here. Disabled controllers add no operation to the compiled step, so with all of them off training is
the plain recipe, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import optax

from taco_jax import control
from taco_jax.config import Config, ConfigError
from taco_jax.control import optim as opt_readers

__all__ = ["ControlState", "Controllers", "build_controllers", "build_optimizer", "ga_schedule", "lr_schedule"]


class ControlState(NamedTuple):
    """Controllers that are not gradient transformations (those live in the optimizer state)."""

    ga: control.GAWeightState  # guided-attention multiplier, EMA of train band diagonality, cooldown
    phase: control.PhaseState  # training phase and its hysteresis / plateau counters


def _configured(section: str, factory, *args, **kwargs):
    """Calls a controller factory; its ValueError (naming the argument) also names the config section or key."""
    try:
        return factory(*args, **kwargs)
    except ValueError as e:
        raise ConfigError(f"config section '{section}': {e}") from None


def lr_schedule(cfg: Config) -> optax.Schedule:
    """The base learning rate per optimizer step (`optim.*`)."""
    o = cfg.optim
    return _configured(
        "optim", control.learning_rate_schedule, o.schedule, lr=o.lr, warmup_steps=o.warmup_steps,
        decay_steps=o.decay_steps, decay_rate=o.decay_rate, min_lr=o.min_lr,
    )  # fmt: skip


def ga_schedule(cfg: Config):
    """The base guided-attention weight per optimizer step (`loss.guided_attention.*`; 0 when it is off)."""
    g = cfg.loss.guided_attention
    if not g.enabled:
        return control.zero_schedule
    return _configured(
        "loss.guided_attention", control.guided_attention_schedule, g.schedule, weight=g.weight, decay=g.decay,
        floor=g.floor, boundaries=tuple(g.boundaries), values=tuple(g.values),
    )  # fmt: skip


def build_optimizer(cfg: Config) -> optax.GradientTransformationExtraArgs:
    """The optax chain as configured; call as ``tx.update(grads, opt_state, params, value=loss)``."""
    o, c = cfg.optim, cfg.control
    if c.clip.enabled:
        threshold = _configured(
            "control.clip", control.PercentileClipThreshold, o.grad_clip, percentile=c.clip.percentile,
            window=c.clip.window, min_threshold=c.clip.min, max_threshold=c.clip.max, min_history=c.clip.min_history,
        )  # fmt: skip
        clip = control.adaptive_clip_by_global_norm(threshold)
    else:
        clip = _configured("optim.grad_clip", control.fixed_clip_by_global_norm, o.grad_clip)
    plateau = None
    if c.lr_plateau.enabled:
        p = c.lr_plateau
        plateau = _configured(
            "control.lr_plateau", control.lr_plateau, factor=p.factor, patience=p.patience, cooldown=p.cooldown,
            accumulation=p.accumulation, rtol=p.rtol, atol=p.atol, min_scale=p.min_scale,
        )  # fmt: skip
    tx = optax.chain(
        clip,
        optax.add_decayed_weights(o.weight_decay),  # NVIDIA's coupled L2 (torch.optim.Adam), after the clip
        optax.scale_by_adam(b1=o.adam_b1, b2=o.adam_b2, eps=o.adam_eps),
        optax.scale_by_learning_rate(lr_schedule(cfg)),
        control.scale_by_lr_scale(plateau),
    )
    if c.accumulate_steps != 1:  # 1 adds no operation; 0, negatives and non-integers fail in `accumulate`
        tx = _configured("control.accumulate_steps", control.accumulate, tx, c.accumulate_steps)
    if c.nonfinite.enabled:
        tx = _configured(
            "control.nonfinite", control.nonfinite_guard, tx, max_consecutive=c.nonfinite.max_consecutive,
            lr_factor=c.nonfinite.lr_factor, floor=c.lr_plateau.min_scale,
        )  # fmt: skip
    return optax.with_extra_args_support(tx)


@dataclass(frozen=True, eq=False)
class Controllers:
    """The run's controllers and the pure functions that apply them (module docstring)."""

    tx: optax.GradientTransformationExtraArgs
    lr_schedule: optax.Schedule
    ga: control.GAWeightController
    phase: control.PhaseController
    ga_enabled: bool
    phase_enabled: bool
    guard_enabled: bool

    def init(self) -> ControlState:
        return ControlState(self.ga.init(), self.phase.init())

    def ga_weight(self, state: ControlState, step: jax.Array) -> jax.Array:
        return self.ga.value(state.ga, step)

    def scale_updates(self, state: ControlState, updates: Any) -> Any:
        if not self.phase_enabled:  # no operation: off is exactly the plain recipe's program
            return updates
        factor = self.phase.lr_factor(state.phase)
        return jax.tree.map(lambda u: u * factor.astype(u.dtype), updates)

    def on_step(
        self, state: ControlState, *, step: jax.Array, diag: jax.Array, ga_loss: jax.Array, rest_loss: jax.Array
    ) -> ControlState:
        """After an optimizer step: the GA controller folds in the batch's band diagonality and loss balance."""
        if not self.ga_enabled:
            return state
        ga = self.ga.update(
            state.ga, diag, step, only_rise=self.phase.only_rise(state.phase),
            target_mult=self.phase.ga_target(state.phase) if self.phase_enabled else None,
            ga_loss=ga_loss, rest_loss=rest_loss,
        )  # fmt: skip
        return state._replace(ga=ga)

    def on_eval(self, state: ControlState, val_diag: jax.Array, val_loss: jax.Array) -> ControlState:
        """After an evaluation: the phase machine reads validation diagonality and loss."""
        return state._replace(phase=self.phase.update(state.phase, val_diag, val_loss))

    def accepted(self, opt_state: optax.OptState) -> jax.Array:
        """Whether the step just taken was finite (bool; always True without the guard)."""
        return opt_readers.last_step_finite(opt_state)

    def state_values(
        self, state: ControlState, opt_state_before: optax.OptState, opt_state: optax.OptState, ga_weight: jax.Array
    ) -> dict[str, jax.Array]:
        """The controllers' values after a step, to be logged as they stand (a window mean would report a
        level or phase that never existed). ``train/lr`` and ``train/ga_weight`` are the ones this step used."""
        values = {
            "train/lr": opt_readers.current_lr(opt_state_before, self.lr_schedule) * self.phase.lr_factor(state.phase),
            "train/lr_scale": opt_readers.lr_scale(opt_state),
            "train/clip_threshold": opt_readers.applied_clip_threshold(opt_state),
            "train/ga_weight": ga_weight,
            "train/ga_mult": state.ga.mult,
            "train/ga_level": state.ga.level,
            "train/ga_ema_diag": state.ga.ema_diag,
            "train/phase": state.phase.phase,
            "train/nonfinite": opt_readers.nonfinite_count(opt_state),
            "train/nonfinite_consecutive": opt_readers.consecutive_nonfinite(opt_state),
        }
        if self.ga_enabled:  # +inf until the first observation
            values["train/ga_balance"] = state.ga.ema_balance
        return values


def build_controllers(cfg: Config) -> Controllers:
    """Every controller of `cfg.control` (plus the schedules they multiply), validated now.

    Raises:
      ConfigError: naming the config section of the first invalid setting.
    """
    g, p = cfg.control.ga_weight, cfg.control.phase
    ga_enabled = g.enabled and cfg.loss.guided_attention.enabled
    ga = _configured(
        "control.ga_weight", control.ga_weight_controller, ga_schedule(cfg), enabled=ga_enabled,
        raise_thresholds=tuple(g.raise_thresholds), raise_factors=tuple(g.raise_factors),
        decrease_threshold=g.decrease_threshold, decrease_factor=g.decrease_factor, interval=g.interval,
        cooldown=g.cooldown, start_delay=g.start_delay, min_progress=g.min_progress, max_loss_ratio=g.max_loss_ratio,
        ema_decay=g.ema_decay, cap=g.cap, min_mult=g.min_mult, max_mult=g.max_mult,
    )  # fmt: skip
    phase = _configured(
        "control.phase", control.phase_controller, align_start=p.align_start, align_done=p.align_done,
        patience=p.patience, plateau_evals=p.plateau_evals, min_delta=p.min_delta, ga_targets=tuple(p.ga_targets),
        lr_factors=tuple(p.lr_factors), enabled=p.enabled,
    )  # fmt: skip
    return Controllers(
        tx=build_optimizer(cfg), lr_schedule=lr_schedule(cfg), ga=ga, phase=phase, ga_enabled=ga_enabled,
        phase_enabled=p.enabled, guard_enabled=cfg.control.nonfinite.enabled,
    )  # fmt: skip
