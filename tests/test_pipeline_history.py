"""Novelty end to end: real feed server, fetcher, parser, rules and SQLite history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import feedserver as fs
from tests.test_pipeline import NOW, Harness, entry

DAY = timedelta(days=1)
NOVELTY: dict[str, Any] = {
    "kind": "novelty",
    "id": "new-region",
    "severity": "critical",
    "level": "region",
    "countries": ["UA", "RU"],
    "context": {"terms": ["advanc*", "offensive", "troops", "strik*", "drone*"]},
    "baseline": ["UA-14", "Ukraine", "Russia"],
    "window": "90d",
}
ADVANCE = "Russian forces begin advancing into Dnipropetrovsk region"


@pytest.fixture
async def h(tmp_path: Path, feed_server: fs.FeedServer) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path, feed_server, rules=[NOVELTY])
    yield harness
    await harness.close()


async def test_novelty_fires_once_then_history_knows_the_place(h: Harness) -> None:
    """The first report of a new region alerts; another feed's report of it later does not."""
    h.server.add_feed("/a", fs.rss([entry(1, title=ADVANCE)]))
    h.server.add_feed(
        "/b", fs.rss([entry(2, title="Troops advance deeper in Dnipropetrovsk region")])
    )
    first = await h.poller.poll(h.feed("/a"))
    h.advance(timedelta(minutes=30))
    second = await h.poller.poll(h.feed("/b"))
    assert (first.alerted, second.alerted) == (1, 0)
    assert await h.deliverer.deliver_due() == 1
    [alert] = h.sink.sent
    assert alert.evidence.details["novelty"]["place"]["id"] == "UA-12"
    assert h.store.sources("place:UA-12", NOW - DAY, h.clock.now()) == 2


async def test_mentions_are_stored_for_items_that_do_not_alert(h: Harness) -> None:
    """History learns from every claimed item: out of context, or too old to alert."""
    jazz = entry(1, title="Dnipro hosts a jazz festival")
    old = entry(2, title="Troops advanced near Pavlohrad", age=3 * DAY)  # first poll: no alert
    h.server.add_feed("/a", fs.rss([jazz, old]))
    outcome = await h.poller.poll(h.feed("/a"))
    assert (outcome.new, outcome.alerted) == (2, 0)
    week = (NOW - 7 * DAY, NOW)
    assert h.store.count("place:UA-12", *week) == 2
    assert h.store.count("place:gn:709930", *week) == 1  # Dnipro, the city itself
    assert h.store.seen("place:UA-12", *week)  # in context: the old item
    assert not h.store.seen("place:gn:709930", *week)  # the jazz festival is not
    h.server.add_feed("/b", fs.rss([entry(3, title=ADVANCE)]))
    later = await h.poller.poll(h.feed("/b"))
    assert later.alerted == 0  # the old, non-alerting item already made UA-12 known


async def test_items_of_one_poll_see_each_other(h: Harness) -> None:
    """Two items of the same poll about the same new region alert once."""
    items = [entry(1, title=ADVANCE), entry(2, title="Drone strikes on Dnipropetrovsk region")]
    h.server.add_feed("/a", fs.rss(items))
    outcome = await h.poller.poll(h.feed("/a"))
    assert (outcome.new, outcome.alerted) == (2, 1)
