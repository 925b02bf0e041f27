"""Host-side logging of train-step metrics: a window averaged at each log step, and one line per change."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import jax
import numpy as np

from taco_jax.train.step import StepMetrics

log = logging.getLogger("taco_jax.train")

__all__ = ["ChangeLogger", "MetricWindow"]


def _finite_mean(values) -> float:
    """Mean over the finite values (NaN if none): a skipped non-finite step does not poison the logged mean."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


class ChangeLogger:
    """One readable log line per change of the GA multiplier or the LR scale (from per-step state values).

    Phase changes happen at evaluations and are logged there.
    """

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def __call__(self, step: int, m: Mapping[str, float]) -> None:
        def changed(key: str) -> bool:
            old, new = self.last.get(key), m.get(key)
            return old is not None and new is not None and old != new and np.isfinite(new)

        if changed("train/ga_mult"):
            log.info(
                "step %d: guided-attention multiplier %.3g -> %.3g (level %d, EMA diagonality %.3f)", step,
                self.last["train/ga_mult"], m["train/ga_mult"], m["train/ga_level"], m["train/ga_ema_diag"],
            )  # fmt: skip
        if changed("train/lr_scale"):
            log.info("step %d: LR scale %.3g -> %.3g", step, self.last["train/lr_scale"], m["train/lr_scale"])
        self.last.update({k: v for k, v in m.items() if np.isfinite(v)})


class MetricWindow:
    """The step metrics since the last log step, kept on the device until `flush` pulls them to the host."""

    def __init__(self) -> None:
        self.changes = ChangeLogger()
        self._reset()

    def _reset(self) -> None:
        self.pending: list[StepMetrics] = []
        self.step_times: list[float] = []
        self.frames = 0

    def add(self, metrics: StepMetrics, step_s: float, frames: int) -> None:
        self.pending.append(metrics)
        self.step_times.append(step_s)
        self.frames += frames

    def flush(self, step: int) -> dict[str, float]:
        """Means of the per-batch values, state values as they stand at `step`, and perf/*; then empties."""
        host = jax.device_get(self.pending)
        for i, m in enumerate(host):
            self.changes(step - len(host) + 1 + i, {k: float(v) for k, v in m.states.items()})
        logged = {k: _finite_mean([m.means[k] for m in host]) for k in host[0].means}
        logged |= {k: float(v) for k, v in host[-1].states.items()}
        elapsed = float(np.sum(self.step_times))
        logged["perf/step_s"] = float(np.median(self.step_times))
        logged["perf/mel_frames_per_s"] = self.frames / elapsed if elapsed > 0 else 0.0
        self._reset()
        return logged
