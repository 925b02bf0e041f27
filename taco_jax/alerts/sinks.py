"""Where alerts go: the `Sink` interface, a Telegram bot (`TelegramSink`) and a generic JSON webhook (`WebhookSink`).

A sink sends one event per call and raises `AlertSendError` when it was not delivered; retrying, rate limits and
keeping failures away from training are the dispatcher's business (taco_jax/alerts/dispatcher.py).
"""

from __future__ import annotations

import base64
import json
from typing import Protocol

from taco_jax.alerts.events import AlertEvent
from taco_jax.alerts.http import AlertSendError, multipart_form, post, redact

__all__ = ["TELEGRAM_CAPTION_LIMIT", "TELEGRAM_TEXT_LIMIT", "Sink", "TelegramSink", "WebhookSink"]

# The Bot API's limits, in characters: a message's text, and the caption of a photo.
TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024


class Sink(Protocol):
    """Sends events somewhere. `name` appears in log messages; `secrets` are the strings no log may show."""

    name: str
    secrets: tuple[str, ...]

    def send(self, event: AlertEvent) -> None:
        """Delivers `event` or raises (AlertSendError, with the secrets redacted)."""
        ...


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TelegramSink:
    """A Telegram bot writing to one chat: `sendMessage`, or `sendPhoto` with the text as the caption when the
    event has an image. `api_url` is the Bot API's base URL (a local server can stand in)."""

    name = "telegram"

    def __init__(self, token: str, chat_id: str, api_url: str = "https://api.telegram.org", timeout_s: float = 10.0):
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self._chat_id = chat_id
        self.timeout_s = timeout_s
        self.secrets = (token, chat_id)

    def send(self, event: AlertEvent) -> None:
        """Raises AlertSendError on a failed request, a non-2xx answer or an answer with `"ok": false`."""
        if event.image_png is None:
            body = json.dumps({"chat_id": self._chat_id, "text": _truncate(event.text, TELEGRAM_TEXT_LIMIT)})
            self._call("sendMessage", body.encode(), "application/json")
            return
        fields = {"chat_id": self._chat_id, "caption": _truncate(event.text, TELEGRAM_CAPTION_LIMIT)}
        body, content_type = multipart_form(fields, {"photo": (f"{event.kind}.png", "image/png", event.image_png)})
        self._call("sendPhoto", body, content_type)

    def _call(self, method: str, body: bytes, content_type: str) -> None:
        try:
            answer = post(f"{self._base}/{method}", body, content_type, self.timeout_s, self.secrets)
        except AlertSendError as e:
            raise AlertSendError(f"{method}: {e}") from None
        try:
            ok, description = _telegram_status(answer)
        except ValueError:
            raise AlertSendError(f"{method}: the answer is not the Bot API's JSON") from None
        if not ok:
            raise AlertSendError(redact(f"{method}: Telegram answered ok=false: {description}", self.secrets))


def _telegram_status(answer: bytes) -> tuple[bool, str]:
    """(the answer's `ok`, its `description`) from a Bot API answer. Raises ValueError if it is no such object."""
    data = json.loads(answer)
    if not isinstance(data, dict) or "ok" not in data:
        raise ValueError("no 'ok' in the answer")
    return data["ok"] is True, str(data.get("description", ""))


class WebhookSink:
    """POSTs each event as JSON: {"event": kind, "text": ..., "fields": {...}, "image_png_base64": str | null}."""

    name = "webhook"

    def __init__(self, url: str, timeout_s: float = 10.0):
        self._url = url
        self.timeout_s = timeout_s
        self.secrets = (url,)  # a webhook URL usually carries its credential (a path or query token)

    def send(self, event: AlertEvent) -> None:
        """Raises AlertSendError on a failed request or a non-2xx answer."""
        image = base64.b64encode(event.image_png).decode("ascii") if event.image_png is not None else None
        payload = {"event": event.kind, "text": event.text, "fields": event.fields, "image_png_base64": image}
        post(self._url, json.dumps(payload).encode(), "application/json", self.timeout_s, self.secrets)
