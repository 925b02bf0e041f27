"""What an alert is: `AlertEvent`, and the kinds of event this project posts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVENT_KINDS", "AlertEvent"]

EVENT_KINDS = (
    # a training run (taco_jax.alerts.training, taco_jax.train.alerting)
    "start",
    "aligned",
    "summary",
    "rollback",
    "nonfinite",
    "early_stop",
    "end",
    "crash",
    # a tuning study
    "trial_finished",
    "trial_pruned",
    "new_best",
)
"""The kinds posted here; a sink sends any kind (it is a label, not a protocol)."""


@dataclass(frozen=True)
class AlertEvent:
    """One alert: `kind` (one of EVENT_KINDS), the human-readable `text`, an optional PNG image and `fields`, the
    same facts as JSON-able values (numbers, strings, lists) for machines (the webhook's receiver)."""

    kind: str
    text: str
    image_png: bytes | None = None
    fields: dict[str, Any] = field(default_factory=dict)
