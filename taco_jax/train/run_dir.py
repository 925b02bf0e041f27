"""Where a run writes: choosing its directory under `run.out_dir`, and its train.log."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from taco_jax.config import Config

__all__ = ["choose_run_dir", "create_run_dir", "file_logging"]


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
            raise FileNotFoundError(f"--resume: no run named '{cfg.run.name}' under {out_dir}/")
        return existing[-1][1]
    return _numbered(out_dir, cfg.run.name, existing[-1][0] + 1 if existing else 1)


def create_run_dir(cfg: Config, attempts: int = 100) -> Path:
    """Chooses and creates a new run directory in one step: the directory is made with an exclusive mkdir, so
    two runs started at once never share one (the loser of a race takes the next number)."""
    Path(cfg.run.out_dir).mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        run_dir = choose_run_dir(cfg, resume=False)
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory for '{cfg.run.name}' under {cfg.run.out_dir}/")


@contextlib.contextmanager
def file_logging(run_dir: Path | None) -> Iterator[None]:
    """Copies the `taco_jax` loggers to run_dir/train.log while the block runs (nothing when run_dir is None)."""
    if run_dir is None:
        yield
        return
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("taco_jax")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
