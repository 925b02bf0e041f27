"""`TrainingAlerts`: a training-loop callback that turns the metrics the loop reports into alerts.

It has the loop's callback signature, `(step, metrics) -> None` (taco_jax.train.loop.Callback), without importing
the loop: the loop calls it with train/* and perf/* metrics at each log step and with val/* metrics at each
evaluation. It posts

- "aligned" the first time val/align_diag and val/align_focus reach their thresholds, with the newest alignment
  image of the run's samples/ directory (none when run.sample_sentences is empty: the text says so);
- "summary" every `summary_every_min` minutes: loss, the last validation metrics, steps/s and the time left;
- "rollback" when train/rollbacks rises, "nonfinite" when train/nonfinite (skipped steps) rises.

It never asks the loop to stop, and posting never blocks (taco_jax/alerts/dispatcher.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from taco_jax.alerts.events import AlertEvent

__all__ = ["TrainingAlerts", "finite_or_none", "format_duration", "newest_alignment_png"]

SamplesDir = Path | Callable[[], Path | None] | None


def finite_or_none(value: float | None) -> float | None:
    """`value` as a float, or None when it is missing or not finite (JSON has no NaN or infinity)."""
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def format_duration(seconds: float) -> str:
    """'1:02:03' (hours:minutes:seconds), or '?' when not finite."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    total = int(round(seconds))
    return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"


def newest_alignment_png(samples_dir: Path | None) -> bytes | None:
    """The first sentence's alignment image of the latest evaluation (samples/stepNNNNNNN_0.png), or None."""
    if samples_dir is None:
        return None
    images = sorted(samples_dir.glob("step*_0.png"))  # zero-padded step numbers: name order is step order
    for path in reversed(images):
        try:
            return path.read_bytes()
        except OSError:  # removed meanwhile: try the one before
            continue
    return None


