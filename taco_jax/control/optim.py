"""Optimizer-side controllers from optax pieces: the LR scale (plateau or plain), gradient accumulation, the
non-finite guard, and pure readers of the resulting optimizer state.

The training package composes them around NVIDIA's chain, outermost first::

    nonfinite_guard(              optax.apply_if_finite, plus: a non-finite loss (``value``) rejects the step too,
                                  and a rejected step lowers the LR scale                                [optional]
      accumulate(                 optax.MultiSteps; the plateau sees the mean loss of the micro-steps    [optional]
        optax.chain(clip, add_decayed_weights, scale_by_adam, scale_by_learning_rate(schedule),
                    scale_by_lr_scale(lr_plateau(...) or None))))

Why this order: the guard is outermost so a rejected micro-step leaves *everything* untouched (accumulator, clip
history, Adam moments, plateau counters); the accumulator wraps the whole core so clipping, the clip history, Adam
and the plateau act once per optimizer step on the averaged gradient (MultiSteps runs the core on every micro-step
but keeps its state only on the k-th).

Everything that changes lives in the optimizer state (NamedTuples, fixed shapes and dtypes). The readers below
find the states by their types (``isinstance``), wherever the composition put them, so parameter names such as
Flax's BatchNorm ``scale`` (mirrored in Adam's moments) never collide with a controller's field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from taco_jax.control._checks import as_int, in_range
from taco_jax.control.clip import FixedClipState

__all__ = [
    "AccumulationState",
    "LRScaleState",
    "accumulate",
    "applied_clip_threshold",
    "consecutive_nonfinite",
    "current_lr",
    "last_step_finite",
    "lower_lr_scale",
    "lr_plateau",
    "lr_scale",
    "nonfinite_count",
    "nonfinite_guard",
    "optimizer_steps",
    "scale_by_lr_scale",
]

# ----------------------------------------------------------------------------------------------------------------
# LR scale: reduce_on_plateau (monotone) or a plain multiplier
# ----------------------------------------------------------------------------------------------------------------


def lr_plateau(
    *,
    factor: float = 0.5,
    patience: int = 10,
    cooldown: int = 0,
    accumulation: int = 1,
    rtol: float = 1e-4,
    atol: float = 0.0,
    min_scale: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """`optax.contrib.reduce_on_plateau` with its arguments checked eagerly (for `scale_by_lr_scale`).

    It counts optimizer steps; ``accumulation`` steps' losses are averaged per decision, so ``patience`` and
    ``cooldown`` count decisions. A decision improves when avg < (1 - rtol) * best - atol.
    """
    in_range("factor", factor, 0.0, 1.0, lo_open=True, hi_open=True)
    as_int("patience", patience, 1)
    as_int("cooldown", cooldown, 0)
    as_int("accumulation", accumulation, 1)
    in_range("rtol", rtol, 0.0, 1.0)
    in_range("atol", atol, 0.0, float("inf"), hi_open=True)
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("rtol and atol cannot both be 0")
    in_range("min_scale", min_scale, 0.0, 1.0)
    return optax.contrib.reduce_on_plateau(
        factor=factor, patience=patience, rtol=rtol, atol=atol, cooldown=cooldown, accumulation_size=accumulation,
        min_scale=min_scale,
    )  # fmt: skip


class LRScaleState(NamedTuple):
    """The LR multiplier when the plateau controller is off; lowered only by non-finite steps or a rollback."""

    scale: jax.Array  # params' lowest float dtype (as reduce_on_plateau's), starts at 1.0


def scale_by_lr_scale(
    plateau: optax.GradientTransformationExtraArgs | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Multiplies updates by the LR scale: `plateau`'s (`lr_plateau`, fed ``value=`` the loss), or a plain
    multiplier that starts at 1 (`LRScaleState`). With a plateau controller the scale never rises by itself."""
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
            raise ValueError("the LR plateau needs the training loss: tx.update(grads, opt_state, params, value=loss)")
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
    """State of `accumulate`: the MultiSteps state and the mean loss of the micro-steps so far."""

    value_mean: jax.Array  # f32, running mean of value= over the micro-steps accumulated so far
    multi_steps: optax.MultiStepsState


def accumulate(core: optax.GradientTransformation, every_k: int) -> optax.GradientTransformationExtraArgs:
    """`optax.MultiSteps(core, every_k)` (the mean gradient of ``every_k`` micro-steps), keeping extra arguments;
    a ``value=`` (the loss) reaches `core` as the mean over the accumulated micro-steps."""
    as_int("every_k", every_k, 1)
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


