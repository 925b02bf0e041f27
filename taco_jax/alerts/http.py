"""The one HTTP request both sinks make (a POST with urllib), and its failures with the secrets taken out.

A Telegram bot token travels in the URL path and a webhook URL is itself a secret, so no text that could contain a
URL leaves this module unredacted: failures become `AlertSendError`s whose message has every secret replaced (also
in its percent-encoded form) and whose cause is dropped (`from None`), so a logged traceback cannot show it either.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping

__all__ = ["AlertSendError", "multipart_form", "post", "redact"]

REDACTED = "<redacted>"
_ERROR_BODY_CHARS = 200  # of a failed answer's body, in the error message


class AlertSendError(Exception):
    """An alert was not delivered; the message names why and holds no secret."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every non-empty secret (as given and percent-encoded, longest first) replaced by <redacted>."""
    variants = {v for s in secrets if s for v in (s, urllib.parse.quote(s), urllib.parse.quote(s, safe=""))}
    for secret in sorted(variants, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def post(url: str, body: bytes, content_type: str, timeout_s: float, secrets: Iterable[str] = ()) -> bytes:
    """POSTs `body` to `url` and returns the body of a 2xx answer.

    Raises:
      AlertSendError: the connection failed or timed out, or the answer was not 2xx (with the start of its body,
        where a service says what was wrong); `secrets` are redacted from the message.
    """
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type, "User-Agent": "taco_jax-alerts"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        message = f"HTTP {e.code} {e.reason}{_answer_excerpt(e)}"
    except urllib.error.URLError as e:  # refused, unknown host, a timeout while connecting
        message = f"cannot connect: {e.reason}"
    except (OSError, http.client.HTTPException, ValueError) as e:  # a timeout or a broken answer while reading
        message = f"{type(e).__name__}: {e}"
    raise AlertSendError(redact(message, secrets)) from None


def _answer_excerpt(error: urllib.error.HTTPError) -> str:
    """': <start of the answer's body>' when it has one (Telegram explains its refusals there), else ''."""
    try:
        text = error.read(_ERROR_BODY_CHARS).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        return ""
    return f": {text}" if text else ""


def multipart_form(fields: Mapping[str, str], files: Mapping[str, tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body: `fields` as text parts, `files` as {name: (file name, content type, bytes)}.

    Returns (body, the Content-Type header value with its boundary).
    """
    boundary = f"taco-jax-{uuid.uuid4().hex}"  # random: it cannot occur in a PNG by accident (in practice)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        parts.append(value.encode("utf-8") + b"\r\n")
    for name, (filename, content_type, data) in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        parts.append(f"{head}Content-Type: {content_type}\r\n\r\n".encode())
        parts.append(data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
