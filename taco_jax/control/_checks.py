"""Eager argument checks shared by the controller factories: each names the argument in its ValueError."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable
from typing import Any


def as_int(name: str, value: Any, minimum: int) -> int:
    """`value` as an int >= minimum (numpy integers accepted, bools and floats refused)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def as_float(name: str, value: Any) -> float:
    """`value` as a float that is not NaN (infinities pass; range checks are the caller's)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return value


def in_range(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> float:
    """`value` as a finite float in the interval [lo, hi], with either end open on request."""
    interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return float(value)


def positive(name: str, value: Any) -> float:
    """`value` as a finite float > 0."""
    return in_range(name, value, 0.0, math.inf, lo_open=True, hi_open=True)


def as_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


def float_tuple(name: str, values: Iterable[Any], length: int | None = None) -> tuple[float, ...]:
    """A tuple of non-NaN floats, optionally of an exact length."""
    try:
        out = tuple(as_float(name, v) for v in values)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if length is not None and len(out) != length:
        raise ValueError(f"{name} must have exactly {length} entries, got {len(out)}")
    return out
