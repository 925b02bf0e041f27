"""The vocoder's data: filelists of wavs (or of wav + teacher-forced mel pairs), random training segments and the
fixed validation utterances.

Input mels are taco_jax's centred NVIDIA log-mels `[frames, n_mels]`, frames = 1 + samples // hop (what the
Tacotron predicts): computed from the wav through the shared `MelCache`, or read from a teacher-forced `.npy`.
A training segment starting at mel frame f takes input frames [f, f + segment_size / hop) and target audio
samples [f * hop, f * hop + segment_size): frame t drives output samples [t * hop, (t + 1) * hop). An utterance
shorter than a segment starts at f = 0 and is padded: audio with zeros, mel with log(mel_floor) (the mel of
silence).

The batch of step s is a pure function of (seed, s): utterances in a per-epoch permutation drawn from
(seed, epoch), offsets drawn from (seed, s). A resumed run therefore sees exactly the batches an uninterrupted
one sees, with no loader state to store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from taco_jax.audio import AudioError, audio_header, load_wav
from taco_jax.config import AudioConfig
from taco_jax.data.filelist import DataError, filelist_lines, listed_path
from taco_jax.data.mel_cache import MelCache
from taco_jax.train_vocoder.config import VocoderConfig

log = logging.getLogger("taco_jax.train_vocoder")

__all__ = [
    "SegmentBatch",
    "SegmentLoader",
    "ValSet",
    "VocoderData",
    "VocoderItem",
    "build_vocoder_data",
    "cut_segment",
    "read_vocoder_filelist",
    "segment_start",
]


@dataclass(frozen=True)
class VocoderItem:
    """One utterance. mel_path: a teacher-forced `.npy`, or "" for the cached mel of the wav. n_frames: its
    input mel frames (1 + samples // hop). source: `file:line` of the filelist line."""

    wav_path: str
    mel_path: str
    n_frames: int
    source: str


class SegmentBatch(NamedTuple):
    mel: np.ndarray  # float32 [B, segment_size // hop, n_mels] input log-mels
    audio: np.ndarray  # float32 [B, segment_size] target waveform in [-1, 1]


def read_vocoder_filelist(path: str | os.PathLike, teacher_forced: bool) -> list[tuple[str, str, str]]:
    """(wav_path, mel_path or "", `file:line`) per line of `path`, paths resolved against its directory.

    Lines: `wav_path` or `wav_path|...` (the rest, a transcript, is ignored); with `teacher_forced`
    `wav_path|mel_path.npy[|...]`. Blank lines and lines starting with '#' are skipped.

    Raises:
      DataError: naming `file:line` (an empty path, no mel path, a mel path that is not .npy, not UTF-8) or the
        file (missing, unreadable, UTF-16, no lines).
    """
    path = os.fspath(path)
    out = []
    for source, line in filelist_lines(path):
        fields = [f.strip() for f in line.split("|")]
        if not fields[0]:
            raise DataError(f"{source}: empty wav path")
        mel = ""
        if teacher_forced:
            if len(fields) < 2 or not fields[1]:
                raise DataError(f"{source}: expected wav_path|mel_path.npy (data.teacher_forced)")
            if not fields[1].endswith(".npy"):
                raise DataError(f"{source}: the mel path {fields[1]!r} is not a .npy file (data.teacher_forced)")
            mel = listed_path(path, fields[1])
        out.append((listed_path(path, fields[0]), mel, source))
    if not out:
        raise DataError(f"{path}: the filelist holds no utterances")
    return out


def _n_samples(wav_path: str, audio: AudioConfig) -> int:
    """Samples of the wav at the configured rate: from its header when the rate matches, else decoded."""
    header = audio_header(wav_path)
    if header is not None and header[1] == audio.sampling_rate:
        return int(round(header[0] * header[1]))
    return int(load_wav(wav_path, audio.sampling_rate).shape[0])


def _check_teacher_forced(wav_path: str, mel_path: str, source: str, audio: AudioConfig) -> int:
    """The frame count of a teacher-forced mel after checking it against its wav; DataError naming `source`."""
    n_samples = _n_samples(wav_path, audio)
    try:
        mel = np.load(mel_path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{source}: {mel_path}: mel file not found") from None
    except (OSError, ValueError) as e:
        raise DataError(f"{source}: {mel_path}: cannot read the mel: {e}") from None
    expected = 1 + n_samples // audio.hop_length
    if mel.ndim != 2 or mel.shape[1] != audio.n_mels:
        raise DataError(f"{source}: {mel_path}: mel of shape {mel.shape}; expected [frames, {audio.n_mels}]")
    if not np.issubdtype(mel.dtype, np.floating):
        raise DataError(f"{source}: {mel_path}: mel of dtype {mel.dtype}; expected float32")
    if mel.shape[0] != expected:
        raise DataError(
            f"{source}: {mel_path}: {mel.shape[0]} mel frames; expected {expected} = 1 + {n_samples} samples // "
            f"hop {audio.hop_length} (a centred-framing mel aligned to {wav_path})"
        )
    if not np.isfinite(mel).all():
        raise DataError(f"{source}: {mel_path}: mel holds NaN or infinite values")
    return int(mel.shape[0])


def prepare_items(
    entries: Sequence[tuple[str, str, str]], cache: MelCache, progress: bool = False
) -> list[VocoderItem]:
    """VocoderItems of filelist entries: each wav's mel computed into the cache, or its teacher-forced mel checked.

    Raises:
      DataError: naming `file:line` for a missing or unreadable wav, or a teacher-forced mel that does not fit
        its wav (shape, frame count, dtype, non-finite values).
    """
    from tqdm.auto import tqdm

    items = []
    for wav, mel_path, source in tqdm(entries, desc="vocoder data", unit="utt", disable=not progress):
        try:
            if mel_path:
                n_frames = _check_teacher_forced(wav, mel_path, source, cache.audio_cfg)
            else:
                n_frames = int(cache.get(wav).shape[0])
        except AudioError as e:
            raise DataError(f"{source}: {e}") from None
        items.append(VocoderItem(wav, mel_path, n_frames, source))
    return items


def load_pair(item: VocoderItem, cache: MelCache) -> tuple[np.ndarray, np.ndarray]:
    """(wav float32 [samples], mel float32 [frames, n_mels]) of an item."""
    wav = load_wav(item.wav_path, cache.audio_cfg.sampling_rate)
    mel = np.load(item.mel_path, allow_pickle=False) if item.mel_path else cache.get(item.wav_path)
    return wav, np.asarray(mel, np.float32)


def segment_start(n_frames: int, segment_frames: int, rng: np.random.Generator) -> int:
    """A uniformly drawn first frame f of a segment whose audio [f*hop, (f + segment_frames)*hop) lies within
    the utterance's (n_frames - 1) * hop samples (all of which exist); 0 when the utterance is shorter."""
    last = n_frames - 1 - segment_frames
    return int(rng.integers(0, last + 1)) if last > 0 else 0


def cut_segment(
    wav: np.ndarray, mel: np.ndarray, start: int, segment_frames: int, hop: int, pad_value: float
) -> tuple[np.ndarray, np.ndarray]:
    """(mel [segment_frames, n_mels], audio [segment_frames * hop]) from frame `start`; past the end of the
    utterance the mel is `pad_value` and the audio 0."""
    mel_seg = np.full((segment_frames, mel.shape[1]), pad_value, np.float32)
    part = mel[start : start + segment_frames]
    mel_seg[: part.shape[0]] = part
    audio = np.zeros(segment_frames * hop, np.float32)
    clip = wav[start * hop : (start + segment_frames) * hop]
    audio[: clip.shape[0]] = clip
    return mel_seg, audio


class SegmentLoader:
    """Training batches of random segments; `batch(step)` depends on (seed, step) alone (see the module doc)."""

    def __init__(self, items: Sequence[VocoderItem], cache: MelCache, batch_size: int, segment_size: int, seed: int):
        self.items = list(items)
        self.cache = cache
        self.batch_size = batch_size
        self.hop = cache.audio_cfg.hop_length
        self.segment_frames = segment_size // self.hop
        self.seed = seed
        self.pad_value = float(np.log(cache.audio_cfg.mel_floor))

    @property
    def steps_per_epoch(self) -> int:
        """Full batches in one pass over the utterances (at least 1)."""
        return max(1, len(self.items) // self.batch_size)

    def indices(self, step: int) -> list[int]:
        """The utterances of step `step`'s batch: a slice of epoch step // steps_per_epoch's permutation
        (wrapping around when there are fewer utterances than a batch)."""
        epoch, k = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, 0, epoch]).permutation(len(self.items))
        return [int(order[(k * self.batch_size + j) % len(order)]) for j in range(self.batch_size)]

    def batch(self, step: int) -> SegmentBatch:
        rng = np.random.default_rng([self.seed, 1, step])
        mels, audios = [], []
        for i in self.indices(step):
            item = self.items[i]
            wav, mel = load_pair(item, self.cache)
            start = segment_start(item.n_frames, self.segment_frames, rng)
            m, a = cut_segment(wav, mel, start, self.segment_frames, self.hop, self.pad_value)
            mels.append(m)
            audios.append(a)
        return SegmentBatch(np.stack(mels), np.stack(audios))


@dataclass
class ValSet:
    """Whole validation utterances in one padded batch (one compiled program).

    mel: float32 [N, T, n_mels] (padded with log(mel_floor)); audio: float32 [N, T * hop] (zero-padded);
    n_samples: int [N] true lengths; sources: `file:line` per row.
    """

    mel: np.ndarray
    audio: np.ndarray
    n_samples: np.ndarray
    sources: list[str]


def build_val_set(items: Sequence[VocoderItem], cache: MelCache) -> ValSet:
    hop = cache.audio_cfg.hop_length
    pairs = [load_pair(it, cache) for it in items]
    n_frames = max(m.shape[0] for _, m in pairs)
    pad_value = float(np.log(cache.audio_cfg.mel_floor))
    mel = np.full((len(pairs), n_frames, cache.audio_cfg.n_mels), pad_value, np.float32)
    audio = np.zeros((len(pairs), n_frames * hop), np.float32)
    for i, (w, m) in enumerate(pairs):
        mel[i, : m.shape[0]] = m
        audio[i, : min(w.shape[0], n_frames * hop)] = w[: n_frames * hop]
    n_samples = np.array([min(w.shape[0], n_frames * hop) for w, _ in pairs], np.int32)
    return ValSet(mel, audio, n_samples, [it.source for it in items])


@dataclass
class VocoderData:
    train: SegmentLoader
    val: ValSet
    train_filelist: str
    val_filelist: str  # "" when validation is held out from the train filelist


def _filelists(cfg: VocoderConfig, progress: bool) -> tuple[str, str]:
    if cfg.data.corpus == "demo":
        from taco_jax.demo import build_demo_corpus  # lazy: only the demo needs the synthesizer

        train, val = build_demo_corpus(cfg.data.demo, cfg.audio, progress=progress)
        return os.fspath(train), os.fspath(val)
    return cfg.data.train_filelist, cfg.data.val_filelist


def build_vocoder_data(cfg: VocoderConfig, progress: bool = False) -> VocoderData:
    """The train segment loader and the validation set of the config (the demo corpus or the filelists).

    An empty val filelist holds out the last 5% of the train lines (at least one). Validation uses the first
    `data.val_utterances` lines of the val split.
    """
    d = cfg.data
    cache = MelCache(d.cache_dir or None, cfg.audio)
    train_path, val_path = _filelists(cfg, progress)
    train_entries = read_vocoder_filelist(train_path, d.teacher_forced)
    if val_path:
        val_entries = read_vocoder_filelist(val_path, d.teacher_forced)
    else:
        if len(train_entries) < 2:
            raise DataError(f"{train_path}: need at least 2 lines to hold out validation (or data.val_filelist)")
        n_val = max(1, len(train_entries) // 20)
        train_entries, val_entries = train_entries[:-n_val], train_entries[-n_val:]
        log.info("no val filelist: holding out the last %d lines of %s", n_val, train_path)
    train_items = prepare_items(train_entries, cache, progress)
    val_items = prepare_items(val_entries[: d.val_utterances], cache, progress)
    seconds = sum(it.n_frames - 1 for it in train_items) * cfg.audio.hop_length / cfg.audio.sampling_rate
    log.info("vocoder data: %d train utterances (%.1f min), %d validation utterances; input mels from %s",
             len(train_items), seconds / 60, len(val_items), "teacher-forced .npy files" if d.teacher_forced
             else "the wavs (taco_jax.audio.mel_spectrogram, cached)")  # fmt: skip
    loader = SegmentLoader(train_items, cache, d.batch_size, d.segment_size, cfg.run.seed)
    return VocoderData(loader, build_val_set(val_items, cache), train_path, val_path)
