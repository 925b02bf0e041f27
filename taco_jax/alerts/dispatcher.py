"""`AlertDispatcher`: alerts leave the training thread through a bounded queue and a daemon thread.

`post` never blocks and never raises: a full queue drops the event (counted, with a warning now and then). The
sending thread delivers events in the order they were posted, to every sink, at most one send per `min_interval_s`
(Telegram throttles bursts), and logs each failure with the sinks' secrets redacted; a refused connection, a
timeout or an error answer never reaches the caller. `close` lets the thread flush what it can within a deadline.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from taco_jax.alerts.events import AlertEvent
from taco_jax.alerts.http import AlertSendError, redact
from taco_jax.alerts.sinks import Sink

log = logging.getLogger("taco_jax.alerts")

__all__ = ["AlertDispatcher"]

_STOP = object()  # the queue's last item: the sending thread ends when it takes it


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class AlertDispatcher:
    """Sends posted events to `sinks` on a daemon thread, in order and rate-limited (module docstring).

    `clock` and `sleep` are the thread's time (tests pass fakes). Counters, for reports and tests: `sent` (events
    every sink took), `failed` (events at least one sink refused), `dropped` (events the full queue turned away or
    posted after `close`).
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        min_interval_s: float = 1.0,
        queue_size: int = 100,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not sinks:
            raise ValueError("AlertDispatcher needs at least one sink")
        self.sinks = tuple(sinks)
        self.min_interval_s = float(min_interval_s)
        self._clock, self._sleep = clock, sleep
        self._secrets = tuple(s for sink in self.sinks for s in sink.secrets)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._closed = False
        self._lock = threading.Lock()  # `dropped` may be counted by several posting threads (a tuner's workers)
        self._last_send: float | None = None
        self.sent = self.failed = self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="taco_jax-alerts", daemon=True)
        self._thread.start()

    def post(self, event: AlertEvent) -> bool:
        """Queues `event` for sending; False (and the event dropped) when the queue is full or the dispatcher
        closed. Never blocks, never raises."""
        if not self._closed:
            try:
                self._queue.put_nowait(event)
                return True
            except queue.Full:
                pass
        with self._lock:
            self.dropped += 1
            dropped = self.dropped
        if _is_power_of_two(dropped):  # 1, 2, 4, 8, ...: a stuck sink cannot flood the log
            log.warning("alert '%s' dropped (%d so far): the alert queue is full or closed", event.kind, dropped)
        return False

    def close(self, timeout_s: float = 10.0) -> bool:
        """Stops accepting events and waits at most `timeout_s` for the queued ones to be sent. True when all were
        handled (sent or failed); False when the deadline passed first (the daemon thread is then left behind and
        ends with the process)."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        self._closed = True
        try:
            self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("alerts: %d not sent within %.3g s of the end; giving up on them", self.pending(), timeout_s)
            return False
        return True

    def pending(self) -> int:
        """Events queued and not yet taken by the sending thread (approximate while it runs)."""
        return sum(1 for item in list(self._queue.queue) if item is not _STOP)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                return
            self._wait_turn()
            self._deliver(event)

    def _wait_turn(self) -> None:
        """Sleeps until `min_interval_s` has passed since the previous send."""
        if self._last_send is not None:
            wait = self._last_send + self.min_interval_s - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_send = self._clock()

    def _deliver(self, event: AlertEvent) -> None:
        """Sends `event` to every sink; logs (redacted) and counts failures, never raises."""
        ok = True
        for sink in self.sinks:
            try:
                sink.send(event)
            except Exception as e:  # noqa: BLE001 — nothing a sink does may reach training
                ok = False
                reason = redact(str(e) if isinstance(e, AlertSendError) else f"{type(e).__name__}: {e}", self._secrets)
                log.warning("alert '%s' not sent to %s: %s", event.kind, sink.name, reason)
        if ok:
            self.sent += 1
        else:
            self.failed += 1
