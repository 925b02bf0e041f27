"""Alerts from an `AlertsConfig`: its sinks, with the secrets read from the environment, and their dispatcher.

The secrets are never config keys, so they cannot end up in config.yaml or a checkpoint. A missing variable is an
`AlertSetupError` (a UserError: one line, exit status 2) when the command starts, not a failure mid-run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from taco_jax.alerts.dispatcher import AlertDispatcher
from taco_jax.alerts.sinks import Sink, TelegramSink, WebhookSink
from taco_jax.errors import UserError

if TYPE_CHECKING:  # only the type: this package does not load the config schema (OmegaConf)
    from taco_jax.config import AlertsConfig

__all__ = ["ENV_CHAT_ID", "ENV_TOKEN", "ENV_WEBHOOK_URL", "AlertSetupError", "build_dispatcher", "build_sinks"]

ENV_TOKEN = "TACO_JAX_TELEGRAM_TOKEN"
ENV_CHAT_ID = "TACO_JAX_TELEGRAM_CHAT_ID"
ENV_WEBHOOK_URL = "TACO_JAX_ALERT_WEBHOOK_URL"


class AlertSetupError(UserError):
    """Alerts are switched on but a sink's secret is missing from the environment."""


def _required(environ: Mapping[str, str], name: str, key: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise AlertSetupError(f"config key 'alerts.{key}' is on but the environment variable {name} is not set")
    return value


def build_sinks(cfg: AlertsConfig, environ: Mapping[str, str] | None = None) -> list[Sink]:
    """The sinks `cfg` switches on (none when alerts are disabled), secrets from `environ` (default os.environ).

    Raises:
      AlertSetupError: naming the environment variable a switched-on sink needs.
    """
    environ = os.environ if environ is None else environ
    sinks: list[Sink] = []
    if not cfg.enabled:
        return sinks
    if cfg.telegram:
        token = _required(environ, ENV_TOKEN, "telegram")
        chat_id = _required(environ, ENV_CHAT_ID, "telegram")
        sinks.append(TelegramSink(token, chat_id, cfg.telegram_api_url, cfg.timeout_s))
    if cfg.webhook:
        sinks.append(WebhookSink(_required(environ, ENV_WEBHOOK_URL, "webhook"), cfg.timeout_s))
    return sinks


def build_dispatcher(cfg: AlertsConfig, environ: Mapping[str, str] | None = None) -> AlertDispatcher | None:
    """A started dispatcher for `cfg`'s sinks, or None when alerts are disabled (or no sink is switched on).

    Raises:
      AlertSetupError: a switched-on sink's environment variable is missing.
    """
    sinks = build_sinks(cfg, environ)
    if not sinks:
        return None
    return AlertDispatcher(sinks, cfg.min_interval_s, cfg.queue_size)
