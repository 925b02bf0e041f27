"""The train state: one pytree holding everything that changes during training."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from taco_jax.model import Tacotron2


class TrainState(flax.struct.PyTreeNode):
    step: jax.Array  # i32 optimizer steps taken
    params: Any
    batch_stats: Any
    opt_state: optax.OptState  # includes the clip-threshold, LR-scale and non-finite-guard controllers
    control: Any  # taco_jax.train.controllers.ControlState: guided-attention multiplier and training phase
    rng: jax.Array  # base PRNG key; step keys are fold_in(rng, step)


def init_variables(model: Tacotron2, key: jax.Array, n_mels: int, r: int) -> dict:
    """Initialise params and batch_stats from a tiny dummy batch (shapes do not depend on lengths)."""
    text = jnp.ones((1, 4), jnp.int32)
    mel = jnp.zeros((1, 2 * r, n_mels), jnp.float32)
    lengths_t, lengths_m = jnp.array([4], jnp.int32), jnp.array([2 * r], jnp.int32)
    k_params, k_dropout = jax.random.split(key)
    speaker = jnp.zeros((1,), jnp.int32) if model.cfg.n_speakers else None
    return model.init(
        {"params": k_params, "dropout": k_dropout}, text, lengths_t, mel, lengths_m, train=False, speaker=speaker
    )


def create_train_state(
    model: Tacotron2, tx: optax.GradientTransformation, seed: int, n_mels: int, control: Any
) -> TrainState:
    """Fresh state: parameters from `seed`, ``tx.init(params)``, and `control` (``Controllers.init()``)."""
    key = jax.random.PRNGKey(seed)
    k_init, k_train = jax.random.split(key)
    variables = init_variables(model, k_init, n_mels, model.cfg.n_frames_per_step)
    params = variables["params"]
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        control=control,
        rng=k_train,
    )
    # Optimizer and controller inits may hand out one array for several fields; the train step donates the
    # state, and a buffer cannot be donated twice, so every leaf gets its own.
    return jax.tree.map(lambda x: jnp.array(x, copy=True), state)


def count_params(params) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))


def with_adam_moments(opt_state: optax.OptState, mu: Any, nu: Any, count: int) -> optax.OptState:
    """The optimizer state with Adam's moments (trees like the params) and step count replaced, and the
    learning-rate schedule's count set to the same step, wherever they sit in the chain (converted optimizer
    states resume where they stopped)."""

    def replace(node):
        if isinstance(node, optax.ScaleByAdamState):
            cast = lambda new, old: jnp.asarray(new, old.dtype)  # noqa: E731
            return node._replace(
                count=jnp.asarray(count, node.count.dtype), mu=jax.tree.map(cast, mu, node.mu),
                nu=jax.tree.map(cast, nu, node.nu),
            )  # fmt: skip
        if isinstance(node, optax.ScaleByScheduleState):
            return node._replace(count=jnp.asarray(count, node.count.dtype))
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            return type(node)(*(replace(x) for x in node))
        if isinstance(node, tuple | list):
            return type(node)(replace(x) for x in node)
        return node

    new = replace(opt_state)
    is_adam = lambda x: isinstance(x, optax.ScaleByAdamState)  # noqa: E731
    if not any(is_adam(x) for x in jax.tree.leaves(new, is_leaf=is_adam)):
        raise ValueError("the optimizer state has no Adam state (optax.ScaleByAdamState) to fill")
    return new
