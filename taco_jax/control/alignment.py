"""Alignment-driven controllers: the guided-attention (GA) weight multiplier and the training-phase machine.

Both follow optax's protocol: a factory validates its (static, Python) arguments eagerly and returns a
NamedTuple of pure functions over a NamedTuple state of fixed-shape scalars. The functions are jit-able
(no Python branching on traced values, no host callbacks, no side effects), so the state can live in the
train state, be checkpointed with it, and change without re-compiling.

Units. ``step`` is the optimizer step the caller is at (the same count the schedules read). The GA
controller's ``update`` must be called exactly once per optimizer step (its ``cooldown`` counts calls);
the phase controller's ``update`` is called once per evaluation, and its patience counters are in
evaluations. ``diag`` / ``ema_diag`` is a band-diagonality score in [0, 1] (higher is better).

Why this shape (see the upstream notes, sections 3.1, 3.7 and 8.3-8.5): upstream had 13 GA controllers
writing an attribute the loss never read, ladders that ran every step on one noisy batch, non-monotone
caps, floors that *raised* the weight, and nine contradictory phase definitions. Here there is one
multiplier on one schedule, decided on an EMA at a fixed interval with a cooldown, bounded by a cap on the
resulting weight; and one phase machine with hysteresis that never moves backwards.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "LEVEL_DECREASE",
    "LEVEL_NONE",
    "PHASE_NAMES",
    "Controller",
    "GAWeightState",
    "PhaseController",
    "PhaseState",
    "ga_weight_controller",
    "phase_controller",
]

Schedule = Callable[[jax.Array], jax.Array]

LEVEL_NONE = 0  # no change yet
LEVEL_DECREASE = -1  # the "good alignment" decrease; raise levels are 1..len(raise_thresholds)

PHASE_NAMES = ("pre_alignment", "alignment_learning", "quality_optimization", "fine_tuning")


# --------------------------------------------------------------------------- argument validation


def _as_int(name: str, value, minimum: int) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def _as_float(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return value


def _positive_tuple(name: str, values, length: int | None = None) -> tuple[float, ...]:
    try:
        values = tuple(_as_float(name, v) for v in values)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if length is not None and len(values) != length:
        raise ValueError(f"{name} must have exactly {length} entries (one per phase), got {len(values)}")
    if not all(0.0 < v < math.inf for v in values):
        raise ValueError(f"{name} must be finite and > 0, got {values}")
    return values


# --------------------------------------------------------------------------- guided-attention weight


class GAWeightState(NamedTuple):
    """State of the GA weight controller (all scalars)."""

    mult: jax.Array  # f32 multiplier on schedule(step); the loss weight is min(schedule(step) * mult, cap)
    ema_diag: jax.Array  # f32 EMA of band diagonality (meaningful only once n_obs > 0)
    cooldown: jax.Array  # i32 update calls (= optimizer steps) until the next change is allowed
    n_obs: jax.Array  # i32 number of finite diagonality observations folded into ema_diag
    level: jax.Array  # i32 code of the last change: 0 none yet, 1..k raise level (1 = most critical), -1 decrease
    ema_ref: jax.Array  # f32 ema_diag at the previous multiple of `interval` (-inf before the first)
    ema_balance: jax.Array  # f32 EMA of rest_loss / ga_loss: the GA weight that equals the rest (+inf at first)


class Controller(NamedTuple):
    """`init() -> state`; `update(state, diag, step, *, only_rise=False, target_mult=None, ga_loss=None,
    rest_loss=None) -> state`; `value(state, step) -> f32 weight`."""

    init: Callable[[], GAWeightState]
    update: Callable[..., GAWeightState]
    value: Callable[[GAWeightState, jax.Array], jax.Array]


def ga_weight_controller(
    schedule: Schedule,
    *,
    enabled: bool = True,
    raise_thresholds: Sequence[float] = (0.05, 0.1, 0.3),
    raise_factors: Sequence[float] = (3.0, 2.5, 1.5),
    decrease_threshold: float = 0.7,
    decrease_factor: float = 0.9,
    interval: int = 100,
    cooldown: int = 500,
    start_delay: int | None = None,
    min_progress: float | None = None,
    max_loss_ratio: float | None = None,
    ema_decay: float = 0.9,
    cap: float = 50.0,
    init_mult: float = 1.0,
    min_mult: float = 0.1,
    max_mult: float = 100.0,
) -> Controller:
    """Guided-attention loss weight = schedule(step) x mult, with mult driven by the owner's 4-level ladder.

    Every call to `update` (once per optimizer step) folds the batch diagonality into an EMA
    (``ema = ema_decay * ema + (1 - ema_decay) * diag``; effective window ~1 / (1 - ema_decay) steps). The
    EMA starts at the first finite observation, not at 0 (which would look like total misalignment and
    trigger a spurious x3); non-finite observations are skipped. A decision is made only at steps with
    ``step % interval == 0`` and only once ``cooldown`` steps have passed since the last change. The first
    matching level wins:

    * ema < raise_thresholds[i] (checked in increasing order): mult *= raise_factors[i]  (level i + 1)
    * ema > decrease_threshold: mult *= decrease_factor  (level -1; blocked when ``only_rise``)
    * otherwise (the band between the last raise threshold and decrease_threshold, inclusive): no change.

    With ``min_progress`` set, a raise also needs the model to be stalled: the EMA must have risen by less
    than ``min_progress`` since the previous multiple of ``interval``. The reference is taken at every
    multiple (step 0 included), whether or not a decision was allowed there; a decision at the very first
    multiple has no reference and never raises. A weight that is already working shows as a rising EMA,
    and raising it further would only push it to the cap; a weight too small to matter leaves the EMA
    flat, and the ladder raises it as before. Decreases are not gated.

    With ``max_loss_ratio`` set, a raise never takes the GA term above that multiple of the rest of the loss
    (mel + post-net + gate): the raised multiplier is clamped to ``max_loss_ratio x balance / schedule(step)``,
    where ``balance`` is an EMA of ``rest_loss / ga_loss`` (the weight at which the two terms are equal), and
    a raise that this clamp turns into no increase is no decision. This is what tells a sufficient starting
    weight from a negligible one before the model has responded to either: the diagonality of an untrained
    model is low whatever the weight, but a weight whose term already dominates the loss cannot be "too
    weak", while one whose term is a rounding error in the loss is. Decreases are not bounded by it, and a
    start above the bound is not lowered by it.

    The defaults are the upstream owner's levels (< 0.05 x3, < 0.1 x2.5, < 0.3 x1.5, > 0.7 x0.9), applied to
    a multiplier instead of an attribute nobody read. After every update the multiplier is clamped to
    ``[max(min_mult, target_mult), min(max_mult, cap / schedule(step))]``; the upper bound wins if the two
    cross, so the weight at the update step never exceeds ``cap``, and `value` clamps to ``cap`` as well
    (the schedule may rise after the update). Only a decision that actually changes the multiplier starts
    a cooldown and is recorded in ``level``: a no-op (a raise at the cap, a decrease at the floor) has no
    effect to wait for, so it must not delay a later, useful change. Clamping by the bounds alone is not a
    decision.

    The controller starts in cooldown (``start_delay`` steps, default ``cooldown``): at step 0 an untrained
    model is never aligned, so an immediate decision would always be a raise (a fixed boost, not a reaction
    to training). The first decision needs a longer wait than later ones: before it the model has had no
    time to respond to the starting weight, whatever that weight is, so early raises would push an already
    sufficient weight to the cap.

    Args:
      schedule: ``step -> f32`` base GA weight (e.g. the config's constant/exponential schedule, or any
        optax schedule). Must be traceable.
      enabled: False gives an inert controller: `update` is the identity and `value` is exactly
        ``schedule(step)`` (no cap, no multiplier). The state has the same structure either way, so
        checkpoints stay interchangeable.
      raise_thresholds: strictly increasing EMA thresholds in [0, 1] of the raise levels.
      raise_factors: one factor >= 1 per raise threshold.
      decrease_threshold: EMA above which the multiplier decays; must exceed the last raise threshold.
      decrease_factor: in (0, 1]; 0.9 makes the decrease gradual (about -10% per decision).
      interval: decisions happen at steps that are multiples of this (>= 1).
      cooldown: minimum number of steps between two changes (>= 0).
      min_progress: None (raise whenever the ladder says so) or the EMA rise per ``interval`` steps below which
        the model counts as stalled (a raise is allowed only then).
      max_loss_ratio: None (no bound) or the largest GA-term / rest-of-loss ratio (> 0) a raise may reach.
      start_delay: the cooldown `init` starts with (>= 0), as if a change had been made just before step 0:
        the first decision comes at step ``start_delay - 1`` at the earliest. None means ``cooldown``.
      ema_decay: in [0, 1); 0 uses the latest observation only.
      cap: upper bound (> 0) on the resulting weight schedule(step) x mult.
      init_mult: the multiplier `init` returns; in [min_mult, max_mult].
      min_mult: floor (> 0) of the multiplier. It must be positive because the controller is
        multiplicative: a multiplier of 0 could never be raised again. The default 0.1 lets the decrease
        rule relax GA well below the schedule once alignment is good, while a relapse is recovered by a
        few x1.5 .. x3 raises.
      max_mult: upper bound of the multiplier independent of the schedule; keeps the state finite when
        schedule(step) is 0 or tiny (then ``cap / schedule`` is no bound at all).

    Returns:
      ``Controller(init, update, value)``. ``update(state, diag, step, *, only_rise=False,
      target_mult=None, ga_loss=None, rest_loss=None)``: ``diag`` f32 scalar batch diagonality, ``step`` int
      optimizer step, ``ga_loss`` the batch's unweighted GA loss and ``rest_loss`` the rest of its total loss
      (both f32 scalars; required with ``max_loss_ratio``, otherwise only tracked; a pair that is not finite
      or has ``ga_loss <= 0`` is skipped),
      ``only_rise`` (bool, may be traced) forbids decreases (the pre-alignment phase), ``target_mult``
      (f32 scalar or None) is a phase-provided floor: after every update the multiplier is at least
      ``target_mult`` (unless the cap forbids it). A phase that starts with a higher target therefore moves
      the multiplier up to it at once; a lower target only lets the decrease rule go further down. Raising
      to the floor is not a decision (no cooldown, no level).
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be a callable step -> f32, got {schedule!r}")
    thresholds = tuple(_as_float("raise_thresholds", t) for t in raise_thresholds)
    factors = tuple(_as_float("raise_factors", f) for f in raise_factors)
    if not thresholds:
        raise ValueError("raise_thresholds must not be empty")
    if len(factors) != len(thresholds):
        raise ValueError(
            f"raise_factors must have one entry per raise threshold ({len(thresholds)}), got {len(factors)}"
        )
    if not all(0.0 <= t <= 1.0 for t in thresholds):
        raise ValueError(f"raise_thresholds must lie in [0, 1], got {thresholds}")
    if any(b <= a for a, b in zip(thresholds, thresholds[1:], strict=False)):
        raise ValueError(f"raise_thresholds must be strictly increasing, got {thresholds}")
    if not all(1.0 <= f < math.inf for f in factors):
        raise ValueError(f"raise_factors must be finite and >= 1, got {factors}")
    decrease_threshold = _as_float("decrease_threshold", decrease_threshold)
    if not thresholds[-1] < decrease_threshold <= 1.0:
        raise ValueError(
            f"decrease_threshold must be in ({thresholds[-1]}, 1] (above the last raise threshold), "
            f"got {decrease_threshold}"
        )
    decrease_factor = _as_float("decrease_factor", decrease_factor)
    if not 0.0 < decrease_factor <= 1.0:
        raise ValueError(f"decrease_factor must be in (0, 1], got {decrease_factor}")
    interval = _as_int("interval", interval, 1)
    cooldown = _as_int("cooldown", cooldown, 0)
    start_delay = cooldown if start_delay is None else _as_int("start_delay", start_delay, 0)
    if min_progress is not None:
        min_progress = _as_float("min_progress", min_progress)
    if max_loss_ratio is not None:
        max_loss_ratio = _as_float("max_loss_ratio", max_loss_ratio)
        if not 0.0 < max_loss_ratio < math.inf:
            raise ValueError(f"max_loss_ratio must be finite and > 0, got {max_loss_ratio}")
    ema_decay = _as_float("ema_decay", ema_decay)
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
    cap = _as_float("cap", cap)
    if not cap > 0.0:
        raise ValueError(f"cap must be > 0, got {cap}")
    min_mult = _as_float("min_mult", min_mult)
    if not 0.0 < min_mult < math.inf:
        raise ValueError(f"min_mult must be finite and > 0 (a zero multiplier can never be raised), got {min_mult}")
    max_mult = _as_float("max_mult", max_mult)
    if not min_mult <= max_mult < math.inf:
        raise ValueError(f"max_mult must be finite and >= min_mult ({min_mult}), got {max_mult}")
    init_mult = _as_float("init_mult", init_mult)
    if not min_mult <= init_mult <= max_mult:
        raise ValueError(f"init_mult must be in [min_mult, max_mult] = [{min_mult}, {max_mult}], got {init_mult}")

    def base_weight(step) -> jax.Array:
        return jnp.asarray(schedule(jnp.asarray(step)), jnp.float32)

    def init_fn() -> GAWeightState:
        return GAWeightState(
            mult=jnp.asarray(init_mult, jnp.float32),
            ema_diag=jnp.asarray(0.0, jnp.float32),
            cooldown=jnp.asarray(start_delay, jnp.int32),
            n_obs=jnp.asarray(0, jnp.int32),
            level=jnp.asarray(LEVEL_NONE, jnp.int32),
            ema_ref=jnp.asarray(-jnp.inf, jnp.float32),
            ema_balance=jnp.asarray(jnp.inf, jnp.float32),
        )

    def fold_balance(state: GAWeightState, ga_loss, rest_loss) -> jax.Array:
        if ga_loss is None or rest_loss is None:
            if max_loss_ratio is not None:
                raise ValueError("max_loss_ratio is set: update() needs ga_loss and rest_loss")
            return state.ema_balance
        ga_loss = jnp.asarray(ga_loss, jnp.float32)
        balance = jnp.asarray(rest_loss, jnp.float32) / jnp.where(ga_loss > 0.0, ga_loss, 1.0)
        valid = jnp.isfinite(balance) & (ga_loss > 0.0)
        first = jnp.isinf(state.ema_balance)
        ema = jnp.where(first, balance, ema_decay * state.ema_balance + (1.0 - ema_decay) * balance)
        return jnp.where(valid, ema, state.ema_balance).astype(jnp.float32)

    def update_fn(
        state: GAWeightState, diag, step, *, only_rise=False, target_mult=None, ga_loss=None, rest_loss=None
    ) -> GAWeightState:
        diag = jnp.asarray(diag, jnp.float32)
        step = jnp.asarray(step)
        finite = jnp.isfinite(diag)
        ema = jnp.where(state.n_obs > 0, ema_decay * state.ema_diag + (1.0 - ema_decay) * diag, diag)
        ema = jnp.where(finite, ema, state.ema_diag).astype(jnp.float32)
        n_obs = state.n_obs + finite.astype(jnp.int32)
        wait = jnp.maximum(state.cooldown - 1, 0)
        at_interval = (step % interval == 0) & (n_obs > 0)
        may_decide = at_interval & (wait == 0)

        # First matching level wins: walk from the loosest raise threshold to the strictest.
        code = jnp.asarray(LEVEL_NONE, jnp.int32)
        factor = jnp.asarray(1.0, jnp.float32)
        for i in reversed(range(len(thresholds))):
            hit = ema < thresholds[i]
            code = jnp.where(hit, i + 1, code)
            factor = jnp.where(hit, factors[i], factor)
        if min_progress is not None:
            progressing = (code > 0) & ~(ema - state.ema_ref < min_progress)
            code = jnp.where(progressing, LEVEL_NONE, code)
            factor = jnp.where(progressing, 1.0, factor)
        decrease = (ema > decrease_threshold) & ~jnp.asarray(only_rise, bool)
        code = jnp.where(decrease, LEVEL_DECREASE, code)
        factor = jnp.where(decrease, decrease_factor, factor)

        s = base_weight(step)
        hi = jnp.where(s > 0.0, cap / jnp.where(s > 0.0, s, 1.0), jnp.inf)
        hi = jnp.minimum(hi, max_mult)
        lo = jnp.asarray(min_mult, jnp.float32)
        if target_mult is not None:
            lo = jnp.maximum(lo, jnp.asarray(target_mult, jnp.float32))

        def bounded(m):
            return jnp.minimum(jnp.maximum(m, lo), hi).astype(jnp.float32)

        raised = state.mult * factor
        ema_balance = fold_balance(state, ga_loss, rest_loss)
        if max_loss_ratio is not None:
            ratio_bound = max_loss_ratio * ema_balance / jnp.where(s > 0.0, s, 1.0)
            raised = jnp.where(code > 0, jnp.minimum(raised, jnp.maximum(state.mult, ratio_bound)), raised)
        kept = bounded(state.mult)
        proposed = bounded(raised)
        changed = may_decide & (code != LEVEL_NONE) & (proposed != kept)
        return GAWeightState(
            mult=jnp.where(changed, proposed, kept),
            ema_diag=ema,
            cooldown=jnp.where(changed, cooldown, wait).astype(jnp.int32),
            n_obs=n_obs,
            level=jnp.where(changed, code, state.level).astype(jnp.int32),
            ema_ref=jnp.where(at_interval, ema, state.ema_ref).astype(jnp.float32),
            ema_balance=ema_balance,
        )

    def value_fn(state: GAWeightState, step) -> jax.Array:
        return jnp.minimum(base_weight(step) * state.mult, cap).astype(jnp.float32)

    if not enabled:

        def inert_update(state: GAWeightState, diag, step, **_) -> GAWeightState:
            del diag, step
            return state

        return Controller(init_fn, inert_update, lambda state, step: base_weight(step))
    return Controller(init_fn, update_fn, value_fn)


