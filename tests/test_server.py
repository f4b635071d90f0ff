"""/healthz, /readyz, /metrics, `monitor health`, and what the metrics record."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from monitor import __version__
from monitor.app import App, build_app
from monitor.clock import SystemClock
from monitor.config.loader import load_config
from monitor.daemon import Daemon
from monitor.exceptions import ServerError, StorageError
from monitor.metrics import Metrics
from monitor.server import OK, HealthServer, ask_ready, polls_check
from monitor.storage.sqlite import SQLiteStorage
from monitor.types import FeedState, PollOutcome
from tests import feedserver as fs
from tests.configs import write_config
from tests.processes import monitor


def fresh_feed(guid: str = "urn:oreshnik") -> bytes:
    return fs.rss(
        [
            {
                "guid": guid,
                "title": "Russia fires Oreshnik missile at Dnipro",
                "link": f"http://example.test/{guid}",
                "pubDate": format_datetime(datetime.now(UTC), usegmt=True),
            }
        ]
    )


async def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One request with the stdlib client, off the event loop the server runs on."""

    def request() -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    return await asyncio.to_thread(request)


@pytest.fixture
async def server() -> AsyncIterator[tuple[HealthServer, dict[str, str]]]:
    """A HealthServer on a free port whose readiness checks the test sets."""
    checks = {"store": OK, "polls": OK}
    srv = HealthServer("127.0.0.1", 0, readiness=lambda: checks, metrics=lambda: b"m 1\n")
    await srv.start()
    try:
        yield srv, checks
    finally:
        await srv.close()


async def test_endpoints_answer_with_status_and_json(
    server: tuple[HealthServer, dict[str, str]],
) -> None:
    """/healthz is 200; /readyz is 200 when every check is ok and 503 naming the failed one."""
    srv, checks = server
    status, _, body = await get(srv.port, "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})

    status, headers, body = await get(srv.port, "/readyz")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"ready": True, "checks": checks, "failed": []}

    checks["polls"] = "waiting for the first poll of 1 feed(s): f"
    status, _, body = await get(srv.port, "/readyz?verbose=1")
    assert status == 503
    assert json.loads(body)["failed"] == ["polls"]
    assert json.loads(body)["checks"]["polls"].startswith("waiting")


async def test_metrics_not_found_method_and_head(
    server: tuple[HealthServer, dict[str, str]],
) -> None:
    """/metrics serves the Prometheus text type; unknown paths are 404, POST 405, HEAD no body."""
    srv, _ = server
    status, headers, body = await get(srv.port, "/metrics")
    assert (status, body) == (200, b"m 1\n")
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert (await get(srv.port, "/nope"))[0] == 404
    assert (await get(srv.port, "/healthz", "POST"))[0] == 405
    status, headers, body = await get(srv.port, "/healthz", "HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 0


async def test_a_taken_port_is_a_server_error(
    server: tuple[HealthServer, dict[str, str]],
) -> None:
    """Listening on a port in use raises ServerError naming the address and the setting."""
    srv, _ = server
    other = HealthServer("127.0.0.1", srv.port, readiness=dict, metrics=bytes)
    with pytest.raises(ServerError, match=r"server\.port") as caught:
        await other.start()
    assert f"127.0.0.1:{srv.port}" in str(caught.value)


async def test_ask_ready_reports_ready_the_reason_or_unreachable(
    server: tuple[HealthServer, dict[str, str]],
) -> None:
    """ask_ready is True when ready, else False with the failed check, or the connect error."""
    srv, checks = server
    ready, message = await asyncio.to_thread(ask_ready, "0.0.0.0", srv.port, 2.0)
    assert ready and message.startswith("ready")
    checks["store"] = "unreachable: locked"
    ready, message = await asyncio.to_thread(ask_ready, "127.0.0.1", srv.port, 2.0)
    assert not ready
    assert message == "not ready: store: unreachable: locked"
    await srv.close()
    ready, message = await asyncio.to_thread(ask_ready, "127.0.0.1", srv.port, 2.0)
    assert not ready and "cannot ask" in message


T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("polled", "due", "now", "expected"),
    [
        ({"a", "b"}, {"a": T0, "b": T0}, T0, OK),
        ({"a"}, {"a": T0, "b": T0}, T0, "waiting for the first poll of 1 feed(s): b"),
        ({"a", "b"}, {"a": T0, "b": T0}, T0 + 2 * MIN, OK),  # late, within the grace
        ({"a", "b"}, {"a": T0, "b": T0}, T0 + 6 * MIN, "1 feed(s) overdue by more than their"),
        ({"a", "b"}, {"a": None, "b": T0}, T0 + 2 * MIN, OK),  # a: disabled, never due
        (set(), {}, T0, "waiting for the first poll of 2 feed(s): a, b"),
    ],
)
def test_polls_check(
    polled: set[str], due: dict[str, datetime | None], now: datetime, expected: str
) -> None:
    """Ready once every feed was polled since start and none is past due by its grace."""
    grace = {"a": 10 * MIN, "b": 5 * MIN}
    assert polls_check(now, grace, polled=polled, due=due).startswith(expected)


