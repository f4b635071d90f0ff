"""Routing and noise control end to end: real feed server, fetcher, parser, rules and SQLite;
fixed clock and FakeSinks. One story from many feeds, gates, cooldowns, digests, threads."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.deliver import Deliverer
from monitor.pipeline import Poller
from monitor.rules.compile import compile_rules
from monitor.rules.engine import Assessment, RuleSet
from monitor.sinks.email import EmailSink, message_id
from monitor.sinks.render import alert_to_dict, sources
from monitor.types import Item
from tests import feedserver as fs
from tests.fakes import FakeSink
from tests.test_pipeline import NOW, Harness, entry
from tests.test_suppress import STORY

UNRELATED = "Drones strike oil refinery in Russia's Saratov region"
DRONES = {"kind": "terms", "id": "drones", "severity": "warning", "any": ["drone"]}
RECORD = {"kind": "terms", "id": "record", "severity": "critical", "any": ["record"]}
MAIL = {
    "type": "email",
    "name": "mail",
    "host": "127.0.0.1",
    "from_addr": "mm@desk.example",
    "to": ["analysts@desk.example"],
}


async def harness(tmp_path: Path, server: fs.FeedServer, **overrides: Any) -> Harness:
    data: dict[str, Any] = {"rules": [DRONES], **overrides}
    return Harness(tmp_path, server, **data)


@pytest.fixture
async def h(tmp_path: Path, feed_server: fs.FeedServer) -> AsyncIterator[Harness]:
    harness_ = await harness(tmp_path, feed_server)
    yield harness_
    await harness_.close()


async def poll_story(h: Harness, titles: list[str], *, first: int = 0) -> list[int]:
    """Each title from its own feed /f<n>; returns how many alerts each poll enqueued."""
    alerted = []
    for n, title in enumerate(titles, start=first):
        h.server.add_feed(f"/f{n}", fs.rss([entry(n, title=title)], title=f"Feed {n}"))
        alerted.append((await h.poller.poll(h.feed(f"/f{n}"))).alerted)
    return alerted


async def test_one_story_from_five_feeds_is_one_alert_with_five_sources(h: Harness) -> None:
    """Five feeds' versions of one story give one alert, the story holds all five sources
    with their links, and an unrelated story alerts on its own."""
    assert await poll_story(h, [*STORY, UNRELATED]) == [1, 0, 0, 0, 0, 1]
    assert await h.deliverer.deliver_due() == 2
    assert [a.item.title for a in h.sink.sent] == [STORY[0], UNRELATED]
    opened = h.store.open_stories(h.clock.now() - timedelta(days=1))
    story, other = sorted(opened, key=lambda s: -len(s.sources))
    assert story.feeds == ("f0", "f1", "f2", "f3", "f4") and len(other.sources) == 1
    assert [s.url for s in story.sources] == [f"http://example.test/news/{n}" for n in range(5)]
    assert story.first_alert_id == h.sink.sent[0].alert_id


async def test_a_story_another_process_started_is_joined_not_alerted_again(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """The poller keeps its story book between polls, but reads it again once another
    process (a replica, a manual ``monitor once``) has written to the store."""
    ours = await harness(tmp_path, feed_server)
    replica = await harness(tmp_path, feed_server)  # the same database file
    try:
        assert await poll_story(ours, [UNRELATED]) == [1]  # the book is read and kept
        assert await poll_story(replica, STORY[:1], first=1) == [1]
        assert await poll_story(ours, STORY[1:3], first=2) == [0, 0]
        [story] = [s for s in ours.store.open_stories(ours.clock.now() - timedelta(days=1))
                   if len(s.sources) > 1]  # fmt: skip
        assert story.feeds == ("f1", "f2", "f3")
    finally:
        await ours.close()
        await replica.close()


async def test_min_sources_alerts_with_the_kth_source_carrying_all(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """A route with min_sources 5 stays silent for four feeds and alerts at the fifth, with
    all five sources in the alert."""
    h = await harness(tmp_path, feed_server, routes=[{"sinks": ["fake"], "min_sources": 5}])
    try:
        assert await poll_story(h, STORY) == [0, 0, 0, 0, 1]
        await h.deliverer.deliver_due()
        [alert] = h.sink.sent
        assert alert.item.title == STORY[4]
        payload = alert_to_dict(alert)
        assert payload["evidence"]["source_count"] == 5
        assert [s["feed"] for s in payload["evidence"]["sources"]] == [f"f{n}" for n in range(5)]
        assert sources(alert) == ["Feed 0", "Feed 1", "Feed 2", "Feed 3"]  # "also reported by"
    finally:
        await h.close()


async def test_rules_firing_on_one_story_give_one_alert_listing_them(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """Two rules on one report give one alert: rule is the critical one, evidence.rules both."""
    h = await harness(tmp_path, feed_server, rules=[DRONES, RECORD])
    try:
        assert await poll_story(h, STORY[:2]) == [1, 0]
        await h.deliverer.deliver_due()
        [alert] = h.sink.sent
        payload = alert_to_dict(alert)
        assert (payload["rule"], payload["severity"]) == ("record", "critical")
        assert payload["evidence"]["rules"] == ["drones", "record"]
    finally:
        await h.close()


async def test_cooldown_per_place_suppresses_then_expires(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """After an alert on a place, another story on it within 6 h is suppressed (and counted);
    another place alerts; after 6 h the place alerts again."""
    rule = {
        "kind": "terms",
        "id": "front",
        "any": ["shelling", "advance", "attack"],
        "cooldown": {"duration": "6h", "key": "place"},
    }
    h = await harness(tmp_path, feed_server, rules=[rule])
    try:
        titles = [
            "Russian forces advance into Dnipropetrovsk region",
            "Shelling damages houses in a Dnipropetrovsk region village",
            "Shelling of Kharkiv injures five",
        ]
        assert await poll_story(h, titles) == [1, 0, 1]
        [cooldown] = [c for c in h.store.active_cooldowns(h.clock.now()) if c.suppressed]
        assert cooldown.rule_id == "front" and cooldown.suppressed == 1
        h.advance(timedelta(hours=7))
        late = "Attack on energy site in Dnipropetrovsk region, officials say"
        assert await poll_story(h, [late], first=3) == [1]
    finally:
        await h.close()


async def test_digest_batches_low_severity_alerts_into_one_message(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """Alerts no other route takes go to a default digest route: nothing until 30 minutes
    have passed, then one digest message listing them; critical ones go at once."""
    routes = [
        {"sinks": ["fake"], "min_severity": "critical"},
        {"sinks": ["fake"], "default": True, "digest": "30m"},
    ]
    h = await harness(tmp_path, feed_server, rules=[DRONES, RECORD], routes=routes)
    try:
        lows = [
            "Drone debris falls on Odesa port",
            "Drones strike oil refinery in Saratov",
            "Air defence downs drones over Belgorod",
        ]
        h.server.add_feed("/low", fs.rss([entry(n, title=t) for n, t in enumerate(lows)]))
        await h.poller.poll(h.feed("/low"))
        await poll_story(h, ["Record heat wave hits Kyiv"], first=9)
        assert await h.deliverer.deliver_due() == 1
        assert [a.rule_id for a in h.sink.sent] == ["record"]
        h.advance(timedelta(minutes=29))
        assert await h.deliverer.deliver_due() == 0
        h.advance(timedelta(minutes=2))
        assert await h.deliverer.deliver_due() == 1
        digest = h.sink.sent[-1]
        assert digest.rule_id == "digest" and digest.item.title == "Digest: 3 alerts"
        listed = [e["title"] for e in digest.evidence.details["alerts"]]
        assert sorted(listed) == sorted(lows)
        h.advance(timedelta(hours=1))
        assert await h.deliverer.deliver_due() == 0 and h.store.queued_digests() == []
    finally:
        await h.close()


async def test_a_later_source_threads_an_email_update(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """A second feed's report of an alerted story sends the e-mail sink a short update whose
    thread_of (and In-Reply-To) is the first alert; the other sink gets nothing new."""
    h = await harness(
        tmp_path,
        feed_server,
        sinks=[MAIL, {"type": "console", "name": "fake"}],
        routes=[{"sinks": ["mail", "fake"]}],
    )
    mail = FakeSink("mail")
    deliverer = Deliverer(
        h.config, h.store, {"mail": mail, "fake": h.sink}, h.clock, random.Random(1)
    )
    try:
        assert await poll_story(h, STORY[:3]) == [1, 1, 1]  # the alert, then two updates
        await deliverer.deliver_due()
        assert len(h.sink.sent) == 1
        first, *updates = mail.sent
        assert [u.evidence.details["thread_of"] for u in updates] == [first.alert_id] * 2
        assert [u.evidence.details["reason"] for u in updates] == [
            "also reported by Feed 1",
            "also reported by Feed 2",
        ]
        sink = EmailSink(h.config.sinks[0])  # type: ignore[arg-type]
        message = sink.message(updates[0])
        assert message["In-Reply-To"] == message_id(first.alert_id, "desk.example")
        assert "Feed 0" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    finally:
        await h.close()


async def test_after_a_reload_each_poller_sees_the_others_stories(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """A reload replaces the poller while the old one's last polls may still claim, on the
    same connection: neither keeps a book that misses the other's stories or overwrites
    their sources."""
    h = await harness(tmp_path, feed_server)
    try:
        old = h.poller
        new = Poller(h.config, h.store, h.reader, compile_rules(h.config.rules), h.clock)
        h.poller = new
        assert await poll_story(h, [UNRELATED], first=9) == [1]  # the new book is kept
        h.poller = old
        assert await poll_story(h, STORY[:1]) == [1]  # the old poller's last poll: story S
        h.poller = new
        assert await poll_story(h, STORY[1:2], first=1) == [0]  # joins S
        h.poller = old
        assert await poll_story(h, STORY[2:3], first=2) == [0]
        [story] = [s for s in h.store.open_stories(NOW - timedelta(days=1)) if len(s.sources) > 1]
        assert story.feeds == ("f0", "f1", "f2")
    finally:
        await h.close()


class _FailsOn:
    """Rules that raise on one title, as a rule bug would."""

    def __init__(self, rules: RuleSet, title: str) -> None:
        self.rules, self.title, self.armed = rules, title, True
        self.gazetteer = rules.gazetteer

    def assess(self, item: Item, **kw: Any) -> Assessment:
        if self.armed and item.title == self.title:
            raise RuntimeError("a rule bug")
        return self.rules.assess(item, **kw)


async def test_a_poll_that_fails_while_planning_loses_no_alert(h: Harness) -> None:
    """Plans of a poll that failed half-way were never written: the next poll plans again."""
    rules = _FailsOn(compile_rules(h.config.rules), "Weather report")
    h.poller.rules = rules
    assert await poll_story(h, [UNRELATED], first=9) == [1]  # the book is kept
    items = [entry(0, title=STORY[0]), entry(1, title="Weather report")]
    h.server.add_feed("/f0", fs.rss(items))
    assert (await h.poller.poll(h.feed("/f0"))).status == "error"
    rules.armed = False
    assert (await h.poller.poll(h.feed("/f0"))).alerted == 1
