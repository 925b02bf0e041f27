"""Opt-in alerts: events of a training run or a tuning study sent to Telegram or a JSON webhook.

- `events`: `AlertEvent` (a kind, a text, an optional PNG, JSON-able fields) and the kinds this project posts.
- `sinks`: where an event goes: `TelegramSink` (Bot API sendMessage / sendPhoto), `WebhookSink` (JSON POST).
- `http`: the one POST both sinks make, its failures as `AlertSendError` with the secrets redacted.
- `dispatcher`: `AlertDispatcher`, a bounded queue and a daemon thread: posting never blocks, sends are
  rate-limited and in order, failures are logged and never raised.
- `training`: `TrainingAlerts`, a training-loop callback (aligned, summary, rollback, nonfinite).
- `setup`: `build_dispatcher(alerts_cfg)`, the sinks of an `AlertsConfig` with their secrets from the environment.

No module here imports the training loop or the data pipeline; `taco_jax.train.alerting` wires them to a run.
"""

from taco_jax.alerts.dispatcher import AlertDispatcher
from taco_jax.alerts.events import EVENT_KINDS, AlertEvent
from taco_jax.alerts.http import AlertSendError
from taco_jax.alerts.setup import (
    ENV_CHAT_ID,
    ENV_TOKEN,
    ENV_WEBHOOK_URL,
    AlertSetupError,
    build_dispatcher,
    build_sinks,
)
from taco_jax.alerts.sinks import Sink, TelegramSink, WebhookSink
from taco_jax.alerts.training import TrainingAlerts

__all__ = [
    "ENV_CHAT_ID",
    "ENV_TOKEN",
    "ENV_WEBHOOK_URL",
    "EVENT_KINDS",
    "AlertDispatcher",
    "AlertEvent",
    "AlertSendError",
    "AlertSetupError",
    "Sink",
    "TelegramSink",
    "TrainingAlerts",
    "WebhookSink",
    "build_dispatcher",
    "build_sinks",
]
