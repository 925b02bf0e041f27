"""Control that lives on the host between steps: non-finite rollbacks and early stopping.

Their state (`HostControl`) is saved in each checkpoint's metadata, so a resumed run continues both exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from taco_jax.checkpoint import Checkpointer
from taco_jax.config import EarlyStoppingConfig, NonFiniteConfig
from taco_jax.control import improvement
from taco_jax.control import optim as opt_readers
from taco_jax.errors import UserError
from taco_jax.train.state import TrainState

log = logging.getLogger("taco_jax.train")

__all__ = ["HostControl", "TrainingDiverged", "rollback"]


class TrainingDiverged(UserError, RuntimeError):
    """Training kept producing non-finite or exploding steps after the configured number of rollbacks."""

    exit_status = 1  # the settings (learning rate, clipping) need a change; the input was fine


@dataclass
class HostControl:
    """Host-side controller state (saved in checkpoint metadata): rollbacks, early stopping."""

    rollbacks: int = 0
    es_best: float = float("inf")  # best val/loss so far (the plateau rule's best)
    es_best_step: int = 0
    es_bad_evals: int = 0  # evaluations since es_best improved
    rollback_scale: float = 1.0  # the LR scale the last rollback set (each rollback goes below it)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> HostControl:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def early_stop(self, val_loss: float, step: int, pre_alignment: bool, es: EarlyStoppingConfig) -> bool:
        """Patience on val/loss (`taco_jax.control.improvement`); never during pre-alignment."""
        improved, best = improvement(jnp.float32(self.es_best), jnp.float32(val_loss), es.min_delta)
        if bool(improved):
            self.es_best, self.es_best_step, self.es_bad_evals = float(best), step, 0
            return False
        self.es_bad_evals += 1
        return es.enabled and not pre_alignment and self.es_bad_evals >= es.patience


def rollback(
    state: TrainState,
    step: int,
    host: HostControl,
    ckpt: Checkpointer,
    first_state: Any,
    nf: NonFiniteConfig,
    reason: str,
) -> TrainState:
    """Restore the last checkpoint (or the starting state) and lower the LR scale; the data go on.

    `reason` says what went wrong in the log and in the error (e.g. "3 consecutive non-finite steps"). Every
    rollback counts towards `nf.max_rollbacks`, whatever its reason.

    The new scale is ``lr_factor`` x the lower of the restored state's scale and the scale the previous rollback
    set, so every retry runs at a lower learning rate than the one before, also when both restore the same
    checkpoint (whose own scale predates the first rollback).

    Raises:
      TrainingDiverged: after `nf.max_rollbacks` rollbacks.
    """
    host.rollbacks += 1
    if host.rollbacks > nf.max_rollbacks:
        good = ckpt.latest_step()
        raise TrainingDiverged(
            f"step {step}: {reason} after {nf.max_rollbacks} rollbacks (control.nonfinite.max_rollbacks); "
            f"lower optim.lr or optim.grad_clip. Last checkpoint: "
            f"{good if good is not None else 'none'} in {ckpt.directory}"
        )
    latest = ckpt.restore_latest(target=state)
    if latest is not None:
        good, restored, _ = latest
        source = f"checkpoint step {good}"
    else:
        restored, source = jax.device_put(first_state), f"the starting state (step {int(first_state.step)})"
    before = float(opt_readers.lr_scale(restored.opt_state))
    target = min(before, host.rollback_scale) * nf.lr_factor
    factor = target / before if before > 0 else 1.0
    restored = restored.replace(opt_state=opt_readers.lower_lr_scale(restored.opt_state, factor, 0.0))
    host.rollback_scale = float(opt_readers.lr_scale(restored.opt_state))
    log.warning(
        "step %d: %s -> rollback %d/%d to %s, LR scale %.3g -> %.3g",
        step, reason, host.rollbacks, nf.max_rollbacks, source, before,
        float(opt_readers.lr_scale(restored.opt_state)),
    )  # fmt: skip
    return restored
