"""Source-health alerts end to end: a failing feed, a silent feed and a dying sink are each
raised once and cleared once, as health:* alerts on the health route (real store, real feed
server, fixed clock, FakeSink)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.health_watch import HealthWatch
from monitor.types import Severity
from tests import feedserver as fs
from tests.test_pipeline import ORESHNIK, Harness, entry

ROUTES = [{"sinks": ["fake"]}, {"sinks": ["fake"], "health": True}]


@pytest.fixture
async def h(tmp_path: Path, feed_server: fs.FeedServer) -> AsyncIterator[Harness]:
    feeds = [{"id": "feed", "url": feed_server.url("/feed")}]  # what the check watches
    harness = Harness(tmp_path, feed_server, routes=ROUTES, feeds=feeds)
    yield harness
    await harness.close()


async def check(h: Harness) -> list[tuple[str, str, str]]:
    """Run one health check and deliver; the health alerts sent, as (rule, severity, title)."""
    HealthWatch(h.config, h.store).check(h.clock.now())
    before = len(h.sink.sent)
    await h.deliverer.deliver_due()
    return [
        (a.rule_id, a.severity.label, a.item.title)
        for a in h.sink.sent[before:]
        if a.rule_id.startswith("health:")
    ]


async def test_a_failing_feed_is_raised_once_after_an_hour_and_cleared_once(h: Harness) -> None:
    """Failing for 30 minutes is nothing; past an hour one warning; recovery one info."""
    h.server.add_feed("/feed", fs.rss([entry(1)]))
    await h.poller.poll(h.feed())
    h.server.set_route("/feed", fs.Status(500))
    h.advance(timedelta(minutes=30))
    await h.poller.poll(h.feed())
    assert await check(h) == []
    h.advance(timedelta(minutes=31))
    await h.poller.poll(h.feed())
    raised = await check(h)
    assert raised == [("health:feed-failing", "warning", "Feed failing: feed")]
    h.advance(timedelta(minutes=30))
    assert await check(h) == []
    h.server.add_feed("/feed", fs.rss([entry(1), entry(2)]), etag='"v2"')
    await h.poller.poll(h.feed())
    assert await check(h) == [("health:feed-failing", "info", "Recovered: Feed failing: feed")]
    assert await check(h) == []


async def test_a_silent_feed_is_raised_once_and_cleared_by_a_new_item(h: Harness) -> None:
    """An hourly feed quiet for 7 h (over max(6 h, 5 x 1 h)) is raised once, cleared on news."""
    hourly = [entry(n, age=timedelta(hours=n)) for n in range(10)]
    h.server.add_feed("/feed", fs.rss(hourly))
    await h.poller.poll(h.feed())
    h.advance(timedelta(hours=5))
    assert await check(h) == []
    h.advance(timedelta(hours=2))
    assert await check(h) == [("health:feed-silent", "warning", "Feed silent: feed")]
    h.advance(timedelta(hours=1))
    assert await check(h) == []
    fresh = entry(11, age=-timedelta(hours=8))  # published now: NOW + 8 h
    h.server.add_feed("/feed", fs.rss([fresh, *hourly]), etag='"v2"')
    await h.poller.poll(h.feed())
    assert await check(h) == [("health:feed-silent", "info", "Recovered: Feed silent: feed")]


async def test_a_dying_sink_is_raised_once_and_cleared_when_deaths_stop(h: Harness) -> None:
    """A dead delivery within the hour raises sink-dying once; an hour later it clears."""
    h.sink.fail_times, h.sink.transient = 1, False
    h.server.add_feed("/feed", fs.rss([ORESHNIK]))
    await h.poller.poll(h.feed())
    assert await h.deliverer.deliver_due() == 0  # the news alert died
    raised = await check(h)
    assert raised == [("health:sink-dying", "warning", "Sink deliveries dying: fake")]
    [alert] = [a for a in h.sink.sent if a.rule_id == "health:sink-dying"]
    assert alert.severity == Severity.WARNING and "1 deliveries" in alert.item.summary
    h.advance(timedelta(minutes=30))
    assert await check(h) == []
    h.advance(timedelta(minutes=31))
    assert await check(h) == [
        ("health:sink-dying", "info", "Recovered: Sink deliveries dying: fake")
    ]


async def test_without_a_health_route_nothing_is_checked(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """With no health route there is no one to tell: the check records and sends nothing."""
    h = Harness(tmp_path, feed_server, feeds=[{"id": "feed", "url": feed_server.url("/feed")}])
    try:
        h.server.set_route("/feed", fs.Status(500))
        await h.poller.poll(h.feed())
        h.advance(timedelta(hours=3))
        assert HealthWatch(h.config, h.store).check(h.clock.now()) == 0
        assert h.store.health_conditions() == []
    finally:
        await h.close()
