"""Alerts (issue 19, acceptance 5): the dispatcher, the sinks and whole training runs against a local HTTP server.

The server on 127.0.0.1 plays the Telegram Bot API (alerts.telegram_api_url points at it) and a webhook, records
every request, and can answer 500, answer Telegram's {"ok": false}, or hang until the test lets it go. Nothing here
measures time: the dispatcher's rate limit runs on a fake clock, and "training did not wait" is shown by a run that
finishes while the server still holds a request.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import tiny_config_file, tiny_train_config

from taco_jax.alerts import (
    ENV_CHAT_ID,
    ENV_TOKEN,
    ENV_WEBHOOK_URL,
    AlertDispatcher,
    AlertEvent,
    AlertSendError,
    AlertSetupError,
    TelegramSink,
    TrainingAlerts,
    WebhookSink,
    build_dispatcher,
)
from taco_jax.alerts.http import redact
from taco_jax.config import AlertsConfig, ConfigError, load_config, to_yaml
from taco_jax.train.__main__ import main as train_main
from taco_jax.train.alerting import train_with_alerts
from taco_jax.train.loop import TrainingDiverged

TOKEN = "123456789:AAtest-SECRET-token_xyz"
CHAT_ID = "-100424242424242"
HOOK_SECRET = "hook-secret-5f3a9c"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WAIT_S = 60.0  # upper bound of every wait for another thread (never reached when things work)


# --- the recording server -----------------------------------------------------------------------------------


@dataclass
class Request:
    path: str
    content_type: str
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 — http.server's name
        server: Recorder = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with server.lock:
            server.requests.append(Request(self.path, self.headers.get("Content-Type", ""), body))
        if server.mode == "hang":
            server.hanging.set()
            server.release.wait()
        status, answer = {
            "500": (500, {"ok": False, "description": "Internal Server Error"}),
            "not_ok": (200, {"ok": False, "description": "Bad Request: chat not found"}),
        }.get(server.mode, (200, {"ok": True, "result": {}}))
        try:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # a client that gave up (timed out) while the server hung
            pass

    def log_message(self, *args) -> None:  # quiet
        pass


class Recorder(ThreadingHTTPServer):
    """Records every POST; `mode` is "ok", "500", "not_ok" or "hang" (answers after `release` is set)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.hanging, self.release = threading.Event(), threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def webhook_events(self) -> list[dict]:
        with self.lock:
            return [json.loads(r.body) for r in self.requests if r.path.startswith("/hook/")]

    def telegram_requests(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith("/bot")]


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # the requests must reach 127.0.0.1 directly
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def _secrets_env(monkeypatch, hook_url: str) -> None:
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    monkeypatch.setenv(ENV_CHAT_ID, CHAT_ID)
    monkeypatch.setenv(ENV_WEBHOOK_URL, hook_url)


