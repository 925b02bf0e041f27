"""The host loop: data in, the compiled train step, logging, evaluation, checkpoints and callbacks out.

`train(cfg, ...)` is the whole run. Its parts: `_setup` builds everything from the config (data, model, objective,
controllers, state, checkpoints, monitor); `_run_steps` feeds batches to the train step; each log step flushes a
`MetricWindow`; each evaluation runs the `Evaluator`, the phase machine (`Controllers.on_eval`), early stopping and a
checkpoint. Callbacks see (step, metrics) after each log step and each evaluation and may ask the loop to stop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from taco_jax.checkpoint import Checkpointer
from taco_jax.config import Config, DivergenceConfig, save_config, to_yaml
from taco_jax.control import PHASE_NAMES
from taco_jax.data import DataBundle, build_data
from taco_jax.errors import add_traceback_note
from taco_jax.files import write_text_atomic
from taco_jax.model import build_model
from taco_jax.monitor import Monitor
from taco_jax.text.record import front_end_record
from taco_jax.train.controllers import Controllers, build_controllers
from taco_jax.train.divergence import DivergenceAlarm
from taco_jax.train.evaluation import Evaluator, SampleWriter
from taco_jax.train.host_control import HostControl, TrainingDiverged, rollback
from taco_jax.train.metrics_log import MetricWindow
from taco_jax.train.objective import objective_from_config
from taco_jax.train.parallel import barrier, data_mesh, is_primary, replicate, shard_batch
from taco_jax.train.run_dir import (
    RunDirError,
    RunLock,
    check_writable,
    choose_run_dir,
    create_run_dir,
    existing_run_dir,
    failed_start_log,
    file_logging,
)
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
    run_dir_id: tuple[int, int] | None  # (device, inode) of the run directory when the run started
    data: DataBundle
    controllers: Controllers
    state: TrainState
    first_state: Any  # host copy of the starting state: the rollback target while no checkpoint exists
    mesh: Any
    ckpt: Checkpointer
    host: HostControl
    alarm: DivergenceAlarm
    monitor: Monitor
    evaluator: Evaluator
    samples: SampleWriter
    train_step: Callable
    callbacks: Sequence[Callback]
    front_end: dict  # taco_jax.text.record.front_end_record of cfg.text.cleaners, stored in every checkpoint
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
            "front_end": self.front_end,
            "loader": self.data.train_loader.get_state(),
            "step": step,
            "best_val_loss": self.host.es_best,
            "host_control": self.host.to_dict(),
            "divergence": self.alarm.to_dict(),
            "mel_mean": np.asarray(self.data.mel_mean).tolist(),
        }

    def notify(self, step: int, metrics: Mapping[str, float]) -> bool:
        """Calls every callback (all of them, even after one asked to stop); True if any asked to stop."""
        return any([bool(cb(step, metrics)) for cb in self.callbacks])


def train(
    cfg: Config,
    resume: bool | str | os.PathLike = False,
    warm_start: str | None = None,
    ignore: Sequence[str] = (),
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train a model as configured; returns the run directory, final step, last validation metrics and state.

    `resume`: True continues the latest run of `run.name` under `run.out_dir`; a path continues that run
    directory. The run is restored from its newest intact checkpoint (a damaged newer one is reported and
    skipped); a run without any checkpoint starts again from step 0. Nothing in the run directory is rewritten
    before the restore has succeeded, and the logs (metrics.jsonl, TensorBoard) drop the steps after it.

    A run holds a lock on its directory for its whole life (`RunLock`): a second process on the same run fails at
    once. A new run whose setup fails leaves no directory behind; its train.log, with the traceback, is kept as
    runs/<name>-N.failed-start.log. Changes nothing process-wide: `python -m taco_jax.train` applies
    `run.retain_host_memory` before calling this; from a notebook, call
    `taco_jax.train.host_memory.retain_host_memory()` first if you want it.

    Raises:
      RunDirError: the run directory is in use, missing or not writable.
      ConfigError, DataError, AudioError, CheckpointError: bad input, naming the file, key or checkpoint.
      TrainingDiverged: training kept failing after the configured rollbacks.
    """
    progress = (cfg.run.progress_bar if progress is None else progress) and is_primary()
    run_dir, created = _open_run_dir(cfg, resume)
    lock = RunLock(run_dir).acquire() if is_primary() else None
    set_up, log_path = False, None
    try:
        with file_logging(run_dir if is_primary() else None) as run_log:
            try:
                run = _setup(cfg, run_dir, bool(resume), warm_start, ignore, progress, callbacks)
                set_up = True
                try:
                    result = _run_steps(run, progress)
                except BaseException:
                    _close(run, failing=True)
                    raise
                _close(run, failing=False)
                return result
            except BaseException as e:
                if run_log is not None:
                    run_log.traceback(e)
                    log_path = run_log.path
                raise
    except BaseException as e:
        if created and not set_up:
            log_path = remove_failed_start(run_dir)
        if log_path is not None:
            add_traceback_note(e, log_path)
        raise
    finally:
        if lock is not None:
            lock.release()