def nonfinite_guard(
    inner: optax.GradientTransformation, *, max_consecutive: int = 5, lr_factor: float = 0.5, floor: float = 0.0
) -> optax.GradientTransformationExtraArgs:
    """`optax.apply_if_finite(inner)`: a step whose gradients or ``value=`` (the loss) are not finite returns zero
    updates and leaves `inner`'s state untouched; only the guard's counters change, and the LR scale is multiplied
    by ``lr_factor`` (in (0, 1]; never below ``floor``). After ``max_consecutive`` rejections in a row the next
    non-finite step is applied (optax's give-up rule), so a host rollback must trigger at or before that count.
    """
    as_int("max_consecutive", max_consecutive, 1)
    in_range("lr_factor", lr_factor, 0.0, 1.0, lo_open=True)
    in_range("floor", floor, 0.0, 1.0)
    guarded = optax.apply_if_finite(inner, max_consecutive_errors=max_consecutive)

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        if value is not None:
            # A non-finite loss with finite grads is rejected too: its grads are turned into NaN (a select, exact).
            loss_ok = jnp.all(jnp.isfinite(value))
            updates = jax.tree.map(lambda g: jnp.where(loss_ok, g, jnp.nan), updates)
            extra_args["value"] = value
        updates, new_state = guarded.update(updates, state, params, **extra_args)
        if lr_factor < 1.0:
            factor = jnp.where(new_state.last_finite, 1.0, lr_factor)
            new_state = lower_lr_scale(new_state, factor, floor)
        return updates, new_state

    return optax.GradientTransformationExtraArgs(guarded.init, update_fn)


# ----------------------------------------------------------------------------------------------------------------
# Readers and the rollback helper (pure functions of the state pytree; jit-able)
# ----------------------------------------------------------------------------------------------------------------


def _states(opt_state: optax.OptState, types: type | tuple[type, ...]) -> list[Any]:
    """Every node of `opt_state` that is an instance of `types`, outermost first (the search stops at a match)."""
    match = lambda node: isinstance(node, types)  # noqa: E731
    return [node for node in jax.tree.leaves(opt_state, is_leaf=match) if match(node)]


def _replace_states(opt_state: optax.OptState, types: type | tuple[type, ...], fn: Callable) -> optax.OptState:
    match = lambda node: isinstance(node, types)  # noqa: E731
    return jax.tree.map(lambda node: fn(node) if match(node) else node, opt_state, is_leaf=match)


def _one(opt_state: optax.OptState, types: type | tuple[type, ...], what: str) -> Any:
    found = _states(opt_state, types)
    if not found:
        raise ValueError(f"the optimizer state has no {what}")
    return found[0]


_SCALE_STATES = (optax.contrib.ReduceLROnPlateauState, LRScaleState)


def applied_clip_threshold(opt_state: optax.OptState) -> jax.Array:
    """The clip threshold the most recent update applied (the initial one before any update)."""
    injected = _states(opt_state, optax.InjectStatefulHyperparamsState)
    if injected:
        return injected[0].hyperparams["max_norm"]
    return _one(opt_state, FixedClipState, "clip threshold (FixedClipState or an adaptive clip)").max_norm


def lr_scale(opt_state: optax.OptState) -> jax.Array:
    """The multiplier on the base LR schedule that the next update applies (1.0 at start, never rises by itself)."""
    return _one(opt_state, _SCALE_STATES, "LR scale (scale_by_lr_scale)").scale


def lower_lr_scale(opt_state: optax.OptState, factor: Any, floor: Any) -> optax.OptState:
    """``scale <- min(scale, max(scale * factor, floor))``: lowers by ``factor``, not below ``floor``, never raises.

    Pure (host or jit). Returns a new state with the same structure and dtypes; with ``factor`` 1.0 bitwise unchanged.
    """

    def lower(node):
        new = jnp.minimum(node.scale, jnp.maximum(node.scale * factor, floor)).astype(node.scale.dtype)
        return node._replace(scale=new)

    _one(opt_state, _SCALE_STATES, "LR scale (scale_by_lr_scale)")
    return _replace_states(opt_state, _SCALE_STATES, lower)


def _guard_field(opt_state: optax.OptState, name: str, default: Any) -> jax.Array:
    found = _states(opt_state, optax.ApplyIfFiniteState)
    return getattr(found[0], name) if found else jnp.asarray(default)


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
    # for a constant schedule too, where scale_by_learning_rate keeps no count.
    return _one(opt_state, optax.ScaleByAdamState, "Adam state").count


def current_lr(opt_state: optax.OptState, lr_schedule: optax.ScalarOrSchedule) -> jax.Array:
    """The effective learning rate the next update applies: ``lr_schedule(optimizer_steps) * lr_scale``."""
    base = lr_schedule(optimizer_steps(opt_state)) if callable(lr_schedule) else lr_schedule
    return jnp.asarray(base, jnp.float32) * lr_scale(opt_state).astype(jnp.float32)
