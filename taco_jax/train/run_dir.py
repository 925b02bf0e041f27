"""Where a run writes: choosing and creating its directory, the lock a run holds on it, and its train.log."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from taco_jax.config import Config
from taco_jax.errors import UserError

log = logging.getLogger("taco_jax.train")

__all__ = [
    "RunDirError",
    "RunLock",
    "check_writable",
    "choose_run_dir",
    "create_run_dir",
    "failed_start_log",
    "file_logging",
]

LOCK_NAME = ".lock"


class RunDirError(UserError, OSError):
    """A run directory cannot be used: another process holds it, it is missing or it cannot be written."""


def _run_dirs(out_dir: Path, name: str) -> list[tuple[int, Path]]:
    """(N, path) of every directory `name` (N = 1) or `name-N` under out_dir, by N."""
    pattern = re.compile(rf"^{re.escape(name)}(-(\d+))?$")
    found = [(int(m.group(2) or 1), d) for d in out_dir.glob(f"{name}*") if (m := pattern.match(d.name)) and d.is_dir()]
    return sorted(found)


def _numbered(out_dir: Path, name: str, n: int) -> Path:
    return out_dir / (name if n == 1 else f"{name}-{n}")


def choose_run_dir(cfg: Config, resume: bool) -> Path:
    """The latest existing run of `run.name` with --resume; else the next free name, runs/<name>-(max N + 1)
    (never the number of one that was deleted, so a new run never lands in an old run's directory)."""
    out_dir = Path(cfg.run.out_dir)
    existing = _run_dirs(out_dir, cfg.run.name)
    if resume:
        if not existing:
            raise RunDirError(f"--resume: no run named '{cfg.run.name}' under {out_dir}/ (run.name, run.out_dir)")
        return existing[-1][1]
    return _numbered(out_dir, cfg.run.name, existing[-1][0] + 1 if existing else 1)


def create_run_dir(cfg: Config, attempts: int = 100) -> Path:
    """Chooses and creates a new run directory in one step: the directory is made with an exclusive mkdir, so
    two runs started at once never share one (the loser of a race takes the next number)."""
    out_dir = Path(cfg.run.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"{out_dir}: cannot create the runs directory (run.out_dir): {e.strerror}") from None
    for _ in range(attempts):
        run_dir = choose_run_dir(cfg, resume=False)
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
        except OSError as e:
            raise RunDirError(f"{run_dir}: cannot create the run directory: {e.strerror}") from None
    raise RunDirError(f"could not create a new run directory for '{cfg.run.name}' under {out_dir}/")


def existing_run_dir(path: str | os.PathLike) -> Path:
    """`path` as a run directory to resume (it holds a config.yaml).

    Raises:
      RunDirError: it is not one.
    """
    run_dir = Path(path)
    if not (run_dir / "config.yaml").is_file():
        raise RunDirError(f"--resume {run_dir}: not a run directory (no config.yaml)")
    return run_dir


def check_writable(*directories: Path) -> None:
    """Creates and removes a probe file in each directory that exists, so a run directory that became read-only
    (or was deleted) is noticed at the step it happened, not at the next checkpoint.

    Raises:
      RunDirError: naming the directory and the system's reason.
    """
    for d in directories:
        try:
            fd = os.open(d / f".probe-{os.getpid()}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(fd)
            os.unlink(d / f".probe-{os.getpid()}")
        except OSError as e:
            raise RunDirError(f"{d}: the run directory is not writable: {e.strerror}") from None


class RunLock:
    """An exclusive lock on a run directory, held for the life of a run (`flock` on <run>/.lock).

    The lock file holds the holder's pid, host and start time while it runs and is emptied when it ends. The
    kernel drops the lock when a process dies, so a run killed with SIGKILL leaves a free lock whose file still
    names it: the next run reports that stale lock once and takes over.

    Raises (from `acquire`):
      RunDirError: another live process holds the run.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_holder(fd)
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirError(f"{self.path}: cannot lock the run directory: {e.strerror}") from None
            raise RunDirError(
                f"{self.path.parent} is in use by {_describe(holder)}: two processes must not write one run "
                "(wait for it to finish or stop it)"
            ) from None
        stale = _read_holder(fd)
        if stale:
            log.warning("%s: the previous process (%s) ended without releasing the run; taking over",
                        self.path.parent, _describe(stale))  # fmt: skip
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # an unwritable directory must not hide the error that ended the run
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> dict:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {"pid": "?", "host": "?", "since": "?"}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    return f"process {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')}"


def failed_start_log(run_dir: Path) -> Path:
    """Where the train.log of a new run that failed before its first step goes: next to the removed directory
    (runs/<name>-N.failed-start.log), so a failed start leaves no half-made run behind but keeps its traceback."""
    return run_dir.with_name(run_dir.name + ".failed-start.log")


class RunLog:
    """The run's train.log handler: everything the `taco_jax` loggers say, plus tracebacks of failures."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "train.log"
        self.handler = logging.FileHandler(self.path)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))

    def traceback(self, exc: BaseException) -> None:
        """Writes `exc` with its traceback to train.log only (the console shows the one-line message)."""
        record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "run failed: %s: %s",
                                (type(exc).__name__, exc), (type(exc), exc, exc.__traceback__))  # fmt: skip
        with contextlib.suppress(OSError):
            self.handler.handle(record)


@contextlib.contextmanager
def file_logging(run_dir: Path | None) -> Iterator[RunLog | None]:
    """Copies the `taco_jax` loggers to run_dir/train.log while the block runs (nothing when run_dir is None)."""
    if run_dir is None:
        yield None
        return
    run_log = RunLog(run_dir)
    logger = logging.getLogger("taco_jax")
    logger.addHandler(run_log.handler)
    try:
        yield run_log
    finally:
        logger.removeHandler(run_log.handler)
        run_log.handler.close()
