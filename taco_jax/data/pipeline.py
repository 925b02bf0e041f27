"""Validation, bucketing and batching of (text ids, log-mel) pairs.

Flow: filelist lines (`Utterance`) -> `prepare_split` (encode text, load/cache mels, drop or reject bad and
too-long items, `DataReport`) -> `Item`s -> `BatchLoader` (training: infinite, shuffled, resumable) or
`eval_batches` (validation: fixed order, every item once). Every batch has one of the fixed bucket shapes
from `cfg.data.buckets`, so the jitted train step compiles once per bucket.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grain
import numpy as np
from tqdm.auto import tqdm

from taco_jax.audio import AudioError, audio_header
from taco_jax.batch import Batch, EvalBatch
from taco_jax.config import Config
from taco_jax.data.filelist import DataError, Utterance, read_filelist
from taco_jax.data.mel_cache import MelCache
from taco_jax.text import SymbolTable, clean_text, cleaned_away, get_symbol_table, sequence_to_text, text_to_sequence

logger = logging.getLogger("taco_jax.data")

Shape = tuple[int, int]  # (text_len, mel_frames) of a bucket

# Reasons an item is dropped (keys of DataReport.dropped).
EMPTY_TEXT = "empty_text"
MISSING_WAV = "missing_wav"
UNREADABLE_WAV = "unreadable_wav"
TOO_LONG = "too_long"

N_TEXT_SAMPLES = 3  # train utterances shown raw -> cleaned -> symbols at start-up
N_LOSSY_SOURCES = 5  # filelist lines named as losing characters
N_TOP_LOST = 10  # lost characters named in messages


@dataclass
class TextCoverage:
    """How much of a split's text reaches the model, over the texts with anything left (a text that loses every
    character is an empty_text bad item instead).

    n_kept: symbols kept (pad, EOS and spaces not counted). lost: characters lost, with counts: those the symbol
    table drops, and letters, digits and symbols the cleaners delete (not the whitespace and punctuation they
    normalise). n_lossy: texts that lose any; lossy_sources: the first N_LOSSY_SOURCES of them (`file:line`).
    """

    n_kept: int = 0
    lost: Counter[str] = field(default_factory=Counter)
    n_lossy: int = 0
    lossy_sources: list[str] = field(default_factory=list)

    def add(self, source: str, n_kept: int, lost: Counter[str]) -> None:
        """Count one text."""
        self.n_kept += n_kept
        if lost:
            self.lost.update(lost)
            self.n_lossy += 1
            if len(self.lossy_sources) < N_LOSSY_SOURCES:
                self.lossy_sources.append(source)

    @property
    def lost_share(self) -> float:
        """Lost characters / (kept symbols + lost characters); 0 for no text."""
        n_lost = sum(self.lost.values())
        return n_lost / (self.n_kept + n_lost) if self.n_kept + n_lost else 0.0

    def top_lost(self) -> str:
        """The most often lost characters with their counts, as in "'ж' x40, '😀' x2 (+3 more)"."""
        top = ", ".join(f"{ch!r} x{n}" for ch, n in self.lost.most_common(N_TOP_LOST))
        more = len(self.lost) - N_TOP_LOST
        return top + (f" (+{more} more)" if more > 0 else "")

    def summary(self) -> str:
        """One line: the share kept, and what is lost where."""
        line = f"symbol coverage: {1 - self.lost_share:.2%} of {self.n_kept + sum(self.lost.values())} characters kept"
        if self.lost:
            line += f"; lost: {self.top_lost()}, in {self.n_lossy} text(s) (first: {', '.join(self.lossy_sources)})"
        return line

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable view."""
        return {"n_kept": self.n_kept, "lost": dict(self.lost.most_common()), "lost_share": self.lost_share,
                "n_lossy": self.n_lossy, "lossy_sources": list(self.lossy_sources)}  # fmt: skip


