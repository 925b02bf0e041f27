"""Preparing a corpus end to end: read, screen, process (or reuse), split, and write filelists and reports.

Every file is written under a temporary name and renamed into place (taco_jax.files), wavs first, then the
manifest, the filelists, the mel mean and the reports; an interrupted run leaves complete files only, and
its manifest lets the next run skip what was finished.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from taco_jax.audio import audio_header
from taco_jax.config import Config
from taco_jax.data.mel_cache import MelCache
from taco_jax.prepare.frontend import FrontEnd
from taco_jax.prepare.items import (
    EMPTY_TEXT,
    MISSING_AUDIO,
    PROCESSED,
    REUSED,
    SCREENED,
    Drop,
    ItemResult,
    Outcome,
    SourceItem,
    assign_output_names,
    speaker_dirs,
)
from taco_jax.prepare.manifest import WAV_DIR, Manifest, source_stat
from taco_jax.prepare.options import PrepareOptions, PrepareResult
from taco_jax.prepare.outputs import write_outputs
from taco_jax.prepare.parallel import default_workers, process_all
from taco_jax.prepare.process import Settings, Task
from taco_jax.prepare.readers import read_corpus

logger = logging.getLogger("taco_jax.prepare")

_MANIFEST_SAVE_SECONDS = 30.0  # while processing, the manifest is saved this often (an interrupted run resumes)


@dataclass
class _Planned:
    """One corpus item on its way through preparation."""

    item: SourceItem
    task: Task | None = None
    stat: tuple[int, int] | None = None
    result: ItemResult = field(default_factory=ItemResult)
    reused: bool = False


def prepare_corpus(
    opts: PrepareOptions, cfg: Config, config_path: str | None = None, overrides: Sequence[str] = ()
) -> PrepareResult:
    """Prepare the corpus `opts.input` of format `opts.fmt` into `opts.out` for training with `cfg`.

    `config_path` and `overrides` (`--set` items) are where `cfg` came from; the report's training command
    repeats them, so training uses the same audio settings and mel cache.

    Raises DataError for a missing input or metadata file, a corpus without a usable line, or when no
    utterance is kept (the report is written first, so it says why); ConfigError for a text front end the
    config cannot build; PrepareError for options out of range.
    """
    opts.validate()
    front = FrontEnd(cfg.text)
    read = read_corpus(opts.fmt, opts.input)
    out_dir = os.path.abspath(opts.out)
    os.makedirs(out_dir, exist_ok=True)
    settings = Settings(
        out_dir=out_dir, audio=cfg.audio, cache_dir=cfg.data.cache_dir or None,
        min_seconds=opts.min_seconds, max_seconds=opts.max_seconds, min_cps=opts.min_cps, max_cps=opts.max_cps,
        segment=opts.segment, trim_db=opts.trim_db, silence_db=opts.silence_db,
    )  # fmt: skip
    planned = _plan(assign_output_names(read.items), front)
    manifest = Manifest.load(out_dir)
    _process(planned, settings, manifest, opts)
    deleted = manifest.prune({p.task.stem for p in planned if p.task is not None})
    if deleted:
        logger.info("deleted %d wav(s) that no item produces any more", deleted)
    manifest.save()
    return write_outputs(planned_results(planned), read, front, cfg, opts, (config_path, list(overrides)))


def _plan(items: list[SourceItem], front: FrontEnd) -> list[_Planned]:
    """Screen items before decoding (empty text, missing audio) and give the others their output stem."""
    dirs = speaker_dirs(sorted({it.speaker for it in items}))
    planned = []
    for item in items:
        p = _Planned(item)
        planned.append(p)
        n_symbols, lost = front.encode(item.text) if item.text else (0, None)
        if n_symbols <= 0:
            extra = f"; characters not in the symbol table: {''.join(sorted(lost))!r}" if lost else ""
            detail = "no text" if not item.text else f"nothing left after the text front end: {item.text!r}{extra}"
            header = audio_header(item.audio) if os.path.isfile(item.audio) else None
            p.result = ItemResult(source_seconds=header[0] if header else None)
            p.result.drops.append(Drop(item.source, EMPTY_TEXT, detail, item.audio))
            continue
        p.stat = source_stat(item.audio) if os.path.isfile(item.audio) else None
        if p.stat is None:
            p.result.drops.append(Drop(item.source, MISSING_AUDIO, f"{item.audio}: audio file not found", item.audio))
            continue
        p.task = Task(item, f"{WAV_DIR}/{dirs[item.speaker]}/{item.item_id}")
    return planned


def _process(planned: list[_Planned], settings: Settings, manifest: Manifest, opts: PrepareOptions) -> None:
    """Reuse the manifest's valid results and process the rest (in parallel), recording each in the manifest,
    which is saved every _MANIFEST_SAVE_SECONDS and when processing ends, also by an error or an interrupt."""
    fingerprint = settings.fingerprint()
    cache = MelCache(settings.cache_dir, settings.audio)
    todo: dict[str, _Planned] = {}
    for p in planned:
        if p.task is None:
            continue
        reused = manifest.lookup(p.task.stem, p.item, p.stat, fingerprint)
        # An item whose mels are gone (a cleared cache, other mel settings) is processed again, in parallel,
        # rather than having its mels computed one by one when the mel mean is measured.
        if reused is not None and all(_mel_cached(cache, settings.out_dir, o.wav) for o in reused.outputs):
            p.result, p.reused = reused, True
        else:
            todo[p.task.stem] = p
    n_reused = sum(p.reused for p in planned)
    logger.info("%d item(s) to process, %d unchanged since the last run", len(todo), n_reused)
    last_save = time.monotonic()

    def on_result(task: Task, result: ItemResult) -> None:
        nonlocal last_save
        p = todo[task.stem]
        p.result = result
        manifest.record(task.stem, p.item, p.stat, fingerprint, result)  # type: ignore[arg-type]  # set in _plan
        if time.monotonic() - last_save > _MANIFEST_SAVE_SECONDS:
            manifest.save()
            last_save = time.monotonic()

    workers = opts.workers or default_workers()
    try:
        process_all([p.task for p in todo.values()], settings, on_result, workers, opts.progress)  # type: ignore[misc]
    finally:
        manifest.save()


def _mel_cached(cache: MelCache, out_dir: str, wav: str) -> bool:
    return os.path.isfile(cache.path_for(os.path.join(out_dir, *wav.split("/"))))


def planned_results(planned: list[_Planned]) -> list[Outcome]:
    """(item, result, status) per corpus item, in corpus order."""
    return [(p.item, p.result, REUSED if p.reused else PROCESSED if p.task else SCREENED) for p in planned]


__all__ = ["prepare_corpus"]
