"""The host loop: data in, jit-compiled steps, logging, validation, samples and checkpoints out."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from taco_jax.audio import save_wav
from taco_jax.checkpoint import Checkpointer
from taco_jax.config import Config, save_config, to_yaml, write_text_atomic
from taco_jax.control import optim as optim_control
from taco_jax.control.alignment import PHASE_NAMES
from taco_jax.control.build import build_tx, init_control_state
from taco_jax.data import build_data
from taco_jax.model import build_model
from taco_jax.monitor import Monitor, plot_alignment, plot_gate, plot_mel, save_png
from taco_jax.synthesize import Synthesizer
from taco_jax.train.host_memory import retain_host_memory
from taco_jax.train.parallel import barrier, data_mesh, is_primary, replicate, shard_batch
from taco_jax.train.state import TrainState, count_params, create_train_state
from taco_jax.train.step import make_eval_step, make_phase_update, make_train_step

log = logging.getLogger("taco_jax.train")


class TrainingDiverged(RuntimeError):
    """Training kept producing non-finite steps after the configured number of rollbacks."""


@dataclass
class TrainResult:
    run_dir: str
    step: int
    val_metrics: dict[str, float]
    state: TrainState
    stop_reason: str = "max_steps"  # "max_steps" | "early_stopping"


@dataclass
class HostControl:
    """Controller state that lives on the host (saved in checkpoint metadata): rollbacks, early stopping."""

    rollbacks: int = 0
    es_best: float = float("inf")  # best val/loss seen by early stopping
    es_best_step: int = 0
    es_bad_evals: int = 0  # evaluations since es_best improved

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> HostControl:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class ChangeLogger:
    """One readable log line per change of GA level/multiplier, phase or LR scale (from per-step metrics)."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def __call__(self, step: int, m: dict[str, float]) -> None:
        def changed(key: str) -> bool:
            old, new = self.last.get(key), m.get(key)
            return old is not None and new is not None and old != new and np.isfinite(new)

        if changed("train/ga_mult"):
            log.info(
                "step %d: guided-attention multiplier %.3g -> %.3g (level %d, EMA diagonality %.3f)", step,
                self.last["train/ga_mult"], m["train/ga_mult"], m["train/ga_level"], m["train/ga_ema_diag"],
            )  # fmt: skip
        if changed("train/phase"):
            log.info("step %d: phase %s -> %s", step, PHASE_NAMES[int(self.last["train/phase"])],
                     PHASE_NAMES[int(m["train/phase"])])  # fmt: skip
        if changed("train/lr_scale"):
            log.info("step %d: LR scale %.3g -> %.3g", step, self.last["train/lr_scale"], m["train/lr_scale"])
        self.last.update({k: v for k, v in m.items() if np.isfinite(v)})


def _run_dirs(out_dir: Path, name: str) -> list[Path]:
    pattern = re.compile(rf"^{re.escape(name)}(-(\d+))?$")
    found = [(int(m.group(2) or 0), d) for d in out_dir.glob(f"{name}*") if (m := pattern.match(d.name)) and d.is_dir()]
    return [d for _, d in sorted(found)]


def choose_run_dir(cfg: Config, resume: bool) -> Path:
    """runs/<name> for a new run (runs/<name>-N if taken); the latest existing one with --resume."""
    out_dir = Path(cfg.run.out_dir)
    existing = _run_dirs(out_dir, cfg.run.name)
    if resume:
        if not existing:
            raise FileNotFoundError(f"--resume: no run named '{cfg.run.name}' under {out_dir}/")
        return existing[-1]
    if not existing:
        return out_dir / cfg.run.name
    return out_dir / f"{cfg.run.name}-{len(existing) + 1}"


