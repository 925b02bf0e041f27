"""The outputs of a prepared corpus: filelists, speakers.json, mel_mean.npy, and the reports.

`train.txt` / `val.txt` hold `wavs/<speaker>/<id>.wav|text` lines (paths relative to the output folder), with
a third column, the speaker id of `speakers.json`, when the corpus has more than one speaker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re

import numpy as np
from tqdm.auto import tqdm

from taco_jax.config import Config
from taco_jax.data.filelist import DataError
from taco_jax.data.mel_cache import MelCache
from taco_jax.files import atomic_output, write_text_atomic
from taco_jax.prepare.frontend import FrontEnd
from taco_jax.prepare.items import Drop, ItemResult, Outcome, Utterance
from taco_jax.prepare.options import PrepareOptions, PrepareResult
from taco_jax.prepare.readers import ReadResult
from taco_jax.prepare.report import write_report
from taco_jax.prepare.split import stratified_split

logger = logging.getLogger("taco_jax.prepare")

TRAIN_FILELIST, VAL_FILELIST = "train.txt", "val.txt"
SPEAKERS_FILE, MEL_MEAN_FILE = "speakers.json", "mel_mean.npy"
_SOURCE_RE = re.compile(r"^(.*):(\d+)(?: segment (\d+)/\d+)?$")


def write_outputs(
    results: list[Outcome],
    read: ReadResult,
    front: FrontEnd,
    cfg: Config,
    opts: PrepareOptions,
    config_source: tuple[str | None, list[str]],
) -> PrepareResult:
    """Split the kept utterances, write the filelists, speakers.json, mel_mean.npy and the reports into
    `opts.out`.

    `results`: (item, its result, its status) in corpus order. `config_source`: the config file and `--set`
    overrides `cfg` came from. Raises DataError, after writing the reports, when no utterance was kept.
    """
    out_dir = os.path.abspath(opts.out)
    drops = ordered_drops(read, [r for _, r, _ in results])
    utts = [Utterance(o.wav, o.text, it.speaker, o.seconds, it.source) for it, r, _ in results for o in r.outputs]
    speakers = speaker_ids({u.speaker for u in utts})
    is_val = stratified_split([u.wav for u in utts], [u.speaker for u in utts], opts.val_fraction)
    train = [u for u, v in zip(utts, is_val, strict=True) if not v]
    val = [u for u, v in zip(utts, is_val, strict=True) if v]
    for u in utts:
        u.n_symbols = front.encode(u.text)[0]
    result = PrepareResult(out_dir, train, val, drops)
    if train:
        mel_mean = measure_mels(train, val, cfg, out_dir, opts.progress)
        _write_filelists(out_dir, train, val, speakers)
        with atomic_output(os.path.join(out_dir, MEL_MEAN_FILE)) as tmp, open(tmp, "wb") as f:
            np.save(f, mel_mean, allow_pickle=False)
    else:  # stale lists of an earlier run would name wavs that are gone now
        for name in (TRAIN_FILELIST, VAL_FILELIST, SPEAKERS_FILE, MEL_MEAN_FILE):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(out_dir, name))
    result.report = write_report(results, result, read, front, cfg, opts, speakers, config_source)
    if not train:
        raise DataError(
            f"{read.metadata_files[0]}: no utterance was kept (all {len(drops)} dropped); "
            f"see {os.path.join(out_dir, 'report.md')}"
        )
    return result


def speaker_ids(names: set[str]) -> dict[str, int]:
    """Speaker name -> id 0..K-1, in name order (numeric names in numeric order: "2" before "10")."""
    ordered = sorted(names, key=lambda n: (0, int(n), "") if n.isdigit() else (1, 0, n))
    return {name: i for i, name in enumerate(ordered)}


def ordered_drops(read: ReadResult, results: list[ItemResult]) -> list[Drop]:
    """Every drop (malformed lines and items) in corpus order: metadata file, line, segment."""
    files = {path: i for i, path in enumerate(read.metadata_files)}

    def key(drop: Drop) -> tuple[int, int, int, str]:
        m = _SOURCE_RE.match(drop.source)
        if m is None:
            return len(files), 0, 0, drop.source
        return files.get(m.group(1), len(files)), int(m.group(2)), int(m.group(3) or 0), drop.source

    return sorted([*read.malformed, *(d for r in results for d in r.drops)], key=key)


def measure_mels(
    train: list[Utterance], val: list[Utterance], cfg: Config, out_dir: str, progress: bool = True
) -> np.ndarray:
    """Fill in each utterance's mel frame count from the trainer's mel cache (computing a mel only if the
    cache lost it) and return the frame-weighted mean log-mel of `train`: float32 [n_mels]."""
    cache = MelCache(cfg.data.cache_dir or None, cfg.audio)
    total = np.zeros(cfg.audio.n_mels, np.float64)  # float64: millions of frames sum without drift
    frames = 0
    n_train = len(train)
    for i, u in enumerate(tqdm([*train, *val], desc="mels", unit="utt", disable=not progress, leave=False)):
        mel = cache.get(os.path.join(out_dir, *u.wav.split("/")))
        u.frames = mel.shape[0]
        if i < n_train:
            total += mel.sum(axis=0, dtype=np.float64)
            frames += mel.shape[0]
    return (total / max(frames, 1)).astype(np.float32)


def _write_filelists(out_dir: str, train: list[Utterance], val: list[Utterance], speakers: dict[str, int]) -> None:
    multi = len(speakers) > 1
    line = (lambda u: f"{u.wav}|{u.text}|{speakers[u.speaker]}\n") if multi else (lambda u: f"{u.wav}|{u.text}\n")
    speakers_path = os.path.join(out_dir, SPEAKERS_FILE)
    if multi:
        write_text_atomic(speakers_path, json.dumps(speakers, indent=2, ensure_ascii=False) + "\n")
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(speakers_path)  # from an earlier run with more speakers
    write_text_atomic(os.path.join(out_dir, VAL_FILELIST), "".join(map(line, val)))
    write_text_atomic(os.path.join(out_dir, TRAIN_FILELIST), "".join(map(line, train)))