def _close(run: _Run, failing: bool) -> None:
    """Waits for the last checkpoint and closes the logs. While another error is on its way out, a failure here
    (the same cause, seen again by the checkpoint writer) is logged instead of replacing it."""
    try:
        run.ckpt.close()
    except Exception:
        if not failing:
            raise
        log.warning("closing the checkpoints failed as well", exc_info=True)
    finally:
        run.monitor.close()


def _open_run_dir(cfg: Config, resume: bool | str | os.PathLike) -> tuple[Path, bool]:
    """(run directory, whether this call created it)."""
    if isinstance(resume, str | os.PathLike):
        run_dir = existing_run_dir(resume)
        log.info("resuming %s", run_dir)
        return run_dir, False
    if resume:
        run_dir = choose_run_dir(cfg, resume=True)
        log.info("resuming %s", run_dir)
        return run_dir, False
    if jax.process_count() == 1:
        run_dir = create_run_dir(cfg)
        save_config(cfg, str(run_dir / "config.yaml"))  # first: a run killed while it starts can be resumed
        return run_dir, True
    run_dir = choose_run_dir(cfg, resume=False)  # every process picks the same directory before one creates it
    barrier("run_dir chosen")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, False


def remove_failed_start(run_dir: Path) -> Path | None:
    """A new run that failed before its first step: keeps its train.log beside the runs (returns where) and
    removes the rest, so the corrected rerun takes this run's name."""
    kept: Path | None = failed_start_log(run_dir)
    try:
        os.replace(run_dir / "train.log", kept)
    except OSError:
        kept = None
    shutil.rmtree(run_dir, ignore_errors=True)
    return kept


def _setup(cfg, run_dir: Path, resume: bool, warm_start, ignore, progress: bool, callbacks) -> _Run:
    primary = is_primary()
    log.info("run directory: %s (jax %s, %s, %d cpus)", run_dir, jax.__version__, jax.default_backend(), os.cpu_count())
    if primary:
        check_writable(run_dir)
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
    host, alarm = HostControl(), DivergenceAlarm(cfg.control.divergence)
    if resume:
        state, host, alarm = _restore(ckpt, state, data, cfg.control.divergence)
    elif warm_start:
        params = load_warm_start(state.params, warm_start, ignore)
        state = state.replace(params=params, opt_state=controllers.tx.init(params))
    if primary:  # a resumed run's only after the restore: a failed restore leaves its config.yaml as it was
        save_config(cfg, str(run_dir / "config.yaml"))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(failed_start_log(run_dir))  # a stale record of an earlier failed start of this name
    mesh = data_mesh()
    if mesh.devices.size > 1:
        log.info("data parallel over %d devices in %d processes", mesh.devices.size, jax.process_count())
    start = int(state.step)
    monitor = Monitor(str(run_dir), cfg.audio.sampling_rate, enabled=primary, purge_after=start if resume else None)
    return _Run(
        run_dir_id=_identity(run_dir),
        cfg=cfg, run_dir=run_dir, data=data, controllers=controllers, state=replicate(state, mesh),
        first_state=jax.device_get(state), mesh=mesh, ckpt=ckpt, host=host, alarm=alarm, monitor=monitor,
        evaluator=Evaluator(objective, data.val_batches),
        samples=SampleWriter(cfg, model, data.table, monitor, run_dir),
        train_step=jit_train_step(objective, controllers), callbacks=tuple(callbacks),
        front_end=front_end_record(cfg.text.cleaners),
    )  # fmt: skip


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of `path`, None if it does not exist: tells the run's directory from one made in its place."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _restore(
    ckpt: Checkpointer, state: TrainState, data: DataBundle, divergence: DivergenceConfig
) -> tuple[TrainState, HostControl, DivergenceAlarm]:
    """The newest intact checkpoint into `state`, the data loader and the host controls; a run without any
    checkpoint starts again from step 0 (said so)."""
    restored = ckpt.restore_latest(target=state)
    if restored is None:
        log.warning("%s: no checkpoint to resume from: the run starts again from step 0", ckpt.directory)
        return state, HostControl(), DivergenceAlarm(divergence)
    step, state, meta = restored
    if "loader" in meta:
        data.train_loader.set_state(meta["loader"])
    else:  # converted PyTorch train states: the data order starts afresh
        log.info("the checkpoint has no data-loader position (a converted one): starting at the first epoch")
    log.info("restored step %d from %s", step, ckpt.directory)
    alarm = DivergenceAlarm.from_dict(divergence, meta.get("divergence", {}))
    return state, HostControl.from_dict(meta.get("host_control", {})), alarm


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
            _check_run_dir(run, done)
            why = _rollback_reason(run, done, loss, float(metrics.means["train/grad_norm"]), metrics)
            if why is not None:
                restored = rollback(run.state, done, run.host, run.ckpt, run.first_state, nf, why)
                run.alarm.reset_streak()
                run.state = replicate(restored, run.mesh)
                done = int(run.state.step)
                continue
            evaluating = done % cfg.run.eval_every == 0 or done == total
            if done % cfg.run.log_every == 0 or done == total:
                if _log(run, window, done, time.time() - t_start, compiles=not evaluating):
                    stop_reason = "callback"
            if evaluating:
                stop_reason = _evaluate(run, done, bar, stop_reason)
    finally:
        if bar is not None:
            bar.close()
    final = {"step": int(run.state.step), "wall_s": time.time() - t_start, "stop_reason": stop_reason}
    if is_primary():
        write_text_atomic(run.run_dir / "final_metrics.json", json.dumps(final | run.val_metrics, indent=2))
    return TrainResult(str(run.run_dir), int(run.state.step), run.val_metrics, run.state, stop_reason)


