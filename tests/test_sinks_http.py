"""Slack and webhook sinks against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from monitor.clock import FixedClock
from monitor.config.models import AppConfig, SlackSinkConfig, WebhookSinkConfig
from monitor.deliver import Deliverer
from monitor.exceptions import SinkError
from monitor.sinks import build_sink, send_test
from monitor.sinks.slack import SlackSink
from monitor.sinks.webhook import WebhookSink, sign
from monitor.storage.sqlite import SQLiteStorage
from monitor.types import ClaimRequest, OutboxEntry
from tests.receivers import NOW, Answer, Close, Hang, WebhookReceiver, make_alert

SECRET = "hmac-key-s3cr3t-42"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET.encode()) as rx:
        yield rx


def webhook(rx: WebhookReceiver, **kw: Any) -> WebhookSink:
    config = WebhookSinkConfig(
        type="webhook",
        name="hook",
        url=SecretStr(rx.url("/in/tok3n-in-path")),
        secret=SecretStr(SECRET),
        timeout=timedelta(seconds=1),
        **kw,
    )
    sink = build_sink(config, clock=FixedClock(NOW))
    assert isinstance(sink, WebhookSink)
    return sink


def slack(rx: WebhookReceiver, min_interval: float = 0) -> SlackSink:
    config = SlackSinkConfig(
        type="slack",
        name="desk",
        webhook_url=SecretStr(rx.url("/services/T000/B000/XXXXSECRET")),
        timeout=timedelta(seconds=1),
        min_interval=timedelta(seconds=min_interval),
    )
    sink = build_sink(config)
    assert isinstance(sink, SlackSink)
    return sink


async def test_webhook_posts_signed_alert_json(receiver: WebhookReceiver) -> None:
    """The body is the alert JSON; headers carry the idempotency key, timestamp and a valid HMAC."""
    sink = webhook(receiver, headers={"Authorization": "Bearer t0ken-xyz", "X-Team": "desk"})
    alert = make_alert()
    try:
        await sink.send(alert)
        await sink.send(alert)  # a retry of the same alert
    finally:
        await sink.close()
    first, second = receiver.requests
    assert first.path == "/in/tok3n-in-path"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["idempotency-key"] == "a1b2c3d4e5" == second.headers["idempotency-key"]
    assert first.headers["x-monitor-timestamp"] == str(int(NOW.timestamp()))
    assert first.headers["authorization"] == "Bearer t0ken-xyz"
    assert first.headers["x-team"] == "desk"
    assert first.headers["user-agent"].startswith("media-monitor/")
    assert first.signature_ok is True
    assert first.headers["x-monitor-signature"] == sign(
        SECRET.encode(), int(NOW.timestamp()), first.body
    )
    payload = first.json()
    assert payload["schema"] == "media-monitor/alert@1"
    assert payload["alert_id"] == "a1b2c3d4e5"
    assert payload["item"]["title"] == alert.item.title


async def test_webhook_without_secret_is_unsigned(receiver: WebhookReceiver) -> None:
    """No secret, no signature header; everything else is sent."""
    config = WebhookSinkConfig(type="webhook", name="plain", url=SecretStr(receiver.url()))
    sink = WebhookSink(config)
    try:
        answer = await sink.deliver(make_alert())
    finally:
        await sink.close()
    assert answer == "200 OK: ok"
    assert "x-monitor-signature" not in receiver.requests[0].headers
    assert "idempotency-key" in receiver.requests[0].headers


async def test_slack_posts_block_kit(receiver: WebhookReceiver) -> None:
    """Slack gets JSON with text, blocks and a coloured attachment."""
    sink = slack(receiver)
    try:
        answer = await sink.deliver(make_alert())
    finally:
        await sink.close()
    assert answer == "200 OK: ok"
    body = receiver.requests[0].json()
    assert body["blocks"][0]["type"] == "header"
    assert body["attachments"][0]["color"]
    assert "Oreshnik" in body["text"]


def _failures() -> list[Any]:
    return [
        pytest.param(
            Answer(500, b"rollup_error"),
            True,
            None,
            "500 Internal Server Error: rollup_error",
            id="500",
        ),
        pytest.param(Answer(503, b""), True, None, "503 Service Unavailable", id="503"),
        pytest.param(
            Answer(429, b"rate_limited", {"Retry-After": "17"}), True, 17.0, "429", id="429"
        ),
        pytest.param(
            Answer(429, b"", {"Retry-After": "soon"}), True, None, "429", id="429-bad-retry-after"
        ),
        pytest.param(Answer(408, b""), True, None, "408", id="408"),
        pytest.param(
            Answer(400, b"invalid_payload"),
            False,
            None,
            "400 Bad Request: invalid_payload",
            id="400",
        ),
        pytest.param(
            Answer(404, b"no_service"), False, None, "404 Not Found: no_service", id="404"
        ),
        pytest.param(Answer(410, b"channel_is_archived"), False, None, "410", id="410"),
        pytest.param(
            Answer(301, b"", {"Location": "/elsewhere"}), False, None, "redirect", id="301"
        ),
        pytest.param(Hang(5), True, None, "no answer from", id="hang"),
        pytest.param(Close(), True, None, "cannot reach", id="close"),
    ]


@pytest.mark.parametrize("kind", ["slack", "webhook"])
@pytest.mark.parametrize(("answer", "transient", "retry_after", "text"), _failures())
async def test_failure_modes_map_to_sink_errors(
    receiver: WebhookReceiver,
    kind: str,
    answer: Any,
    transient: bool,
    retry_after: float | None,
    text: str,
) -> None:
    """Each way a receiver fails maps to a SinkError with the right transient flag and wait."""
    receiver.then(answer)
    sink = slack(receiver) if kind == "slack" else webhook(receiver)
    try:
        with pytest.raises(SinkError) as info:
            await sink.send(make_alert())
    finally:
        await sink.close()
    error = info.value
    assert error.transient is transient
    assert error.retry_after == retry_after
    assert error.sink_name == sink.name
    assert text in str(error)
    assert str(error).startswith(("Slack", "the webhook receiver", "no answer", "cannot reach"))
    assert f"sink '{sink.name}'" in str(error)


async def test_unreachable_receiver_is_transient() -> None:
    """Connection refused (nothing listening) is transient and names the sink, not the URL."""
    with WebhookReceiver() as rx:
        url = rx.url("/services/T0/B0/GONE-SECRET")
    config = SlackSinkConfig(type="slack", name="desk", webhook_url=SecretStr(url))
    sink = SlackSink(config)
    try:
        with pytest.raises(SinkError) as info:
            await sink.send(make_alert())
    finally:
        await sink.close()
    assert info.value.transient
    assert "GONE-SECRET" not in str(info.value)
    assert "cannot reach Slack" in str(info.value)


async def test_secrets_never_in_errors_or_logs(receiver: WebhookReceiver) -> None:
    """No error string or log line carries the webhook URL, the HMAC key or a token header,
    even when the receiver echoes them back in its answer."""
    hook_url = receiver.url("/in/tok3n-in-path")
    hook_echo = f"bad request to {hook_url} with {SECRET} and t0ken-xyz".encode()
    receiver.then(Answer(400, hook_echo), Answer(500, hook_echo), Hang(5), Close())
    receiver.then(Answer(500, hook_echo))  # for the Deliverer
    hook = webhook(receiver, headers={"Authorization": "t0ken-xyz"})
    with WebhookReceiver() as slack_rx:
        desk = slack(slack_rx)
        desk_echo = b"no_service for /services/T000/B000/XXXXSECRET"  # the path alone
        slack_rx.then(Answer(404, desk_echo), Close(), Answer(500, desk_echo))
        secrets = [hook_url, "tok3n-in-path", SECRET, "t0ken-xyz", "XXXXSECRET"]
        errors: list[str] = []
        store = _OneShotStore(make_alert(), ["hook", "desk"])
        sinks = {"hook": hook, "desk": desk}
        deliverer = Deliverer(_app_config(), store, sinks, FixedClock(NOW))  # type: ignore[arg-type]
        with capture_logs() as logs:
            for sink in (hook, hook, hook, hook, desk, desk):
                try:
                    await sink.send(make_alert())
                except SinkError as e:
                    errors += [str(e), repr(e)]
            await deliverer.deliver_due()
        await hook.close()
        await desk.close()
    assert len(errors) == 12
    assert len(store.errors) == 2
    dumped = json.dumps(logs, default=str) + "\n".join(errors + store.errors)
    assert dumped.count("delivery_failed") == 2
    for secret in secrets:
        assert secret not in dumped
    assert "***" in dumped
    assert repr(hook.config.url) == "SecretStr('**********')"


# --- a minimal store for driving the real Deliverer once --------------------------


class _OneShotStore:
    def __init__(self, alert: Any, sinks: list[str]) -> None:
        from monitor.types import Delivery

        self.due = [Delivery(i, alert, name, 0) for i, name in enumerate(sinks)]
        self.errors: list[str] = []

    def due_deliveries(self, now: Any, limit: int, *, skip_sinks: Any = ()) -> list[Any]:
        due, self.due = self.due, []
        return due

    def mark_delivered(self, delivery_id: int, now: Any) -> None:
        pass

    def mark_failed(
        self, delivery_id: int, error: str, next_attempt: Any, *, dead: bool, now: Any = None
    ) -> None:
        self.errors.append(error)

    def queued_digests(self) -> list[Any]:
        return []


def _app_config() -> Any:
    from monitor.config.models import AppConfig

    return AppConfig.model_validate({})


async def test_send_test_reports_answer(receiver: WebhookReceiver) -> None:
    """send_test returns the receiver's status and body in one line."""
    receiver.then(Answer(202, b"accepted, thanks"))
    sink = webhook(receiver)
    try:
        line = await send_test(sink, now=NOW)
    finally:
        await sink.close()
    assert line == (
        "sink 'hook': sent test alert send-test-20250608T091502: 202 Accepted: accepted, thanks"
    )
    assert receiver.requests[0].json()["item"]["title"].startswith("[TEST]")


