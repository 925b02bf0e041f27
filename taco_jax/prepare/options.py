"""Options and result of `prepare_corpus`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from taco_jax.errors import UserError
from taco_jax.prepare.items import Drop, Utterance


class PrepareError(UserError, ValueError):
    """Invalid preparation options; the message names the option."""


@dataclass(frozen=True)
class PrepareOptions:
    """What to prepare and how (the command line's options; durations in seconds, levels in dB)."""

    fmt: str
    input: str
    out: str
    val_fraction: float = 0.05
    min_seconds: float = 1.0
    max_seconds: float = 15.0
    min_cps: float = 5.0
    max_cps: float = 30.0
    segment: bool = False
    workers: int = 0  # 0: one per CPU; 1: no process pool
    progress: bool = True
    trim_db: float = 40.0
    silence_db: float = -60.0

    def validate(self) -> None:
        """Raises PrepareError naming the first option out of range."""
        checks = (
            ("--val-fraction", 0.0 < self.val_fraction < 1.0, "between 0 and 1"),
            ("--min-seconds", self.min_seconds >= 0.0, ">= 0"),
            ("--max-seconds", self.max_seconds > self.min_seconds, "> --min-seconds"),
            ("--min-cps", self.min_cps >= 0.0, ">= 0"),
            ("--max-cps", self.max_cps > self.min_cps, "> --min-cps"),
            ("--workers", self.workers >= 0, ">= 0"),
            ("--trim-db", self.trim_db > 0.0, "> 0"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise PrepareError(f"{name} must be {expected}")


@dataclass
class PrepareResult:
    """A finished preparation: the kept utterances per split, every drop (in corpus order), and the report."""

    out_dir: str
    train: list[Utterance]
    val: list[Utterance]
    drops: list[Drop]
    report: dict[str, Any] = field(default_factory=dict)
