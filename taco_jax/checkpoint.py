"""Orbax checkpoints: the train state plus a JSON item (config, symbol table, data iterator, metrics).

Layout: <run>/checkpoints/<step>/{state, meta, metrics}. Retention: the latest K are kept, plus the best by
validation loss. The loss is stored in Orbax's per-step `metrics` item, so a new process (a resumed run,
synthesis) ranks and prunes the checkpoints written by an earlier one. A checkpoint saved without a loss
ranks last; one without a `metrics` item at all (written before the loss was stored) is never pruned,
since it cannot be ranked.

Damage (a truncated or overwritten array file, an empty or garbled `meta`, a missing `state/` or `meta/`, an
empty step directory) is reported as one `CheckpointError` line naming the step directory and the cause.
`Checkpointer.restore_latest` and the loaders for a run directory (`restore_model`, `resolve_checkpoint`)
skip a damaged checkpoint with one warning and take the previous (or next best) intact one; nothing is
modified or deleted when reading. Orbax's unfinished writes (`<step>.orbax-checkpoint-tmp[-<time>]`) are
never taken for checkpoints. Saving a step whose directory already exists (a damaged checkpoint the run
resumed before) first moves that directory aside to `<step>.damaged-<n>` (or `<step>.replaced-<n>` if no
damage was found), with a warning; those directories are left for the user and never pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from taco_jax.errors import UserError

if TYPE_CHECKING:  # the model stack is imported by the loaders that need it: reading a state needs none of it
    from taco_jax.config import Config
    from taco_jax.model import Tacotron2
    from taco_jax.text import SymbolTable

try:  # Orbax's private event-loop runner; see _drained_orbax_loops
    from orbax.checkpoint._src import asyncio_utils as _orbax_asyncio
except ImportError:  # pragma: no cover - another Orbax layout: reads run unpatched
    _orbax_asyncio = None

log = logging.getLogger("taco_jax.checkpoint")

_STEP_NAME = re.compile(r"0|[1-9]\d*")  # Orbax's standard step directory names; tmp and set-aside dirs differ
_METRICS_FILE = Path("metrics") / "metrics"  # Orbax's per-step metrics item
_META_FILE = Path("meta") / "metadata"  # the JSON item's file (JsonCheckpointHandler's default name)
_DRAIN_TIMEOUT_S = 120.0
_MAX_REASON = 240


class CheckpointError(UserError, ValueError):
    """A checkpoint cannot be found or read; the message (one line) names the path and the cause.

    `damaged` is True when the files themselves are broken (as opposed to, e.g., a target of another shape).
    """

    def __init__(self, message: str, damaged: bool = False):
        super().__init__(message)
        self.damaged = damaged


def _rank(metrics: Any) -> float:
    """The validation loss in a step's metrics; a missing or non-finite one ranks last (lowest is best)."""
    value = metrics.get("val_loss") if isinstance(metrics, dict) else None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return math.inf


class _Manager(ocp.CheckpointManager):
    """`ocp.CheckpointManager` whose listing of existing steps tolerates damaged step directories.

    Orbax's own listing reads each step's `_CHECKPOINT_METADATA` and metrics files: a missing one is logged as
    a warning, a garbled one as an error with the file's contents, and a garbled metrics file raises, so one
    damaged step would break opening the directory. This listing reads the same files but takes damage as
    "no commit time / unranked", leaving the report to the restore that meets it.
    """

    def _load_checkpoint_infos(self, skip_metadata_read: bool = False) -> list:
        directory = Path(self.directory)
        return [
            ocp.checkpoint_manager.CheckpointInfo(
                step=step, time=_commit_time(directory / str(step)), metrics=_read_metrics(directory / str(step))
            )
            for step in _list_steps(directory)
        ]