@pytest.mark.parametrize(
    "url", ["https://host.example:99999/T/SECRETPATH", "http://[::1/SECRETPATH"]
)
async def test_malformed_url_is_permanent_and_hidden(url: str) -> None:
    """A URL httpx cannot use is a permanent error that does not quote it."""
    sink = WebhookSink(WebhookSinkConfig(type="webhook", name="w", url=SecretStr(url)))
    try:
        with pytest.raises(SinkError) as info:
            await sink.send(make_alert())
    finally:
        await sink.close()
    assert "SECRETPATH" not in str(info.value)


async def test_slack_messages_are_paced(receiver: WebhookReceiver) -> None:
    """Slack gets at most one message per min_interval; the rest wait instead of hitting 429."""
    sink = slack(receiver, min_interval=0.3)
    try:
        started = time.monotonic()
        await asyncio.gather(*(sink.send(make_alert(alert_id=f"a{i}")) for i in range(3)))
        elapsed = time.monotonic() - started
    finally:
        await sink.close()
    assert len(receiver.requests) == 3
    assert elapsed >= 0.6  # two gaps of 0.3 s between three messages


@dataclass
class TwoSinks:
    """A hanging webhook ("slow") and a healthy one ("fast") behind one Deliverer."""

    slow: WebhookReceiver
    fast: WebhookReceiver
    store: SQLiteStorage
    deliverer: Deliverer

    def enqueue(self, alert_id: str, sinks: tuple[str, ...]) -> None:
        alert = make_alert(alert_id=alert_id)
        item = replace(alert.item, id=f"item-{alert_id}", url=f"https://example.test/{alert_id}")
        alert = replace(alert, item=item)
        self.store.claim([ClaimRequest(item, (OutboxEntry(alert, sinks),))], NOW)

    def states(self, alert_id: str) -> dict[str, str]:
        [record] = [r for r in self.store.recent_alerts() if r.alert_id == alert_id]
        return {d.sink: d.state for d in record.deliveries}


