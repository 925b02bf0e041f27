"""The training-phase machine: pre_alignment -> alignment_learning -> quality_optimization -> fine_tuning.

optax's protocol: `phase_controller(...)` validates eagerly and returns `PhaseController`, pure jit-able functions
over a NamedTuple of scalars. One machine with hysteresis that never moves backwards: a phase sets a floor for the
GA multiplier and a factor on the learning rate, so a phase that flickers would make both flicker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from taco_jax.control._checks import as_float, as_int, float_tuple
from taco_jax.control.plateau import improvement

__all__ = ["PHASE_NAMES", "PhaseController", "PhaseState", "phase_controller"]

PHASE_NAMES = ("pre_alignment", "alignment_learning", "quality_optimization", "fine_tuning")


class PhaseState(NamedTuple):
    """State of the training-phase machine (all scalars)."""

    phase: jax.Array  # i32 index into PHASE_NAMES; never decreases
    streak: jax.Array  # i32 consecutive evaluations meeting the current phase's diagonality condition
    best_val_loss: jax.Array  # f32 best finite validation loss so far (+inf before the first)
    plateau: jax.Array  # i32 consecutive evaluations in quality_optimization without improvement
    evals_in_phase: jax.Array  # i32 evaluations since the current phase was entered (0 on the advancing one)


class PhaseController(NamedTuple):
    """`init() -> state`; `update(state, val_diag, val_loss) -> state` (once per evaluation);
    `ga_target(state) -> f32`; `lr_factor(state) -> f32`; `only_rise(state) -> bool`."""

    init: Callable[[], PhaseState]
    update: Callable[[PhaseState, jax.Array, jax.Array], PhaseState]
    ga_target: Callable[[PhaseState], jax.Array]
    lr_factor: Callable[[PhaseState], jax.Array]
    only_rise: Callable[[PhaseState], jax.Array]


def _positive_per_phase(name: str, values: Sequence[float]) -> tuple[float, ...]:
    values = float_tuple(name, values, len(PHASE_NAMES))
    if not all(0.0 < v < float("inf") for v in values):
        raise ValueError(f"{name} must be finite and > 0 (one per phase), got {values}")
    return values


def phase_controller(
    *,
    align_start: float = 0.3,
    align_done: float = 0.7,
    patience: int = 2,
    plateau_evals: int = 5,
    min_delta: float = 1e-3,
    ga_targets: Sequence[float] = (3.0, 2.0, 1.5, 1.0),
    lr_factors: Sequence[float] = (1.0, 1.0, 0.8, 0.5),
    enabled: bool = True,
) -> PhaseController:
    """One training-phase state machine: pre_alignment -> alignment_learning -> quality_optimization -> fine_tuning.

    `update` is called once per evaluation with the validation set's band diagonality (``val/align_diag``:
    one number over every validation item, steadier than any per-batch EMA) and the validation loss. At most
    one advance per evaluation; the machine never moves backwards (a later collapse of alignment is the GA
    controller's job, not a reason to undo the LR schedule):

    * pre_alignment -> alignment_learning: ``val_diag >= align_start`` for ``patience`` consecutive
      evaluations;
    * alignment_learning -> quality_optimization: ``val_diag >= align_done`` for ``patience`` consecutive
      evaluations (counted from entering the phase, so two advances need at least 2 x patience evaluations);
    * quality_optimization -> fine_tuning: a validation plateau, ``plateau_evals`` consecutive evaluations in
      this phase with no improvement;
    * fine_tuning is final.

    The streak resets to 0 whenever the condition fails (hysteresis: one lucky evaluation never advances)
    and on every advance. A non-finite ``val_diag`` fails the condition.

    Improvement is `taco_jax.control.plateau.improvement` (relative to the best, ``min_delta``); the best is
    tracked in every phase, the plateau counter only runs in quality_optimization, and a non-finite validation
    loss counts as a plateau evaluation.

    Args:
      align_start: diagonality threshold in [0, 1) for leaving pre_alignment.
      align_done: diagonality threshold in (align_start, 1] for leaving alignment_learning.
      patience: consecutive evaluations (>= 1) a diagonality condition must hold.
      plateau_evals: consecutive evaluations (>= 1) without improvement that end quality_optimization.
      min_delta: relative improvement threshold in [0, 1).
      ga_targets: per-phase GA multiplier targets (4 entries, > 0), meant as the GA controller's
        ``target_mult`` floor. The defaults are the owner's 3 : 2 : 1.5 : 1 phase ratios.
      lr_factors: per-phase learning-rate factors (4 entries, > 0). The defaults never exceed the base LR
        (a factor above 1 would be an automatic LR raise) and follow 1 : 0.8 : 0.5.
      enabled: False gives an inert machine: `update` is the identity (phase stays 0), `ga_target` and
        `lr_factor` are 1.0 (the neutral multiplier and factor) and `only_rise` is False, so the GA
        controller is not locked into its pre-alignment mode forever.

    Returns:
      ``PhaseController(init, update, ga_target, lr_factor, only_rise)``; `only_rise(state)` is True in
      pre_alignment (feed it to the GA controller's ``only_rise``).
    """
    align_start = as_float("align_start", align_start)
    align_done = as_float("align_done", align_done)
    if not 0.0 <= align_start < 1.0:
        raise ValueError(f"align_start must be in [0, 1), got {align_start}")
    if not align_start < align_done <= 1.0:
        raise ValueError(f"align_done must be in (align_start, 1] = ({align_start}, 1], got {align_done}")
    patience = as_int("patience", patience, 1)
    plateau_evals = as_int("plateau_evals", plateau_evals, 1)
    min_delta = as_float("min_delta", min_delta)
    if not 0.0 <= min_delta < 1.0:
        raise ValueError(f"min_delta must be in [0, 1) (relative), got {min_delta}")
    ga_targets = _positive_per_phase("ga_targets", ga_targets)
    lr_factors = _positive_per_phase("lr_factors", lr_factors)

    def init_fn() -> PhaseState:
        return PhaseState(
            phase=jnp.asarray(0, jnp.int32),
            streak=jnp.asarray(0, jnp.int32),
            best_val_loss=jnp.asarray(jnp.inf, jnp.float32),
            plateau=jnp.asarray(0, jnp.int32),
            evals_in_phase=jnp.asarray(0, jnp.int32),
        )

    def update_fn(state: PhaseState, val_diag, val_loss) -> PhaseState:
        val_diag = jnp.asarray(val_diag, jnp.float32)
        val_loss = jnp.asarray(val_loss, jnp.float32)
        phase = state.phase

        improved, best = improvement(state.best_val_loss, val_loss, min_delta)

        threshold = jnp.where(phase == 0, align_start, align_done)
        by_diag = phase <= 1
        streak = jnp.where(by_diag & (val_diag >= threshold), state.streak + 1, 0)
        in_quality = phase == 2
        plateau = jnp.where(in_quality & ~improved, state.plateau + 1, 0)
        advance = (by_diag & (streak >= patience)) | (in_quality & (plateau >= plateau_evals))
        return PhaseState(
            phase=jnp.where(advance, phase + 1, phase).astype(jnp.int32),
            streak=jnp.where(advance, 0, streak).astype(jnp.int32),
            best_val_loss=best.astype(jnp.float32),
            plateau=jnp.where(advance, 0, plateau).astype(jnp.int32),
            evals_in_phase=jnp.where(advance, 0, state.evals_in_phase + 1).astype(jnp.int32),
        )

    if not enabled:
        one = lambda state: jnp.asarray(1.0, jnp.float32)
        return PhaseController(
            init_fn,
            lambda state, val_diag, val_loss: state,
            one,
            one,
            lambda state: jnp.asarray(False),
        )
    return PhaseController(
        init_fn,
        update_fn,
        lambda state: jnp.asarray(ga_targets, jnp.float32)[state.phase],
        lambda state: jnp.asarray(lr_factors, jnp.float32)[state.phase],
        lambda state: state.phase == 0,
    )
