"""Gradient clipping by global norm whose threshold can be read from the optimizer state, and one that adapts.

`adaptive_clip_by_global_norm(PercentileClipThreshold(...))`: the threshold is a percentile of recent pre-clip
norms, an optax `StatefulSchedule` under `optax.inject_hyperparams(optax.clip_by_global_norm)`, so optax applies it
and its state sits in the optimizer state. `fixed_clip_by_global_norm(t)`: optax's clip with the constant ``t``,
kept readable in the state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from taco_jax.control._checks import as_int, in_range, positive

__all__ = [
    "ClipThresholdState",
    "FixedClipState",
    "PercentileClipThreshold",
    "adaptive_clip_by_global_norm",
    "fixed_clip_by_global_norm",
]


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
        positive("initial", initial)
        in_range("percentile", percentile, 0.0, 100.0)
        as_int("window", window, 1)
        positive("min_threshold", min_threshold)
        positive("max_threshold", max_threshold)
        if max_threshold < min_threshold:
            raise ValueError(f"max_threshold must be >= min_threshold={min_threshold}, got {max_threshold!r}")
        if not min_threshold <= initial <= max_threshold:
            raise ValueError(
                f"initial threshold must lie in [min_threshold, max_threshold] = [{min_threshold}, {max_threshold}],"
                f" got {initial!r}"
            )
        as_int("min_history", min_history, 1)
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
    max_norm = positive("max_norm", max_norm)
    inner = optax.clip_by_global_norm(max_norm)

    def init_fn(params):
        del params
        return FixedClipState(jnp.asarray(max_norm, jnp.float32))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        return inner.update(updates, inner.init(params), params)[0], state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
