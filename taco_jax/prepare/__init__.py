"""Corpus preparation (`python -m taco_jax.prepare`): a downloaded corpus -> checked wavs, filelists, cached mels.

Readers (`readers`) turn each format's metadata into items; every item is decoded, checked for silence and
clipping, trimmed, filtered by duration and speaking rate, optionally segmented (`process`, `segment`),
written as a 16-bit wav with its mel in the trainer's cache, then split into train/val by speaker (`split`)
and reported (`report`). A rerun reuses unchanged items (`manifest`).

The names below are imported on first use: the command line configures logging before the data stack (whose
import configures the root logger) is loaded.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "FORMATS": "taco_jax.prepare.items",
    "PrepareError": "taco_jax.prepare.options",
    "PrepareOptions": "taco_jax.prepare.options",
    "PrepareResult": "taco_jax.prepare.options",
    "prepare_corpus": "taco_jax.prepare.run",
    "read_corpus": "taco_jax.prepare.readers",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'taco_jax.prepare' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