def _alert_overrides(api_url: str, *, telegram: bool = True, webhook: bool = True, **keys) -> list[str]:
    values = {"enabled": True, "telegram": telegram, "webhook": webhook, "telegram_api_url": api_url,
              "min_interval_s": 0.0, "summary_every_min": 0.0} | keys  # fmt: skip
    return [f"alerts.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in values.items()]


def _refused_url() -> str:
    """A 127.0.0.1 port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _assert_no_secrets(run_dir: Path, *texts: str) -> None:
    secrets = (TOKEN, CHAT_ID, HOOK_SECRET)
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        leaked = [s for s in secrets if s.encode() in data]
        assert not leaked, f"{path} holds {leaked}"
    for text in texts:
        assert not [s for s in secrets if s in text]


def _multipart(request: Request) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by name (the stdlib's MIME parser, not the sink's encoder)."""
    head = f"Content-Type: {request.content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()}  # fmt: skip


# --- a whole run: events in order, the image attached, no secret in any file -----------------------------------


def test_run_posts_events_in_order_with_the_alignment_image(tiny_corpus, tmp_path, server, monkeypatch, caplog):
    _secrets_env(monkeypatch, f"{server.url}/hook/{HOOK_SECRET}")
    overrides = _alert_overrides(server.url, align_diag=0.0, align_focus=0.0, summary_every_min=1e-9)
    config = tiny_config_file(tiny_corpus, tmp_path, "run.max_steps=6", "run.log_every=2", "run.eval_every=4",
                              "run.sample_sentences=[Hello there.]", *overrides)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="taco_jax"):
        assert train_main(["--config", config, "--no-progress"]) == 0
    run_dir = tmp_path / "runs" / "t"

    # Summaries at every log step (2, 4, 6); the first evaluation (step 4, after its log) forms the alignment.
    events = server.webhook_events()
    assert [e["event"] for e in events] == ["start", "summary", "summary", "aligned", "summary", "end"]
    assert [e["fields"]["step"] for e in events[1:5]] == [2, 4, 4, 6]
    assert events[-1]["fields"]["stop_reason"] == "max_steps" and events[-1]["fields"]["step"] == 6
    png = (run_dir / "samples" / "step0000004_0.png").read_bytes()
    aligned = events[3]
    assert base64.b64decode(aligned["image_png_base64"]) == png and png.startswith(PNG_SIGNATURE)
    assert all(e["image_png_base64"] is None for e in events if e is not aligned)

    # Telegram got the same events, in the same order: the aligned one as a photo with its text as the caption.
    telegram = server.telegram_requests()
    assert [r.path for r in telegram] == [f"/bot{TOKEN}/{m}" for m in ["sendMessage"] * 3 + ["sendPhoto"]
                                          + ["sendMessage"] * 2]  # fmt: skip
    messages = [json.loads(r.body) for r in telegram if r.path.endswith("sendMessage")]
    assert [m["text"] for m in messages] == [e["text"] for e in events if e is not aligned]
    assert all(m["chat_id"] == CHAT_ID for m in messages)
    parts = _multipart(telegram[3])
    assert parts["photo"] == png
    assert parts["caption"].decode() == aligned["text"] and parts["chat_id"].decode() == CHAT_ID
    _assert_no_secrets(run_dir, caplog.text)


def test_rollback_then_crash_with_the_log_tail(tiny_corpus, tmp_path, server, monkeypatch, caplog):
    """optim.lr=1e6 explodes from step 2 (tests/test_control_train.py): rollbacks, then TrainingDiverged."""
    _secrets_env(monkeypatch, f"{server.url}/hook/{HOOK_SECRET}")
    alerts = _alert_overrides(server.url, align_diag=1.0, align_focus=1.0)  # a blown-up model never aligns
    cfg = tiny_train_config(tiny_corpus, tmp_path, "optim.lr=1e6", "run.max_steps=20", "run.eval_every=2",
                            "control.nonfinite.max_rollbacks=2", *alerts)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="taco_jax"), pytest.raises(TrainingDiverged):
        train_with_alerts(cfg)
    kinds = [e["event"] for e in server.webhook_events()]
    assert kinds[0] == "start" and kinds[-1] == "crash" and "rollback" in kinds
    assert set(kinds) <= {"start", "rollback", "nonfinite", "crash"}
    crash = server.webhook_events()[-1]
    log_path = Path(crash["fields"]["log"])
    assert log_path == tmp_path / "runs" / "t" / "train.log"
    assert crash["text"].startswith("[t] training stopped: TrainingDiverged: ")
    assert log_path.read_text().splitlines()[-1][:300] in crash["text"]  # the log's tail (lines cut at 300)
    _assert_no_secrets(tmp_path / "runs" / "t", caplog.text)


