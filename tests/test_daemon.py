"""The real daemon in a subprocess: crash safety (kill -9), graceful stop, unreachable feeds."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests import feedserver as fs
from tests.configs import write_config
from tests.processes import monitor, wait_for

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC)


def oreshnik_feed() -> bytes:
    return fs.rss(
        [
            {
                "guid": "urn:oreshnik",
                "title": "Russia fires Oreshnik missile at Dnipro",
                "link": "http://example.test/oreshnik",
                "pubDate": format_datetime(NOW, usegmt=True),
            }
        ]
    )


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:  # schema not created yet
            return []


def alert_lines(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "alerts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_kill_between_claim_and_delivery_loses_nothing(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """Killed between claim and delivery, a restart delivers once and claims nothing twice."""
    url = feed_server.add_feed("/feed", oreshnik_feed())
    config = write_config(
        tmp_path,
        [{"id": "f", "url": url}],
        scheduler={"delivery_interval": "1h"},  # no delivery before the kill
    )
    db = tmp_path / "monitor.db"
    proc = subprocess.Popen(monitor("run", "-c", str(config)), stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: query(db, "SELECT state FROM deliveries") == [("pending",)])
    finally:
        proc.kill()
        proc.wait()
    assert alert_lines(tmp_path) == []

    done = subprocess.run(monitor("once", "-c", str(config)), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert [a["rule"] for a in alert_lines(tmp_path)] == ["new-weapon"]
    assert query(db, "SELECT COUNT(*) FROM items") == [(1,)]
    assert query(db, "SELECT state FROM deliveries") == [("delivered",)]

    again = subprocess.run(monitor("once", "-c", str(config)), capture_output=True, timeout=60)
    assert again.returncode == 0
    assert len(alert_lines(tmp_path)) == 1


def test_sigterm_stops_cleanly_and_a_second_signal_forces(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """SIGTERM drains and exits 0; a second signal during a long drain exits at once."""
    url = feed_server.add_feed("/feed", oreshnik_feed())
    config = write_config(tmp_path, [{"id": "f", "url": url}], scheduler={"delivery_interval": 0.2})
    log = tmp_path / "daemon.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(monitor("run", "-c", str(config)), stderr=stderr)
        try:
            wait_for(lambda: len(alert_lines(tmp_path)) == 1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            proc.kill()
            proc.wait()
    err = log.read_text()
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert "stopping" in events and "stopped" in events

    slow = tmp_path / "slow"
    slow.mkdir()
    feed_server.set_route("/slow", fs.Slow(fs.rss([]), interval=2.0))
    config = write_config(
        slow,
        [{"id": "s", "url": feed_server.url("/slow")}],
        scheduler={"shutdown_timeout": 60},
        extra={"http": {"timeout": {"read": 30, "total": 60}}},
    )
    proc = subprocess.Popen(monitor("run", "-c", str(config)), stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: feed_server.count("/slow") >= 1, timeout=60)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # draining the slow poll
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 130
    finally:
        proc.kill()
        proc.wait()


def test_unreachable_feeds_are_logged_and_the_daemon_keeps_going(tmp_path: Path) -> None:
    """With no server, `once` logs each feed's error and exits 1; `feeds` shows it."""
    config = write_config(
        tmp_path,
        [
            {"id": "nowhere", "url": "http://127.0.0.1:9/feed"},
            {"id": "missing-file", "url": str(tmp_path / "no-such-feed.xml")},
        ],
    )
    done = subprocess.run(monitor("once", "-c", str(config)), capture_output=True, timeout=60)
    assert done.returncode == 1
    lines = [json.loads(x) for x in done.stderr.decode().splitlines() if x.startswith("{")]
    errors = {e["feed"]: e["error"] for e in lines if e.get("event") == "polled"}
    assert set(errors) == {"nowhere", "missing-file"}
    assert "refused" in errors["nowhere"].lower()
    table = subprocess.run(
        monitor("feeds", "-c", str(config)), capture_output=True, timeout=60, env=os.environ
    )
    assert table.returncode == 0
    assert "nowhere" in table.stdout.decode()


def test_kill_during_delivery_redelivers_with_the_same_key(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """Killed mid-delivery, a restart delivers every alert; a repeat keeps its key."""
    from tests.receivers import Hang, WebhookReceiver

    titles = [  # five different stories, so no clustering may merge them
        "Oreshnik missile hits a factory in Dnipro",
        "Belarus says Oreshnik launchers are now on combat duty",
        "Putin orders serial production of the Oreshnik",
        "NATO briefs allies on the Oreshnik threat to European capitals",
        "Experts doubt Patriot batteries can intercept an Oreshnik",
    ]
    stories = [
        {
            "guid": f"urn:story:{n}",
            "title": title,
            "link": f"http://example.test/oreshnik/{n}",
            "pubDate": format_datetime(NOW, usegmt=True),
        }
        for n, title in enumerate(titles)
    ]
    url = feed_server.add_feed("/feed", fs.rss(stories))
    with WebhookReceiver() as rx:
        rx.then(Hang(60))
        config = write_config(
            tmp_path,
            [{"id": "f", "url": url}],
            scheduler={"delivery_interval": 0.2},
            extra={
                "sinks": [{"name": "hook", "type": "webhook", "url": rx.url(), "timeout": "30s"}],
                "routes": [{"sinks": ["hook"]}],
            },
        )
        proc = subprocess.Popen(monitor("run", "-c", str(config)), stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: len(rx.requests) == 1)
        finally:
            proc.kill()
            proc.wait()
        done = subprocess.run(monitor("once", "-c", str(config)), capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        received = list(rx.requests)

    keys_by_alert: dict[str, set[str]] = {}
    for request in received:
        keys_by_alert.setdefault(request.json()["alert_id"], set()).add(
            request.headers["idempotency-key"]
        )
    assert len(keys_by_alert) == 5
    assert all(keys == {alert} for alert, keys in keys_by_alert.items())
    accepted = {r.json()["alert_id"] for r in received[1:]}  # the first one hung
    assert accepted == set(keys_by_alert)
    db = tmp_path / "monitor.db"
    assert query(db, "SELECT DISTINCT state FROM deliveries") == [("delivered",)]


def test_the_shipped_config_passes_check() -> None:
    """`monitor check` accepts config/monitor.yaml as shipped and summarises it."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        monitor("check", "-c", str(root / "config" / "monitor.yaml")),
        capture_output=True,
        timeout=60,
        env={**os.environ, "MONITOR_DB": str(root / "data" / "unused.db")},
    )
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "OK" in out and "feeds: 15" in out and "novelty" in out
