"""Batch types shared by the data pipeline, the train step and notebooks (numpy only, no data dependencies)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """A padded batch with a fixed bucket shape (N, T) = (text_len, mel_frames).

    text: int32 [B, N], 0-padded. text_len: int32 [B] true token counts.
    mel: float32 [B, T, n_mels], 0-padded. mel_len: int32 [B] true frame counts.
    gate: float32 [B, T]: 0 before the last valid frame, 1 from frame mel_len-1 on (padding included).
    speaker: int32 [B].
    """

    text: np.ndarray
    text_len: np.ndarray
    mel: np.ndarray
    mel_len: np.ndarray
    gate: np.ndarray
    speaker: np.ndarray


class EvalBatch(NamedTuple):
    """An evaluation batch; rows [0, n_real) are distinct items, rows [n_real, B) repeat them as padding."""

    batch: Batch
    n_real: int
