"""Signal levels of a waveform: loudness (dBFS), clipping, and where the speech and the silences are.

Waveforms are float32 `[samples]` in [-1, 1]; positions are samples unless a name says seconds.
"""

from __future__ import annotations

import math

import numpy as np

# Samples at or above this magnitude count as full scale when looking for clipping (a 16-bit file clipped
# at 32767 reads back as 0.99997; lossy codecs smear the flat tops slightly below it).
CLIP_LEVEL = 0.999
CLIP_RUN = 3  # consecutive full-scale samples that make a clipped peak (one full-scale sample is a normalised peak)


def loudness_dbfs(wav: np.ndarray) -> tuple[float, float]:
    """(peak, RMS) of `wav` in dB relative to full scale; -inf for digital silence."""
    x = np.asarray(wav, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    rms = math.sqrt(float(np.mean(x * x))) if x.size else 0.0
    to_db = lambda v: 20.0 * math.log10(v) if v > 0 else -math.inf
    return to_db(peak), to_db(rms)


def clipped_runs(wav: np.ndarray) -> int:
    """Number of runs of at least CLIP_RUN consecutive samples at full scale (|x| >= CLIP_LEVEL)."""
    hot = np.abs(np.asarray(wav)) >= CLIP_LEVEL
    if not hot.any():
        return 0
    edges = np.diff(np.concatenate(([0], hot.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int(np.count_nonzero(ends - starts >= CLIP_RUN))


def _frame_sizes(sampling_rate: int) -> tuple[int, int]:
    """(frame length, hop) for level analysis: frames of about 46 ms (1024 samples at 22050 Hz), hop 1/4."""
    frame = 2 ** max(6, round(math.log2(0.046 * sampling_rate)))
    return frame, frame // 4


def speech_intervals(wav: np.ndarray, sampling_rate: int, top_db: float) -> np.ndarray:
    """[start, end) sample intervals [k, 2] int64 of the frames whose RMS is within `top_db` dB of the loudest
    frame's; empty [0, 2] for digital silence.

    The semantics of librosa.effects.split (frames centred on hop multiples, zero-padded at the ends), in numpy:
    librosa's first call in a process costs about two seconds of compilation, once per worker.
    """
    frame, hop = _frame_sizes(sampling_rate)
    if wav.size == 0 or not np.any(wav):
        return np.zeros((0, 2), np.int64)
    padded = np.pad(np.asarray(wav, dtype=np.float64), frame // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop]  # [n_frames, frame], a view
    power = np.einsum("ij,ij->i", frames, frames) / frame  # mean square per frame, without a [n, frame] temporary
    loud = power > power.max() * 10.0 ** (-top_db / 10.0)
    edges = np.diff(np.concatenate(([0], loud.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1) * hop, np.flatnonzero(edges == -1) * hop
    return np.stack([starts, np.minimum(ends, len(wav))], axis=1).astype(np.int64)


def trim_bounds(wav: np.ndarray, sampling_rate: int, top_db: float, keep_seconds: float) -> tuple[int, int]:
    """[start, end) of `wav` without its leading and trailing silence (quieter than `top_db` below the loudest
    frame), keeping `keep_seconds` of it at each end; (0, 0) when the whole waveform is silence."""
    intervals = speech_intervals(wav, sampling_rate, top_db)
    if len(intervals) == 0:
        return 0, 0
    keep = int(round(keep_seconds * sampling_rate))
    return max(0, int(intervals[0, 0]) - keep), min(len(wav), int(intervals[-1, 1]) + keep)


def silent_gaps(
    wav: np.ndarray, sampling_rate: int, top_db: float, min_gap_seconds: float
) -> list[tuple[float, float]]:
    """(start, end) in seconds of the pauses between speech (as `trim_bounds` hears it) that last at least
    `min_gap_seconds`, in time order; leading and trailing silence are not gaps."""
    intervals = speech_intervals(wav, sampling_rate, top_db)
    gaps = []
    for (_, end), (start, _) in zip(intervals[:-1], intervals[1:], strict=True):
        if (start - end) / sampling_rate >= min_gap_seconds:
            gaps.append((end / sampling_rate, start / sampling_rate))
    return gaps
