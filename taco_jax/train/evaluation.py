"""Validation: exact teacher-forced metrics over the validation split, and free-running samples."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from taco_jax.audio import save_wav
from taco_jax.batch import EvalBatch
from taco_jax.config import Config
from taco_jax.monitor import Monitor, plot_alignment, plot_gate, plot_mel, save_png
from taco_jax.synthesize import Synthesizer
from taco_jax.text import SymbolTable
from taco_jax.train.objective import Objective
from taco_jax.train.step import jit_eval_step

__all__ = ["Evaluator", "SampleWriter"]


class Evaluator:
    """Teacher-forced losses and diagnostics over every validation item once, combined exactly.

    Each metric is ``sum / count`` over the real items of all batches (the rows that pad a bucket's last batch
    count nowhere): element-weighted where the loss is (mel, gate and guided-attention losses), item-weighted for
    per-utterance metrics (alignment and gate diagnostics). ``val/loss`` = mel_weight x (mel + post-net) +
    gate_weight x gate, from those means: comparable across guided-attention weights and schedules.
    """

    def __init__(self, objective: Objective, batches: Sequence[EvalBatch]):
        self.objective = objective
        self.batches = batches
        self.eval_step = jit_eval_step(objective)

    def __call__(self, params: Any, batch_stats: Any) -> dict[str, float]:
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, float] = defaultdict(float)
        for batch, n_real in self.batches:
            for k, (s, c) in jax.device_get(self.eval_step(params, batch_stats, batch, n_real)).items():
                sums[k] += float(s)
                counts[k] += float(c)
        means = {k: sums[k] / counts[k] for k in sums if counts[k] > 0}  # a term the model lacks counts nothing
        w = self.objective.weights
        means["loss"] = w.mel * (means["mel_loss"] + means["mel_post_loss"]) + w.gate * means["gate_loss"]
        return {f"val/{k}": v for k, v in means.items()}


class SampleWriter:
    """Free-running syntheses of `run.sample_sentences`: wav + png in samples/, images and audio in TensorBoard."""

    def __init__(self, cfg: Config, model, table: SymbolTable, monitor: Monitor, run_dir: Path):
        self.cfg = cfg
        self.sentences = list(cfg.run.sample_sentences)
        self.monitor = monitor
        self.samples_dir = run_dir / "samples"
        speaker = 0 if cfg.model.n_speakers else None  # a multi-speaker model's samples speak as speaker 0
        self.synth = Synthesizer(cfg, model, None, table, seed=cfg.run.seed, speaker=speaker)

    def __call__(self, params: Any, batch_stats: Any, step: int) -> None:
        if not self.sentences:
            return
        variables = {"params": params, "batch_stats": batch_stats}
        results = self.synth(self.sentences, batch_size=len(self.sentences), variables=variables)
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
        seconds = [r.frames * self.cfg.audio.hop_length / self.cfg.audio.sampling_rate for r in results]
        self.monitor.scalars(
            step, {"samples/stopped": float(np.mean([r.stopped for r in results])), "samples/seconds": np.mean(seconds)}
        )