@contextlib.asynccontextmanager
async def two_sinks(tmp_path: Path) -> AsyncIterator[TwoSinks]:
    with WebhookReceiver() as slow, WebhookReceiver() as fast:
        slow.default = Hang(5)
        config = AppConfig.model_validate(
            {
                "sinks": [
                    {"type": "webhook", "name": "slow", "url": slow.url(), "timeout": "10s"},
                    {"type": "webhook", "name": "fast", "url": fast.url(), "timeout": "10s"},
                ],
                "routes": [{"sinks": ["slow", "fast"]}],
            }
        )
        store = SQLiteStorage(tmp_path / "m.db")
        sinks = {c.name: build_sink(c) for c in config.sinks}
        deliverer = Deliverer(config, store, sinks, FixedClock(NOW))
        try:
            yield TwoSinks(slow, fast, store, deliverer)
        finally:
            for task in deliverer.running():
                task.cancel()
            await asyncio.gather(*deliverer.running(), return_exceptions=True)
            for sink in sinks.values():
                await sink.close()
            store.close()


async def test_a_hanging_sink_does_not_delay_the_others(tmp_path: Path) -> None:
    """While one webhook hangs, another sink's alert is delivered and marked at once."""
    async with two_sinks(tmp_path) as two:
        two.enqueue("first", ("slow", "fast"))
        task = asyncio.create_task(two.deliverer.deliver_due())
        for _ in range(100):
            if two.states("first")["fast"] == "delivered":
                break
            await asyncio.sleep(0.02)
        assert len(two.fast.requests) == 1 and len(two.slow.requests) == 1
        assert two.states("first") == {"fast": "delivered", "slow": "pending"}
        assert not task.done()  # the slow sink is still hanging
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_busy_sink_does_not_hold_back_the_next_pass(tmp_path: Path) -> None:
    """While one sink's batch is still running, a new pass delivers the other sink's new alert."""
    async with two_sinks(tmp_path) as two:
        two.enqueue("first", ("slow", "fast"))
        first_pass = two.deliverer.start_due()
        await asyncio.sleep(0.3)
        two.enqueue("second", ("fast",))
        second_pass = two.deliverer.start_due()
        assert [t.get_name() for t in second_pass] == ["deliver:fast"]
        assert await asyncio.gather(*second_pass) == [1]
        assert [r.json()["alert_id"] for r in two.fast.requests] == ["first", "second"]
        assert len(two.slow.requests) == 1 and not all(t.done() for t in first_pass)