class Checkpointer:
    """`ocp.CheckpointManager` with the run's keep policy and damage-tolerant reads (see the module doc)."""

    def __init__(self, directory: str | os.PathLike, keep: int = 3, read_only: bool = False):
        self.shown = Path(directory)  # as the caller wrote it: messages name this path
        self.directory = self.shown.absolute()
        self.read_only = read_only
        self._state_handler = ocp.StandardCheckpointHandler()
        registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
        for args in (ocp.args.StandardSave, ocp.args.StandardRestore):
            registry.add("state", args, self._state_handler)
        json_handler = ocp.JsonCheckpointHandler()
        for args in (ocp.args.JsonSave, ocp.args.JsonRestore):
            registry.add("meta", args, json_handler)
        preservation = policies.AnyPreservationPolicy(
            [policies.LatestN(n=max(1, keep)), policies.BestN(get_metric_fn=_rank, reverse=True, n=1)]
        )
        # best_fn is what makes Orbax write the metrics item at all (a preservation policy alone does not).
        options = ocp.CheckpointManagerOptions(
            preservation_policy=preservation, best_fn=_rank, best_mode="min", create=not read_only,
            read_only=read_only, save_interval_steps=0 if read_only else 1,
            enable_async_checkpointing=not read_only,
        )  # fmt: skip
        self.manager = _Manager(self.directory, options=options, handler_registry=registry)
        self._closed = False

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save(self, step: int, state: Any, meta: dict, val_loss: float | None = None) -> None:
        """Save `state` and `meta` as `step`, ranked by `val_loss` (lowest best), then prune per the policy."""
        if self.read_only:
            raise CheckpointError(f"{self.shown}: opened read-only; cannot save step {step}")
        if step in self.manager.all_steps():
            self._set_aside(step)
        metrics = {"val_loss": float(val_loss)} if val_loss is not None else {}
        self.wait()  # the previous save's failure is reported as such, before this one starts
        self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            metrics=metrics,
            force=True,
        )

    def _set_aside(self, step: int) -> None:
        """Move an existing `<step>` directory to `<step>.damaged-<n>` (or `.replaced-<n>`) so `step` can be
        saved again; process 0 moves it, every process then re-reads the listing."""
        step_dir = self.directory / str(step)
        if jax.process_index() == 0 and step_dir.exists():
            reason = _known_damage(step_dir) or _layout_problem(step_dir)
            kind = "damaged" if reason else "replaced"
            n = 1
            while (aside := step_dir.with_name(f"{step}.{kind}-{n}")).exists():
                n += 1
            step_dir.rename(aside)
            why = f"it is damaged ({reason})" if reason else "it holds an older checkpoint of the same step"
            log.warning("%s: moved aside to %s before saving step %d again: %s", step_dir, aside.name, step, why)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"checkpoint step {step} set aside")
        self.manager.reload()

    def all_steps(self) -> list[int]:
        """Every checkpoint step on disk, oldest first (damaged ones included)."""
        return _list_steps(self.directory)

    def latest_step(self) -> int | None:
        """The newest checkpoint step (damaged or not; `restore_latest` skips damaged ones)."""
        return self.manager.latest_step()

    def best_step(self) -> int | None:
        """The step with the lowest stored validation loss, else the latest; None without checkpoints."""
        best = self.manager.best_step()  # None when no step has stored metrics (all written before they were)
        return best if best is not None else self.manager.latest_step()

    def restore(self, step: int, target: Any | None = None) -> tuple[Any, dict]:
        """Restore (state, meta). With a target pytree, arrays come back with its structure and shardings;
        without one, on this process's first device, whatever devices or processes saved them (a checkpoint
        of a multi-process run loads on one machine).

        Raises:
          CheckpointError: one line naming the step directory and the cause (`damaged` tells damage apart).
        """
        step_dir = self.directory / str(step)
        where = self.shown / str(step)
        if not step_dir.is_dir():
            raise CheckpointError(f"{where}: no checkpoint at step {step}")
        self.wait()  # a save in flight finishes before its directory is read
        reason = _known_damage(step_dir) or _layout_problem(step_dir)
        if reason is None:
            try:
                with _drained_orbax_loops():
                    abstract = _abstract(target) if target is not None else self._on_one_device(step_dir)
                    args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
                    out = self.manager.restore(step, args=args)
            except Exception as e:  # noqa: BLE001 - every Orbax/TensorStore failure becomes one line
                log.debug("restoring %s failed", step_dir, exc_info=e)
                if not _is_damage(e):
                    raise CheckpointError(f"{where}: cannot restore checkpoint: {_first_line(e)}") from None
                reason = _damage_reason(e)
        _verdicts[step_dir] = (_signature(step_dir), reason)
        if reason is not None:
            raise CheckpointError(f"{where}: damaged checkpoint: {reason}", damaged=True)
        return out["state"], out["meta"]

    def restore_latest(self, target: Any | None = None) -> tuple[int, Any, dict] | None:
        """(step, state, meta) of the newest intact checkpoint; None when there is no checkpoint at all.

        A damaged checkpoint is skipped with one warning (its path and the cause) and left in place.

        Raises:
          CheckpointError: every checkpoint is damaged, or one cannot be restored into `target` for another
            reason (a different tree structure), which no older checkpoint would fix.
        """
        self.wait()
        steps = _list_steps(self.directory)[::-1]
        if not steps:
            return None
        step, (state, meta) = _first_restorable(self.shown, steps, lambda s: self.restore(s, target))
        return step, state, meta

    def _verify(self, step: int) -> None:
        """Raise CheckpointError unless `step` restores (a full read, skipped if it already did unchanged)."""
        step_dir = self.directory / str(step)
        signature, reason = _verdicts.get(step_dir, (None, "unverified"))
        if reason is None and signature == _signature(step_dir):
            return
        self.restore(step)

    def restore_meta(self, step: int) -> dict:
        """The JSON item of `step` alone (no array is read); one-line CheckpointError if it is unreadable."""
        step_dir = self.directory / str(step)
        where = self.shown / str(step)
        if not step_dir.is_dir():
            raise CheckpointError(f"{where}: no checkpoint at step {step}")
        reason = _layout_problem(step_dir)  # the arrays' state does not matter here
        if reason is not None:
            raise CheckpointError(f"{where}: damaged checkpoint: {reason}", damaged=True)
        try:
            with _drained_orbax_loops():
                return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as e:  # noqa: BLE001 - one line, as restore
            log.debug("reading %s/meta failed", step_dir, exc_info=e)
            raise CheckpointError(f"{where}/meta: unreadable checkpoint metadata: {_first_line(e)}") from None

    def _on_one_device(self, step_dir: Path) -> Any:
        """Abstract arrays of the stored tree, each on this process's first device."""
        metadata = self._state_handler.metadata(step_dir / "state")
        tree = getattr(metadata, "item_metadata", metadata)
        tree = getattr(tree, "tree", tree)
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)

    def close(self) -> None:
        """Wait for a save in flight, then release Orbax's threads and files (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.wait()
        finally:
            self.manager.close()

    def wait(self) -> None:
        """Wait for a save in flight (saves write in a background thread).

        Raises:
          CheckpointError: the background write failed (the directory was deleted, the disk is full), one line.
        """
        try:
            self.manager.wait_until_finished()
        except Exception as e:  # noqa: BLE001 - Orbax re-raises the writer thread's error, whatever its type
            log.debug("a checkpoint write in %s failed", self.directory, exc_info=e)
            raise CheckpointError(f"{self.shown}: writing a checkpoint failed: {_first_line(e)}") from None


def _abstract(tree: Any) -> Any:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


# ---------------------------------------------------------------------------------------------- inspection


def _list_steps(ckpt_dir: Path) -> list[int]:
    """Step numbers of the `<step>` directories in `ckpt_dir`, oldest first (Orbax's tmp dirs excluded)."""
    try:
        entries = list(Path(ckpt_dir).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(p.name) for p in entries if _STEP_NAME.fullmatch(p.name) and p.is_dir())


def _json_problem(path: Path) -> tuple[Any, str | None]:
    """(value, None) for a readable JSON file, else (None, what is wrong in a few words)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None, "missing"
    except UnicodeDecodeError:
        return None, "not JSON (binary data)"
    except OSError as e:
        return None, f"unreadable ({e.strerror})"
    if not text.strip():
        return None, "empty file"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"


def _read_metrics(step_dir: Path) -> dict | None:
    """A step's stored metrics; None when it has none or they are unreadable (it is then unranked)."""
    value, problem = _json_problem(step_dir / _METRICS_FILE)
    return value if problem is None and isinstance(value, dict) else None


def _val_loss(step_dir: Path) -> float | None:
    """The finite validation loss stored with a step, else None."""
    rank = _rank(_read_metrics(step_dir))
    return rank if math.isfinite(rank) else None


def _commit_time(step_dir: Path) -> datetime.datetime:
    """When Orbax committed the step (its `_CHECKPOINT_METADATA`), else the directory's modification time."""
    value, problem = _json_problem(step_dir / "_CHECKPOINT_METADATA")
    nsecs = value.get("commit_timestamp_nsecs") if problem is None and isinstance(value, dict) else None
    seconds = nsecs / 1e9 if isinstance(nsecs, int) else step_dir.stat().st_mtime
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def _layout_problem(step_dir: Path) -> str | None:
    """What is missing or unreadable in a step directory's structure, found without reading any array."""
    if not any(step_dir.iterdir()):
        return "empty step directory"
    for item in ("state", "meta"):
        if not (step_dir / item).is_dir():
            return f"no {item}/ directory"
    value, problem = _json_problem(step_dir / _META_FILE)
    if problem is None and not isinstance(value, dict):
        problem = "not a JSON object"
    if problem:
        return f"{_META_FILE.as_posix()}: {problem}"
    _, problem = _json_problem(step_dir / "state" / "_METADATA")
    return f"state/_METADATA: {problem}" if problem else None


# Verdicts of this process's restores, kept while the step's files are unchanged: a damaged checkpoint is
# read (and reported) once, and synthesis' second look at a run (symbols after the model) reads no array.
_verdicts: dict[Path, tuple[tuple, str | None]] = {}
_warned: set[tuple[Path, tuple]] = set()


def _signature(step_dir: Path) -> tuple:
    """(relative path, size, mtime) of every file under a step directory."""
    out = []
    for root, _, files in os.walk(step_dir):
        for name in files:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                st = os.stat(path)
                out.append((os.path.relpath(path, step_dir), st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def _known_damage(step_dir: Path) -> str | None:
    """The damage an earlier restore in this process found, if the files have not changed since."""
    signature, reason = _verdicts.get(step_dir, (None, None))
    return reason if reason is not None and signature == _signature(step_dir) else None


def _warn_skipped(error: CheckpointError, step_dir: Path) -> None:
    """One warning per damaged checkpoint (and content) per process, however often it is skipped."""
    key = (step_dir, _signature(step_dir))
    if key in _warned:
        log.debug("skipping %s", error)
        return
    _warned.add(key)
    log.warning("skipping %s", error)


def _first_restorable(shown: Path, steps: Sequence[int], attempt: Callable[[int], Any]) -> tuple[int, Any]:
    """(step, attempt(step)) for the first of `steps` that is not damaged; each damaged one is warned about.

    Raises:
      CheckpointError: all are damaged (naming them), or the error of an attempt that failed otherwise.
    """
    damaged = []
    for step in steps:
        try:
            return step, attempt(step)
        except CheckpointError as e:
            if not e.damaged:
                raise
            _warn_skipped(e, (shown / str(step)).absolute())
            damaged.append(step)
    listed = ", ".join(str(s) for s in sorted(damaged))
    raise CheckpointError(f"{shown}: every checkpoint is damaged (steps {listed})", damaged=True)


# ------------------------------------------------------------------------------------------ Orbax failures

_TS_STATUS = re.compile(r"\b(OUT_OF_RANGE|DATA_LOSS|FAILED_PRECONDITION|NOT_FOUND|INVALID_ARGUMENT|UNKNOWN): ")
_TS_NOISE = re.compile(r' in OCDBT database at local file "[^"]*"|\s*\[(source locations|tensorstore_spec)=.*$')
_TS_WORDS = {"OUT_OF_RANGE": "file is truncated", "DATA_LOSS": "data is corrupted", "NOT_FOUND": "data is missing"}


def _chain(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _first_line(e: BaseException) -> str:
    """The message's first line (with the lines it introduces if it ends in ':'), at most _MAX_REASON long."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
    return _shortened(" ".join(lines) if lines[0].endswith(":") else lines[0])


def _shortened(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _is_damage(e: BaseException) -> bool:
    """True for failures of the files themselves: TensorStore read errors, bad JSON, missing files."""
    return any(
        isinstance(x, json.JSONDecodeError | FileNotFoundError | UnicodeDecodeError) or _TS_STATUS.search(str(x))
        for x in _chain(e)
    )


def _damage_reason(e: BaseException) -> str:
    """The root cause in a few words, e.g. 'state/mu.w1: file is truncated (OUT_OF_RANGE: ...)'."""
    causes = list(_chain(e))
    root = next((x for x in reversed(causes) if _TS_STATUS.search(str(x))), causes[-1])
    lines = str(root).strip().splitlines()
    text = _TS_NOISE.sub("", lines[0] if lines else type(root).__name__)
    status = _TS_STATUS.search(text)
    if status is None:
        return _shortened(text)
    text = text[status.start() :]
    array = re.search(r'Error reading "([^"/]+)[^"]*": ', text)
    words = _TS_WORDS.get(status.group(1), "data is unreadable")
    if status.group(1) == "FAILED_PRECONDITION" and "decompress" in text.lower():
        words = "data is corrupted"
    if array:  # named once, in front
        text = text[: array.start()] + text[array.end() :]
    where = f"state/{array.group(1)}" if array else "state"
    return f"{where}: {words} ({_shortened(text)})"


_patch_lock = threading.Lock()
_patch_depth = 0  # restores inside _drained_orbax_loops, in any thread
_orbax_runner: Callable | None = None  # Orbax's own runner while it is swapped out


@contextlib.contextmanager
def _drained_orbax_loops() -> Iterator[None]:
    """While inside, Orbax runs its coroutines on event loops that are drained before they are closed.

    Orbax reads arrays with asyncio.gather over TensorStore futures on a fresh event loop, which it closes
    as soon as the first read fails. The other reads are still in flight: each completes later into the
    closed loop (TensorStore prints "RuntimeError: Event loop is closed" with a traceback, hundreds of them),
    and their abandoned coroutines fail again at interpreter exit. Waiting for the pending tasks before the
    loop closes removes all of it; on success there is nothing pending and nothing changes. The swap is
    process-wide while any restore is inside, so an Orbax call in another thread (a save finishing in the
    background) gets the same runner then, which behaves differently only after a failure.
    """
    if _orbax_asyncio is None or not hasattr(_orbax_asyncio, "_run_sync_via_new_loop"):
        yield
        return
    global _patch_depth, _orbax_runner
    with _patch_lock:
        if _patch_depth == 0:
            _orbax_runner = _orbax_asyncio._run_sync_via_new_loop
            _orbax_asyncio._run_sync_via_new_loop = _run_until_drained
        _patch_depth += 1
    try:
        yield
    finally:
        with _patch_lock:
            _patch_depth -= 1
            if _patch_depth == 0:
                _orbax_asyncio._run_sync_via_new_loop = _orbax_runner


def _run_until_drained(coro: Any) -> Any:
    """Orbax's runner (a fresh loop, no asyncio.run), but every task left pending is awaited before closing."""
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=_DRAIN_TIMEOUT_S))
                for task in pending:
                    task.cancel()  # only those still waiting after the timeout; done tasks ignore it
                # gather retrieves every exception, so none is reported as "never retrieved"
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            asyncio.set_event_loop(None)
            loop.close()


# ------------------------------------------------------------------------------------------ loading models


def _locate(path: str | os.PathLike) -> tuple[Path, int | None]:
    """(checkpoints directory, step) for a step directory, (checkpoints directory, None) for a run or
    checkpoints directory."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint or run directory")
    if not p.is_dir():
        raise CheckpointError(f"{p}: not a directory (expected a run, checkpoints or step directory)")
    if (p / "checkpoints").is_dir():
        p = p / "checkpoints"
    looks_like_step = (p / "state").exists() or (p / "meta").exists()
    if looks_like_step and not _STEP_NAME.fullmatch(p.name):
        raise CheckpointError(f"{p}: checkpoint directory name is not a step number")
    if looks_like_step or (_STEP_NAME.fullmatch(p.name) and not _list_steps(p)):  # e.g. an emptied step dir
        return p.parent, int(p.name)
    return p, None


def _candidates(ckpt_dir: Path) -> list[int]:
    """Steps best first: by stored validation loss (lowest first, the newer of equals first), then the
    steps without one, newest first."""
    steps = _list_steps(ckpt_dir)
    losses = {s: _val_loss(ckpt_dir / str(s)) for s in steps}
    ranked = sorted((s for s in steps if losses[s] is not None), key=lambda s: (losses[s], -s))
    return ranked + [s for s in reversed(steps) if losses[s] is None]


def _open_intact(path: str | os.PathLike, attempt: Callable[[Checkpointer, int], Any]) -> tuple[Path, int, Any]:
    """(checkpoints dir, step, attempt(ckpt, step)) for an explicit step directory (its error if damaged) or
    the best intact checkpoint of a run or checkpoints directory (damaged ones skipped with a warning)."""
    ckpt_dir, step = _locate(path)
    with Checkpointer(ckpt_dir, read_only=True) as ckpt:
        if step is not None:
            return ckpt_dir, step, attempt(ckpt, step)
        steps = _candidates(ckpt.directory)
        if not steps:
            raise CheckpointError(f"{ckpt_dir}: contains no checkpoint (expected <step>/state and <step>/meta)")
        step, out = _first_restorable(ckpt_dir, steps, lambda s: attempt(ckpt, s))
        return ckpt_dir, step, out


def resolve_checkpoint(path: str | os.PathLike) -> tuple[Path, int]:
    """Resolve a run directory, a checkpoints directory or a step directory to (checkpoints_dir, step).

    For a run or checkpoints directory: the best-by-val intact checkpoint, else the latest intact one; each
    damaged one passed over is warned about. A checkpoint counts as intact once it has been restored in full
    (once per process while its files are unchanged). A damaged step directory given explicitly is an error.

    Raises:
      CheckpointError: one line naming the path and the cause.
    """
    ckpt_dir, step, _ = _open_intact(path, lambda ckpt, s: ckpt._verify(s))
    return ckpt_dir, step


def _check_meta(meta: Any, where: str) -> dict:
    for key in ("config", "symbols"):
        if not isinstance(meta, dict) or key not in meta:
            raise CheckpointError(f"{where}/meta: checkpoint metadata has no '{key}'")
    return meta


def read_meta(ckpt_dir: Path, step: int) -> dict:
    """The JSON item of a checkpoint (config, symbol table, data iterator state, ...), without the state."""
    with Checkpointer(ckpt_dir, read_only=True) as ckpt:
        meta = ckpt.restore_meta(step)
    return _check_meta(meta, str(Path(ckpt_dir) / str(step)))


def restore_model(path: str | os.PathLike, overrides: Sequence[str] = ()) -> tuple[Config, Tacotron2, dict[str, Any]]:
    """Load a trained model: (config, model, variables) with variables = {'params', 'batch_stats'}.

    `path` is a run directory, its checkpoints directory (the best intact checkpoint is taken, as in
    `resolve_checkpoint`) or one step directory. Overrides (`a.b=v`) apply to the stored config
    (e.g. `model.max_decoder_steps=2000`).
    """
    from taco_jax.config import from_yaml_string, load_config
    from taco_jax.model import build_model
    from taco_jax.text import SymbolTable

    ckpt_dir, step, (state, meta) = _open_intact(path, lambda ckpt, s: ckpt.restore(s))  # one read of each
    where = str(Path(ckpt_dir) / str(step))
    meta = _check_meta(meta, where)
    cfg = from_yaml_string(meta["config"], source=f"{where}/meta")
    if overrides:
        import tempfile

        from taco_jax.config import save_config

        with tempfile.TemporaryDirectory() as tmp:
            save_config(cfg, os.path.join(tmp, "config.yaml"))
            cfg = load_config(os.path.join(tmp, "config.yaml"), overrides)
    table = SymbolTable.from_dict(meta["symbols"])
    model = build_model(cfg.model, len(table), cfg.audio.n_mels)
    try:
        variables = {"params": state["params"], "batch_stats": state["batch_stats"]}
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{where}/state: missing key {e}") from None
    variables = jax.tree.map(np.asarray, variables)
    return cfg, model, variables


def restore_symbols(path: str | os.PathLike) -> SymbolTable:
    """The symbol table of the checkpoint `resolve_checkpoint(path)` picks (the one `restore_model` loads)."""
    from taco_jax.text import SymbolTable

    ckpt_dir, step = resolve_checkpoint(path)
    return SymbolTable.from_dict(read_meta(ckpt_dir, step)["symbols"])


def restore_front_end(path: str | os.PathLike) -> dict | None:
    """The text front-end record (`taco_jax.text.record`) of the checkpoint `resolve_checkpoint(path)` picks;
    None for checkpoints written before it was recorded."""
    ckpt_dir, step = resolve_checkpoint(path)
    return read_meta(ckpt_dir, step).get("front_end")
