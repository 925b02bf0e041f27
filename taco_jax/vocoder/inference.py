"""Batched HiFi-GAN inference: log-mels `[frames, n_mels]` -> waveforms `[frames * hop]`, with its timing.

Mels are padded with silence to a multiple of `bucket_frames` and batched to a fixed batch size, so the generator
is compiled once per (batch size, padded length) and reused: ahead of time (`jit(...).lower(...).compile()`),
which keeps compilation out of the measured vocoding time and so out of the real-time factor. The padding only
touches the last samples of an item through the generator's receptive field, and those come from silence, as
they would at the end of a recording; each output is cut back to `frames * hop` samples.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from taco_jax.vocoder.config import HifiganConfig
from taco_jax.vocoder.generator import Generator

__all__ = ["DEFAULT_BUCKET_FRAMES", "HifiganVocoder", "VocoderTiming"]

DEFAULT_BUCKET_FRAMES = 64  # 0.74 s at 22050 Hz / hop 256: few programs, little padding


@dataclass
class VocoderTiming:
    """What vocoding cost so far: `audio_s` seconds of audio made in `compute_s` seconds (compilation excluded,
    `compile_s` apart, `programs` compiled)."""

    audio_s: float = 0.0
    compute_s: float = 0.0
    compile_s: float = 0.0
    programs: int = 0

    @property
    def real_time_factor(self) -> float:
        """Compute time per second of audio (below 1: faster than real time); nan before any audio."""
        return self.compute_s / self.audio_s if self.audio_s else math.nan

    def summary(self) -> str:
        """One line, e.g. "real-time factor 0.051 (12.30 s of audio in 0.63 s; compiling 2 programs took 8.1 s)"."""
        return (
            f"real-time factor {self.real_time_factor:.3f} ({self.audio_s:.2f} s of audio in {self.compute_s:.2f} s; "
            f"compiling {self.programs} program{'s' * (self.programs != 1)} took {self.compile_s:.1f} s)"
        )


@dataclass
class HifiganVocoder:
    """A HiFi-GAN generator (`config`, plain `params` as `taco_jax.vocoder.files.load_vocoder` gives them) that
    vocodes lists of log-mels in batches of `batch_size`.

    `silence` is the log-mel value of silence (log of the mel floor, log(1e-5) for NVIDIA's features): the padding.
    """

    config: HifiganConfig
    params: Any
    batch_size: int = 8
    bucket_frames: int = DEFAULT_BUCKET_FRAMES
    silence: float = math.log(1e-5)
    timing: VocoderTiming = field(default_factory=VocoderTiming)
    _programs: dict[tuple[int, int], Callable] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.bucket_frames < 1:
            raise ValueError(f"batch_size and bucket_frames must be >= 1, got {self.batch_size}, {self.bucket_frames}")
        generator = Generator(self.config)
        self._apply = jax.jit(lambda params, mel: generator.apply({"params": params}, mel))

    @property
    def hop(self) -> int:
        """Waveform samples per mel frame (the product of the upsampling rates)."""
        return math.prod(self.config.upsample_rates)

    def _program(self, batch: int, frames: int) -> Callable:
        """The compiled generator for mels [batch, frames, n_mels], compiled on first use and timed."""
        key = (batch, frames)
        if key not in self._programs:
            start = time.perf_counter()
            shape = jax.ShapeDtypeStruct((batch, frames, self.config.num_mels), jnp.float32)
            self._programs[key] = self._apply.lower(self.params, shape).compile()
            self.timing.compile_s += time.perf_counter() - start
            self.timing.programs += 1
        return self._programs[key]

    def __call__(self, mels: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Waveforms (float32 [frames_i * hop], in [-1, 1]) of log-mels [frames_i, num_mels], in order.

        Items are batched longest first (similar lengths share a padded length); a last, smaller batch is filled
        with copies to `batch_size` when there were several batches (one program per padded length).
        """
        n_mels = self.config.num_mels
        for i, mel in enumerate(mels):
            if mel.ndim != 2 or mel.shape[1] != n_mels or mel.shape[0] < 1:
                raise ValueError(f"mel {i}: expected [frames, {n_mels}], got shape {tuple(mel.shape)}")
        order = sorted(range(len(mels)), key=lambda i: -mels[i].shape[0])
        out: list[np.ndarray | None] = [None] * len(mels)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            b = self.batch_size if len(mels) > self.batch_size else len(chunk)
            frames = -(-mels[chunk[0]].shape[0] // self.bucket_frames) * self.bucket_frames
            batch = np.full((b, frames, n_mels), self.silence, np.float32)
            for row, i in enumerate(chunk):
                batch[row, : mels[i].shape[0]] = mels[i]
            program = self._program(b, frames)
            begin = time.perf_counter()
            wavs = np.asarray(jax.device_get(program(self.params, batch)))
            self.timing.compute_s += time.perf_counter() - begin
            for row, i in enumerate(chunk):
                out[i] = wavs[row, : mels[i].shape[0] * self.hop].astype(np.float32)
        self.timing.audio_s += sum(m.shape[0] for m in mels) * self.hop / self.config.sampling_rate
        return out  # type: ignore[return-value]
