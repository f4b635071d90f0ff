"""Reload: SIGHUP and `run --watch` apply a new configuration, or refuse a broken one."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.app import build_app
from monitor.clock import SystemClock
from monitor.config.loader import load_config
from monitor.config.models import AppConfig
from monitor.daemon import Daemon, feed_job_id
from tests import feedserver as fs
from tests.configs import ORESHNIK_RULE, write_config
from tests.processes import monitor, wait_for

FAST = {"interval": 0.3}  # seconds between polls of a feed


def events(log: Path, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    return [e for e in lines if e.get("event") == name]


def feeds(server: fs.FeedServer, *paths: str) -> list[dict[str, Any]]:
    for path in paths:
        server.add_feed(path, fs.rss([]))
    return [{"id": path.strip("/"), "url": server.url(path), **FAST} for path in paths]


class Running:
    """`monitor run` in a subprocess, its JSON log in a file."""

    def __init__(self, config: Path, *args: str) -> None:
        self.log = config.parent / "daemon.log"
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(monitor("run", "-c", str(config), *args), stderr=self._out)

    def events(self, name: str) -> list[dict[str, Any]]:
        return events(self.log, name)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.proc.kill()
            self.proc.wait()
            self._out.close()


@pytest.mark.slow
def test_sighup_adds_and_removes_feeds_and_refuses_a_broken_file(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """After SIGHUP a new feed is polled and a removed one is not; a broken file is refused
    with its issues logged while polling goes on."""
    config = write_config(tmp_path, feeds(feed_server, "/a"))
    daemon = Running(config)
    try:
        wait_for(lambda: feed_server.count("/a") >= 1)
        write_config(tmp_path, feeds(feed_server, "/b"))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: feed_server.count("/b") >= 2)
        assert daemon.events("reloaded")[-1]["added"] == ["b"]
        assert daemon.events("reloaded")[-1]["removed"] == ["a"]
        polls_of_a = feed_server.count("/a")
        time.sleep(1.0)  # three intervals: a would have been polled again
        assert feed_server.count("/a") == polls_of_a

        config.write_text(config.read_text() + "\nfeeds: [\n")  # broken YAML
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(daemon.events("reload_refused")) == 1)
        refused = daemon.events("reload_refused")[0]
        assert refused["count"] == len(refused["issues"]) >= 1
        assert str(config) in refused["issues"][0]
        polls_of_b = feed_server.count("/b")
        wait_for(lambda: feed_server.count("/b") >= polls_of_b + 2)  # the old config runs on
        assert daemon.proc.poll() is None
    finally:
        code = daemon.stop()
    assert code == 0


@pytest.mark.slow
def test_an_invalid_config_is_refused_with_every_issue(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """A file that parses but does not validate is refused listing each of its issues."""
    config = write_config(tmp_path, feeds(feed_server, "/a"))
    daemon = Running(config)
    try:
        wait_for(lambda: feed_server.count("/a") >= 1)
        write_config(
            tmp_path,
            [{"id": "a", "url": feed_server.url("/a"), "intervall": 5}],
            scheduler={"jitter": 7},
        )
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(daemon.events("reload_refused")) == 1)
        issues = daemon.events("reload_refused")[0]["issues"]
        assert len(issues) == 2
        assert any("feeds[0].intervall" in i for i in issues)
        assert any("scheduler.jitter" in i for i in issues)
        polls = feed_server.count("/a")
        wait_for(lambda: feed_server.count("/a") >= polls + 2)
    finally:
        code = daemon.stop()
    assert code == 0


@pytest.mark.slow
def test_watch_reloads_when_an_included_file_changes(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """With --watch, editing a file the configuration includes is applied without a signal."""
    included = tmp_path / "more-feeds.yaml"
    included.write_text("feeds: []\n")
    config = write_config(tmp_path, feeds(feed_server, "/a"), extra={"include": [included.name]})
    daemon = Running(config, "--watch")
    try:
        wait_for(lambda: bool(daemon.events("watching")) and feed_server.count("/a") >= 1)
        assert str(included) in daemon.events("watching")[0]["files"]
        feed_server.add_feed("/b", fs.rss([]))
        included.write_text(f"feeds:\n  - {{id: b, url: '{feed_server.url('/b')}', interval: 1}}\n")
        wait_for(lambda: feed_server.count("/b") >= 1, timeout=30)
        assert daemon.events("reloaded")[0]["added"] == ["b"]
    finally:
        code = daemon.stop()
    assert code == 0


# --- Daemon.reload in-process -------------------------------------------------------


async def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def daemon(tmp_path: Path, feed_server: fs.FeedServer) -> AsyncIterator[Daemon]:
    config = load_config(
        write_config(tmp_path, [{"id": "a", "url": feed_server.url("/a"), "interval": 60}]),
        env={},
    )
    feed_server.add_feed("/a", fs.rss([]))
    app = build_app(config, SystemClock())
    daemon = Daemon(app, config_path=tmp_path / "monitor.yaml")
    task = asyncio.create_task(daemon.run())
    try:
        await wait_until(lambda: feed_server.count("/a") >= 1)
        yield daemon
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await app.aclose()


def rewritten(tmp_path: Path, feeds: list[dict[str, Any]], **kwargs: Any) -> AppConfig:
    """A configuration as the daemon's file would be rewritten (same store and sinks)."""
    return load_config(write_config(tmp_path, feeds, **kwargs), env={})