class TrainingAlerts:
    """The callback (module docstring). `post` takes the events (`AlertDispatcher.post`); `label` starts every
    text (the run's name); `samples_dir` is the run's samples/ directory, or a function that finds it when the
    first image is wanted (a new run's directory is only made inside `train`); `resumed`: the run continues a
    checkpoint, so counters already above 0 at the first log are old news; `clock` gives seconds (tests fake it).
    """

    def __init__(
        self,
        post: Callable[[AlertEvent], object],
        *,
        max_steps: int,
        label: str = "",
        align_diag: float = 0.8,
        align_focus: float = 0.5,
        summary_every_min: float = 30.0,
        samples_dir: SamplesDir = None,
        resumed: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._post, self.max_steps, self._clock = post, max_steps, clock
        self.prefix = f"[{label}] " if label else ""
        self.align_diag, self.align_focus = align_diag, align_focus
        self.summary_s = summary_every_min * 60.0
        self._samples_dir = samples_dir
        self.aligned_at: int | None = None
        self.last_val: dict[str, float] = {}
        self.last_val_step: int | None = None
        self._last_summary = clock()
        self._first_perf: tuple[int, float] | None = None  # (step, perf/wall_s) of the first log seen
        # The loop's counters as last seen; None until the first log when resuming (the checkpoint's values).
        start = None if resumed else 0.0
        self._seen: dict[str, float | None] = {"train/rollbacks": start, "train/nonfinite": start}

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        if "val/loss" in metrics:
            self._on_eval(step, metrics)
        if "train/loss" in metrics:
            self._on_log(step, metrics)
        return None  # never asks the loop to stop

    def _emit(self, kind: str, text: str, image: bytes | None = None, **fields: object) -> None:
        self._post(AlertEvent(kind, self.prefix + text, image, dict(fields)))

    def _on_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        self.last_val = {k: float(v) for k, v in metrics.items() if k.startswith("val/")}
        self.last_val_step = step
        diag, focus = metrics.get("val/align_diag", 0.0), metrics.get("val/align_focus", 0.0)
        if self.aligned_at is not None or not (diag >= self.align_diag and focus >= self.align_focus):
            return
        self.aligned_at = step
        image = newest_alignment_png(self._resolve_samples_dir())
        note = "" if image is not None else " (no alignment image: run.sample_sentences is empty)"
        self._emit(
            "aligned",
            f"step {step}: alignment formed: val/align_diag {diag:.3f} >= {self.align_diag:g}, "
            f"val/align_focus {focus:.3f} >= {self.align_focus:g}{note}",
            image, step=step, align_diag=finite_or_none(diag), align_focus=finite_or_none(focus),
        )  # fmt: skip

    def _resolve_samples_dir(self) -> Path | None:
        if callable(self._samples_dir):
            try:
                self._samples_dir = self._samples_dir()
            except Exception:  # noqa: BLE001 — an alert without an image beats no alert
                self._samples_dir = None
        return self._samples_dir

    def _on_log(self, step: int, metrics: Mapping[str, float]) -> None:
        if self._first_perf is None and "perf/wall_s" in metrics:
            self._first_perf = (step, float(metrics["perf/wall_s"]))
        if self._rose(metrics, "train/rollbacks"):
            n = int(metrics["train/rollbacks"])
            scale = metrics.get("train/lr_scale", math.nan)
            text = f"step {step}: rolled back to the last good state ({n} rollbacks so far; LR scale now {scale:.3g})"
            self._emit("rollback", text, step=step, rollbacks=n, lr_scale=finite_or_none(scale))
        if self._rose(metrics, "train/nonfinite"):
            n = int(metrics["train/nonfinite"])
            self._emit("nonfinite", f"step {step}: non-finite loss or gradient; {n} steps skipped so far",
                       step=step, nonfinite=n)  # fmt: skip
        if self.summary_s > 0 and self._clock() - self._last_summary >= self.summary_s:
            self._last_summary = self._clock()
            self._summary(step, metrics)

    def _rose(self, metrics: Mapping[str, float], key: str) -> bool:
        """Whether the counter `key` is above its last seen value (a rollback may lower it: the restored state's)."""
        if key not in metrics or not math.isfinite(metrics[key]):
            return False
        before, now = self._seen[key], float(metrics[key])
        self._seen[key] = now
        return before is not None and now > before

    def _steps_per_s(self, step: int, metrics: Mapping[str, float]) -> float:
        """Steps per second over this process's run so far (evaluations included), else from the step time."""
        if self._first_perf is not None and "perf/wall_s" in metrics:
            first_step, first_wall = self._first_perf
            elapsed = float(metrics["perf/wall_s"]) - first_wall
            if step > first_step and elapsed > 0:
                return (step - first_step) / elapsed
        step_s = metrics.get("perf/step_s", math.nan)
        return 1.0 / step_s if step_s > 0 else math.nan

    def _summary(self, step: int, metrics: Mapping[str, float]) -> None:
        loss = metrics.get("train/loss", math.nan)
        rate = self._steps_per_s(step, metrics)
        eta_s = (self.max_steps - step) / rate if rate > 0 else math.nan
        val = self.last_val
        val_text = "no evaluation yet"
        if val:
            diag, focus = val.get("val/align_diag", math.nan), val.get("val/align_focus", math.nan)
            val_text = f"val/loss {val.get('val/loss', math.nan):.4f}, align diag {diag:.3f} focus {focus:.3f} "
            val_text += f"(step {self.last_val_step})"
        self._emit(
            "summary",
            f"step {step}/{self.max_steps}: loss {loss:.4f}; {val_text}; {rate:.3g} steps/s, "
            f"ETA {format_duration(eta_s)}",
            step=step, max_steps=self.max_steps, loss=finite_or_none(loss), steps_per_s=finite_or_none(rate),
            eta_s=finite_or_none(eta_s), **{k.replace("/", "_"): finite_or_none(v) for k, v in val.items()},
        )  # fmt: skip
