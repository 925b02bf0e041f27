"""Optimizer-side controllers, built only from optax pieces: adaptive clip, LR scale, non-finite guard, accumulation.

``build_controlled_optimizer`` returns one ``optax.GradientTransformationExtraArgs``. Outermost first::

    guard      optax.apply_if_finite(...), plus: a non-finite ``value`` (the loss) turns the step's grads into NaN
               so it is rejected like a non-finite gradient, and a rejected step lowers the LR scale by
               ``nonfinite_factor`` (never below ``min_lr_scale``)                         [guard_enabled]
    accumulate optax.MultiSteps(core, every_k_schedule=k); the plateau sees the mean ``value`` of the k
               micro-steps                                                                [accumulate_steps > 1]
    core       optax.chain(
                 optax.clip_by_global_norm(grad_clip) (fixed; threshold readable from FixedClipState), or
                 optax.inject_hyperparams(optax.clip_by_global_norm)(max_norm=PercentileClipThreshold) [adaptive],
                 optax.add_decayed_weights(weight_decay),      # NVIDIA's coupled L2, after the clip
                 optax.scale_by_adam(b1, b2, eps),
                 optax.scale_by_learning_rate(lr_schedule),
                 LR scale: optax.contrib.reduce_on_plateau(...) fed ``value`` [plateau_enabled], else a constant
                           ``LRScaleState`` multiplier (1.0 until lowered by a non-finite step or a rollback),
               )

Why this order: the guard is outermost so a rejected micro-step leaves *everything* untouched (accumulator,
clip history, Adam moments, plateau counters) and never reaches the plateau or the clip history; the accumulator
wraps the whole core so clipping, the clip history, Adam and the plateau all act once per optimizer step on the
averaged gradient (``optax.MultiSteps`` runs the core on every micro-step but keeps its state only on the k-th).

The single call, inside or outside ``jax.jit``::

    updates, opt_state = tx.update(grads, opt_state, params, value=loss)

``value`` (the scalar training loss of this batch) is optional unless ``plateau_enabled``. Any other keyword
arguments are forwarded to every extra-args-aware transformation, as ``optax.chain`` does; ``grad_norm`` is
reserved: the adaptive clip measures the global norm of the gradient it clips itself and overrides it.

Everything that changes lives in ``opt_state`` (NamedTuples, fixed shapes and dtypes); read it with the readers
below (``clip_threshold``, ``lr_scale``, ``nonfinite_count``, ...), which use ``optax.tree.get`` filtered by
NamedTuple type, so parameter names such as Flax's BatchNorm ``scale`` (mirrored in Adam's moments) never collide.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax.tree_utils import NamedTupleKey

__all__ = [
    "ClipThresholdState",
    "FixedClipState",
    "fixed_clip_by_global_norm",
    "LRScaleState",
    "AccumulationState",
    "PercentileClipThreshold",
    "adaptive_clip_by_global_norm",
    "build_controlled_optimizer",
    "clip_threshold",
    "applied_clip_threshold",
    "lr_scale",
    "lower_lr_scale",
    "nonfinite_count",
    "consecutive_nonfinite",
    "last_step_finite",
    "optimizer_steps",
    "current_lr",
]

# ----------------------------------------------------------------------------------------------------------------
# Adaptive gradient-clip threshold: a StatefulSchedule for inject_hyperparams(clip_by_global_norm)
# ----------------------------------------------------------------------------------------------------------------


class ClipThresholdState(NamedTuple):
    """Ring buffer of recent finite pre-clip global norms and the threshold derived from it."""

    norms: jax.Array  # f32[window]; slots >= filled are unused
    index: jax.Array  # i32, next slot to write
    filled: jax.Array  # i32, number of valid slots (<= window)
    threshold: jax.Array  # f32, the threshold the *next* update applies


class PercentileClipThreshold(optax.schedules.StatefulSchedule):
    """Clip threshold = clip(P_q(last ``window`` finite pre-clip norms), lo, hi); ``initial`` until ``min_history``.

    Used as ``optax.inject_hyperparams(optax.clip_by_global_norm)(max_norm=PercentileClipThreshold(...))``.
    ``inject_hyperparams`` evaluates ``__call__`` on the state *before* calling ``update``, so the threshold
    applied at step t is computed from the norms of steps < t only: the current norm is *not* included.
    ``update`` needs the extra argument ``grad_norm`` (the norm of the gradient being clipped);
    ``adaptive_clip_by_global_norm`` supplies it. A non-finite ``grad_norm`` is not recorded.
    The percentile uses linear interpolation (``jnp.nanpercentile``'s default).
    """

    def __init__(
        self,
        initial: float,
        *,
        percentile: float = 95.0,
        window: int = 100,
        min_threshold: float = 0.1,
        max_threshold: float = 1.0,
        min_history: int = 10,
    ):
        _check_positive("initial", initial)
        _check_range("percentile", percentile, 0.0, 100.0)
        _check_int("window", window, 1)
        _check_positive("min_threshold", min_threshold)
        _check_positive("max_threshold", max_threshold)
        if max_threshold < min_threshold:
            raise ValueError(f"max_threshold must be >= min_threshold={min_threshold}, got {max_threshold!r}")
        if not min_threshold <= initial <= max_threshold:
            raise ValueError(
                f"initial threshold must lie in [min_threshold, max_threshold] = [{min_threshold}, {max_threshold}],"
                f" got {initial!r}"
            )
        _check_int("min_history", min_history, 1)
        if min_history > window:
            raise ValueError(f"min_history must be <= window={window}, got {min_history!r}")
        self.initial = float(initial)
        self.percentile = float(percentile)
        self.window = int(window)
        self.min_threshold = float(min_threshold)
        self.max_threshold = float(max_threshold)
        self.min_history = int(min_history)

    def init(self) -> ClipThresholdState:
        return ClipThresholdState(
            norms=jnp.zeros([self.window], jnp.float32),
            index=jnp.zeros([], jnp.int32),
            filled=jnp.zeros([], jnp.int32),
            threshold=jnp.asarray(self.initial, jnp.float32),
        )

    def update(self, state: ClipThresholdState, *, grad_norm: Any = None, **extra_args: Any) -> ClipThresholdState:
        del extra_args
        if grad_norm is None:
            raise ValueError("PercentileClipThreshold.update needs the extra argument grad_norm=")
        g = jnp.asarray(grad_norm, jnp.float32)
        finite = jnp.isfinite(g)
        norms = state.norms.at[state.index].set(jnp.where(finite, g, state.norms[state.index]))
        index = jnp.where(finite, (state.index + 1) % self.window, state.index).astype(jnp.int32)
        filled = jnp.minimum(state.filled + finite.astype(jnp.int32), self.window).astype(jnp.int32)
        valid = jnp.arange(self.window) < filled
        q = jnp.nanpercentile(jnp.where(valid, norms, jnp.nan), self.percentile)
        adaptive = jnp.clip(q, self.min_threshold, self.max_threshold)
        threshold = jnp.where(filled >= self.min_history, adaptive, self.initial).astype(jnp.float32)
        return ClipThresholdState(norms=norms, index=index, filled=filled, threshold=threshold)

    def __call__(self, state: ClipThresholdState, **extra_args: Any) -> jax.Array:
        del extra_args
        return state.threshold


def adaptive_clip_by_global_norm(schedule: PercentileClipThreshold) -> optax.GradientTransformationExtraArgs:
    """``inject_hyperparams(clip_by_global_norm)`` driven by ``schedule``, fed the norm of the incoming updates.

    A StatefulSchedule only sees extra arguments, never the updates, so this wrapper computes
    ``optax.tree.norm(updates)`` (the same expression ``clip_by_global_norm`` uses, so XLA can share one reduction)
    and passes it down as ``grad_norm=`` (overriding any caller-supplied ``grad_norm``).
    """
    inner = optax.inject_hyperparams(optax.clip_by_global_norm, hyperparam_dtype=jnp.float32)(max_norm=schedule)

    def update_fn(updates, state, params=None, **extra_args):
        extra_args["grad_norm"] = optax.tree.norm(updates)
        return inner.update(updates, state, params, **extra_args)

    return optax.GradientTransformationExtraArgs(inner.init, update_fn)


class FixedClipState(NamedTuple):
    """The fixed threshold, kept in the state only to be read (the update uses the static Python value)."""

    max_norm: jax.Array  # f32


def fixed_clip_by_global_norm(max_norm: float) -> optax.GradientTransformationExtraArgs:
    """``optax.clip_by_global_norm(max_norm)`` with its threshold readable from the state.

    The threshold stays a compile-time constant: an injected (traced) threshold compiles to a different program
    whose parameters drift from the plain chain's by an ulp within steps, and a disabled controller must give
    exactly the plain recipe.
    """
    inner = optax.clip_by_global_norm(max_norm)

    def init_fn(params):
        del params
        return FixedClipState(jnp.asarray(max_norm, jnp.float32))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        return inner.update(updates, inner.init(params), params)[0], state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ----------------------------------------------------------------------------------------------------------------
# LR scale: reduce_on_plateau (monotone) or a plain multiplier
# ----------------------------------------------------------------------------------------------------------------


class LRScaleState(NamedTuple):
    """The LR multiplier when the plateau controller is off; lowered only by non-finite steps or a rollback."""

    scale: jax.Array  # params' lowest float dtype (as reduce_on_plateau's), starts at 1.0


def _lr_scale_stage(plateau: optax.GradientTransformationExtraArgs | None) -> optax.GradientTransformationExtraArgs:
    """Multiplies updates by the LR scale; with a plateau controller the scale never rises by itself."""
    if plateau is None:

        def init_fn(params):
            return LRScaleState(scale=jnp.ones([], optax.tree.dtype(params, "lowest")))

        def update_fn(updates, state, params=None, **extra_args):
            del params, extra_args
            return jax.tree.map(lambda g: state.scale * g, updates), state

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)

    def plateau_update(updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        if value is None:
            raise ValueError("plateau_enabled needs the training loss: tx.update(grads, opt_state, params, value=loss)")
        _, new_state = plateau.update(updates, state, params, value=value)
        # reduce_on_plateau clamps with maximum(scale, min_scale), which would lift a scale that a rollback put
        # below min_scale; min(old, new) keeps "never rises by itself" unconditional.
        scale = jnp.minimum(state.scale, new_state.scale)
        new_state = new_state._replace(scale=scale)
        return jax.tree.map(lambda g: scale * g, updates), new_state

    return optax.GradientTransformationExtraArgs(plateau.init, plateau_update)


# ----------------------------------------------------------------------------------------------------------------
# Gradient accumulation: MultiSteps, with the plateau fed the mean loss of the accumulated micro-steps
# ----------------------------------------------------------------------------------------------------------------


class AccumulationState(NamedTuple):
    value_mean: jax.Array  # f32, running mean of value= over the micro-steps accumulated so far
    multi_steps: optax.MultiStepsState


def _accumulate(core: optax.GradientTransformation, every_k: int) -> optax.GradientTransformationExtraArgs:
    # MultiSteps.gradient_transformation() would drop the extra args; wrap its methods directly.
    ms = optax.MultiSteps(core, every_k_schedule=every_k)

    def init_fn(params):
        return AccumulationState(value_mean=jnp.zeros([], jnp.float32), multi_steps=ms.init(params))

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        value_mean = state.value_mean
        if value is not None:
            n = state.multi_steps.mini_step.astype(jnp.float32)
            value_mean = value_mean + (jnp.asarray(value, jnp.float32) - value_mean) / (n + 1.0)
            extra_args["value"] = value_mean
        updates, ms_state = ms.update(updates, state.multi_steps, params, **extra_args)
        emitted = ms_state.mini_step == 0
        value_mean = jnp.where(emitted, jnp.zeros_like(value_mean), value_mean)
        return updates, AccumulationState(value_mean=value_mean, multi_steps=ms_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ----------------------------------------------------------------------------------------------------------------
# Non-finite guard: apply_if_finite + loss check + LR-scale drop on rejected steps
# ----------------------------------------------------------------------------------------------------------------


def _guard(
    inner: optax.GradientTransformation, *, max_consecutive: int, nonfinite_factor: float, floor: float
) -> optax.GradientTransformationExtraArgs:
    guarded = optax.apply_if_finite(inner, max_consecutive_errors=max_consecutive)

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        if value is not None:
            # A non-finite loss with finite grads is rejected too: its grads are turned into NaN (a select, exact).
            loss_ok = jnp.all(jnp.isfinite(value))
            updates = jax.tree.map(lambda g: jnp.where(loss_ok, g, jnp.nan), updates)
            extra_args["value"] = value
        updates, new_state = guarded.update(updates, state, params, **extra_args)
        if nonfinite_factor < 1.0:
            factor = jnp.where(new_state.last_finite, 1.0, nonfinite_factor)
            new_state = lower_lr_scale(new_state, factor, floor)
        return updates, new_state

    return optax.GradientTransformationExtraArgs(guarded.init, update_fn)


# ----------------------------------------------------------------------------------------------------------------
# The builder
# ----------------------------------------------------------------------------------------------------------------


def build_controlled_optimizer(
    *,
    lr_schedule: optax.ScalarOrSchedule,
    grad_clip: float = 1.0,
    adaptive_clip: bool = False,
    clip_percentile: float = 95.0,
    clip_window: int = 100,
    clip_min: float = 0.1,
    clip_max: float = 1.0,
    clip_min_history: int = 10,
    weight_decay: float = 1e-6,
    adam_b1: float = 0.9,
    adam_b2: float = 0.999,
    adam_eps: float = 1e-8,
    plateau_enabled: bool = False,
    plateau_factor: float = 0.5,
    plateau_patience: int = 10,
    plateau_cooldown: int = 0,
    plateau_accumulation: int = 1,
    plateau_rtol: float = 1e-4,
    plateau_atol: float = 0.0,
    min_lr_scale: float = 0.0,
    nonfinite_factor: float = 0.5,
    guard_enabled: bool = False,
    max_consecutive_nonfinite: int = 5,
    accumulate_steps: int = 1,
) -> optax.GradientTransformationExtraArgs:
    """NVIDIA's chain (clip -> coupled L2 -> Adam -> scheduled LR) with the optional controllers (module docstring).

    Args:
      lr_schedule: base learning rate, an optax schedule of the optimizer step (or a constant >= 0).
      grad_clip: the global-norm clip threshold; with ``adaptive_clip`` the initial one (in [clip_min, clip_max]).
      adaptive_clip: threshold = clip(P_{clip_percentile}(last ``clip_window`` finite pre-clip norms),
        clip_min, clip_max) once ``clip_min_history`` norms were seen; history before the step only.
      weight_decay, adam_b1, adam_b2, adam_eps: as ``taco_jax.train.optimizer.build_optimizer``.
      plateau_enabled: ``optax.contrib.reduce_on_plateau`` on ``value`` (needs ``value=`` every update). It counts
        optimizer steps (not micro-steps); ``plateau_accumulation`` steps are averaged per decision, so patience
        and cooldown count decisions. A decision improves when avg < (1 - plateau_rtol) * best - plateau_atol.
      min_lr_scale: floor of every automatic decrease (plateau and non-finite).
      nonfinite_factor: LR scale multiplier on each rejected (non-finite) step, in (0, 1]; needs ``guard_enabled``.
      guard_enabled: ``optax.apply_if_finite``: a step whose grads (or ``value``) are not finite returns zero
        updates and leaves the state untouched except the guard counters and the LR scale. After
        ``max_consecutive_nonfinite`` consecutive rejections the next non-finite step is applied (optax's
        give-up rule), so a host rollback should trigger at or before that count.
      accumulate_steps: ``optax.MultiSteps`` over this many micro-steps (mean gradient) when > 1.

    Raises:
      ValueError: naming the first invalid argument.
    """
    _check_schedule("lr_schedule", lr_schedule)
    _check_positive("grad_clip", grad_clip)
    for name, flag in (
        ("adaptive_clip", adaptive_clip),
        ("plateau_enabled", plateau_enabled),
        ("guard_enabled", guard_enabled),
    ):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be a bool, got {flag!r}")
    _check_range("clip_percentile", clip_percentile, 0.0, 100.0)
    _check_int("clip_window", clip_window, 1)
    _check_positive("clip_min", clip_min)
    _check_positive("clip_max", clip_max)
    if clip_max < clip_min:
        raise ValueError(f"clip_max must be >= clip_min={clip_min}, got {clip_max!r}")
    _check_int("clip_min_history", clip_min_history, 1)
    if clip_min_history > clip_window:
        raise ValueError(f"clip_min_history must be <= clip_window={clip_window}, got {clip_min_history!r}")
    if adaptive_clip and not clip_min <= grad_clip <= clip_max:
        raise ValueError(f"grad_clip (the initial threshold) must lie in [clip_min, clip_max], got {grad_clip!r}")
    _check_range("weight_decay", weight_decay, 0.0, math.inf)
    _check_range("adam_b1", adam_b1, 0.0, 1.0, hi_open=True)
    _check_range("adam_b2", adam_b2, 0.0, 1.0, hi_open=True)
    _check_positive("adam_eps", adam_eps)
    _check_range("plateau_factor", plateau_factor, 0.0, 1.0, lo_open=True, hi_open=True)
    _check_int("plateau_patience", plateau_patience, 1)
    _check_int("plateau_cooldown", plateau_cooldown, 0)
    _check_int("plateau_accumulation", plateau_accumulation, 1)
    _check_range("plateau_rtol", plateau_rtol, 0.0, 1.0)
    _check_range("plateau_atol", plateau_atol, 0.0, math.inf)
    if plateau_rtol == 0.0 and plateau_atol == 0.0:
        raise ValueError("plateau_rtol and plateau_atol cannot both be 0")
    _check_range("min_lr_scale", min_lr_scale, 0.0, 1.0)
    _check_range("nonfinite_factor", nonfinite_factor, 0.0, 1.0, lo_open=True)
    _check_int("max_consecutive_nonfinite", max_consecutive_nonfinite, 1)
    _check_int("accumulate_steps", accumulate_steps, 1)

    if adaptive_clip:
        clip = adaptive_clip_by_global_norm(
            PercentileClipThreshold(
                grad_clip,
                percentile=clip_percentile,
                window=clip_window,
                min_threshold=clip_min,
                max_threshold=clip_max,
                min_history=clip_min_history,
            )
        )
    else:
        clip = fixed_clip_by_global_norm(grad_clip)
    plateau = None
    if plateau_enabled:
        plateau = optax.contrib.reduce_on_plateau(
            factor=plateau_factor,
            patience=plateau_patience,
            rtol=plateau_rtol,
            atol=plateau_atol,
            cooldown=plateau_cooldown,
            accumulation_size=plateau_accumulation,
            min_scale=min_lr_scale,
        )
    tx: optax.GradientTransformation = optax.chain(
        clip,
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_adam(b1=adam_b1, b2=adam_b2, eps=adam_eps),
        optax.scale_by_learning_rate(lr_schedule),
        _lr_scale_stage(plateau),
    )
    if accumulate_steps > 1:
        tx = _accumulate(tx, accumulate_steps)
    if guard_enabled:
        tx = _guard(
            tx, max_consecutive=max_consecutive_nonfinite, nonfinite_factor=float(nonfinite_factor), floor=min_lr_scale
        )
    return optax.with_extra_args_support(tx)


# ----------------------------------------------------------------------------------------------------------------
# Readers and the rollback helper (pure functions of the state pytree; jit-able)
# ----------------------------------------------------------------------------------------------------------------


def _in_tuple(*tuple_names: str) -> Callable[[Any, Any], bool]:
    def filtering(path, value):
        del value
        return bool(path) and isinstance(path[-1], NamedTupleKey) and path[-1].tuple_name in tuple_names

    return filtering


def _hyperparam(path, value) -> bool:
    del value
    return len(path) >= 2 and path[-2] == NamedTupleKey("InjectStatefulHyperparamsState", "hyperparams")


_SCALE_STATES = ("ReduceLROnPlateauState", "LRScaleState")
_GUARD_STATE = "ApplyIfFiniteState"


def clip_threshold(opt_state: optax.OptState) -> jax.Array:
    """The clip threshold the next update will apply (f32)."""
    state = optax.tree.get(opt_state, "ClipThresholdState")
    if state is not None:
        return state.threshold
    return applied_clip_threshold(opt_state)


def applied_clip_threshold(opt_state: optax.OptState) -> jax.Array:
    """The clip threshold the most recent update applied (the initial one before any update); ``max_norm``."""
    value = optax.tree.get(opt_state, "max_norm", filtering=_hyperparam)
    if value is None:
        fixed = optax.tree.get(opt_state, "FixedClipState")
        if fixed is None:
            raise ValueError("opt_state has no clip threshold (not from build_controlled_optimizer?)")
        value = fixed.max_norm
    return value


def lr_scale(opt_state: optax.OptState) -> jax.Array:
    """The multiplier on the base LR schedule that the next update applies (1.0 at start, never rises by itself)."""
    value = optax.tree.get(opt_state, "scale", filtering=_in_tuple(*_SCALE_STATES))
    if value is None:
        raise ValueError("opt_state has no LR scale (not from build_controlled_optimizer?)")
    return value


def lower_lr_scale(opt_state: optax.OptState, factor: Any, floor: Any) -> optax.OptState:
    """``scale <- min(scale, max(scale * factor, floor))``: lowers by ``factor``, not below ``floor``, never raises.

    Pure (host or jit). Returns a new state with the same structure and dtypes; with ``factor`` 1.0 bitwise unchanged.
    """
    scale = lr_scale(opt_state)
    new = jnp.minimum(scale, jnp.maximum(scale * factor, floor)).astype(scale.dtype)
    return optax.tree.set(opt_state, _in_tuple(*_SCALE_STATES), scale=new)


def _guard_field(opt_state: optax.OptState, name: str, default: Any) -> jax.Array:
    value = optax.tree.get(opt_state, name, filtering=_in_tuple(_GUARD_STATE))
    return jnp.asarray(default) if value is None else value


def nonfinite_count(opt_state: optax.OptState) -> jax.Array:
    """Total number of rejected (non-finite) steps so far (i32; 0 without the guard)."""
    return _guard_field(opt_state, "total_notfinite", jnp.int32(0))


def consecutive_nonfinite(opt_state: optax.OptState) -> jax.Array:
    """Non-finite steps in a row up to now; reset to 0 by a finite step (i32; 0 without the guard)."""
    return _guard_field(opt_state, "notfinite_count", jnp.int32(0))


def last_step_finite(opt_state: optax.OptState) -> jax.Array:
    """Whether the most recent step was finite (bool; True without the guard)."""
    return _guard_field(opt_state, "last_finite", jnp.bool_(True))


def optimizer_steps(opt_state: optax.OptState) -> jax.Array:
    """Applied optimizer steps, the base LR schedule's step (i32; excludes rejected steps and micro-steps)."""
    # Adam's count advances exactly when the LR schedule's does (both sit in the same core chain), and it exists
    # for a constant lr_schedule too, where scale_by_learning_rate keeps no count.
    value = optax.tree.get(opt_state, "count", filtering=_in_tuple("ScaleByAdamState"))
    if value is None:
        raise ValueError("opt_state has no Adam state (not from build_controlled_optimizer?)")
    return value


def current_lr(opt_state: optax.OptState, lr_schedule: optax.ScalarOrSchedule) -> jax.Array:
    """The effective learning rate the next update applies: ``lr_schedule(optimizer_steps) * lr_scale``."""
    base = lr_schedule(optimizer_steps(opt_state)) if callable(lr_schedule) else lr_schedule
    return jnp.asarray(base, jnp.float32) * lr_scale(opt_state).astype(jnp.float32)


# ----------------------------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------------------------


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_positive(name: str, value: Any) -> None:
    if not _is_real(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_range(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> None:
    ok = _is_real(value) and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")


def _check_int(name: str, value: Any, lo: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")


def _check_schedule(name: str, value: Any) -> None:
    if callable(value):
        return
    if not _is_real(value) or value < 0:
        raise ValueError(f"{name} must be an optax schedule or a finite number >= 0, got {value!r}")
