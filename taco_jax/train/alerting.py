"""Alerts around a whole training run: `train_with_alerts`, which `python -m taco_jax.train` calls.

With `alerts.enabled` it posts "start" before training, passes a `TrainingAlerts` callback to the loop (aligned,
summary, rollback, nonfinite), and after it "early_stop" and "end", or "crash" with the exception and the tail of
the run's train.log; then it gives the dispatcher `alerts.timeout_s` to send what is left. Sending happens on the
dispatcher's thread: a slow or failing service never slows or stops training (taco_jax/alerts/dispatcher.py).
Only process 0 of a multi-process run sends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from taco_jax.alerts import AlertEvent, TrainingAlerts, build_dispatcher
from taco_jax.alerts.training import finite_or_none
from taco_jax.config import Config
from taco_jax.errors import traceback_path
from taco_jax.train.loop import Callback, TrainResult, train
from taco_jax.train.parallel import is_primary
from taco_jax.train.run_dir import choose_run_dir

__all__ = ["crash_event", "early_stop_event", "end_event", "start_event", "train_with_alerts"]

LOG_TAIL_LINES = 20  # of train.log in a crash alert
_LOG_LINE_CHARS = 300  # each line cut to this, so one long line cannot crowd out the rest


def train_with_alerts(
    cfg: Config,
    resume: bool | str | os.PathLike = False,
    callbacks: Sequence[Callback] = (),
    *,
    environ: Mapping[str, str] | None = None,
    **train_kwargs: Any,
) -> TrainResult:
    """`taco_jax.train.loop.train(cfg, resume, callbacks=..., **train_kwargs)` with the alerts of `cfg.alerts`
    (module docstring); exactly `train` when they are disabled. `environ` holds the sinks' secrets (default
    os.environ).

    Raises:
      AlertSetupError: a switched-on sink's environment variable is missing (before training starts).
      Whatever `train` raises, after the "crash" alert is posted.
    """
    dispatcher = build_dispatcher(cfg.alerts, environ) if is_primary() else None
    if dispatcher is None:
        return train(cfg, resume=resume, callbacks=callbacks, **train_kwargs)
    a, label = cfg.alerts, cfg.run.name
    alerts = TrainingAlerts(
        dispatcher.post, max_steps=cfg.run.max_steps, label=label, align_diag=a.align_diag, align_focus=a.align_focus,
        summary_every_min=a.summary_every_min, samples_dir=_samples_dir(cfg, resume), resumed=bool(resume),
    )  # fmt: skip
    try:
        dispatcher.post(start_event(cfg, resume))
        try:
            result = train(cfg, resume=resume, callbacks=[*callbacks, alerts], **train_kwargs)
        except BaseException as e:
            dispatcher.post(crash_event(e, label))
            raise
        if result.stop_reason == "early_stopping":
            dispatcher.post(early_stop_event(result, label))
        dispatcher.post(end_event(result, label))
        return result
    finally:
        dispatcher.close(a.timeout_s)


def _samples_dir(cfg: Config, resume: bool | str | os.PathLike) -> Callable[[], Path]:
    """Finds the run's samples/ directory when the first image is wanted: a new run's directory is made inside
    `train`, and by then it is the latest run of `run.name` (unless another run of that name started since)."""
    if isinstance(resume, str | os.PathLike):
        return lambda: Path(resume) / "samples"
    return lambda: choose_run_dir(cfg, resume=True) / "samples"


def start_event(cfg: Config, resume: bool | str | os.PathLike = False) -> AlertEvent:
    """The "start" event: what is trained on what, for how long."""
    m, d = cfg.model, cfg.data
    options = [name for name in ("mmi", "ddc", "tpse") if getattr(m, name)]
    options += [f"gst={m.gst}"] if m.gst != "none" else []
    model = (f"encoder {m.encoder_embedding_dim}, attention RNN {m.attention_rnn_dim}, decoder RNN "
             f"{m.decoder_rnn_dim}, r={m.n_frames_per_step}{''.join(f', {o}' for o in options)}")  # fmt: skip
    corpus = f"demo ({d.demo.n_utterances} utterances, {d.demo.language})" if d.corpus == "demo" else d.train_filelist
    how = f"resuming {resume}" if isinstance(resume, str | os.PathLike) else "resuming" if resume else "new run"
    text = (f"[{cfg.run.name}] training started ({how}): {cfg.run.max_steps} steps, evaluation every "
            f"{cfg.run.eval_every}; model: {model}; batch {d.batch_size}, lr {cfg.optim.lr:g}; "
            f"corpus: {corpus}")  # fmt: skip
    fields = {
        "run_name": cfg.run.name, "out_dir": cfg.run.out_dir, "resume": bool(resume), "max_steps": cfg.run.max_steps,
        "model": model, "batch_size": d.batch_size, "lr": cfg.optim.lr, "corpus": corpus,
    }  # fmt: skip
    return AlertEvent("start", text, None, fields)


def early_stop_event(result: TrainResult, label: str) -> AlertEvent:
    """The "early_stop" event: the loop stopped because val/loss stopped improving."""
    text = f"[{label}] early stopping at step {result.step}: val/loss stopped improving (control.early_stopping)"
    return AlertEvent("early_stop", text, None, {"step": result.step, "run_dir": result.run_dir})


def end_event(result: TrainResult, label: str) -> AlertEvent:
    """The "end" event: where the run stopped and why, and its last validation metrics."""
    metrics = "  ".join(f"{k}={v:.4f}" for k, v in sorted(result.val_metrics.items()) if k.startswith("val/"))
    text = f"[{label}] training finished at step {result.step} ({result.stop_reason}); {result.run_dir}\n{metrics}"
    fields = {"step": result.step, "stop_reason": result.stop_reason, "run_dir": result.run_dir}
    fields |= {k.replace("/", "_"): finite_or_none(v) for k, v in result.val_metrics.items() if k.startswith("val/")}
    return AlertEvent("end", text, None, fields)


def crash_event(error: BaseException, label: str) -> AlertEvent:
    """The "crash" event: the exception and the last lines of the train.log its traceback went to (if any)."""
    what = "interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"
    log_path = traceback_path(error)
    tail = _log_tail(Path(log_path)) if log_path else ""
    text = f"[{label}] training stopped: {what}"
    if tail:
        text += f"\n\nlast lines of {log_path}:\n{tail}"
    return AlertEvent("crash", text, None, {"error": what, "log": log_path})


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(line[:_LOG_LINE_CHARS] for line in text.splitlines()[-lines:])
