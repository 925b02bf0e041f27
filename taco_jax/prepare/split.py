"""The validation split: a deterministic, speaker-stratified fraction of the utterances."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence


def val_counts(sizes: dict[str, int], fraction: float) -> dict[str, int]:
    """Validation utterances per speaker: round(fraction x total) in all (at least 1 when there are 2 or more
    utterances), shared in proportion to each speaker's count by largest remainder, never a speaker's last
    utterance (a speaker must stay in training to be learned)."""
    total = sum(sizes.values())
    target = max(1, round(fraction * total)) if total >= 2 and fraction > 0 else 0
    # The floors sum to at most floor(fraction x total) <= target, so counts only ever grow below.
    counts = {s: max(0, min(math.floor(fraction * n), n - 1)) for s, n in sizes.items()}
    # Largest remainder first; ties (and then speakers with room left) in name order, so the split is stable.
    order = sorted(sizes, key=lambda s: (-(fraction * sizes[s] - math.floor(fraction * sizes[s])), s))
    while sum(counts.values()) < target:
        room = [s for s in order if counts[s] < sizes[s] - 1]
        if not room:
            break
        for s in room[: target - sum(counts.values())]:
            counts[s] += 1
    return counts


def stratified_split(keys: Sequence[str], speakers: Sequence[str], fraction: float) -> list[bool]:
    """For each utterance (a unique `key`, e.g. its wav path, and its speaker): True if it goes to validation.

    Deterministic: within a speaker the utterances whose key hashes lowest are chosen, so the choice does not
    depend on the corpus order and mostly survives adding or removing other utterances.
    """
    by_speaker: dict[str, list[int]] = defaultdict(list)
    for i, spk in enumerate(speakers):
        by_speaker[spk].append(i)
    counts = val_counts({s: len(ix) for s, ix in by_speaker.items()}, fraction)
    is_val = [False] * len(keys)
    for spk, indices in by_speaker.items():
        ranked = sorted(indices, key=lambda i: hashlib.sha1(keys[i].encode("utf-8")).hexdigest())
        for i in ranked[: counts[spk]]:
            is_val[i] = True
    return is_val
