"""Cutting a long recording into pieces at pauses, each with the sentences it covers (`--segment`).

Method: the transcript is split into sentences (after . ! ? or ... followed by a space). Where a piece must
end, the time of each sentence end is estimated in proportion to characters (the speaking rate of what is
left of the recording, re-estimated after every cut), and the cut goes to the middle of the pause of at
least MIN_PAUSE_SECONDS nearest to such an estimate (within TOLERANCE). Of the sentence ends that give a
piece between the minimum and maximum length, the latest is taken, so pieces are as long as allowed.

Limits: the text is not aligned to the audio. A cut lands on the right sentence end only while the speaking
rate is roughly constant and the pause nearest to the estimate is the sentence's own; a long pause inside a
sentence near the estimate, or a rate that changes a lot, gives two pieces with shifted texts (the
characters-per-second filter catches only gross shifts). A recording whose text is one sentence, or with no
suitable pause, is not cut and is dropped as too long.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MIN_PAUSE_SECONDS = 0.2  # shorter silences are treated as part of speech (stops, commas)
TOLERANCE_SECONDS = 1.5  # how far a pause may be from the estimated sentence end ...
TOLERANCE_FRACTION = 0.25  # ... or this fraction of the estimated piece length, whichever is larger

_SENTENCE_END_RE = re.compile(r"(?:[.!?]+|…)[\"'»”’)\]]*\s+")


@dataclass(frozen=True)
class Piece:
    """One piece of a segmented recording: [start, end) in seconds of the recording, and its sentences."""

    start: float
    end: float
    text: str


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, in order, stripped; a text without a sentence end is one sentence."""
    sentences, start = [], 0
    for m in _SENTENCE_END_RE.finditer(text):
        sentences.append(text[start : m.end()].strip())
        start = m.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def plan_segments(
    duration: float,
    pauses: Sequence[tuple[float, float]],
    sentences: Sequence[str],
    min_seconds: float,
    max_seconds: float,
) -> list[Piece] | str:
    """Pieces of `min_seconds`..`max_seconds` covering [0, duration) s, cut inside `pauses` ((start, end)
    seconds, time order), each with the sentences it covers; or why the recording cannot be cut that way."""
    if len(sentences) < 2:
        return "its text is a single sentence, so there is no sentence end to cut at"
    chars = [len(s) for s in sentences]
    pieces: list[Piece] = []
    t0, s0 = 0.0, 0
    while duration - t0 > max_seconds:
        cut = _next_cut(duration, pauses, chars, t0, s0, min_seconds, max_seconds)
        if cut is None:
            return (
                f"no pause of {MIN_PAUSE_SECONDS:g} s or more near a sentence end between {t0 + min_seconds:.1f} s "
                f"and {t0 + max_seconds:.1f} s"
            )
        j, t = cut
        pieces.append(Piece(t0, t, " ".join(sentences[s0:j])))
        t0, s0 = t, j
    pieces.append(Piece(t0, duration, " ".join(sentences[s0:])))
    return pieces


def _next_cut(
    duration: float,
    pauses: Sequence[tuple[float, float]],
    chars: Sequence[int],
    t0: float,
    s0: int,
    min_seconds: float,
    max_seconds: float,
) -> tuple[int, float] | None:
    """(index of the first sentence after the cut, cut time) for the piece starting at `t0` with sentence
    `s0`; None when no pause fits.

    Each pause in range is matched to the sentence end whose estimated time is nearest to its middle (so two
    sentence ends never claim one pause) and kept if within the tolerance; the latest match wins.
    """
    seconds_per_char = (duration - t0) / max(1, sum(chars[s0:]))
    lo, hi = t0 + min_seconds, min(t0 + max_seconds, duration - min_seconds)
    estimates = {}  # sentence j (a cut before it) -> estimated time of the end of sentence j - 1
    covered = 0
    for j in range(s0 + 1, len(chars)):
        covered += chars[j - 1]
        estimates[j] = t0 + seconds_per_char * covered
    best: tuple[int, float] | None = None
    for a, b in pauses:
        mid = (a + b) / 2
        if not lo <= mid <= hi or not estimates:
            continue
        j = min(estimates, key=lambda k: abs(estimates[k] - mid))
        tolerance = max(TOLERANCE_SECONDS, TOLERANCE_FRACTION * (estimates[j] - t0))
        if abs(estimates[j] - mid) > tolerance:
            continue
        if best is None or j > best[0] or (j == best[0] and abs(mid - estimates[j]) < abs(best[1] - estimates[j])):
            best = (j, mid)
    return best
