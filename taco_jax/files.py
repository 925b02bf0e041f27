"""Atomic file output: a file appears complete under its final name, or not at all.

Every file the project writes (configs, metrics summaries, wavs, plots, mel caches, converted checkpoints)
goes through `atomic_output`: the content is written to a temporary file in the target's directory, given the
permissions an ordinary `open(path, "w")` would give it (0o666 minus the process umask; `mkstemp` alone makes
0o600), and renamed over the target. A writer that fails or is killed leaves at most a `.tmp-*` file behind,
never a half-written target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

__all__ = ["atomic_output", "write_bytes_atomic", "write_text_atomic"]


def _default_mode() -> int:
    umask = os.umask(0)  # the only portable way to read the umask is to set it and put it back
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path next to `path`; on normal exit it is renamed to `path`, on error removed.

    The temporary name ends with the target's file name, so writers that choose a format from the extension
    (soundfile, matplotlib, numpy) see the right one. Parent directories are created.
    """
    target = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(target))
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_output`)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically (see `atomic_output`)."""
    write_bytes_atomic(path, text.encode("utf-8"))
