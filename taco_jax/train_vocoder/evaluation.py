"""Validation of a vocoder run: the loss-mel L1 over whole validation utterances, and audio and mel samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from taco_jax.audio import save_wav
from taco_jax.monitor import Monitor, plot_mel
from taco_jax.train_vocoder.data import ValSet
from taco_jax.train_vocoder.models import VocoderModels
from taco_jax.train_vocoder.step import jit_val_step

__all__ = ["Validator"]


class Validator:
    """`val/mel_l1`: mean |loss mel(real) - loss mel(generated)| (HiFi-GAN's training mel, natural log) over every
    frame inside the validation utterances and every mel bin, the generator vocoding each utterance whole from
    its input mel. The first `n_audio` utterances are written as audio and mel images (TensorBoard) and wavs
    (<run>/samples/); the real ones once per process, at its first evaluation."""

    def __init__(self, models: VocoderModels, val: ValSet, monitor: Monitor, run_dir: Path, n_audio: int):
        self.val = val
        self.monitor = monitor
        self.samples_dir = run_dir / "samples"
        self.n_audio = min(n_audio, len(val.sources))
        self.hop = models.hifigan.hop_size
        self.sampling_rate = models.hifigan.sampling_rate
        self.val_step = jit_val_step(models)
        self._wrote_real = False

    def __call__(self, gen_params: Any, step: int) -> dict[str, float]:
        v = self.val
        l1_sum, count, fake, fake_mel, real_mel = self.val_step(gen_params, v.mel, v.audio, v.n_samples)
        metrics = {"val/mel_l1": float(l1_sum) / max(float(count), 1.0)}
        if self.monitor.enabled and self.n_audio:
            self._samples(step, *jax.device_get((fake[: self.n_audio], fake_mel[: self.n_audio])), real_mel)
        return metrics

    def _samples(self, step: int, fake: np.ndarray, fake_mel: np.ndarray, real_mel: jax.Array) -> None:
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        if not self._wrote_real:
            real_mel = np.asarray(real_mel[: self.n_audio])
        for i in range(self.n_audio):
            n = int(self.val.n_samples[i])
            frames = n // self.hop
            title = f"step {step}: {Path(self.val.sources[i]).name}"
            self.monitor.audio(f"val/{i}/generated", step, fake[i, :n])
            self.monitor.image(f"val/{i}/generated_mel", step, plot_mel(fake_mel[i, :frames], title))
            save_wav(self.samples_dir / f"step{step:07d}_{i}.wav", fake[i, :n], self.sampling_rate)
            if not self._wrote_real:
                self.monitor.audio(f"val/{i}/real", step, self.val.audio[i, :n])
                self.monitor.image(f"val/{i}/real_mel", step, plot_mel(real_mel[i, :frames], f"real: {title}"))
        self._wrote_real = True
