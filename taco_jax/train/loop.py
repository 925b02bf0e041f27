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
from taco_jax.data import build_data
from taco_jax.model import build_model
from taco_jax.monitor import Monitor, plot_alignment, plot_gate, plot_mel, save_png
from taco_jax.synthesize import Synthesizer
from taco_jax.train.optimizer import build_optimizer
from taco_jax.train.state import TrainState, count_params, create_train_state
from taco_jax.train.step import make_eval_step, make_train_step

log = logging.getLogger("taco_jax.train")


@dataclass
class TrainResult:
    run_dir: str
    step: int
    val_metrics: dict[str, float]
    state: TrainState


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
        self.synth = Synthesizer(cfg, model, None, data.table, seed=cfg.run.seed)

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
    progress = cfg.run.progress_bar if progress is None else progress
    run_dir = choose_run_dir(cfg, resume)
    if resume:
        log.info("resuming %s", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = _setup_file_logging(run_dir)
    try:
        return _train(cfg, run_dir, resume, warm_start, ignore, progress)
    finally:
        logging.getLogger("taco_jax").removeHandler(handler)
        handler.close()


def _train(cfg: Config, run_dir: Path, resume: bool, warm_start, ignore, progress: bool) -> TrainResult:
    save_config(cfg, str(run_dir / "config.yaml"))
    log.info("run directory: %s (jax %s, %s, %d cpus)", run_dir, jax.__version__, jax.default_backend(), os.cpu_count())
    data = build_data(cfg, progress=progress)
    table = data.table
    model = build_model(cfg.model, len(table), cfg.audio.n_mels)
    tx = build_optimizer(cfg.optim)
    state = create_train_state(model, tx, cfg.run.seed, cfg.audio.n_mels)
    log.info("model: %s parameters; %d symbols (%s)", f"{count_params(state.params):,}", len(table), table.name)

    ckpt = Checkpointer(run_dir / "checkpoints", keep=cfg.run.keep_checkpoints)
    best_val = float("inf")
    latest = ckpt.latest_step()
    if resume and latest is not None:
        state, meta = ckpt.restore(latest, target=state)
        data.train_loader.set_state(meta["loader"])
        best_val = meta.get("best_val_loss", best_val)
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

    train_step = make_train_step(model, tx, cfg)
    monitor = Monitor(str(run_dir), cfg.audio.sampling_rate)
    evaluator = _Evaluator(cfg, model, data, monitor, run_dir)
    start = int(state.step)
    total = cfg.run.max_steps
    val_metrics: dict[str, float] = {}

    def meta_for(step: int) -> dict:
        return {
            "config": to_yaml(cfg),
            "symbols": table.to_dict(),
            "loader": data.train_loader.get_state(),
            "step": step,
            "best_val_loss": best_val,
            "mel_mean": np.asarray(data.mel_mean).tolist(),
        }

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True)
    pending: list[dict] = []
    step_times: list[float] = []
    frames = 0
    t_start = time.time()
    try:
        for step in range(start, total):
            batch = next(data.train_loader)
            t0 = time.perf_counter()
            state, metrics = train_step(state, batch)
            loss = float(metrics["train/loss"])  # syncs: step time is honest
            step_times.append(time.perf_counter() - t0)
            frames += int(np.sum(batch.mel_len))
            pending.append(metrics)
            done = step + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", step_s=f"{step_times[-1]:.2f}")
            if done % cfg.run.log_every == 0 or done == total:
                host = jax.device_get(pending)
                logged = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
                elapsed = float(np.sum(step_times))
                logged["perf/step_s"] = float(np.median(step_times))
                logged["perf/mel_frames_per_s"] = frames / elapsed if elapsed > 0 else 0.0
                logged["perf/compiles"] = _compiles(train_step, evaluator.eval_step, evaluator.synth._infer)
                logged["perf/wall_s"] = time.time() - t_start
                monitor.scalars(done, logged)
                pending, step_times, frames = [], [], 0
                if not np.isfinite(logged["train/loss"]):
                    log.warning("step %d: non-finite training loss", done)
            if done % cfg.run.eval_every == 0 or done == total:
                val_metrics = evaluator(state, done)
                val_metrics["perf/compiles"] = _compiles(train_step, evaluator.eval_step, evaluator.synth._infer)
                monitor.scalars(done, val_metrics)
                best_val = min(best_val, val_metrics["val/loss"])
                ckpt.save(done, state, meta_for(done), val_loss=val_metrics["val/loss"])
                msg = "  ".join(f"{k}={v:.4f}" for k, v in sorted(val_metrics.items()))
                log.info("step %d: %s", done, msg)
                if bar is not None:
                    bar.write(f"step {done}: " + msg)
    finally:
        if bar is not None:
            bar.close()
        ckpt.close()
        monitor.close()
    final = {"step": int(state.step), "wall_s": time.time() - t_start, **val_metrics}
    write_text_atomic(str(run_dir / "final_metrics.json"), json.dumps(final, indent=2))
    return TrainResult(str(run_dir), int(state.step), val_metrics, state)


__all__ = ["TrainResult", "choose_run_dir", "train", "warm_start_params"]