def test_polls_check_names_a_few_feeds() -> None:
    """A long list of waiting feeds is cut to five names and a count."""
    grace = {f"f{i}": MIN for i in range(8)}
    assert polls_check(T0, grace, polled=(), due={}).endswith("f3, f4 and 3 more")


# --- metrics ------------------------------------------------------------------------


def sample(metrics: Metrics, name: str, labels: Mapping[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, dict(labels or {}))


def test_poll_and_delivery_outcomes_become_counters() -> None:
    """One poll outcome and one delivery each move the counters their fields name."""
    metrics = Metrics()
    metrics.poll(
        PollOutcome(
            "f",
            "ok",
            new=2,
            parsed=5,
            http_status=200,
            body_bytes=1234,
            rule_matches=(("r1", 2),),
            alerts_by_severity=(("critical", 2),),
        )
    )
    metrics.poll(PollOutcome("f", "error", http_status=503))
    metrics.delivery("out", "delivered", timedelta(seconds=3))
    metrics.delivery("out", "retry")
    assert sample(metrics, "monitor_polls_total", {"feed": "f", "outcome": "ok"}) == 1
    assert sample(metrics, "monitor_polls_total", {"feed": "f", "outcome": "error"}) == 1
    assert sample(metrics, "monitor_http_responses_total", {"code": "503"}) == 1
    assert sample(metrics, "monitor_fetched_bytes_total", {"feed": "f"}) == 1234
    assert sample(metrics, "monitor_items_total", {"state": "new"}) == 2
    assert sample(metrics, "monitor_items_total", {"state": "seen"}) == 3
    assert sample(metrics, "monitor_rule_matches_total", {"rule": "r1"}) == 2
    assert sample(metrics, "monitor_alerts_total", {"severity": "critical"}) == 2
    assert sample(metrics, "monitor_deliveries_total", {"sink": "out", "outcome": "retry"}) == 1
    assert sample(metrics, "monitor_delivery_latency_seconds_count", {"sink": "out"}) == 1
    assert sample(metrics, "monitor_delivery_latency_seconds_sum", {"sink": "out"}) == 3
    build = {"version": __version__, "python": platform.python_version()}
    assert sample(metrics, "monitor_build_info", build) == 1


def test_store_gauges_are_read_at_scrape_time(tmp_path: Path) -> None:
    """Backoff, disabled and last success come from the store, for configured feeds only."""
    store = SQLiteStorage(tmp_path / "m.db")
    now = datetime(2025, 6, 1, tzinfo=UTC)
    store.save_feed_state(FeedState("ok", "u", last_success=now))
    store.save_feed_state(FeedState("failing", "u", consecutive_errors=3, last_success=now))
    store.save_feed_state(FeedState("gone", "u", disabled_reason="410"))
    store.save_feed_state(FeedState("removed", "u", consecutive_errors=1))
    metrics = Metrics()
    metrics.watch_store(lambda: store, lambda: ["ok", "failing", "gone"])
    assert sample(metrics, "monitor_store_up") == 1
    assert sample(metrics, "monitor_feeds_in_backoff") == 1
    assert sample(metrics, "monitor_feeds_disabled") == 1
    assert sample(metrics, "monitor_dead_deliveries") == 0
    last = "monitor_feed_last_success_timestamp_seconds"
    assert sample(metrics, last, {"feed": "ok"}) == now.timestamp()
    assert sample(metrics, last, {"feed": "removed"}) is None
    store.close()


def test_an_unreachable_store_reads_as_store_up_zero() -> None:
    """A StorageError during a scrape gives monitor_store_up 0, not a failed scrape."""

    class Broken:
        def list_feed_states(self) -> list[FeedState]:
            raise StorageError("database is locked")

    metrics = Metrics()
    metrics.watch_store(lambda: Broken(), list)  # type: ignore[arg-type, return-value]
    assert sample(metrics, "monitor_store_up") == 0
    assert b"monitor_dead_deliveries" not in metrics.render()


# --- the daemon in-process ----------------------------------------------------------


async def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def running(
    tmp_path: Path, feed_server: fs.FeedServer
) -> AsyncIterator[tuple[Daemon, App, fs.FeedServer]]:
    """A daemon on the test loop: one feed with an Oreshnik item, server on a free port."""
    feed_server.add_feed("/feed", fresh_feed())
    config = load_config(
        write_config(
            tmp_path,
            [{"id": "f", "url": feed_server.url("/feed"), "interval": 60}],
            scheduler={"delivery_interval": 0.1},
        ),
        env={},
    )
    app = build_app(config, SystemClock())
    daemon = Daemon(app)
    task = asyncio.create_task(daemon.run())
    try:
        await wait_until(lambda: daemon.server is not None and daemon.server.port != 0)
        yield daemon, app, feed_server
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await app.aclose()


async def test_readyz_waits_for_the_first_poll_and_metrics_follow_the_alert(
    running: tuple[Daemon, App, fs.FeedServer],
) -> None:
    """/readyz is 200 once every feed was polled; /metrics then shows poll, match, delivery."""
    daemon, app, _ = running
    assert daemon.server is not None
    port = daemon.server.port
    await wait_until(lambda: daemon.readiness()["polls"] == OK)
    status, _, body = await get(port, "/readyz")
    assert status == 200, body

    await wait_until(lambda: (app.storage.pending_count(), app.storage.dead_count()) == (0, 0))
    await wait_until(
        lambda: (
            app.metrics.registry.get_sample_value(
                "monitor_deliveries_total", {"sink": "out", "outcome": "delivered"}
            )
            == 1
        )
    )
    _, _, text = await get(port, "/metrics")
    for line in (
        'monitor_polls_total{feed="f",outcome="ok"} 1.0',
        'monitor_http_responses_total{code="200"} 1.0',
        'monitor_items_total{state="new"} 1.0',
        'monitor_rule_matches_total{rule="new-weapon"} 1.0',
        'monitor_alerts_total{severity="critical"} 1.0',
        'monitor_delivery_latency_seconds_count{sink="out"} 1.0',
        "monitor_dead_deliveries 0.0",
        "monitor_feeds_in_backoff 0.0",
        'monitor_feed_last_success_timestamp_seconds{feed="f"}',
    ):
        assert line in text.decode(), line


async def test_readyz_reports_a_failing_poll_check_and_stopping(
    running: tuple[Daemon, App, fs.FeedServer],
) -> None:
    """A feed overdue by more than its interval fails 'polls'; stopping fails 'scheduler'."""
    daemon, _, _ = running
    await wait_until(lambda: daemon.readiness()["polls"] == OK)
    daemon._due["f"] = datetime.now(UTC) - timedelta(hours=1)
    assert daemon.readiness()["polls"].startswith("1 feed(s) overdue")
    daemon.stop()
    assert daemon.readiness()["scheduler"] == "stopping"


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian: apt-get install prometheus); "
    "the /metrics exposition was not linted",
)
async def test_promtool_accepts_the_metrics(running: tuple[Daemon, App, fs.FeedServer]) -> None:
    """`promtool check metrics` finds no problem in a live /metrics page."""
    daemon, app, _ = running
    assert daemon.server is not None
    await wait_until(
        lambda: (
            app.metrics.registry.get_sample_value(
                "monitor_deliveries_total", {"sink": "out", "outcome": "delivered"}
            )
            == 1
        )
    )
    app.metrics.delivery("out", "dead")
    _, _, text = await get(daemon.server.port, "/metrics")
    done = await asyncio.to_thread(
        subprocess.run,
        ["promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


# --- monitor health -----------------------------------------------------------------


@pytest.mark.slow
def test_monitor_health_exit_codes(tmp_path: Path, feed_server: fs.FeedServer) -> None:
    """`monitor health` exits 0 against a ready daemon and 1, with the reason, otherwise,
    each well within the 5 s HEALTHCHECK timeout."""
    url = feed_server.add_feed("/feed", fresh_feed())
    config = write_config(tmp_path, [{"id": "f", "url": url}])
    log = tmp_path / "daemon.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(monitor("run", "-c", str(config)), stderr=stderr)
        try:
            port = wait_for_port(log)
            env = {"MONITOR_SERVER__PORT": str(port)}
            deadline = time.monotonic() + 30
            while True:
                started = time.monotonic()
                done = run_health(config, env)
                assert time.monotonic() - started < 4
                if done.returncode == 0 or time.monotonic() > deadline:
                    break
                assert done.returncode == 1
                assert done.stderr.startswith("not ready: polls: waiting"), done.stderr
                time.sleep(0.2)
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith("ready")
        finally:
            proc.terminate()
            assert proc.wait(timeout=20) == 0
    started = time.monotonic()
    done = run_health(config, env)
    assert time.monotonic() - started < 4
    assert done.returncode == 1
    assert "not ready: cannot ask" in done.stderr


def run_health(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        monitor("health", "-c", str(config)),
        capture_output=True,
        text=True,
        timeout=10,
        env={**os.environ, **env},
    )


def wait_for_port(log: Path, timeout: float = 20.0) -> int:
    """The port the daemon logged in its 'serving' event (the config asks for port 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("event") == "serving":
                return int(json.loads(line)["port"])
        time.sleep(0.05)
    raise AssertionError(f"no 'serving' event in {log}")
