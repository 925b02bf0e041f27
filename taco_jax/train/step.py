"""The pure train and eval steps: module-level functions, jit-compiled by `jit_train_step` / `jit_eval_step`.

train_step(state, batch, *, objective, controllers) -> (state, StepMetrics)
eval_step(params, batch_stats, batch, n_real, *, objective) -> {name: (sum, count)}
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from taco_jax import diagnostics, losses
from taco_jax.batch import Batch
from taco_jax.train.controllers import Controllers
from taco_jax.train.objective import Objective
from taco_jax.train.state import TrainState

__all__ = ["StepMetrics", "eval_step", "jit_eval_step", "jit_train_step", "train_step"]


class StepMetrics(NamedTuple):
    """What a train step reports, split by how the host loop logs it."""

    means: dict[str, jax.Array]  # per-batch values (losses, diagnostics, gradient norm): averaged over a log window
    states: dict[str, jax.Array]  # controller state after the step: logged as it stands at the log step


def _select(keep_new: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda n, o: jnp.where(keep_new, n, o), new, old)


def train_step(
    state: TrainState, batch: Batch, *, objective: Objective, controllers: Controllers
) -> tuple[TrainState, StepMetrics]:
    """One optimizer step: loss -> gradients -> optimizer -> controllers -> metrics.

    A step whose loss or gradients are not finite is rejected by the optimizer's guard; then params, batch
    statistics and controller state stay as they were, and only the guard's counters (and its LR-scale decrease)
    change.
    """
    rng = jax.random.fold_in(state.rng, state.step)
    ga_weight = controllers.ga_weight(state.control, state.step)
    result = objective.gradients(state.params, state.batch_stats, batch, rng, ga_weight)

    updates, opt_state = controllers.tx.update(result.grads, state.opt_state, state.params, value=result.loss)
    updates = controllers.scale_updates(state.control, updates)
    params = optax.apply_updates(state.params, updates)

    align = objective.alignment_metrics(result.outputs, batch)
    ga_total = result.terms["ga_total"]
    control = controllers.on_step(
        state.control, step=state.step, diag=align["align_diag"], ga_loss=ga_total,
        rest_loss=result.loss - ga_weight * ga_total,
    )  # fmt: skip
    if controllers.guard_enabled:  # disabled, it adds no operation: off is exactly the plain recipe
        accepted = controllers.accepted(opt_state)
        params, batch_stats, control = _select(
            accepted, (params, result.batch_stats, control), (state.params, state.batch_stats, state.control)
        )
    else:
        batch_stats = result.batch_stats

    means = {f"train/{k}": v for k, v in result.terms.items() if k != "ga_total"}
    means["train/grad_norm"] = optax.tree.norm(result.grads)  # before clipping
    means |= {f"train/{k}": v for k, v in align.items()}
    states = controllers.state_values(control, state.opt_state, opt_state, ga_weight)
    new_state = state.replace(
        step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state, control=control
    )
    return new_state, StepMetrics(means, states)


def _real_items(batch: Batch, n_real: jax.Array) -> Batch:
    """The batch with the lengths of rows >= n_real set to 0: they then count in no loss or metric."""
    real = jnp.arange(batch.text_len.shape[0]) < n_real
    return batch._replace(
        text_len=jnp.where(real, batch.text_len, 0), mel_len=jnp.where(real, batch.mel_len, 0)
    )  # fmt: skip


def eval_step(
    params: Any, batch_stats: Any, batch: Batch, n_real: jax.Array, *, objective: Objective
) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Teacher-forced validation of the first `n_real` rows (dropout off): every loss term and metric as a
    (sum, count) pair, so that batches combine exactly (``sum(sums) / sum(counts)``)."""
    outputs = objective.model.apply(
        {"params": params, "batch_stats": batch_stats},
        batch.text, batch.text_len, batch.mel, batch.mel_len, train=False, speaker=objective.speaker(batch),
    )  # fmt: skip
    real = _real_items(batch, n_real)
    _, terms = objective.loss(outputs, real, jnp.zeros((), jnp.float32), reduction="sum")
    terms.pop("loss", None)
    terms.pop("ga_total", None)
    r = objective.r
    dec_len = losses.decoder_lengths(real.mel_len, r=r)
    out = dict(terms)
    out |= objective.alignment_metrics(outputs, real, reduction="sum")
    out["gate_acc"] = diagnostics.gate_accuracy(outputs.gate, real.gate[:, r - 1 :: r], dec_len, reduction="sum")
    stop_sum, stop_count = diagnostics.stop_frame_error(outputs.gate, dec_len, reduction="sum")
    out["stop_frame_error"] = (stop_sum * r, stop_count)  # decoder steps -> frames
    return out


def jit_train_step(objective: Objective, controllers: Controllers) -> Callable:
    """`train_step` bound to its settings and compiled; the state argument is donated."""
    return jax.jit(functools.partial(train_step, objective=objective, controllers=controllers), donate_argnums=0)


def jit_eval_step(objective: Objective) -> Callable:
    """`eval_step` bound to its objective and compiled."""
    return jax.jit(functools.partial(eval_step, objective=objective))
