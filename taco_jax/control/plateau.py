"""The one plateau rule of the project: relative improvement over the best value so far.

Used by the phase machine (in the train step's state) and by early stopping (on the host). The LR-plateau
controller is optax's `contrib.reduce_on_plateau`, which has its own tolerance arguments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["improvement"]


def improvement(best: jax.Array, value: jax.Array, min_delta: float) -> tuple[jax.Array, jax.Array]:
    """(improved, new best) for a new observation; pure and jit-able, scalars in and out.

    ``value`` improves when it is finite and below ``best - min_delta * |best|`` (any finite value improves on an
    infinite best). Relative because the scale of a validation loss depends on the configuration (MSE or L1 mel
    loss, weights), so one ``min_delta`` works for all. The best moves only on an improvement, so gains creeping
    below ``min_delta`` still count toward a plateau (as in optax's `reduce_on_plateau`). A non-finite value
    never improves and leaves the best unchanged.
    """
    best = jnp.asarray(best, jnp.float32)
    value = jnp.asarray(value, jnp.float32)
    bar = jnp.where(jnp.isfinite(best), best - min_delta * jnp.abs(best), jnp.inf)
    improved = jnp.isfinite(value) & (value < bar)
    return improved, jnp.where(improved, value, best)
