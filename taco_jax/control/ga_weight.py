"""The guided-attention (GA) weight controller: schedule(step) x a multiplier driven by alignment quality.

optax's protocol: `ga_weight_controller(...)` validates its static arguments eagerly and returns
`GAWeightController(init, update, value)`, pure functions over a NamedTuple of scalars; they are jit-able (no
Python branching on traced values, no side effects), so the state lives in the train state, is checkpointed with
it and changes without re-compiling.

Why this shape: one multiplier on one schedule, decided on an EMA at a fixed interval with a cooldown and bounded
by a cap on the resulting weight. A controller that reacts every step to one noisy batch, raises without waiting
for the model to respond, or writes a weight the loss never reads, does not control anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from taco_jax.control._checks import as_float, as_int, float_tuple

__all__ = ["LEVEL_DECREASE", "LEVEL_NONE", "GAWeightController", "GAWeightState", "ga_weight_controller"]

Schedule = Callable[[jax.Array], jax.Array]

LEVEL_NONE = 0  # no change yet
LEVEL_DECREASE = -1  # the "good alignment" decrease; raise levels are 1..len(raise_thresholds)


class GAWeightState(NamedTuple):
    """State of the GA weight controller (all scalars)."""

    mult: jax.Array  # f32 multiplier on schedule(step); the loss weight is min(schedule(step) * mult, cap)
    ema_diag: jax.Array  # f32 EMA of band diagonality (meaningful only once n_obs > 0)
    cooldown: jax.Array  # i32 update calls (= optimizer steps) until the next change is allowed
    n_obs: jax.Array  # i32 number of finite diagonality observations folded into ema_diag
    level: jax.Array  # i32 code of the last change: 0 none yet, 1..k raise level (1 = most critical), -1 decrease
    ema_ref: jax.Array  # f32 ema_diag at the previous multiple of `interval` (-inf before the first)
    ema_balance: jax.Array  # f32 EMA of rest_loss / ga_loss: the GA weight that equals the rest (+inf at first)


class GAWeightController(NamedTuple):
    """`init() -> state`; `update(state, diag, step, *, only_rise=False, target_mult=None, ga_loss=None,
    rest_loss=None) -> state`; `value(state, step) -> f32 weight`."""

    init: Callable[[], GAWeightState]
    update: Callable[..., GAWeightState]
    value: Callable[[GAWeightState, jax.Array], jax.Array]


@dataclass(frozen=True)
class _Settings:
    """The validated arguments of `ga_weight_controller` (static Python values)."""

    schedule: Schedule
    thresholds: tuple[float, ...]
    factors: tuple[float, ...]
    decrease_threshold: float
    decrease_factor: float
    interval: int
    cooldown: int
    start_delay: int
    min_progress: float | None
    max_loss_ratio: float | None
    ema_decay: float
    cap: float
    init_mult: float
    min_mult: float
    max_mult: float


def _check_ladder(thresholds: tuple[float, ...], factors: tuple[float, ...], decrease_threshold: float) -> None:
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
    if not thresholds[-1] < decrease_threshold <= 1.0:
        raise ValueError(
            f"decrease_threshold must be in ({thresholds[-1]}, 1] (above the last raise threshold), "
            f"got {decrease_threshold}"
        )


def _check_bounds(cap: float, init_mult: float, min_mult: float, max_mult: float) -> None:
    if not cap > 0.0:
        raise ValueError(f"cap must be > 0, got {cap}")
    if not 0.0 < min_mult < math.inf:
        raise ValueError(f"min_mult must be finite and > 0 (a zero multiplier can never be raised), got {min_mult}")
    if not min_mult <= max_mult < math.inf:
        raise ValueError(f"max_mult must be finite and >= min_mult ({min_mult}), got {max_mult}")
    if not min_mult <= init_mult <= max_mult:
        raise ValueError(f"init_mult must be in [min_mult, max_mult] = [{min_mult}, {max_mult}], got {init_mult}")


def _validated(schedule: Schedule, **kw) -> _Settings:
    """Checks every argument of `ga_weight_controller`, naming the first invalid one."""
    if not callable(schedule):
        raise TypeError(f"schedule must be a callable step -> f32, got {schedule!r}")
    thresholds = float_tuple("raise_thresholds", kw["raise_thresholds"])
    factors = float_tuple("raise_factors", kw["raise_factors"])
    decrease_threshold = as_float("decrease_threshold", kw["decrease_threshold"])
    _check_ladder(thresholds, factors, decrease_threshold)
    decrease_factor = as_float("decrease_factor", kw["decrease_factor"])
    if not 0.0 < decrease_factor <= 1.0:
        raise ValueError(f"decrease_factor must be in (0, 1], got {decrease_factor}")
    cooldown = as_int("cooldown", kw["cooldown"], 0)
    start_delay = cooldown if kw["start_delay"] is None else as_int("start_delay", kw["start_delay"], 0)
    min_progress = kw["min_progress"]
    if min_progress is not None:
        min_progress = as_float("min_progress", min_progress)
    max_loss_ratio = kw["max_loss_ratio"]
    if max_loss_ratio is not None:
        max_loss_ratio = as_float("max_loss_ratio", max_loss_ratio)
        if not 0.0 < max_loss_ratio < math.inf:
            raise ValueError(f"max_loss_ratio must be finite and > 0, got {max_loss_ratio}")
    ema_decay = as_float("ema_decay", kw["ema_decay"])
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
    bounds = {k: as_float(k, kw[k]) for k in ("cap", "init_mult", "min_mult", "max_mult")}
    _check_bounds(**bounds)
    return _Settings(
        schedule=schedule, thresholds=thresholds, factors=factors, decrease_threshold=decrease_threshold,
        decrease_factor=decrease_factor, interval=as_int("interval", kw["interval"], 1), cooldown=cooldown,
        start_delay=start_delay, min_progress=min_progress, max_loss_ratio=max_loss_ratio, ema_decay=ema_decay,
        **bounds,
    )  # fmt: skip


def _base_weight(s: _Settings, step) -> jax.Array:
    return jnp.asarray(s.schedule(jnp.asarray(step)), jnp.float32)


def _init(s: _Settings) -> GAWeightState:
    return GAWeightState(
        mult=jnp.asarray(s.init_mult, jnp.float32),
        ema_diag=jnp.asarray(0.0, jnp.float32),
        cooldown=jnp.asarray(s.start_delay, jnp.int32),
        n_obs=jnp.asarray(0, jnp.int32),
        level=jnp.asarray(LEVEL_NONE, jnp.int32),
        ema_ref=jnp.asarray(-jnp.inf, jnp.float32),
        ema_balance=jnp.asarray(jnp.inf, jnp.float32),
    )


def _fold_balance(s: _Settings, state: GAWeightState, ga_loss, rest_loss) -> jax.Array:
    """The EMA of rest_loss / ga_loss, skipping pairs that are not finite or have ga_loss <= 0."""
    if ga_loss is None or rest_loss is None:
        if s.max_loss_ratio is not None:
            raise ValueError("max_loss_ratio is set: update() needs ga_loss and rest_loss")
        return state.ema_balance
    ga_loss = jnp.asarray(ga_loss, jnp.float32)
    balance = jnp.asarray(rest_loss, jnp.float32) / jnp.where(ga_loss > 0.0, ga_loss, 1.0)
    valid = jnp.isfinite(balance) & (ga_loss > 0.0)
    first = jnp.isinf(state.ema_balance)
    ema = jnp.where(first, balance, s.ema_decay * state.ema_balance + (1.0 - s.ema_decay) * balance)
    return jnp.where(valid, ema, state.ema_balance).astype(jnp.float32)


def _ladder(s: _Settings, ema: jax.Array, ema_ref: jax.Array, only_rise) -> tuple[jax.Array, jax.Array]:
    """(level code, factor) the ladder proposes for this EMA; the first matching level wins."""
    code = jnp.asarray(LEVEL_NONE, jnp.int32)
    factor = jnp.asarray(1.0, jnp.float32)
    for i in reversed(range(len(s.thresholds))):  # from the loosest raise threshold to the strictest
        hit = ema < s.thresholds[i]
        code = jnp.where(hit, i + 1, code)
        factor = jnp.where(hit, s.factors[i], factor)
    if s.min_progress is not None:
        progressing = (code > 0) & ~(ema - ema_ref < s.min_progress)
        code = jnp.where(progressing, LEVEL_NONE, code)
        factor = jnp.where(progressing, 1.0, factor)
    decrease = (ema > s.decrease_threshold) & ~jnp.asarray(only_rise, bool)
    code = jnp.where(decrease, LEVEL_DECREASE, code)
    factor = jnp.where(decrease, s.decrease_factor, factor)
    return code, factor


def _update(
    s: _Settings, state: GAWeightState, diag, step, *, only_rise=False, target_mult=None, ga_loss=None, rest_loss=None
) -> GAWeightState:
    diag = jnp.asarray(diag, jnp.float32)
    step = jnp.asarray(step)
    finite = jnp.isfinite(diag)
    ema = jnp.where(state.n_obs > 0, s.ema_decay * state.ema_diag + (1.0 - s.ema_decay) * diag, diag)
    ema = jnp.where(finite, ema, state.ema_diag).astype(jnp.float32)
    n_obs = state.n_obs + finite.astype(jnp.int32)
    wait = jnp.maximum(state.cooldown - 1, 0)
    at_interval = (step % s.interval == 0) & (n_obs > 0)
    may_decide = at_interval & (wait == 0)
    code, factor = _ladder(s, ema, state.ema_ref, only_rise)

    base = _base_weight(s, step)
    hi = jnp.where(base > 0.0, s.cap / jnp.where(base > 0.0, base, 1.0), jnp.inf)
    hi = jnp.minimum(hi, s.max_mult)
    lo = jnp.asarray(s.min_mult, jnp.float32)
    if target_mult is not None:
        lo = jnp.maximum(lo, jnp.asarray(target_mult, jnp.float32))

    def bounded(m):
        return jnp.minimum(jnp.maximum(m, lo), hi).astype(jnp.float32)

    raised = state.mult * factor
    ema_balance = _fold_balance(s, state, ga_loss, rest_loss)
    if s.max_loss_ratio is not None:
        ratio_bound = s.max_loss_ratio * ema_balance / jnp.where(base > 0.0, base, 1.0)
        raised = jnp.where(code > 0, jnp.minimum(raised, jnp.maximum(state.mult, ratio_bound)), raised)
    kept = bounded(state.mult)
    proposed = bounded(raised)
    changed = may_decide & (code != LEVEL_NONE) & (proposed != kept)
    return GAWeightState(
        mult=jnp.where(changed, proposed, kept),
        ema_diag=ema,
        cooldown=jnp.where(changed, s.cooldown, wait).astype(jnp.int32),
        n_obs=n_obs,
        level=jnp.where(changed, code, state.level).astype(jnp.int32),
        ema_ref=jnp.where(at_interval, ema, state.ema_ref).astype(jnp.float32),
        ema_balance=ema_balance,
    )


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
) -> GAWeightController:
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

    With ``max_loss_ratio`` set, a raise never takes the GA term (the weight times ``ga_loss``) above that
    multiple of ``rest_loss``, the rest of the objective (everything the weight does not multiply): the raised
    multiplier is clamped to ``max_loss_ratio x balance / schedule(step)``, where ``balance`` is an EMA of
    ``rest_loss / ga_loss`` (the weight at which the two terms are equal), and
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
      ``GAWeightController(init, update, value)``. ``update(state, diag, step, *, only_rise=False,
      target_mult=None, ga_loss=None, rest_loss=None)``: ``diag`` f32 scalar batch diagonality, ``step`` int
      optimizer step, ``ga_loss`` the batch's unweighted GA loss (every GA term the weight multiplies) and
      ``rest_loss`` the rest of its total loss (the total minus weight x ga_loss)
      (both f32 scalars; required with ``max_loss_ratio``, otherwise only tracked; a pair that is not finite
      or has ``ga_loss <= 0`` is skipped),
      ``only_rise`` (bool, may be traced) forbids decreases (the pre-alignment phase), ``target_mult``
      (f32 scalar or None) is a phase-provided floor: after every update the multiplier is at least
      ``target_mult`` (unless the cap forbids it). A phase that starts with a higher target therefore moves
      the multiplier up to it at once; a lower target only lets the decrease rule go further down. Raising
      to the floor is not a decision (no cooldown, no level).
    """
    s = _validated(
        schedule, raise_thresholds=raise_thresholds, raise_factors=raise_factors,
        decrease_threshold=decrease_threshold, decrease_factor=decrease_factor, interval=interval, cooldown=cooldown,
        start_delay=start_delay, min_progress=min_progress, max_loss_ratio=max_loss_ratio, ema_decay=ema_decay,
        cap=cap, init_mult=init_mult, min_mult=min_mult, max_mult=max_mult,
    )  # fmt: skip

    def init_fn() -> GAWeightState:
        return _init(s)

    if not enabled:

        def inert_update(state: GAWeightState, diag, step, **_) -> GAWeightState:
            del diag, step
            return state

        return GAWeightController(init_fn, inert_update, lambda state, step: _base_weight(s, step))

    def update_fn(state: GAWeightState, diag, step, **kwargs) -> GAWeightState:
        return _update(s, state, diag, step, **kwargs)

    def value_fn(state: GAWeightState, step) -> jax.Array:
        return jnp.minimum(_base_weight(s, step) * state.mult, s.cap).astype(jnp.float32)

    return GAWeightController(init_fn, update_fn, value_fn)
