"""Processing one source item: decode, check levels, trim, filter, (segment,) write the wav and its mel.

Runs in the worker processes of `taco_jax.prepare.parallel`: everything it needs comes in `Settings` and
`Task` (both picklable), and it returns an `ItemResult`; it logs nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass

import numpy as np

from taco_jax.audio import AudioError, save_wav
from taco_jax.config import AudioConfig
from taco_jax.data.mel_cache import MelCache
from taco_jax.prepare import decode
from taco_jax.prepare.items import (
    SILENT,
    TOO_FAST,
    TOO_LONG,
    TOO_SHORT,
    TOO_SLOW,
    UNDECODABLE,
    Drop,
    ItemResult,
    OutputWav,
    SourceItem,
)
from taco_jax.prepare.levels import clipped_runs, loudness_dbfs, silent_gaps, trim_bounds
from taco_jax.prepare.segment import MIN_PAUSE_SECONDS, plan_segments, split_sentences

# Bump when processing changes in a way `Settings` does not capture: every item is then processed again.
PROCESS_VERSION = 1
SEGMENT_MIN_SECONDS = 2.0  # the shortest piece `--segment` cuts (unless --min-seconds is larger)


@dataclass(frozen=True)
class Settings:
    """How items are processed (the CLI's options and the config's audio settings).

    Durations in seconds, levels in dB: `silence_db` is the RMS (dBFS) below which a recording is silent,
    `trim_db` how far below the loudest frame leading/trailing audio counts as silence, `keep_seconds` the
    silence kept at each end. `out_dir` / `cache_dir` say where wavs and mels go.
    """

    out_dir: str
    audio: AudioConfig
    cache_dir: str | None
    min_seconds: float = 1.0
    max_seconds: float = 15.0
    min_cps: float = 5.0
    max_cps: float = 30.0
    segment: bool = False
    trim_db: float = 40.0
    silence_db: float = -60.0
    keep_seconds: float = 0.05

    def fingerprint(self) -> str:
        """Hash of everything that decides an item's outputs (the wav's rate, not the mel settings: mels are
        cached by the trainer's MelCache under their own key)."""
        fields = dataclasses.asdict(self)
        for key in ("out_dir", "cache_dir", "audio"):
            fields.pop(key)
        blob = json.dumps({"v": PROCESS_VERSION, "rate": self.audio.sampling_rate, **fields}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Task:
    """An item to process and where its output goes: `stem` + ".wav" (or "-NN.wav" per segment), relative to
    the output folder, '/'-separated."""

    item: SourceItem
    stem: str


def process_item(task: Task, settings: Settings) -> ItemResult:
    """Decode, check, trim, filter and write one item (see the module docstring); never raises for a bad item."""
    item, result = task.item, ItemResult()
    try:
        wav, rate = decode.decode_audio(item.audio)
    except AudioError as e:
        result.drops.append(Drop(item.source, UNDECODABLE, str(e), item.audio))
        return result
    result.source_seconds = len(wav) / rate
    peak, rms = loudness_dbfs(wav)
    if rms < settings.silence_db:
        detail = (
            f"RMS {rms:.1f} dBFS (peak {peak:.1f} dBFS) is below the silence threshold {settings.silence_db:g} dBFS"
        )
        result.drops.append(Drop(item.source, SILENT, detail, item.audio))
        return result
    n_clipped = clipped_runs(wav)
    if n_clipped:
        result.warnings.append(
            f"{item.source}: {item.audio}: clipped ({n_clipped} runs of >= 3 full-scale samples, peak {peak:.1f} dBFS)"
        )
    sr = settings.audio.sampling_rate
    wav = decode.resample(wav, rate, sr)
    start, end = trim_bounds(wav, sr, settings.trim_db, settings.keep_seconds)
    if end - start < 2:
        result.drops.append(Drop(item.source, SILENT, "nothing but silence after trimming", item.audio))
        return result
    wav = wav[start:end]
    for piece, text, source, stem in _pieces(task, wav, settings, result):
        drop = _filter(len(piece) / sr, text, settings)
        if drop is not None:
            result.drops.append(Drop(source, drop[0], drop[1], item.audio))
            continue
        result.outputs.append(_write(piece, text, stem, settings))
    return result


def _pieces(
    task: Task, wav: np.ndarray, settings: Settings, result: ItemResult
) -> list[tuple[np.ndarray, str, str, str]]:
    """(waveform, text, source, output stem) of the item, or of each segment when it is cut; a recording that
    cannot be cut yields itself, and the filter drops it as too long."""
    item, sr = task.item, settings.audio.sampling_rate
    seconds = len(wav) / sr
    if not settings.segment or seconds <= settings.max_seconds:
        return [(wav, item.text, item.source, task.stem)]
    pauses = silent_gaps(wav, sr, settings.trim_db, MIN_PAUSE_SECONDS)
    shortest = min(max(settings.min_seconds, SEGMENT_MIN_SECONDS), settings.max_seconds / 2)
    plan = plan_segments(seconds, pauses, split_sentences(item.text), shortest, settings.max_seconds)
    if isinstance(plan, str):
        detail = f"{seconds:.2f} s is longer than --max-seconds {settings.max_seconds:g}, and not segmented: {plan}"
        result.drops.append(Drop(item.source, TOO_LONG, detail, item.audio))
        return []
    out = []
    for k, p in enumerate(plan, start=1):
        piece = wav[int(round(p.start * sr)) : int(round(p.end * sr))]
        a, b = trim_bounds(piece, sr, settings.trim_db, settings.keep_seconds)
        out.append((piece[a:b], p.text, f"{item.source} segment {k}/{len(plan)}", f"{task.stem}-{k:02d}"))
    return out


def _filter(seconds: float, text: str, settings: Settings) -> tuple[str, str] | None:
    """(reason, detail) when an utterance of `seconds` with `text` is outside the duration or rate limits."""
    if seconds < settings.min_seconds:
        return TOO_SHORT, f"{seconds:.2f} s is shorter than --min-seconds {settings.min_seconds:g}"
    if seconds > settings.max_seconds:
        return TOO_LONG, f"{seconds:.2f} s is longer than --max-seconds {settings.max_seconds:g}"
    cps = len(text) / seconds if seconds > 0 else math.inf
    if cps > settings.max_cps:
        return (
            TOO_FAST,
            f"{cps:.1f} characters/s ({len(text)} in {seconds:.2f} s) is above --max-cps {settings.max_cps:g}",
        )
    if cps < settings.min_cps:
        return (
            TOO_SLOW,
            f"{cps:.1f} characters/s ({len(text)} in {seconds:.2f} s) is below --min-cps {settings.min_cps:g}",
        )
    return None


def _write(wav: np.ndarray, text: str, stem: str, settings: Settings) -> OutputWav:
    """Write `wav` as 16-bit PCM to `<out_dir>/<stem>.wav` (atomically) and put its mel in the trainer's cache.

    The mel is computed from the written file, read back as the trainer reads it, so the cached mel is exactly
    the one training would compute.
    """
    rel = stem + ".wav"
    path = os.path.join(settings.out_dir, *rel.split("/"))
    save_wav(path, wav, settings.audio.sampling_rate)
    MelCache(settings.cache_dir, settings.audio).get(path)
    st = os.stat(path)
    return OutputWav(rel, text, len(wav) / settings.audio.sampling_rate, st.st_size, st.st_mtime_ns)


# The settings of this worker process (set once by `init_worker`, so they are not pickled with every task).
_SETTINGS: Settings | None = None


def init_worker(settings: Settings) -> None:
    """Process-pool initializer: remember `settings` for `run_task`."""
    global _SETTINGS
    _SETTINGS = settings


def run_task(task: Task) -> tuple[Task, ItemResult]:
    """`process_item` with the worker's settings; returns the task with its result."""
    assert _SETTINGS is not None, "init_worker was not called in this process"
    return task, process_item(task, _SETTINGS)
