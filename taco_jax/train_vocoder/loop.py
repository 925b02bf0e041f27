"""The vocoder's host loop: data in, the compiled train step, logging, validation, checkpoints and the exported
generator out.

`train_vocoder(cfg, ...)` is the whole run, built like the Tacotron trainer's (`taco_jax.train.loop`): the same
run directories (`<run.out_dir>/<run.name>[-N]`, locked while a run lives, train.log), metrics.jsonl and
TensorBoard through `Monitor`, Orbax checkpoints through `Checkpointer` (the latest `run.keep_checkpoints` plus the
best by val/mel_l1; a damaged newest checkpoint is skipped on resume). At every evaluation the generator is also
exported, weight norm folded, to `<run>/generator/` (`taco_jax.vocoder.files.save_vocoder`), which is what
`load_vocoder(RUN)` and `python -m taco_jax.synthesize --vocoder RUN` read.

Resuming restores the newest intact checkpoint and continues bitwise: the train state is the whole of what
changes, and the batch of every step follows from (run.seed, step) alone.
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
from taco_jax.files import write_text_atomic
from taco_jax.monitor import Monitor
from taco_jax.train.metrics_log import MetricWindow
from taco_jax.train.run_dir import (
    RunLock,
    check_writable,
    choose_run_dir,
    create_run_dir,
    existing_run_dir,
    file_logging,
)
from taco_jax.train_vocoder.config import VocoderConfig, save_vocoder_train_config, vocoder_config_to_yaml
from taco_jax.train_vocoder.data import VocoderData, build_vocoder_data
from taco_jax.train_vocoder.evaluation import Validator
from taco_jax.train_vocoder.init import initial_state, load_init_generator, run_hifigan_config
from taco_jax.train_vocoder.models import VocoderModels, build_models
from taco_jax.train_vocoder.state import VocoderTrainState, learning_rate, make_optimizer
from taco_jax.train_vocoder.step import LossWeights, jit_train_step
from taco_jax.vocoder.config import HifiganConfig
from taco_jax.vocoder.layers import fold_weight_norm

log = logging.getLogger("taco_jax.train_vocoder")

__all__ = ["Callback", "VocoderTrainResult", "export_generator", "train_vocoder"]

Callback = Callable[[int, Mapping[str, float]], "bool | None"]
"""Called with (step, metrics) after each log step and each evaluation; a true return value stops the run."""

GENERATOR_DIR = "generator"
HIFIGAN_CONFIG = "hifigan_config.json"  # the generator's resolved config, written when a run starts


@dataclass
class VocoderTrainResult:
    run_dir: str
    step: int
    val_metrics: dict[str, float]
    state: VocoderTrainState
    stop_reason: str = "max_steps"  # "max_steps" | "callback"


@dataclass
class _Run:
    cfg: VocoderConfig
    run_dir: Path
    data: VocoderData
    models: VocoderModels
    state: VocoderTrainState
    ckpt: Checkpointer
    monitor: Monitor
    validator: Validator
    train_step: Callable
    lr: Callable[[int], Any]
    callbacks: Sequence[Callback]
    val_metrics: dict[str, float] = field(default_factory=dict)

    def meta(self, step: int) -> dict:
        return {"config": vocoder_config_to_yaml(self.cfg), "hifigan": self.models.hifigan.to_json(), "step": step}

    def notify(self, step: int, metrics: Mapping[str, float]) -> bool:
        return any([bool(cb(step, metrics)) for cb in self.callbacks])


def train_vocoder(
    cfg: VocoderConfig,
    resume: bool | str | os.PathLike = False,
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
) -> VocoderTrainResult:
    """Train a HiFi-GAN as configured; returns the run directory, final step, last validation metrics and state.

    `resume`: True continues the latest run of `run.name` under `run.out_dir`, a path that run directory; the run
    continues from its newest intact checkpoint (from step 0 if it has none). A new run whose setup fails leaves
    no directory behind (its train.log is kept as runs/<name>-N.failed-start.log).

    Raises:
      RunDirError, ConfigError, DataError, AudioError, CheckpointError, VocoderConfigError: bad input, naming
        the file, key or checkpoint.
    """
    from taco_jax.train.loop import remove_failed_start  # the Tacotron trainer's cleanup of a failed start

    progress = cfg.run.progress_bar if progress is None else progress
    run_dir, created = _open_run_dir(cfg, resume)
    lock = RunLock(run_dir).acquire()
    set_up = False
    try:
        with file_logging(run_dir) as run_log:
            try:
                run = _setup(cfg, run_dir, bool(resume), progress, callbacks)
                set_up = True
                try:
                    return _run_steps(run, progress)
                finally:
                    run.ckpt.close()
                    run.monitor.close()
            except BaseException as e:
                run_log.traceback(e)
                raise
    except BaseException:
        if created and not set_up:
            remove_failed_start(run_dir)
        raise
    finally:
        lock.release()


def _open_run_dir(cfg: VocoderConfig, resume: bool | str | os.PathLike) -> tuple[Path, bool]:
    if isinstance(resume, str | os.PathLike):
        return existing_run_dir(resume), False
    if resume:
        return choose_run_dir(cfg, resume=True), False  # type: ignore[arg-type]  # reads run.out_dir/run.name
    run_dir = create_run_dir(cfg)  # type: ignore[arg-type]
    save_vocoder_train_config(cfg, run_dir / "config.yaml")  # first: a run killed while it starts can be resumed
    return run_dir, True


def _setup(cfg: VocoderConfig, run_dir: Path, resume: bool, progress: bool, callbacks) -> _Run:
    log.info("run directory: %s (jax %s, %s)", run_dir, jax.__version__, jax.default_backend())
    check_writable(run_dir)
    data = build_vocoder_data(cfg, progress=progress)
    stored = run_dir / HIFIGAN_CONFIG if resume else None
    init_config, init_gen = None, None
    if cfg.init.generator and not (stored is not None and stored.is_file()):
        init_config, init_gen = load_init_generator(cfg)
    hifigan = run_hifigan_config(cfg, stored, init_config)
    write_text_atomic(run_dir / HIFIGAN_CONFIG, json.dumps(hifigan.to_json(), indent=2) + "\n")
    models = build_models(hifigan, cfg.generator.weight_norm, cfg.discriminator.width_divisor)
    steps_per_epoch = cfg.optim.steps_per_epoch or data.train.steps_per_epoch
    tx = make_optimizer(cfg.optim, steps_per_epoch)
    state = initial_state(cfg, models, tx, None if resume else init_gen, fine_tune=not resume)
    ckpt = Checkpointer(run_dir / "checkpoints", keep=cfg.run.keep_checkpoints)
    if resume:
        restored = ckpt.restore_latest(target=state)
        if restored is None:
            log.warning("%s: no checkpoint to resume from: the run starts again from step 0", ckpt.directory)
        else:
            state = restored[1]
            log.info("restored step %d from %s", restored[0], ckpt.directory)
    save_vocoder_train_config(cfg, run_dir / "config.yaml")  # a resumed run's only after the restore succeeded
    log.info("generator: %s; %d steps per epoch (lr x %g each)", _describe(hifigan, state), steps_per_epoch,
             cfg.optim.lr_decay)  # fmt: skip
    monitor = Monitor(str(run_dir), hifigan.sampling_rate, purge_after=int(state.step) if resume else None)
    return _Run(
        cfg=cfg, run_dir=run_dir, data=data, models=models, state=state, ckpt=ckpt, monitor=monitor,
        validator=Validator(models, data.val, monitor, run_dir, cfg.run.audio_samples),
        train_step=jit_train_step(models, tx, LossWeights.from_config(cfg.loss)),
        lr=learning_rate(cfg.optim, steps_per_epoch), callbacks=tuple(callbacks),
    )  # fmt: skip


def _describe(h: HifiganConfig, state: VocoderTrainState) -> str:
    count = lambda tree: sum(int(np.size(x)) for x in jax.tree.leaves(tree))  # noqa: E731
    return (
        f"resblock {h.resblock}, upsample {list(h.upsample_rates)}, {h.upsample_initial_channel} channels: "
        f"{count(state.gen_params):,} parameters; discriminators {count(state.disc_params):,}"
    )


def _run_steps(run: _Run, progress: bool) -> VocoderTrainResult:
    cfg, total = run.cfg, run.cfg.run.max_steps
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=int(run.state.step), desc="vocoder", unit="step", dynamic_ncols=True)
    window = MetricWindow()
    frames = run.data.train.batch_size * run.data.train.segment_frames
    t_start, stop_reason = time.time(), "max_steps"
    done = int(run.state.step)
    if done == 0:  # the starting point's validation: the baseline a fine-tuned or fresh generator improves on
        _validate(run, 0, bar)
    try:
        while done < total and stop_reason == "max_steps":
            batch = run.data.train.batch(done)
            t0 = time.perf_counter()
            run.state, metrics = run.train_step(run.state, batch)
            jax.block_until_ready(run.state.step)  # step time is honest; the metrics stay on the device
            window.add(metrics, time.perf_counter() - t0, frames)
            done += 1
            if bar is not None:
                bar.update(1)
            if done % cfg.run.log_every == 0 or done == total:
                logged = window.flush(done) | {
                    "train/lr": float(run.lr(done - 1)),
                    "perf/wall_s": time.time() - t_start,
                }
                run.monitor.scalars(done, logged)
                if bar is not None:
                    bar.set_postfix(mel_l1=f"{logged['train/mel_l1']:.3f}", d=f"{logged['train/d_loss']:.3f}")
                if run.notify(done, logged):
                    stop_reason = "callback"
            if done % cfg.run.eval_every == 0 or done == total or stop_reason != "max_steps":
                if _evaluate(run, done, bar):
                    stop_reason = "callback"
    finally:
        if bar is not None:
            bar.close()
    final = {"step": done, "wall_s": time.time() - t_start, "stop_reason": stop_reason}
    write_text_atomic(run.run_dir / "final_metrics.json", json.dumps(final | run.val_metrics, indent=2))
    return VocoderTrainResult(str(run.run_dir), done, run.val_metrics, run.state, stop_reason)


def _validate(run: _Run, step: int, bar) -> dict[str, float]:
    """Validation metrics and samples of the current generator, logged."""
    val = run.validator(run.state.gen_params, step)
    run.monitor.scalars(step, val)
    run.val_metrics = val
    msg = f"step {step}: " + "  ".join(f"{k}={v:.4f}" for k, v in sorted(val.items()))
    log.info("%s", msg)
    if bar is not None:
        bar.write(msg)
    return val


def _evaluate(run: _Run, step: int, bar) -> bool:
    """Validation, samples, a checkpoint and the generator export; True if a callback asks to stop."""
    val = _validate(run, step, bar)
    run.ckpt.save(step, run.state, run.meta(step), val_loss=val["val/mel_l1"])
    export_generator(run.run_dir / GENERATOR_DIR, run.models.hifigan, run.state.gen_params)
    return run.notify(step, val)


def export_generator(out_dir: Path, hifigan: HifiganConfig, gen_params: Any) -> None:
    """The generator as a `save_vocoder` directory (published config.json + plain weights)."""
    from taco_jax.vocoder.files import save_vocoder

    plain = fold_weight_norm(jax.device_get(gen_params))
    save_vocoder(out_dir, hifigan, plain)