def test_early_stop_then_end(tiny_corpus, tmp_path, server, monkeypatch):
    _secrets_env(monkeypatch, f"{server.url}/hook/{HOOK_SECRET}")
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=10", "run.eval_every=1", "run.log_every=1",
                            "control.early_stopping.enabled=true", "control.early_stopping.patience=2",
                            "control.early_stopping.min_delta=0.99", "control.phase.align_start=0.0",
                            *_alert_overrides(server.url, telegram=False, align_diag=1.0, align_focus=1.0))  # fmt: skip
    result = train_with_alerts(cfg)
    assert result.stop_reason == "early_stopping"
    events = server.webhook_events()
    assert [e["event"] for e in events] == ["start", "early_stop", "end"]
    assert events[1]["fields"]["step"] == events[2]["fields"]["step"] == result.step
    assert events[2]["fields"]["stop_reason"] == "early_stopping"
    assert events[2]["fields"]["val_loss"] == pytest.approx(result.val_metrics["val/loss"])


# --- failing services: training goes on, failures are logged ---------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "telegram", "webhook", "logged"),
    [("refused", True, True, "cannot connect"), ("500", True, True, "HTTP 500"),
     ("not_ok", True, False, "ok=false: Bad Request: chat not found")],
)  # fmt: skip
def test_failing_service_leaves_training_running(
    tiny_corpus, tmp_path, server, monkeypatch, caplog, mode, telegram, webhook, logged
):
    url = _refused_url() if mode == "refused" else server.url
    server.mode = mode
    _secrets_env(monkeypatch, f"{url}/hook/{HOOK_SECRET}")
    alerts = _alert_overrides(url, telegram=telegram, webhook=webhook, align_diag=1.0, align_focus=1.0)
    cfg = tiny_train_config(tiny_corpus, tmp_path, *alerts)  # events: start and end only
    with caplog.at_level(logging.WARNING, logger="taco_jax"):
        result = train_with_alerts(cfg)
    assert result.step == cfg.run.max_steps and result.stop_reason == "max_steps"
    failures = [r.getMessage() for r in caplog.records if r.name == "taco_jax.alerts"]
    sinks = ["telegram"] * telegram + ["webhook"] * webhook
    assert [f"alert '{kind}' not sent to {sink}" for kind in ("start", "end") for sink in sinks] == [
        m.split(":")[0] for m in failures
    ]
    assert all(logged in m for m in failures)
    _assert_no_secrets(Path(result.run_dir), caplog.text)


def test_hanging_service_does_not_hold_training(tiny_corpus, tmp_path, server, monkeypatch, caplog):
    server.mode = "hang"
    _secrets_env(monkeypatch, f"{server.url}/hook/{HOOK_SECRET}")
    cfg = tiny_train_config(tiny_corpus, tmp_path, *_alert_overrides(server.url, timeout_s=1.0, align_diag=1.0))
    with caplog.at_level(logging.WARNING, logger="taco_jax"):
        result = train_with_alerts(cfg)
        # Training finished while the server still holds the first request (the server answers nothing before
        # `release`, which is set only below): training never waited for an answer.
        assert result.step == cfg.run.max_steps
        assert server.hanging.wait(WAIT_S)
        deadline = time.monotonic() + WAIT_S  # the abandoned sender times out in the background
        while "timed out" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    server.release.set()
    assert "alert 'start' not sent to telegram" in caplog.text and "timed out" in caplog.text
    _assert_no_secrets(Path(result.run_dir), caplog.text)


# --- start-up: secrets only from the environment, checked before training -----------------------------------