def _check_run_dir(run: _Run, step: int) -> None:
    """Every step (a few system calls): a run directory that was moved, deleted or replaced, or stopped being
    writable, ends the run now, not at the next checkpoint, `eval_every` steps of work later."""
    if not run.monitor.enabled:
        return
    try:
        if _identity(run.run_dir) != run.run_dir_id:
            raise RunDirError(f"{run.run_dir}: the run directory was moved, deleted or replaced")
        check_writable(run.run_dir, run.ckpt.directory)
    except RunDirError as e:
        last = run.ckpt.latest_step()
        raise RunDirError(f"{e}; stopped at step {step}, the last checkpoint is step {last}") from None


def _rollback_reason(run: _Run, step: int, loss: float, grad_norm: float, metrics) -> str | None:
    """Why the run must roll back after this step (non-finite steps or a finite blow-up in a row), or None."""
    nf = run.cfg.control.nonfinite
    if nf.enabled and int(metrics.states["train/nonfinite_consecutive"]) >= nf.max_consecutive:
        return f"{nf.max_consecutive} consecutive non-finite steps"
    flagged = run.alarm.check(step, loss, grad_norm)
    if flagged is not None:
        log.warning("divergence alarm: %s", flagged)
    if run.alarm.should_roll_back():
        return f"{run.alarm.consecutive} consecutive exploding steps (control.divergence)"
    return None


def _log(run: _Run, window: MetricWindow, step: int, wall_s: float, compiles: bool = True) -> bool:
    """Flushes the metric window to the monitor; True if a callback asks to stop. `compiles`: False at an
    evaluation step, whose validation record carries `perf/compiles` (each key once per step)."""
    logged = window.flush(step)
    logged["train/rollbacks"] = float(run.host.rollbacks)
    if compiles:
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
    if run.alarm.consecutive == 0:
        run.ckpt.save(step, state, run.meta(step), val_loss=val["val/loss"])
    else:  # the update was applied: a checkpoint now could become the state a rollback restores
        log.warning("step %d: no checkpoint, the divergence alarm flagged the last step", step)
    msg = "  ".join(f"{k}={v:.4f}" for k, v in sorted(val.items()))
    log.info("step %d: %s", step, msg)
    if bar is not None:
        bar.write(f"step {step}: " + msg)
    if run.notify(step, val) and stop_reason == "max_steps":
        stop_reason = "callback"
    return stop_reason
