"""Graceful stop delivers the outbox: SIGTERM empties it, or leaves it for the next start."""

from __future__ import annotations

import json
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
from tests.receivers import Hang, WebhookReceiver

pytestmark = pytest.mark.slow


def oreshnik_feed() -> bytes:
    return fs.rss(
        [
            {
                "guid": "urn:oreshnik",
                "title": "Russia fires Oreshnik missile at Dnipro",
                "link": "http://example.test/oreshnik",
                "pubDate": format_datetime(datetime.now(UTC), usegmt=True),
            }
        ]
    )


def deliveries(db: Path) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT state, attempts FROM deliveries").fetchall()
        except sqlite3.OperationalError:
            return []


def stopped_event(log: Path) -> dict[str, object]:
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    return next(e for e in lines if e.get("event") == "stopped")


def test_sigterm_delivers_what_is_in_the_outbox(tmp_path: Path, feed_server: fs.FeedServer) -> None:
    """An alert enqueued but not yet due for the delivery tick goes out during the stop."""
    url = feed_server.add_feed("/feed", oreshnik_feed())
    config = write_config(
        tmp_path, [{"id": "f", "url": url}], scheduler={"delivery_interval": "1h"}
    )
    db, log = tmp_path / "monitor.db", tmp_path / "daemon.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(monitor("run", "-c", str(config)), stderr=stderr)
        try:
            wait_for(lambda: deliveries(db) == [("pending", 0)])
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)
        finally:
            proc.kill()
            proc.wait()
    assert code == 0
    assert deliveries(db) == [("delivered", 1)]
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(x)["rule"] for x in lines] == ["new-weapon"]
    assert stopped_event(log) | {"delivered": 1, "undelivered": 0} == stopped_event(log)


def test_a_hanging_sink_is_left_in_the_outbox_after_the_timeout(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """When the sink does not answer within shutdown_timeout, the daemon exits 0 on time and
    the delivery stays pending (it goes out after the restart)."""
    url = feed_server.add_feed("/feed", oreshnik_feed())
    with WebhookReceiver() as receiver:
        receiver.default = Hang(30)
        config = write_config(
            tmp_path,
            [{"id": "f", "url": url}],
            scheduler={"delivery_interval": "1h", "shutdown_timeout": 1},
            extra={
                "sinks": [{"name": "out", "type": "webhook", "url": receiver.url(), "timeout": 30}]
            },
        )
        db, log = tmp_path / "monitor.db", tmp_path / "daemon.log"
        with log.open("wb") as stderr:
            proc = subprocess.Popen(monitor("run", "-c", str(config)), stderr=stderr)
            try:
                wait_for(lambda: deliveries(db) == [("pending", 0)])
                proc.send_signal(signal.SIGTERM)
                started = time.monotonic()
                code = proc.wait(timeout=20)
                took = time.monotonic() - started
            finally:
                proc.kill()
                proc.wait()
        assert len(receiver.requests) == 1
    assert code == 0
    assert took < 5
    assert deliveries(db) == [("pending", 0)]
    assert stopped_event(log)["undelivered"] == 1
