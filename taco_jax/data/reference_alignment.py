"""Reference alignments from a synthesizer's word timings (eSpeak NG reports where each word starts).

A reference alignment is the text position being spoken at each decoder step: the ground truth that
attention diagnostics can be measured against, and the ceiling of any metric that compares attention
with the straight diagonal (band diagonality) on a given corpus.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from taco_jax.demo.espeak import WordTiming


def reference_path(
    words: Sequence[WordTiming], n_tokens: int, n_samples: int, n_steps: int, samples_per_step: float
) -> np.ndarray:
    """Token index spoken at the centre of each decoder step, int32 `[n_steps]`.

    Between word starts the position moves linearly through the characters (the word, then the space or
    punctuation after it); after the last word start it moves on to the final token (the end-of-sentence
    token when there is one) at the end of the audio. `words` index the same characters as the token ids
    (cleaned text, one id per character); `samples_per_step` = hop_length * r.
    """
    if not words:
        raise ValueError("reference_path needs at least one word timing")
    if n_tokens < 1 or n_steps < 1:
        raise ValueError(f"need n_tokens >= 1 and n_steps >= 1, got {n_tokens}, {n_steps}")
    times = [w.sample / samples_per_step for w in words] + [max(n_samples / samples_per_step, 1e-6)]
    positions = [w.char_start for w in words] + [n_tokens - 1]
    if any(b < a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError("word timings must be in time order")
    centres = np.arange(n_steps) + 0.5
    path = np.interp(centres, np.asarray(times, np.float64), np.asarray(positions, np.float64))
    return np.clip(np.rint(path), 0, n_tokens - 1).astype(np.int32)


def one_hot_alignment(path: np.ndarray, n_tokens: int) -> np.ndarray:
    """Hard alignment `[n_steps, n_tokens]` float32 from a path of token indices `[n_steps]`."""
    return np.eye(n_tokens, dtype=np.float32)[path]
