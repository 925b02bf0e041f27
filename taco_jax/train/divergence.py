"""Divergence alarm: flags finite blow-ups, which the in-graph non-finite guard lets through, on the host.

A step whose loss is finite but enormous (e.g. ~1e14 after one update at optim.lr=1e6) is applied like any other.
`DivergenceAlarm.check` compares each step's ``train/loss`` and pre-clip ``train/grad_norm`` with the median of
recent accepted steps and returns a one-line reason when either is far above it:

    alarm = DivergenceAlarm(cfg.control.divergence)
    reason = alarm.check(step, loss, grad_norm)  # None, or why this step is flagged
    if reason is not None:
        log.warning("%s", reason)
    if alarm.should_roll_back():  # max_consecutive flagged steps in a row
        ...  # restore the last checkpoint, then alarm.reset_streak()

Its state (`AlarmState`, plain floats and ints) goes into checkpoint metadata with `to_dict` and comes back with
`from_dict`, so a resumed run judges every later step exactly as an uninterrupted run would.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from taco_jax.config import DivergenceConfig

__all__ = ["AlarmState", "DivergenceAlarm"]


@dataclass
class AlarmState:
    """What the alarm remembers between steps (JSON-ready: lists of floats and an int)."""

    losses: list[float] = field(default_factory=list)  # accepted train/loss values, oldest first, <= window
    grad_norms: list[float] = field(default_factory=list)  # accepted pre-clip gradient norms, oldest first
    consecutive: int = 0  # flagged steps in a row; 0 after an accepted step or reset_streak()


class DivergenceAlarm:
    """Host-side detector of finite blow-ups (module docstring); its settings are `control.divergence`.

    Each signal (loss, gradient norm) has a window of the last `window` accepted values. A finite value is judged
    once its window holds `min_history` values and has a positive median; the step is flagged when a value is
    above its factor (`loss_factor`, `grad_norm_factor`) x that median. A flagged step adds nothing to the windows
    (the reference stays the healthy range) and extends the streak; an accepted step ends it. A step whose loss
    is not finite is ignored (the non-finite guard skips it and counts it); a non-finite gradient norm alone is
    left out of its window and not judged.

    Raises:
      ConfigError: on invalid settings, naming the key (`control.divergence.<key>`).
    """

    def __init__(self, cfg: DivergenceConfig, state: AlarmState | None = None):
        cfg.validate("DivergenceAlarm")
        self.cfg = cfg
        self.state = state if state is not None else AlarmState()

    @property
    def consecutive(self) -> int:
        """Flagged steps in a row (logged as it stands)."""
        return self.state.consecutive

    def check(self, step: int, loss: float, grad_norm: float) -> str | None:
        """Judges one optimizer step; returns a one-line reason if it is flagged, else None.

        Args:
          step: the step's number (named in the reason).
          loss: the step's training loss (``train/loss``, the objective's units).
          grad_norm: the global L2 norm of the step's gradient before clipping (``train/grad_norm``).
        """
        loss, grad_norm = float(loss), float(grad_norm)
        if not self.cfg.enabled or not math.isfinite(loss):
            return None
        s, c = self.state, self.cfg
        judged = (
            _judge("loss", loss, s.losses, c.loss_factor, "loss_factor", c.min_history),
            _judge("grad norm", grad_norm, s.grad_norms, c.grad_norm_factor, "grad_norm_factor", c.min_history),
        )
        problems = [p for p in judged if p is not None]
        if problems:
            s.consecutive += 1
            return f"step {step}: " + "; ".join(problems) + f" (flagged {s.consecutive} in a row)"
        s.consecutive = 0
        _push(s.losses, loss, c.window)
        if math.isfinite(grad_norm):
            _push(s.grad_norms, grad_norm, c.window)
        return None

    def should_roll_back(self) -> bool:
        """True once `max_consecutive` steps in a row have been flagged."""
        return self.cfg.enabled and self.state.consecutive >= self.cfg.max_consecutive

    def reset_streak(self) -> None:
        """After a rollback: the streak starts again; the windows (healthy values only) stay."""
        self.state.consecutive = 0

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-ready plain values (floats round-trip exactly through JSON)."""
        return asdict(self.state)

    @classmethod
    def from_dict(cls, cfg: DivergenceConfig, d: Mapping[str, Any]) -> DivergenceAlarm:
        """The alarm `to_dict` saved; missing keys (an older checkpoint) start empty. A window longer than
        `cfg.window` (the setting changed) keeps its newest values."""
        state = AlarmState(
            losses=[float(x) for x in d.get("losses", [])][-cfg.window :],
            grad_norms=[float(x) for x in d.get("grad_norms", [])][-cfg.window :],
            consecutive=int(d.get("consecutive", 0)),
        )
        return cls(cfg, state)


def _judge(name: str, value: float, window: list[float], factor: float, key: str, min_history: int) -> str | None:
    """Why `value` is above `factor` (config key `key`) x the median of `window`, or None (also when it cannot be
    judged: not finite, fewer than `min_history` values, a median <= 0)."""
    if not math.isfinite(value) or len(window) < min_history:
        return None
    median = statistics.median(window)
    if median <= 0.0 or value <= factor * median:
        return None
    return (
        f"{name} {value:.3g} is {value / median:.3g} x the median {median:.3g} of the last {len(window)} accepted "
        f"step{'s' if len(window) != 1 else ''} (control.divergence.{key} {factor:g})"
    )


def _push(window: list[float], value: float, size: int) -> None:
    """Appends `value` and drops the oldest values beyond `size`."""
    window.append(value)
    del window[:-size]