def _setup_file_logging(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger("taco_jax").addHandler(handler)
    return handler


def warm_start_params(params, source_params, ignore: Sequence[str]):
    """Copy every parameter of `source_params` whose path matches and shape agrees, except ignored ones.

    Returns (params, report) with report = {"loaded": [...], "ignored": [...], "shape_mismatch": [...],
    "missing": [...]} listing parameter paths ('/'-joined).
    """
    patterns = [re.compile(p) for p in ignore]
    flat_src = {"/".join(str(k.key) for k in path): v for path, v in jax.tree_util.tree_leaves_with_path(source_params)}
    report = {"loaded": [], "ignored": [], "shape_mismatch": [], "missing": []}

    def pick(path, value):
        name = "/".join(str(k.key) for k in path)
        if any(p.search(name) for p in patterns):
            report["ignored"].append(name)
            return value
        if name not in flat_src:
            report["missing"].append(name)
            return value
        src = np.asarray(flat_src[name])
        if src.shape != value.shape:
            report["shape_mismatch"].append(f"{name}: {src.shape} vs {value.shape}")
            return value
        report["loaded"].append(name)
        return jax.numpy.asarray(src, value.dtype)

    return jax.tree_util.tree_map_with_path(pick, params), report


class _Evaluator:
    """Validation: teacher-forced losses and diagnostics over the val split, then free-running samples."""

    def __init__(self, cfg: Config, model, data, monitor: Monitor, run_dir: Path):
        self.cfg = cfg
        self.eval_step = make_eval_step(model, cfg)
        self.data = data
        self.monitor = monitor
        self.samples_dir = run_dir / "samples"
        # A multi-speaker model's samples speak as speaker 0.
        speaker = 0 if cfg.model.n_speakers else None
        self.synth = Synthesizer(cfg, model, None, data.table, seed=cfg.run.seed, speaker=speaker)

    def __call__(self, state: TrainState, step: int) -> dict[str, float]:
        sums: dict[str, float] = {}
        total = 0
        for batch, n_real in self.data.val_batches:
            metrics = jax.device_get(self.eval_step(state.params, state.batch_stats, batch))
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n_real
            total += n_real
        val = {f"val/{k}": v / max(total, 1) for k, v in sums.items()}
        self._samples(state, step)
        return val

    def _samples(self, state: TrainState, step: int) -> None:
        sentences = list(self.cfg.run.sample_sentences)
        if not sentences:
            return
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        results = self.synth(sentences, batch_size=len(sentences), variables=variables)
        if not self.monitor.enabled:  # every process synthesises (one SPMD program); only process 0 writes
            return
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        for i, res in enumerate(results):
            title = f"step {step}: {res.text[:50]}{'' if res.stopped else ' (no stop)'}"
            align_img = plot_alignment(res.alignment, title)
            self.monitor.image(f"samples/{i}/alignment", step, align_img)
            self.monitor.image(f"samples/{i}/mel", step, plot_mel(res.mel, title))
            self.monitor.image(f"samples/{i}/gate", step, plot_gate(res.gate_prob, title))
            wav = self.synth.vocode(res.mel)
            self.monitor.audio(f"samples/{i}/audio", step, wav)
            stem = self.samples_dir / f"step{step:07d}_{i}"
            save_wav(f"{stem}.wav", wav, self.cfg.audio.sampling_rate)
            save_png(f"{stem}.png", align_img)
        self.monitor.scalars(
            step,
            {
                "samples/stopped": float(np.mean([r.stopped for r in results])),
                "samples/seconds": float(
                    np.mean([r.frames * self.cfg.audio.hop_length / self.cfg.audio.sampling_rate for r in results])
                ),
            },
        )


# Controller state is logged as it stands at the logged step (a mean over the window would report a level or
# phase that never existed); losses and diagnostics are averaged over the window.
_STATE_METRICS = frozenset({
    "train/ga_weight", "train/ga_mult", "train/ga_level", "train/ga_ema_diag", "train/phase", "train/lr",
    "train/lr_scale", "train/clip_threshold", "train/nonfinite", "train/nonfinite_consecutive",
})  # fmt: skip


def _finite_mean(values) -> float:
    """Mean over the finite values (NaN if none): a skipped non-finite step does not poison the logged mean."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _compiles(*fns) -> int:
    """Programs compiled so far by the given jit functions (one per distinct input shape)."""
    return int(sum(f._cache_size() for f in fns))


def train(
    cfg: Config,
    resume: bool = False,
    warm_start: str | None = None,
    ignore: Sequence[str] = (),
    progress: bool | None = None,
) -> TrainResult:
    """Train a model as configured; returns the run directory, final step, last validation metrics and state."""
    retain_host_memory(cfg.run.retain_host_memory)
    progress = (cfg.run.progress_bar if progress is None else progress) and is_primary()
    run_dir = choose_run_dir(cfg, resume)
    barrier("run_dir chosen")  # every process picks the same directory before one of them creates it
    if resume:
        log.info("resuming %s", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = _setup_file_logging(run_dir) if is_primary() else None
    try:
        return _train(cfg, run_dir, resume, warm_start, ignore, progress)
    finally:
        if handler is not None:
            logging.getLogger("taco_jax").removeHandler(handler)
            handler.close()


def _train(cfg: Config, run_dir: Path, resume: bool, warm_start, ignore, progress: bool) -> TrainResult:
    primary = is_primary()
    if primary:
        save_config(cfg, str(run_dir / "config.yaml"))
    log.info("run directory: %s (jax %s, %s, %d cpus)", run_dir, jax.__version__, jax.default_backend(), os.cpu_count())
    if not primary:
        barrier("data prepared")  # let process 0 fill the shared caches (corpus, mels) first
    data = build_data(cfg, progress=progress)
    if primary:
        barrier("data prepared")
    table = data.table
    model = build_model(cfg.model, len(table), cfg.audio.n_mels)
    tx = build_tx(cfg)
    state = create_train_state(model, tx, cfg.run.seed, cfg.audio.n_mels, init_control_state(cfg))
    log.info("model: %s parameters; %d symbols (%s)", f"{count_params(state.params):,}", len(table), table.name)

    ckpt = Checkpointer(run_dir / "checkpoints", keep=cfg.run.keep_checkpoints)
    host = HostControl()
    latest = ckpt.latest_step()
    if resume and latest is not None:
        state, meta = ckpt.restore(latest, target=state)
        if "loader" in meta:
            data.train_loader.set_state(meta["loader"])
        else:  # tools/convert_torch_ckpt.py's train states: the data order starts afresh
            log.info("the checkpoint has no data-loader position (a converted one): starting at the first epoch")
        host = HostControl.from_dict(meta.get("host_control", {}))
        log.info("restored step %d from %s", latest, ckpt.directory)
    elif warm_start:
        from taco_jax.checkpoint import restore_model

        _, _, source = restore_model(warm_start)
        params, report = warm_start_params(state.params, source["params"], ignore)
        state = state.replace(params=params, opt_state=tx.init(params))
        log.info(
            "warm start from %s: loaded %d, ignored %d, shape-mismatched %d, missing %d",
            warm_start, len(report["loaded"]), len(report["ignored"]), len(report["shape_mismatch"]),
            len(report["missing"]),
        )  # fmt: skip
        for kind in ("ignored", "shape_mismatch", "missing"):
            for name in report[kind]:
                log.info("  warm start %s: %s", kind, name)
    first_state = jax.device_get(state)  # rollback target while no checkpoint exists yet
    mesh = data_mesh()
    if mesh.devices.size > 1:
        log.info("data parallel over %d devices in %d processes", mesh.devices.size, jax.process_count())
    state = replicate(state, mesh)

    train_step = make_train_step(model, tx, cfg, data.mel_mean)
    phase_update = make_phase_update(cfg)
    monitor = Monitor(str(run_dir), cfg.audio.sampling_rate, enabled=primary)
    evaluator = _Evaluator(cfg, model, data, monitor, run_dir)
    changes = ChangeLogger()
    nf = cfg.control.nonfinite
    es = cfg.control.early_stopping
    total = cfg.run.max_steps
    val_metrics: dict[str, float] = {}
    stop_reason = "max_steps"

    def meta_for(step: int) -> dict:
        return {
            "config": to_yaml(cfg),
            "symbols": table.to_dict(),
            "loader": data.train_loader.get_state(),
            "step": step,
            "best_val_loss": host.es_best,
            "host_control": host.to_dict(),
            "mel_mean": np.asarray(data.mel_mean).tolist(),
        }

    def rollback(state: TrainState, step: int) -> TrainState:
        """Restore the last checkpoint (or the starting state) and lower the LR scale; the data go on."""
        host.rollbacks += 1
        if host.rollbacks > nf.max_rollbacks:
            raise TrainingDiverged(
                f"step {step}: {nf.max_consecutive} consecutive non-finite steps after {nf.max_rollbacks} rollbacks "
                f"(control.nonfinite.max_rollbacks); stopping. Last checkpoint: "
                f"{ckpt.latest_step() if ckpt.latest_step() is not None else 'none'} in {ckpt.directory}"
            )
        good = ckpt.latest_step()
        if good is not None:
            restored, _ = ckpt.restore(good, target=state)
            source = f"checkpoint step {good}"
        else:
            restored, source = jax.device_put(first_state), f"the starting state (step {int(first_state.step)})"
        before = float(optim_control.lr_scale(restored.opt_state))
        restored = restored.replace(opt_state=optim_control.lower_lr_scale(restored.opt_state, nf.lr_factor, 0.0))
        log.warning(
            "step %d: %d consecutive non-finite steps -> rollback %d/%d to %s, LR scale %.3g -> %.3g",
            step, nf.max_consecutive, host.rollbacks, nf.max_rollbacks, source, before,
            float(optim_control.lr_scale(restored.opt_state)),
        )  # fmt: skip
        return replicate(restored, mesh)

    def early_stop(val: dict[str, float], step: int) -> bool:
        """Patience on val/loss; never during pre-alignment (phase 0, or val diagonality below align_start)."""
        loss = val["val/loss"]
        bar_to_beat = host.es_best - es.min_delta * abs(host.es_best) if np.isfinite(host.es_best) else np.inf
        if np.isfinite(loss) and loss < bar_to_beat:
            host.es_best, host.es_best_step, host.es_bad_evals = loss, step, 0
            return False
        host.es_bad_evals += 1
        if cfg.control.phase.enabled:
            pre_alignment = int(state.control.phase.phase) == 0
        else:
            pre_alignment = val.get("val/align_diag", 0.0) < cfg.control.phase.align_start
        if not es.enabled or pre_alignment or host.es_bad_evals < es.patience:
            return False
        log.info(
            "step %d: early stopping: val/loss has not improved by %.2g (relative) for %d evaluations; best %.4f at "
            "step %d (best checkpoint: step %s in %s)",
            step, es.min_delta, host.es_bad_evals, host.es_best, host.es_best_step, ckpt.best_step(), ckpt.directory,
        )  # fmt: skip
        return True

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=int(state.step), desc="train", unit="step", dynamic_ncols=True)
    pending: list[dict] = []
    step_times: list[float] = []
    frames = 0
    t_start = time.time()
    try:
        done = int(state.step)
        while done < total:
            batch = next(data.train_loader)
            frames += int(np.sum(batch.mel_len))
            t0 = time.perf_counter()
            state, metrics = train_step(state, shard_batch(batch, mesh))
            loss = float(metrics["train/loss"])  # syncs: step time is honest
            step_times.append(time.perf_counter() - t0)
            pending.append(metrics)
            done = int(state.step)
            if bar is not None:
                bar.n = done
                bar.set_postfix(loss=f"{loss:.3f}", step_s=f"{step_times[-1]:.2f}")
            if nf.enabled and int(metrics["train/nonfinite_consecutive"]) >= nf.max_consecutive:
                state = rollback(state, done)
                done = int(state.step)
                continue
            if done % cfg.run.log_every == 0 or done == total:
                host_metrics = jax.device_get(pending)
                for i, m in enumerate(host_metrics):
                    changes(done - len(host_metrics) + 1 + i, {k: float(v) for k, v in m.items()})
                logged = {
                    k: float(host_metrics[-1][k]) if k in _STATE_METRICS else _finite_mean([m[k] for m in host_metrics])
                    for k in host_metrics[0]
                }
                elapsed = float(np.sum(step_times))
                logged["train/rollbacks"] = float(host.rollbacks)
                logged["perf/step_s"] = float(np.median(step_times))
                logged["perf/mel_frames_per_s"] = frames / elapsed if elapsed > 0 else 0.0
                logged["perf/compiles"] = _compiles(train_step, evaluator.eval_step, evaluator.synth._infer)
                logged["perf/wall_s"] = time.time() - t_start
                monitor.scalars(done, logged)
                pending, step_times, frames = [], [], 0
                if not np.isfinite(float(host_metrics[-1]["train/loss"])):
                    log.warning("step %d: non-finite training loss", done)
            if done % cfg.run.eval_every == 0 or done == total:
                val_metrics = evaluator(state, done)
                val_metrics["perf/compiles"] = _compiles(train_step, evaluator.eval_step, evaluator.synth._infer)
                monitor.scalars(done, val_metrics)
                phase_before = int(state.control.phase.phase)
                state = state.replace(
                    control=phase_update(state.control, val_metrics["val/align_diag"], val_metrics["val/loss"])
                )
                if int(state.control.phase.phase) != phase_before:
                    log.info("step %d: phase %s -> %s (val/align_diag %.3f)", done, PHASE_NAMES[phase_before],
                             PHASE_NAMES[int(state.control.phase.phase)], val_metrics["val/align_diag"])  # fmt: skip
                stop = early_stop(val_metrics, done)
                ckpt.save(done, state, meta_for(done), val_loss=val_metrics["val/loss"])
                msg = "  ".join(f"{k}={v:.4f}" for k, v in sorted(val_metrics.items()))
                log.info("step %d: %s", done, msg)
                if bar is not None:
                    bar.write(f"step {done}: " + msg)
                if stop:
                    stop_reason = "early_stopping"
                    break
    finally:
        if bar is not None:
            bar.close()
        ckpt.close()
        monitor.close()
    final = {"step": int(state.step), "wall_s": time.time() - t_start, "stop_reason": stop_reason, **val_metrics}
    if primary:
        write_text_atomic(str(run_dir / "final_metrics.json"), json.dumps(final, indent=2))
    return TrainResult(str(run_dir), int(state.step), val_metrics, state, stop_reason)


__all__ = ["HostControl", "TrainResult", "TrainingDiverged", "choose_run_dir", "train", "warm_start_params"]