def text_losses(
    text: str, ids: np.ndarray, dropped: Counter[str], table: SymbolTable, cfg: Config
) -> tuple[int, Counter[str]]:
    """(kept, lost) of one text: `ids` and `dropped` are its `text_to_sequence`; kept counts its symbols other
    than pad, EOS and spaces; lost adds to `dropped` the letters, digits and symbols the cleaners delete."""
    silent = {table.pad_id, table.eos_id} | {i for i, sym in enumerate(table.symbols) if sym.isspace()}
    kept = sum(int(i) not in silent for i in ids)
    deleted = cleaned_away(text, cfg.text.cleaners)
    return kept, dropped + deleted


@dataclass(frozen=True, eq=False)
class Item:
    """One validated training pair.

    text: int32 [N] symbol ids (with the EOS id last when `text.add_eos`).
    mel: float32 [T, n_mels] natural-log mel spectrogram, T = true frame count (never truncated).
    speaker: integer speaker id. source: `file:line` of the filelist line.
    wav_path / transcript: the audio file and the raw filelist text (for synthesis references and logs).
    """

    text: np.ndarray
    mel: np.ndarray
    speaker: int
    source: str
    wav_path: str = ""
    transcript: str = ""


@dataclass
class DataReport:
    """What `prepare_split` kept and dropped for one split.

    n_lines: utterances read. n_kept: items kept. dropped: count per reason (empty_text, missing_wav,
    unreadable_wav, too_long). unknown_chars: characters the text encoder dropped, summed over
    the split. coverage: the share of text characters kept (TextCoverage). bucket_counts: kept items per bucket
    shape (text_len, mel_frames). audio_seconds: kept audio, measured as mel frames * hop_length /
    sampling_rate (within one hop per item of the wav duration).
    """

    name: str = "data"
    n_lines: int = 0
    n_kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    unknown_chars: Counter[str] = field(default_factory=Counter)
    bucket_counts: dict[Shape, int] = field(default_factory=dict)
    audio_seconds: float = 0.0
    coverage: TextCoverage = field(default_factory=TextCoverage)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable view (bucket shapes as "NxT" keys)."""
        return {
            "name": self.name,
            "n_lines": self.n_lines,
            "n_kept": self.n_kept,
            "dropped": dict(sorted(self.dropped.items())),
            "unknown_chars": dict(self.unknown_chars.most_common()),
            "bucket_counts": {f"{n}x{t}": c for (n, t), c in self.bucket_counts.items()},
            "audio_seconds": round(self.audio_seconds, 3),
            "coverage": self.coverage.to_dict(),
        }

    def summary(self) -> str:
        """A few human-readable lines."""
        hours = self.audio_seconds / 3600
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items()) if v) or "none"
        lines = [
            f"{self.name}: {self.n_lines} lines, {self.n_kept} kept ({self.audio_seconds:.1f} s = {hours:.2f} h "
            f"of audio); dropped: {dropped}",
            "  items per bucket [text_len x mel_frames]: "
            + (", ".join(f"{n}x{t}: {c}" for (n, t), c in self.bucket_counts.items()) or "none"),
            f"  {self.coverage.summary()}",
        ]
        if self.unknown_chars:
            chars = ", ".join(f"{ch!r} x{c}" for ch, c in self.unknown_chars.most_common(20))
            more = len(self.unknown_chars) - 20
            lines.append(
                f"  characters not in the symbol table (dropped): {chars}" + (f" (+{more} more)" if more > 0 else "")
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Buckets


def sorted_buckets(cfg: Config) -> list[Shape]:
    """Bucket shapes (text_len, mel_frames), sorted by mel_frames then text_len, duplicates removed.

    Sorting makes "first bucket that holds the item" mean "smallest one", whatever order the config lists.
    """
    return sorted({(int(n), int(t)) for n, t in cfg.data.buckets}, key=lambda s: (s[1], s[0]))


def assign_bucket(text_len: int, mel_frames: int, shapes: Sequence[Shape], r: int) -> int | None:
    """Index of the first shape holding `text_len` tokens and `mel_frames` rounded up to a multiple of r.

    None when no shape fits (the item is too long; it is dropped, never truncated).
    """
    padded = -(-mel_frames // r) * r  # the decoder emits r frames per step, so the target is padded to r
    for i, (n, t) in enumerate(shapes):
        if text_len <= n and padded <= t:
            return i
    return None


def _group_by_bucket(items: Sequence[Item], shapes: Sequence[Shape], r: int) -> list[list[int]]:
    groups: list[list[int]] = [[] for _ in shapes]
    for i, it in enumerate(items):
        b = assign_bucket(len(it.text), it.mel.shape[0], shapes, r)
        if b is None:
            raise DataError(
                f"{it.source}: item ({len(it.text)} tokens, {it.mel.shape[0]} frames) fits no bucket; "
                "items must come from prepare_split"
            )
        groups[b].append(i)
    return groups


# --------------------------------------------------------------------------------------------------------------
# Preparation


def prepare_split(
    utterances: Sequence[Utterance],
    cfg: Config,
    table: SymbolTable,
    mel_cache: MelCache,
    progress: bool = True,
    name: str = "data",
) -> tuple[list[Item], DataReport]:
    """Encode, load (through the mel cache) and validate utterances, in filelist order.

    Bad items (empty text, missing or unreadable audio) raise DataError naming `file:line` unless
    `cfg.data.skip_bad_items`, in which case they are dropped, counted and logged. Items that fit no bucket
    are always dropped and counted as too_long (by their header's duration when that is enough, without
    decoding them). Wavs whose rate holds nothing up to `audio.fmax` are named in one warning per rate.
    Returns the kept items and the split's DataReport.
    """
    shapes = sorted_buckets(cfg)
    r = cfg.model.n_frames_per_step
    report = DataReport(name=name, n_lines=len(utterances), bucket_counts={s: 0 for s in shapes})
    items: list[Item] = []
    kept_frames = 0

    def bad(u: Utterance, reason: str, detail: str) -> None:
        msg = f"{u.source}: {detail}"
        if not cfg.data.skip_bad_items:
            raise DataError(f"{msg} (set data.skip_bad_items=true to drop such items)")
        report.dropped[reason] += 1
        logger.warning("skipping bad item (%s): %s", reason, msg)

    n_speakers = max(cfg.model.n_speakers, 1)
    # Items longer than the largest bucket are dropped by the duration in their header, before any decoding (a
    # 2-hour wav is 300 MB of samples). One hop of margin covers resampling's rounding of the length.
    hop, sr = cfg.audio.hop_length, cfg.audio.sampling_rate
    max_seconds = (max((t for _, t in shapes), default=0) + 1) * hop / sr
    band_limited: dict[int, list[str]] = {}  # file rate -> sources, for rates whose Nyquist is below audio.fmax
    for u in tqdm(utterances, desc=f"{name} mels", unit="utt", disable=not progress, leave=False):
        if u.speaker >= n_speakers:  # a setup error, never a bad item to skip
            raise DataError(
                f"{u.source}: speaker id {u.speaker}, but config key 'model.n_speakers' = {cfg.model.n_speakers} "
                f"allows ids 0..{n_speakers - 1}"
            )
        ids, unknown = text_to_sequence(u.text, table, cfg.text.cleaners, cfg.text.add_eos)
        ids = np.asarray(ids, dtype=np.int32)
        report.unknown_chars.update(unknown)
        if len(ids) - int(cfg.text.add_eos) <= 0:  # an EOS alone is no text
            extra = f"; characters not in the symbol table: {''.join(sorted(unknown))!r}" if unknown else ""
            bad(u, EMPTY_TEXT, f"empty text after cleaning/encoding: {u.text!r}{extra}")
            continue
        report.coverage.add(u.source, *text_losses(u.text, ids, unknown, table, cfg))
        header = audio_header(u.wav_path)  # None: unreadable, and mel_cache.get says why
        if header is not None:
            seconds, rate = header
            if seconds > max_seconds:
                report.dropped[TOO_LONG] += 1
                logger.debug("%s: too long for every bucket (%.1f s by its header)", u.source, seconds)
                continue
            if rate < sr and rate / 2 < cfg.audio.fmax:
                band_limited.setdefault(rate, []).append(u.source)
        try:
            mel = mel_cache.get(u.wav_path)
        except AudioError as e:
            reason = UNREADABLE_WAV if os.path.exists(u.wav_path) else MISSING_WAV
            bad(u, reason, str(e))
            continue
        b = assign_bucket(len(ids), mel.shape[0], shapes, r)
        if b is None:
            report.dropped[TOO_LONG] += 1
            logger.debug("%s: too long for every bucket (%d tokens, %d frames)", u.source, len(ids), mel.shape[0])
            continue
        report.bucket_counts[shapes[b]] += 1
        kept_frames += mel.shape[0]
        items.append(Item(ids, mel, u.speaker, u.source, u.wav_path, u.text))

    for rate, sources in sorted(band_limited.items()):
        logger.warning(
            "%s: %d wav(s) at %d Hz (first: %s) are upsampled to %d Hz: they hold nothing above %d Hz, so their "
            "mel bands up to audio.fmax=%g Hz stay empty (band-limited, muffled speech)",
            name, len(sources), rate, sources[0], sr, rate // 2, cfg.audio.fmax,
        )  # fmt: skip
    report.n_kept = len(items)
    report.audio_seconds = kept_frames * cfg.audio.hop_length / cfg.audio.sampling_rate
    return items, report


def global_mel_mean(items: Sequence[Item]) -> np.ndarray:
    """Frame-weighted mean log-mel over all frames of all items: float32 [n_mels]."""
    if not items:
        raise DataError("cannot compute the mel mean of an empty split")
    total = np.zeros(items[0].mel.shape[1], np.float64)  # float64 so millions of frames sum without drift
    frames = 0
    for it in items:
        total += it.mel.sum(axis=0, dtype=np.float64)
        frames += it.mel.shape[0]
    return (total / frames).astype(np.float32)


# --------------------------------------------------------------------------------------------------------------
# Batching


def collate(items: Sequence[Item], shape: Shape) -> Batch:
    """Pad `items` into a Batch of shape (N, T) = `shape`; B = len(items). Items must fit the shape."""
    n, t = shape
    b = len(items)
    n_mels = items[0].mel.shape[1]
    text = np.zeros((b, n), np.int32)
    mel = np.zeros((b, t, n_mels), np.float32)
    gate = np.zeros((b, t), np.float32)
    text_len = np.zeros(b, np.int32)
    mel_len = np.zeros(b, np.int32)
    speaker = np.zeros(b, np.int32)
    for i, it in enumerate(items):
        tl, ml = len(it.text), it.mel.shape[0]
        if tl > n or ml > t:
            raise ValueError(f"{it.source}: item ({tl} tokens, {ml} frames) does not fit bucket {shape}")
        text[i, :tl] = it.text
        mel[i, :ml] = it.mel
        gate[i, ml - 1 :] = 1.0  # stop from the last real frame on; padding frames stay "stopped"
        text_len[i], mel_len[i], speaker[i] = tl, ml, it.speaker
    return Batch(text, text_len, mel, mel_len, gate, speaker)


def random_batch(seed: int, text_len: Sequence[int], mel_len: Sequence[int], n_symbols: int, n_mels: int = 80) -> Batch:
    """A Batch of random tokens in [1, n_symbols) and log-mels ~ N(-5, 2), for tests and benchmarks.

    Item i has text_len[i] tokens and mel_len[i] frames; the batch is padded to the longest of each and
    collated like real data (gate 1 from the last valid frame on). Deterministic in `seed`.
    """
    rng = np.random.default_rng(seed)
    items = [
        Item(
            text=rng.integers(1, n_symbols, int(tl)).astype(np.int32),
            mel=rng.normal(-5.0, 2.0, (int(ml), n_mels)).astype(np.float32),
            speaker=0,
            source=f"random_batch[{i}]",
        )
        for i, (tl, ml) in enumerate(zip(text_len, mel_len, strict=True))
    ]
    return collate(items, (max(int(t) for t in text_len), max(int(m) for m in mel_len)))


def _chunk(indices: Sequence[int], size: int, drop_remainder: bool) -> list[tuple[int, ...]]:
    """Split into batches of `size`; a short last batch is dropped or filled by cycling its own items."""
    out = []
    for start in range(0, len(indices), size):
        chunk = list(indices[start : start + size])
        if len(chunk) < size:
            if drop_remainder:
                break
            chunk = [chunk[i % len(chunk)] for i in range(size)]
        out.append(tuple(int(i) for i in chunk))
    return out


class BatchLoader:
    """Infinite, shuffled, resumable training batches (numpy `Batch`).

    Epoch e: items of each bucket are shuffled with seed (seed, e) and cut into batches of
    `cfg.data.batch_size`; then the batch order is shuffled across buckets. The plan is a
    `grain.MapDataset` (random access), so the whole iterator state is {"epoch", "position"} and resuming
    from a saved state yields exactly the batches an uninterrupted iterator would.
    """

    def __init__(self, items: Sequence[Item], cfg: Config, seed: int | None = None):
        if cfg.data.batch_size < 1:
            raise DataError(f"data.batch_size must be >= 1, got {cfg.data.batch_size}")
        self._items = list(items)
        self._shapes = sorted_buckets(cfg)
        self._batch_size = cfg.data.batch_size
        self._drop_remainder = cfg.data.drop_remainder
        self._seed = cfg.run.seed if seed is None else seed
        self._groups = _group_by_bucket(self._items, self._shapes, cfg.model.n_frames_per_step)
        self._n_batches = [
            len(g) // self._batch_size if self._drop_remainder else math.ceil(len(g) / self._batch_size)
            for g in self._groups
        ]
        self._steps = sum(self._n_batches)
        if self._steps == 0:
            raise DataError(
                f"no full training batch: {len(self._items)} items over {len(self._shapes)} buckets with "
                f"data.batch_size={self._batch_size}; lower the batch size or set data.drop_remainder=false"
            )
        for shape, g, nb in zip(self._shapes, self._groups, self._n_batches, strict=True):
            if g and nb == 0:
                logger.warning(
                    "bucket %s holds %d items < data.batch_size=%d: they are never trained on (drop_remainder)",
                    shape,
                    len(g),
                    self._batch_size,
                )
        self._epoch = 0
        self._position = 0
        self._dataset: grain.MapDataset | None = None
        self._dataset_epoch = -1

    @property
    def bucket_shapes(self) -> list[Shape]:
        """Shapes (text_len, mel_frames) that training batches take, smallest first."""
        return [s for s, nb in zip(self._shapes, self._n_batches, strict=True) if nb]

    @property
    def steps_per_epoch(self) -> int:
        return self._steps

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def epoch_plan(self, epoch: int) -> list[tuple[int, tuple[int, ...]]]:
        """The epoch's batches as (bucket index, item indices), in training order."""
        rng = np.random.default_rng((self._seed, epoch))
        plan = []
        for b, group in enumerate(self._groups):
            perm = rng.permutation(group) if group else []
            plan += [(b, chunk) for chunk in _chunk(perm, self._batch_size, self._drop_remainder)]
        order = rng.permutation(len(plan))
        return [plan[i] for i in order]

    def epoch_dataset(self, epoch: int) -> grain.MapDataset:
        """Random-access dataset of the epoch's `Batch`es (length steps_per_epoch)."""
        return grain.MapDataset.source(self.epoch_plan(epoch)).map(self._collate_entry)

    def _collate_entry(self, entry: tuple[int, tuple[int, ...]]) -> Batch:
        b, indices = entry
        return collate([self._items[i] for i in indices], self._shapes[b])

    def get_state(self) -> dict[str, int]:
        """Position of the next batch: {"epoch": int, "position": int} (JSON-serializable)."""
        return {"epoch": self._epoch, "position": self._position}

    def set_state(self, state: dict[str, int]) -> None:
        """Resume at a state returned by `get_state` (of a loader built on the same items and config)."""
        try:
            epoch, position = int(state["epoch"]), int(state["position"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"invalid loader state {state!r}; expected {{'epoch': int, 'position': int}}") from None
        if epoch < 0 or not 0 <= position <= self._steps:
            raise ValueError(f"loader state {state!r} out of range (steps_per_epoch={self._steps})")
        self._epoch, self._position = epoch, position

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        if self._position >= self._steps:
            self._epoch += 1
            self._position = 0
        if self._dataset_epoch != self._epoch:
            self._dataset = self.epoch_dataset(self._epoch)
            self._dataset_epoch = self._epoch
        assert self._dataset is not None
        batch = self._dataset[self._position]
        self._position += 1
        return batch


def eval_batches(items: Sequence[Item], cfg: Config) -> list[EvalBatch]:
    """Deterministic evaluation batches: bucket by bucket (smallest first), items in their given order, each
    exactly once; the last batch of a bucket is filled to `cfg.data.batch_size` by repeating its own items,
    so evaluation compiles one program per bucket shape."""
    shapes = sorted_buckets(cfg)
    groups = _group_by_bucket(items, shapes, cfg.model.n_frames_per_step)
    size = cfg.data.batch_size
    out = []
    for shape, group in zip(shapes, groups, strict=True):
        for start in range(0, len(group), size):
            real = group[start : start + size]
            padded = [real[i % len(real)] for i in range(size)]
            out.append(EvalBatch(collate([items[i] for i in padded], shape), len(real)))
    return out


# --------------------------------------------------------------------------------------------------------------
# Top level


@dataclass
class DataBundle:
    """Everything the trainer needs from the data side."""

    table: SymbolTable
    train_loader: BatchLoader
    val_batches: list[EvalBatch]
    train_report: DataReport
    val_report: DataReport
    mel_mean: np.ndarray  # float32 [n_mels], frame-weighted mean of the training log-mels
    train_items: list[Item]
    val_items: list[Item]
    train_filelist: str = ""
    val_filelist: str = ""  # "" when validation is held out from the training filelist


def holdout_split(utterances: Sequence[Utterance], fraction: float = 0.05) -> tuple[list[Utterance], list[Utterance]]:
    """(train, val): the last `fraction` of the lines (at least one) become validation; deterministic."""
    if len(utterances) < 2:
        raise DataError(f"need at least 2 utterances to hold out a validation set, got {len(utterances)}")
    n_val = max(1, int(len(utterances) * fraction))
    return list(utterances[:-n_val]), list(utterances[-n_val:])


def _read_nonempty_filelist(path: str) -> list[Utterance]:
    utterances = read_filelist(path)
    if not utterances:
        raise DataError(f"{path}: the filelist holds no utterances (expected 'path|text[|speaker]' lines)")
    return utterances


def text_coverage(utterances: Sequence[Utterance], cfg: Config, table: SymbolTable) -> TextCoverage:
    """The TextCoverage of the utterances' texts, read without their audio: what `prepare_split` reports."""
    coverage = TextCoverage()
    for u in utterances:
        ids, dropped = text_to_sequence(u.text, table, cfg.text.cleaners, cfg.text.add_eos)
        if len(ids) - int(cfg.text.add_eos) > 0:  # an empty text is a bad item, reported by prepare_split
            coverage.add(u.source, *text_losses(u.text, ids, dropped, table, cfg))
    return coverage


def log_text_samples(utterances: Sequence[Utterance], cfg: Config, table: SymbolTable, name: str = "train") -> None:
    """Log the first N_TEXT_SAMPLES texts as the front end turns them into symbols: raw -> cleaned -> symbols
    (the table's symbols joined; what it drops is missing, its EOS shows at the end)."""
    lines = [f"{name} text samples (raw -> cleaned -> symbols, table {table.name!r}):"]
    for u in utterances[:N_TEXT_SAMPLES]:
        ids, _ = text_to_sequence(u.text, table, cfg.text.cleaners, cfg.text.add_eos)
        # The braced ARPAbet the encoder passes by is cleaned here with the rest: a display approximation.
        cleaned = clean_text(u.text, cfg.text.cleaners)
        lines.append(f"  {u.source}: {u.text!r} -> {cleaned!r} -> {sequence_to_text(ids, table)!r}")
    logger.info("%s", "\n".join(lines))


def check_coverage(coverage: TextCoverage, cfg: Config, path: str) -> None:
    """DataError (naming `path`, the share, the top lost characters, the first lines that lose some and the
    config keys to change) when the texts lose more than `text.max_dropped_share` of their characters."""
    limit = cfg.text.max_dropped_share
    if coverage.lost_share <= limit:
        return
    raise DataError(
        f"{path}: the training texts lose {coverage.lost_share:.2%} of their characters, more than config key "
        f"'text.max_dropped_share' = {limit:g}: {coverage.top_lost()} (lost in {coverage.n_lossy} line(s), first: "
        f"{', '.join(coverage.lossy_sources)}); choose a symbol table and cleaners for the language of the texts "
        f"(config keys 'text.symbols' = {cfg.text.symbols!r}, 'text.cleaners' = {list(cfg.text.cleaners)}) or "
        "raise 'text.max_dropped_share'"
    )


def build_data(cfg: Config, progress: bool = True) -> DataBundle:
    """Resolve filelists, encode and validate both splits, and build the train loader and val batches.

    `cfg.data.corpus == "demo"` builds (or reuses) the embedded demo corpus; otherwise the configured
    filelists are read (an empty val filelist holds out the last 5% of train). Logs a few train texts as the
    text front end sees them and the train texts' symbol coverage, and stops (DataError) before any audio is
    read when they lose more than `text.max_dropped_share` of their characters. Logs both reports.
    """
    table = get_symbol_table(cfg.text.symbols)
    cache = MelCache(cfg.data.cache_dir or None, cfg.audio)
    if cfg.data.corpus == "demo":
        from taco_jax.demo import build_demo_corpus  # lazy: only the demo needs the synthesizer

        train_path, val_path = build_demo_corpus(cfg.data.demo, cfg.audio, progress=progress)
        train_path, val_path = os.fspath(train_path), os.fspath(val_path)
    else:
        train_path, val_path = cfg.data.train_filelist, cfg.data.val_filelist
    train_utts = _read_nonempty_filelist(train_path)
    if val_path:
        val_utts = _read_nonempty_filelist(val_path)
    else:
        train_utts, val_utts = holdout_split(train_utts)
        logger.info("no val filelist: holding out the last %d lines of %s", len(val_utts), train_path)

    log_text_samples(train_utts, cfg, table)
    coverage = text_coverage(train_utts, cfg, table)
    logger.info("train %s", coverage.summary())
    check_coverage(coverage, cfg, train_path)
    train_items, train_report = prepare_split(train_utts, cfg, table, cache, progress, name="train")
    val_items, val_report = prepare_split(val_utts, cfg, table, cache, progress, name="val")
    logger.info("%s", train_report.summary())
    logger.info("%s", val_report.summary())
    if not train_items:
        raise DataError(f"{train_path}: no usable training items\n{train_report.summary()}")
    if not val_items:
        raise DataError(f"{val_path or train_path}: no usable validation items\n{val_report.summary()}")
    return DataBundle(
        table=table,
        train_loader=BatchLoader(train_items, cfg),
        val_batches=eval_batches(val_items, cfg),
        train_report=train_report,
        val_report=val_report,
        mel_mean=global_mel_mean(train_items),
        train_items=train_items,
        val_items=val_items,
        train_filelist=train_path,
        val_filelist=val_path,
    )
