"""Warm start: parameters copied by name and shape from another run or checkpoint."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from taco_jax.checkpoint import restore_model

log = logging.getLogger("taco_jax.train")

__all__ = ["load_warm_start", "warm_start_params"]


def _name(path) -> str:
    return "/".join(str(k.key) for k in path)


def warm_start_params(params: Any, source_params: Any, ignore: Sequence[str]) -> tuple[Any, dict[str, list[str]]]:
    """Copy every parameter of `source_params` whose path matches and shape agrees, except ignored ones.

    Returns (params, report) with report = {"loaded": [...], "ignored": [...], "shape_mismatch": [...],
    "missing": [...]} listing parameter paths ('/'-joined).
    """
    patterns = [re.compile(p) for p in ignore]
    flat_src = {_name(path): v for path, v in jax.tree_util.tree_leaves_with_path(source_params)}
    report: dict[str, list[str]] = {"loaded": [], "ignored": [], "shape_mismatch": [], "missing": []}

    def pick(path, value):
        name = _name(path)
        if any(p.search(name) for p in patterns):
            report["ignored"].append(name)
            return value
        if name not in flat_src:
            report["missing"].append(name)
            return value
        src = np.asarray(flat_src[name])
        if src.shape != value.shape:
            report["shape_mismatch"].append(f"{name}: {src.shape} vs {value.shape}")
            return value
        report["loaded"].append(name)
        return jax.numpy.asarray(src, value.dtype)

    return jax.tree_util.tree_map_with_path(pick, params), report


def load_warm_start(params: Any, source: str, ignore: Sequence[str]) -> Any:
    """`warm_start_params` from the run or checkpoint at `source`, with the report logged."""
    _, _, variables = restore_model(source)
    params, report = warm_start_params(params, variables["params"], ignore)
    log.info(
        "warm start from %s: loaded %d, ignored %d, shape-mismatched %d, missing %d",
        source, len(report["loaded"]), len(report["ignored"]), len(report["shape_mismatch"]), len(report["missing"]),
    )  # fmt: skip
    for kind in ("ignored", "shape_mismatch", "missing"):
        for name in report[kind]:
            log.info("  warm start %s: %s", kind, name)
    return params
