"""Where a run writes: choosing its directory under `run.out_dir`, and its train.log."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from taco_jax.config import Config

__all__ = ["choose_run_dir", "file_logging"]


def _run_dirs(out_dir: Path, name: str) -> list[Path]:
    pattern = re.compile(rf"^{re.escape(name)}(-(\d+))?$")
    found = [(int(m.group(2) or 0), d) for d in out_dir.glob(f"{name}*") if (m := pattern.match(d.name)) and d.is_dir()]
    return [d for _, d in sorted(found)]


def choose_run_dir(cfg: Config, resume: bool) -> Path:
    """runs/<name> for a new run (runs/<name>-N if taken); the latest existing one with --resume."""
    out_dir = Path(cfg.run.out_dir)
    existing = _run_dirs(out_dir, cfg.run.name)
    if resume:
        if not existing:
            raise FileNotFoundError(f"--resume: no run named '{cfg.run.name}' under {out_dir}/")
        return existing[-1]
    if not existing:
        return out_dir / cfg.run.name
    return out_dir / f"{cfg.run.name}-{len(existing) + 1}"


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
