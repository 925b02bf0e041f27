"""What a trial is scored on, and the training callback that reports it to Optuna and prunes.

Objectives (all minimised):
- `val_loss`: validation loss at the budget (the last evaluation). The default: it is measured at every
  evaluation of every dataset, so the pruner has a signal from the first evaluation on, it costs nothing beyond
  training, and it is deterministic for a given config and seed.
- `align_steps`: the first evaluation step from which alignment holds to the end (val/align_diag and
  val/align_focus at or above the thresholds at every later evaluation); a trial that never gets there scores
  one evaluation past the budget (censored, not failed: it trained normally).
- `quality`: the free-running DTW error ratio of `taco_jax.demo.quality` (ten unseen sentences against eSpeak's
  rendering; demo corpora only), measured on the trial's final checkpoint.

Several at once (`val_loss,quality`) make a multi-objective study whose result is the Pareto front; Optuna
cannot prune those. In a single-objective study the reported intermediate value, the pruner's signal, is
val/loss for every objective.

A trial is never scored with a number it did not earn: a non-finite validation loss fails it, an alignment that
formed and then collapsed prunes it, each with the reason in the trial's `reason` attribute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from taco_jax.errors import UserError

__all__ = ["OBJECTIVES", "AlignmentThresholds", "TrialFailed", "TrialMonitor", "TuneError", "parse_objectives"]

OBJECTIVES = ("val_loss", "align_steps", "quality")


class TuneError(UserError):
    """A tuning setting that cannot work (objective, storage, study): names the option."""


class TrialFailed(Exception):
    """A trial that must end FAIL with its reason (non-finite loss, training diverged)."""


@dataclass(frozen=True)
class AlignmentThresholds:
    diag: float = 0.8  # val/align_diag at or above which alignment "holds"
    focus: float = 0.5  # val/align_focus likewise
    collapse: float = 0.3  # a drop of val/align_diag by more than this below its best, once aligned, prunes


def parse_objectives(text: str) -> tuple[str, ...]:
    """`val_loss` or `val_loss,quality` -> names, checked."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in OBJECTIVES]
    if not names or bad or len(set(names)) != len(names):
        raise TuneError(f"--objective {text!r}: expected one or more of {', '.join(OBJECTIVES)}, comma-separated")
    return names


@dataclass
class TrialMonitor:
    """The train loop's callback for one trial: reports val/loss at each evaluation, asks the loop to stop when
    Optuna prunes or alignment collapses, and keeps what the objectives need.

    `report(value, step)` and `should_prune()` are the trial's (None for a multi-objective study)."""

    report: object | None
    should_prune: object | None
    thresholds: AlignmentThresholds = field(default_factory=AlignmentThresholds)
    last_step: int = 0
    val_loss: float = math.nan
    best_diag: float = 0.0
    aligned_since: int | None = None  # first evaluation step of the current run of aligned evaluations
    stop_reason: str | None = None  # "pruned: ..." or "failed: ..."

    def __call__(self, step: int, metrics: Mapping[str, float]) -> bool:
        if "val/loss" not in metrics:
            return False
        self.last_step = step
        self.val_loss = float(metrics["val/loss"])
        if not math.isfinite(self.val_loss):
            self.stop_reason = f"failed: non-finite validation loss ({self.val_loss}) at step {step}"
            return True
        diag, focus = float(metrics.get("val/align_diag", 0.0)), float(metrics.get("val/align_focus", 0.0))
        t = self.thresholds
        aligned = diag >= t.diag and focus >= t.focus
        if aligned and self.aligned_since is None:
            self.aligned_since = step
        elif not aligned:
            self.aligned_since = None
        if self.best_diag >= t.diag and diag < self.best_diag - t.collapse:
            drop = f"val/align_diag {self.best_diag:.3f} -> {diag:.3f}"
            self.stop_reason = f"pruned: alignment collapsed ({drop}) at step {step}"
            return True
        self.best_diag = max(self.best_diag, diag)
        if self.report is not None:
            self.report(self.val_loss, step)
            if self.should_prune():
                self.stop_reason = f"pruned: val/loss {self.val_loss:.4f} at step {step} (pruner)"
                return True
        return False

    def align_steps(self, max_steps: int, eval_every: int) -> float:
        return float(self.aligned_since if self.aligned_since is not None else max_steps + eval_every)
