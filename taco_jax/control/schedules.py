"""Schedules of the optimizer step: the base learning rate and the base guided-attention weight.

Both are `step -> f32` functions (optax schedules), built from plain arguments and validated eagerly; the
controllers multiply them (the LR scale, the phase's LR factor, the GA multiplier).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from taco_jax.control._checks import as_float, as_int, in_range, positive

__all__ = ["GA_SCHEDULES", "LR_SCHEDULES", "guided_attention_schedule", "learning_rate_schedule", "zero_schedule"]

LR_SCHEDULES = ("constant", "warmup_exponential")
GA_SCHEDULES = ("constant", "exponential", "piecewise")


def learning_rate_schedule(
    kind: str = "constant",
    *,
    lr: float,
    warmup_steps: int = 0,
    decay_steps: int = 10000,
    decay_rate: float = 0.5,
    min_lr: float = 0.0,
) -> optax.Schedule:
    """Learning rate per optimizer step: ``"constant"`` at ``lr``, or ``"warmup_exponential"``: a linear warmup
    from 0 over ``warmup_steps``, then ``lr * decay_rate ** (steps / decay_steps)`` (smooth), never below
    ``min_lr``."""
    lr = in_range("lr", lr, 0.0, float("inf"), hi_open=True)
    if kind == "constant":
        return optax.constant_schedule(lr)
    if kind != "warmup_exponential":
        raise ValueError(f"kind must be one of {LR_SCHEDULES}, got {kind!r}")
    decay = optax.exponential_decay(
        lr,
        transition_steps=as_int("decay_steps", decay_steps, 1),
        decay_rate=positive("decay_rate", decay_rate),
        end_value=in_range("min_lr", min_lr, 0.0, float("inf"), hi_open=True),
    )
    warmup_steps = as_int("warmup_steps", warmup_steps, 0)
    if warmup_steps == 0:
        return decay
    warmup = optax.linear_schedule(0.0, lr, warmup_steps)
    return optax.join_schedules([warmup, decay], [warmup_steps])


def guided_attention_schedule(
    kind: str = "constant",
    *,
    weight: float,
    decay: float = 1.0,
    floor: float = 0.0,
    boundaries: Sequence[int] = (),
    values: Sequence[float] = (),
) -> Callable[[jax.Array], jax.Array]:
    """Base guided-attention weight per optimizer step (f32 scalar).

    ``"constant"``: ``weight``. ``"exponential"``: ``max(floor, weight * decay ** step)``. ``"piecewise"``:
    ``weight`` before ``boundaries[0]``, then ``values[i]`` from ``boundaries[i]`` on (increasing boundaries,
    one value each).
    """
    weight = as_float("weight", weight)
    if kind == "constant":
        return lambda step: jnp.asarray(weight, jnp.float32)
    if kind == "exponential":
        decay, floor = as_float("decay", decay), as_float("floor", floor)
        return lambda step: jnp.maximum(floor, weight * jnp.power(decay, jnp.asarray(step, jnp.float32)))
    if kind != "piecewise":
        raise ValueError(f"kind must be one of {GA_SCHEDULES}, got {kind!r}")
    bounds = [as_int("boundaries", b, 0) for b in boundaries]
    if len(values) != len(bounds) or any(b <= a for a, b in zip(bounds, bounds[1:], strict=False)):
        raise ValueError(f"boundaries must be increasing with one entry of values each, got {bounds} and {values}")
    bounds_arr = jnp.asarray(bounds, jnp.int32)
    levels = jnp.asarray([weight, *(as_float("values", v) for v in values)], jnp.float32)
    return lambda step: levels[jnp.sum(jnp.asarray(step, jnp.int32) >= bounds_arr)]


def zero_schedule(step: jax.Array) -> jax.Array:
    """The GA weight when guided attention is off."""
    del step
    return jnp.zeros((), jnp.float32)