def interval_of(daemon: Daemon, feed_id: str) -> float:
    job = daemon.scheduler.get_job(feed_job_id(feed_id))
    assert job is not None
    return float(job.trigger.interval.total_seconds())


async def test_reload_reschedules_recompiles_and_rebuilds_sinks(
    daemon: Daemon, tmp_path: Path
) -> None:
    """A new interval reschedules the job, new rules are compiled, sinks are rebuilt and
    the old ones closed, and the store stays the same."""
    app = daemon.app
    store, old_sink = app.storage, app.sinks["out"]
    closed: list[str] = []

    async def close() -> None:
        closed.append("out")

    old_sink.close = close  # type: ignore[method-assign]
    feeds = [{"id": "a", "url": app.config.feeds[0].url, "interval": 120}]
    rules = [ORESHNIK_RULE, {**ORESHNIK_RULE, "id": "second", "any": ["drone"]}]
    assert await daemon.reload(rewritten(tmp_path, feeds, rules=rules))
    assert interval_of(daemon, "a") == 120
    assert app.storage is store
    assert app.sinks["out"] is not old_sink
    assert {r.id for r in app.poller.rules.rules} == {"new-weapon", "second"}  # type: ignore[attr-defined]
    await wait_until(lambda: closed == ["out"])


async def test_a_config_that_does_not_compile_changes_nothing(
    daemon: Daemon, tmp_path: Path
) -> None:
    """A rule that cannot compile refuses the reload; the old poller and jobs stay."""
    app = daemon.app
    poller, sinks = app.poller, app.sinks
    bad = {"kind": "regex", "id": "broken", "pattern": "(unclosed"}
    assert not await daemon.reload(rewritten(tmp_path, [], rules=[ORESHNIK_RULE, bad]))
    assert app.poller is poller and app.sinks is sinks
    assert daemon.scheduler.get_job(feed_job_id("a")) is not None


async def test_reload_from_disk_logs_every_issue_and_keeps_running(
    daemon: Daemon, tmp_path: Path
) -> None:
    """reload_from_disk returns False for an invalid file and the config stays the same."""
    before = daemon.app.config
    (tmp_path / "monitor.yaml").write_text("feeds: 3\nscheduler: {interval: soon}\n")
    assert not await daemon.reload_from_disk()
    assert daemon.app.config is before
