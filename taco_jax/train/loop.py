"""The host loop: data in, the compiled train step, logging, evaluation, checkpoints and callbacks out.

`train(cfg, ...)` is the whole run. Its parts: `_setup` builds everything from the config (data, model, objective,
controllers, state, checkpoints, monitor); `_run_steps` feeds batches to the train step; each log step flushes a
`MetricWindow`; each evaluation runs the `Evaluator`, the phase machine (`Controllers.on_eval`), early stopping and a
checkpoint. Callbacks see (step, metrics) after each log step and each evaluation and may ask the loop to stop.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from taco_jax.checkpoint import Checkpointer
from taco_jax.config import Config, save_config, to_yaml
from taco_jax.control import PHASE_NAMES
from taco_jax.data import DataBundle, build_data
from taco_jax.files import write_text_atomic
from taco_jax.model import build_model
from taco_jax.monitor import Monitor
from taco_jax.train.controllers import Controllers, build_controllers
from taco_jax.train.evaluation import Evaluator, SampleWriter
from taco_jax.train.host_control import HostControl, TrainingDiverged, rollback
from taco_jax.train.metrics_log import MetricWindow
from taco_jax.train.objective import objective_from_config
from taco_jax.train.parallel import barrier, data_mesh, is_primary, replicate, shard_batch
from taco_jax.train.run_dir import choose_run_dir, create_run_dir, file_logging
from taco_jax.train.state import TrainState, count_params, create_train_state
from taco_jax.train.step import jit_train_step
from taco_jax.train.warm_start import load_warm_start, warm_start_params

log = logging.getLogger("taco_jax.train")

__all__ = ["Callback", "HostControl", "TrainResult", "TrainingDiverged", "choose_run_dir", "train", "warm_start_params"]

Callback = Callable[[int, Mapping[str, float]], "bool | None"]
"""Called with (step, metrics) after each log step (train/*, perf/*) and each evaluation (val/*); a true return
value asks the loop to stop after this step (stop_reason "callback")."""


@dataclass
class TrainResult:
    run_dir: str
    step: int
    val_metrics: dict[str, float]
    state: TrainState
    stop_reason: str = "max_steps"  # "max_steps" | "early_stopping" | "callback"


@dataclass
class _Run:
    """Everything one run's loop works with (built by `_setup`)."""

    cfg: Config
    run_dir: Path
    data: DataBundle
    controllers: Controllers
    state: TrainState
    first_state: Any  # host copy of the starting state: the rollback target while no checkpoint exists
    mesh: Any
    ckpt: Checkpointer
    host: HostControl
    monitor: Monitor
    evaluator: Evaluator
    samples: SampleWriter
    train_step: Callable
    callbacks: Sequence[Callback]
    val_metrics: dict[str, float] = field(default_factory=dict)

    def compiles(self) -> int:
        """Programs compiled so far by the run's jit functions (one per distinct input shape)."""
        fns = (self.train_step, self.evaluator.eval_step, self.samples.synth._infer)
        return int(sum(f._cache_size() for f in fns))

    def meta(self, step: int) -> dict:
        """The checkpoint metadata at `step`: everything besides the train state that a resume needs."""
        return {
            "config": to_yaml(self.cfg),
            "symbols": self.data.table.to_dict(),
            "loader": self.data.train_loader.get_state(),
            "step": step,
            "best_val_loss": self.host.es_best,
            "host_control": self.host.to_dict(),
            "mel_mean": np.asarray(self.data.mel_mean).tolist(),
        }

    def notify(self, step: int, metrics: Mapping[str, float]) -> bool:
        """Calls every callback (all of them, even after one asked to stop); True if any asked to stop."""
        return any([bool(cb(step, metrics)) for cb in self.callbacks])


def train(
    cfg: Config,
    resume: bool = False,
    warm_start: str | None = None,
    ignore: Sequence[str] = (),
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train a model as configured; returns the run directory, final step, last validation metrics and state.

    Changes nothing process-wide: `python -m taco_jax.train` applies `run.retain_host_memory` before calling this;
    from a notebook, call `taco_jax.train.host_memory.retain_host_memory()` first if you want it.
    """
    progress = (cfg.run.progress_bar if progress is None else progress) and is_primary()
    if resume:
        run_dir = choose_run_dir(cfg, resume=True)
        log.info("resuming %s", run_dir)
    elif jax.process_count() == 1:
        run_dir = create_run_dir(cfg)
    else:  # every process picks the same directory before one of them creates it
        run_dir = choose_run_dir(cfg, resume=False)
        barrier("run_dir chosen")
        run_dir.mkdir(parents=True, exist_ok=True)
    with file_logging(run_dir if is_primary() else None):
        run = _setup(cfg, run_dir, resume, warm_start, ignore, progress, callbacks)
        try:
            return _run_steps(run, progress)
        finally:
            run.ckpt.close()
            run.monitor.close()


def _setup(cfg, run_dir: Path, resume: bool, warm_start, ignore, progress: bool, callbacks) -> _Run:
    primary = is_primary()
    if primary:
        save_config(cfg, str(run_dir / "config.yaml"))
    log.info("run directory: %s (jax %s, %s, %d cpus)", run_dir, jax.__version__, jax.default_backend(), os.cpu_count())
    if not primary:
        barrier("data prepared")  # let process 0 fill the shared caches (corpus, mels) first
    data = build_data(cfg, progress=progress)
    if primary:
        barrier("data prepared")
    model = build_model(cfg.model, len(data.table), cfg.audio.n_mels)
    controllers = build_controllers(cfg)
    objective = objective_from_config(cfg, model, data.mel_mean)
    state = create_train_state(model, controllers.tx, cfg.run.seed, cfg.audio.n_mels, controllers.init())
    log.info(
        "model: %s parameters; %d symbols (%s)", f"{count_params(state.params):,}", len(data.table), data.table.name
    )
    ckpt = Checkpointer(run_dir / "checkpoints", keep=cfg.run.keep_checkpoints)
    host = HostControl()
    latest = ckpt.latest_step()
    if resume and latest is not None:
        state, meta = ckpt.restore(latest, target=state)
        if "loader" in meta:
            data.train_loader.set_state(meta["loader"])
        else:  # converted PyTorch train states: the data order starts afresh
            log.info("the checkpoint has no data-loader position (a converted one): starting at the first epoch")
        host = HostControl.from_dict(meta.get("host_control", {}))
        log.info("restored step %d from %s", latest, ckpt.directory)
    elif warm_start:
        params = load_warm_start(state.params, warm_start, ignore)
        state = state.replace(params=params, opt_state=controllers.tx.init(params))
    mesh = data_mesh()
    if mesh.devices.size > 1:
        log.info("data parallel over %d devices in %d processes", mesh.devices.size, jax.process_count())
    monitor = Monitor(str(run_dir), cfg.audio.sampling_rate, enabled=primary)
    return _Run(
        cfg=cfg, run_dir=run_dir, data=data, controllers=controllers, state=replicate(state, mesh),
        first_state=jax.device_get(state), mesh=mesh, ckpt=ckpt, host=host, monitor=monitor,
        evaluator=Evaluator(objective, data.val_batches),
        samples=SampleWriter(cfg, model, data.table, monitor, run_dir),
        train_step=jit_train_step(objective, controllers), callbacks=tuple(callbacks),
    )  # fmt: skip


def _run_steps(run: _Run, progress: bool) -> TrainResult:
    cfg, total = run.cfg, run.cfg.run.max_steps
    nf = cfg.control.nonfinite
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=int(run.state.step), desc="train", unit="step", dynamic_ncols=True)
    window = MetricWindow()
    t_start = time.time()
    stop_reason = "max_steps"
    try:
        done = int(run.state.step)
        while done < total and stop_reason == "max_steps":
            batch = next(run.data.train_loader)
            t0 = time.perf_counter()
            run.state, metrics = run.train_step(run.state, shard_batch(batch, run.mesh))
            loss = float(metrics.means["train/loss"])  # syncs: step time is honest
            window.add(metrics, time.perf_counter() - t0, int(np.sum(batch.mel_len)))
            done = int(run.state.step)
            if bar is not None:
                bar.n = done
                bar.set_postfix(loss=f"{loss:.3f}", step_s=f"{window.step_times[-1]:.2f}")
            if nf.enabled and int(metrics.states["train/nonfinite_consecutive"]) >= nf.max_consecutive:
                restored = rollback(run.state, done, run.host, run.ckpt, run.first_state, nf)
                run.state = replicate(restored, run.mesh)
                done = int(run.state.step)
                continue
            if done % cfg.run.log_every == 0 or done == total:
                if _log(run, window, done, time.time() - t_start):
                    stop_reason = "callback"
            if done % cfg.run.eval_every == 0 or done == total:
                stop_reason = _evaluate(run, done, bar, stop_reason)
    finally:
        if bar is not None:
            bar.close()
    final = {"step": int(run.state.step), "wall_s": time.time() - t_start, "stop_reason": stop_reason}
    if is_primary():
        write_text_atomic(run.run_dir / "final_metrics.json", json.dumps(final | run.val_metrics, indent=2))
    return TrainResult(str(run.run_dir), int(run.state.step), run.val_metrics, run.state, stop_reason)


def _log(run: _Run, window: MetricWindow, step: int, wall_s: float) -> bool:
    """Flushes the metric window to the monitor; True if a callback asks to stop."""
    logged = window.flush(step)
    logged["train/rollbacks"] = float(run.host.rollbacks)
    logged["perf/compiles"] = run.compiles()
    logged["perf/wall_s"] = wall_s
    run.monitor.scalars(step, logged)
    if not np.isfinite(logged["train/loss"]):
        log.warning("step %d: non-finite training loss in every step since the last log", step)
    return run.notify(step, logged)


def _evaluate(run: _Run, step: int, bar, stop_reason: str) -> str:
    """Validation, samples, the phase machine, early stopping and a checkpoint; returns the stop reason."""
    state = run.state
    val = run.evaluator(state.params, state.batch_stats)
    run.samples(state.params, state.batch_stats, step)
    val["perf/compiles"] = run.compiles()
    run.monitor.scalars(step, val)
    run.val_metrics = val
    phase_before = int(state.control.phase.phase)
    control = run.controllers.on_eval(state.control, val["val/align_diag"], val["val/loss"])
    run.state = state = state.replace(control=control)
    phase = int(state.control.phase.phase)
    if phase != phase_before:
        log.info("step %d: phase %s -> %s (val/align_diag %.3f)", step, PHASE_NAMES[phase_before], PHASE_NAMES[phase],
                 val["val/align_diag"])  # fmt: skip
    cfg = run.cfg
    pre_alignment = phase == 0 if cfg.control.phase.enabled else val["val/align_diag"] < cfg.control.phase.align_start
    if run.host.early_stop(val["val/loss"], step, pre_alignment, cfg.control.early_stopping):
        log.info(
            "step %d: early stopping: val/loss has not improved by %.2g (relative) for %d evaluations; best %.4f at "
            "step %d (best checkpoint: step %s in %s)", step, cfg.control.early_stopping.min_delta,
            run.host.es_bad_evals, run.host.es_best, run.host.es_best_step, run.ckpt.best_step(), run.ckpt.directory,
        )  # fmt: skip
        stop_reason = "early_stopping"
    run.ckpt.save(step, state, run.meta(step), val_loss=val["val/loss"])
    msg = "  ".join(f"{k}={v:.4f}" for k, v in sorted(val.items()))
    log.info("step %d: %s", step, msg)
    if bar is not None:
        bar.write(f"step {step}: " + msg)
    if run.notify(step, val) and stop_reason == "max_steps":
        stop_reason = "callback"
    return stop_reason