# --------------------------------------------------------------------------- training phases


class PhaseState(NamedTuple):
    """State of the training-phase machine (all scalars)."""

    phase: jax.Array  # i32 index into PHASE_NAMES; never decreases
    streak: jax.Array  # i32 consecutive evaluations meeting the current phase's diagonality condition
    best_val_loss: jax.Array  # f32 best finite validation loss so far (+inf before the first)
    plateau: jax.Array  # i32 consecutive evaluations in quality_optimization without improvement
    evals_in_phase: jax.Array  # i32 evaluations since the current phase was entered (0 on the advancing one)


class PhaseController(NamedTuple):
    """`init() -> state`; `update(state, ema_diag, val_loss) -> state` (once per evaluation);
    `ga_target(state) -> f32`; `lr_factor(state) -> f32`; `only_rise(state) -> bool`."""

    init: Callable[[], PhaseState]
    update: Callable[[PhaseState, jax.Array, jax.Array], PhaseState]
    ga_target: Callable[[PhaseState], jax.Array]
    lr_factor: Callable[[PhaseState], jax.Array]
    only_rise: Callable[[PhaseState], jax.Array]


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

    `update` is called once per evaluation with the GA controller's EMA diagonality and the validation
    loss. At most one advance per evaluation; the machine never moves backwards (a later collapse of
    alignment is the GA controller's job, not a reason to undo the LR schedule):

    * pre_alignment -> alignment_learning: ``ema_diag >= align_start`` for ``patience`` consecutive
      evaluations;
    * alignment_learning -> quality_optimization: ``ema_diag >= align_done`` for ``patience`` consecutive
      evaluations (counted from entering the phase, so two advances need at least 2 x patience evaluations);
    * quality_optimization -> fine_tuning: a validation plateau, ``plateau_evals`` consecutive evaluations in
      this phase with no improvement;
    * fine_tuning is final.

    The streak resets to 0 whenever the condition fails (hysteresis: one lucky evaluation never advances)
    and on every advance. A non-finite ``ema_diag`` fails the condition.

    Improvement is *relative*: ``val_loss < best - min_delta * |best|``. Relative because the scale of the
    validation loss depends on the configuration (MSE vs L1 mel loss, weights), so one default works for
    all. As in optax's `reduce_on_plateau`, ``best_val_loss`` moves only on an improvement (creeping gains
    below min_delta do count toward a plateau). The best is tracked in every phase; the plateau counter only
    runs in quality_optimization. A non-finite validation loss is never an improvement: it leaves the best
    unchanged and counts as a plateau evaluation.

    Args:
      align_start: diagonality threshold in [0, 1) for leaving pre_alignment.
      align_done: diagonality threshold in (align_start, 1] for leaving alignment_learning.
      patience: consecutive evaluations (>= 1) a diagonality condition must hold.
      plateau_evals: consecutive evaluations (>= 1) without improvement that end quality_optimization.
      min_delta: relative improvement threshold in [0, 1).
      ga_targets: per-phase GA multiplier targets (4 entries, > 0), meant as the GA controller's
        ``target_mult`` floor. The defaults are the owner's 3 : 2 : 1.5 : 1 phase ratios.
      lr_factors: per-phase learning-rate factors (4 entries, > 0). The defaults never exceed the base LR
        (upstream's 1.2 in pre_alignment would be an automatic LR raise) and follow 1 : 0.8 : 0.5.
      enabled: False gives an inert machine: `update` is the identity (phase stays 0), `ga_target` and
        `lr_factor` are 1.0 (the neutral multiplier and factor) and `only_rise` is False, so the GA
        controller is not locked into its pre-alignment mode forever.

    Returns:
      ``PhaseController(init, update, ga_target, lr_factor, only_rise)``; `only_rise(state)` is True in
      pre_alignment (feed it to the GA controller's ``only_rise``).
    """
    align_start = _as_float("align_start", align_start)
    align_done = _as_float("align_done", align_done)
    if not 0.0 <= align_start < 1.0:
        raise ValueError(f"align_start must be in [0, 1), got {align_start}")
    if not align_start < align_done <= 1.0:
        raise ValueError(f"align_done must be in (align_start, 1] = ({align_start}, 1], got {align_done}")
    patience = _as_int("patience", patience, 1)
    plateau_evals = _as_int("plateau_evals", plateau_evals, 1)
    min_delta = _as_float("min_delta", min_delta)
    if not 0.0 <= min_delta < 1.0:
        raise ValueError(f"min_delta must be in [0, 1) (relative), got {min_delta}")
    ga_targets = _positive_tuple("ga_targets", ga_targets, len(PHASE_NAMES))
    lr_factors = _positive_tuple("lr_factors", lr_factors, len(PHASE_NAMES))

    def init_fn() -> PhaseState:
        return PhaseState(
            phase=jnp.asarray(0, jnp.int32),
            streak=jnp.asarray(0, jnp.int32),
            best_val_loss=jnp.asarray(jnp.inf, jnp.float32),
            plateau=jnp.asarray(0, jnp.int32),
            evals_in_phase=jnp.asarray(0, jnp.int32),
        )

    def update_fn(state: PhaseState, ema_diag, val_loss) -> PhaseState:
        ema_diag = jnp.asarray(ema_diag, jnp.float32)
        val_loss = jnp.asarray(val_loss, jnp.float32)
        phase = state.phase

        best = state.best_val_loss
        bar = jnp.where(jnp.isfinite(best), best - min_delta * jnp.abs(best), jnp.inf)
        improved = jnp.isfinite(val_loss) & (val_loss < bar)
        best = jnp.where(improved, val_loss, best)

        threshold = jnp.where(phase == 0, align_start, align_done)
        by_diag = phase <= 1
        streak = jnp.where(by_diag & (ema_diag >= threshold), state.streak + 1, 0)
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
            lambda state, ema_diag, val_loss: state,
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