def test_missing_secret_stops_the_command_before_training(tiny_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    monkeypatch.delenv(ENV_CHAT_ID, raising=False)
    config = tiny_config_file(tiny_corpus, tmp_path, *_alert_overrides("http://127.0.0.1:9", webhook=False))
    assert train_main(["--config", config, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"environment variable {ENV_CHAT_ID} is not set" in err and TOKEN not in err
    assert not (tmp_path / "runs").exists()


def test_alert_config_is_validated_and_holds_no_secret():
    with pytest.raises(ConfigError, match=r"alerts\.token"):  # secrets are not config keys
        load_config(None, ["alerts.token=abc"])
    bad = {"timeout_s": 0, "queue_size": 0, "align_diag": 1.5, "summary_every_min": -1,
           "telegram_api_url": "ftp://x", "enabled": "true"}  # fmt: skip
    for key, value in bad.items():
        with pytest.raises(ConfigError, match=rf"'alerts\.{key}'"):
            load_config(None, [f"alerts.{key}={value}"])
    cfg = load_config(None, ["alerts.enabled=true", "alerts.telegram=true"])
    assert "alerts:" in to_yaml(cfg) and not [k for k in vars(cfg.alerts) if "token" in k or "chat" in k]
    assert build_dispatcher(AlertsConfig()) is None  # disabled: nothing starts
    with pytest.raises(AlertSetupError, match=ENV_TOKEN):
        build_dispatcher(cfg.alerts, environ={})


def test_alerts_package_is_a_leaf():
    """Importing taco_jax.alerts loads neither the training code, the data pipeline, the config schema nor JAX."""
    code = "import json, sys, taco_jax.alerts; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    heavy = [m for m in loaded if m.split(".")[0] in ("jax", "omegaconf", "grain", "numpy")]
    ours = [m for m in loaded if m.split(".")[1:2] in (["train"], ["data"], ["config"]) and m.startswith("taco_jax.")]
    assert "taco_jax.alerts.training" in loaded and not heavy and not ours, (heavy, ours)


# --- the dispatcher, with fake sinks --------------------------------------------------------------------------


class FakeSink:
    name = "fake"
    secrets: tuple[str, ...] = ()

    def __init__(self, clock=None, fail: bool = False):
        self.received: list[AlertEvent] = []
        self.times: list[float] = []
        self.clock, self.fail = clock, fail

    def send(self, event: AlertEvent) -> None:
        if self.clock is not None:
            self.times.append(self.clock())
        if self.fail:
            raise RuntimeError(f"boom while sending to https://example.org/bot{TOKEN}/sendMessage")
        self.received.append(event)


class BlockingSink(FakeSink):
    """Blocks in `send` until `release` is set; `entered` tells when the sender is inside."""

    def __init__(self):
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def send(self, event: AlertEvent) -> None:
        self.entered.set()
        assert self.release.wait(WAIT_S)
        super().send(event)


def _events(n: int, kind: str = "summary") -> list[AlertEvent]:
    return [AlertEvent(kind, f"event {i}", None, {"i": i}) for i in range(n)]


def test_dispatcher_sends_every_event_in_order():
    sink = FakeSink()
    dispatcher = AlertDispatcher([sink], min_interval_s=0.0, queue_size=100)
    events = _events(50)
    assert all(dispatcher.post(e) for e in events)
    assert dispatcher.close(WAIT_S)
    assert sink.received == events and dispatcher.sent == 50 and dispatcher.dropped == 0


def test_dispatcher_rate_limit_spaces_sends_in_order():
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    sink = FakeSink(clock=lambda: now[0])
    dispatcher = AlertDispatcher([sink], min_interval_s=5.0, queue_size=10, clock=lambda: now[0], sleep=sleep)
    events = _events(4)
    for e in events:
        dispatcher.post(e)
    assert dispatcher.close(WAIT_S)
    assert sink.received == events
    assert sink.times == [100.0, 105.0, 110.0, 115.0]  # the first at once, then one per min_interval_s
    assert sleeps == [5.0, 5.0, 5.0]


def test_dispatcher_drops_when_the_queue_is_full(caplog):
    sink = BlockingSink()
    dispatcher = AlertDispatcher([sink], min_interval_s=0.0, queue_size=3)
    first, *queued = _events(4)
    overflow = _events(8, kind="nonfinite")
    assert dispatcher.post(first)
    assert sink.entered.wait(WAIT_S)  # the sender holds `first`: the queue is empty again
    assert all(dispatcher.post(e) for e in queued)
    with caplog.at_level(logging.WARNING, logger="taco_jax.alerts"):
        assert not any(dispatcher.post(e) for e in overflow)  # never blocks: turned away at once
    assert dispatcher.dropped == 8
    assert [r.getMessage().split(" (")[1] for r in caplog.records] == [  # a warning at 1, 2, 4, 8 drops only
        "1 so far): the alert queue is full or closed", "2 so far): the alert queue is full or closed",
        "4 so far): the alert queue is full or closed", "8 so far): the alert queue is full or closed",
    ]  # fmt: skip
    sink.release.set()
    assert dispatcher.close(WAIT_S)
    assert sink.received == [first, *queued]
    assert not dispatcher.post(first) and dispatcher.dropped == 9  # closed: dropped too


def test_dispatcher_close_gives_up_at_its_deadline(caplog):
    sink = BlockingSink()
    dispatcher = AlertDispatcher([sink], min_interval_s=0.0, queue_size=10)
    for e in _events(3):
        dispatcher.post(e)
    assert sink.entered.wait(WAIT_S)
    with caplog.at_level(logging.WARNING, logger="taco_jax.alerts"):
        assert dispatcher.close(0.01) is False  # returns although the sink still holds an event
    assert "2 not sent" in caplog.text
    sink.release.set()


def test_dispatcher_logs_failures_redacted_and_goes_on(caplog):
    failing = FakeSink(fail=True)
    failing.secrets = (TOKEN,)
    good = FakeSink()
    dispatcher = AlertDispatcher([failing, good], min_interval_s=0.0)
    events = _events(3)
    with caplog.at_level(logging.WARNING, logger="taco_jax.alerts"):
        for e in events:
            dispatcher.post(e)
        assert dispatcher.close(WAIT_S)
    assert good.received == events and dispatcher.failed == 3 and dispatcher.sent == 0
    assert caplog.text.count("alert 'summary' not sent to fake: RuntimeError: boom") == 3
    assert TOKEN not in caplog.text and "/bot<redacted>/sendMessage" in caplog.text


def test_redact_covers_percent_encoding():
    text = f"GET /bot{TOKEN}/x?u=https%3A%2F%2Fh%2F{HOOK_SECRET} and {TOKEN.replace(':', '%3A')}"
    clean = redact(text, [TOKEN, f"https://h/{HOOK_SECRET}"])
    assert TOKEN not in clean and HOOK_SECRET not in clean and "%3AAAtest" not in clean


# --- the sinks against the server -----------------------------------------------------------------------------


def test_telegram_sink_truncates_and_checks_ok(server):
    sink = TelegramSink(TOKEN, CHAT_ID, server.url + "/", timeout_s=WAIT_S)
    sink.send(AlertEvent("summary", "x" * 5000))
    sink.send(AlertEvent("aligned", "y" * 2000, PNG_SIGNATURE + b"rest"))
    text, photo = server.telegram_requests()
    assert text.path == f"/bot{TOKEN}/sendMessage" and photo.path == f"/bot{TOKEN}/sendPhoto"
    message = json.loads(text.body)
    assert len(message["text"]) == 4096 and message["text"].endswith("…")
    parts = _multipart(photo)
    assert parts["photo"] == PNG_SIGNATURE + b"rest"
    caption = parts["caption"].decode()
    assert len(caption) == 1024 and caption.startswith("y" * 1023)
    server.mode = "not_ok"
    with pytest.raises(AlertSendError, match="sendMessage: Telegram answered ok=false") as info:
        sink.send(AlertEvent("end", "z"))
    assert TOKEN not in str(info.value) and CHAT_ID not in str(info.value)


def test_webhook_sink_posts_json(server):
    sink = WebhookSink(f"{server.url}/hook/{HOOK_SECRET}", timeout_s=WAIT_S)
    sink.send(AlertEvent("new_best", "trial 3", b"img", {"value": 1.5, "trial": 3}))
    assert server.webhook_events() == [
        {"event": "new_best", "text": "trial 3", "fields": {"value": 1.5, "trial": 3},
         "image_png_base64": base64.b64encode(b"img").decode()}
    ]  # fmt: skip
    server.mode = "500"
    with pytest.raises(AlertSendError, match="HTTP 500") as info:
        sink.send(AlertEvent("end", "z"))
    assert HOOK_SECRET not in str(info.value)


# --- the training callback, with a fake clock -----------------------------------------------------------------


def _train_log(step: int, wall_s: float, **extra: float) -> dict[str, float]:
    return {"train/loss": 2.0, "train/rollbacks": 0.0, "train/nonfinite": 0.0, "train/lr_scale": 1.0,
            "perf/step_s": 0.5, "perf/wall_s": wall_s} | extra  # fmt: skip


def test_callback_summaries_follow_the_clock_and_estimate_the_time_left():
    now = [0.0]
    posted: list[AlertEvent] = []
    alerts = TrainingAlerts(posted.append, max_steps=100, label="r", summary_every_min=1.0, clock=lambda: now[0])
    for t, step, wall in [(0.0, 10, 10.0), (30.0, 20, 30.0), (61.0, 30, 50.0), (100.0, 40, 70.0), (125.0, 50, 90.0)]:
        now[0] = t
        assert alerts(step, _train_log(step, wall)) is None  # never asks the loop to stop
    assert [e.fields["step"] for e in posted] == [30, 50]
    # 20 steps in 40 s of wall time since the first log (step 10 at 10 s): 0.5 steps/s, 70 steps left.
    assert posted[0].fields["steps_per_s"] == pytest.approx(0.5)
    assert posted[0].fields["eta_s"] == pytest.approx(140.0)
    assert posted[0].text.startswith("[r] step 30/100: loss 2.0000; no evaluation yet;")
    assert "ETA 0:02:20" in posted[0].text


def test_callback_aligned_once_with_the_newest_image(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "step0000002_0.png").write_bytes(PNG_SIGNATURE + b"old")
    (samples / "step0000004_0.png").write_bytes(PNG_SIGNATURE + b"new")
    (samples / "step0000004_1.png").write_bytes(PNG_SIGNATURE + b"second sentence")
    posted: list[AlertEvent] = []
    alerts = TrainingAlerts(posted.append, max_steps=10, align_diag=0.5, align_focus=0.4, summary_every_min=0,
                            samples_dir=lambda: samples)  # fmt: skip
    for step, diag, focus in [(2, 0.6, 0.3), (4, 0.55, 0.45), (6, 0.9, 0.9)]:
        alerts(step, {"val/loss": 1.0, "val/align_diag": diag, "val/align_focus": focus})
    assert [(e.kind, e.fields["step"], e.image_png) for e in posted] == [("aligned", 4, PNG_SIGNATURE + b"new")]
    none: list[AlertEvent] = []
    TrainingAlerts(none.append, max_steps=10, align_diag=0, align_focus=0, samples_dir=tmp_path / "missing")(
        2, {"val/loss": 1.0, "val/align_diag": 0.1, "val/align_focus": 0.1}
    )
    assert none[0].image_png is None and "no alignment image" in none[0].text


def test_callback_reports_rollbacks_and_nonfinite_steps_when_they_rise():
    posted: list[AlertEvent] = []
    alerts = TrainingAlerts(posted.append, max_steps=100, summary_every_min=0)
    for step, rollbacks, nonfinite in [(10, 0, 0), (20, 0, 2), (30, 0, 2), (40, 1, 1), (50, 1, 3)]:
        alerts(step, _train_log(step, step, **{"train/rollbacks": rollbacks, "train/nonfinite": nonfinite}))
    assert [(e.kind, e.fields["step"]) for e in posted] == [("nonfinite", 20), ("rollback", 40), ("nonfinite", 50)]
    resumed: list[AlertEvent] = []
    alerts = TrainingAlerts(resumed.append, max_steps=100, summary_every_min=0, resumed=True)
    alerts(10, _train_log(10, 1.0, **{"train/rollbacks": 2.0}))  # the checkpoint's count: old news
    assert resumed == []
