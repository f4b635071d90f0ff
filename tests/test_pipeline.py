"""One poll end to end: real feed server, fetcher, parser, rules and SQLite; fake clock and sink."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from monitor.clock import FixedClock
from monitor.config.models import AppConfig, FeedConfig
from monitor.deliver import Deliverer
from monitor.fetch import Fetcher
from monitor.gazetteer import Gazetteer
from monitor.pipeline import Poller
from monitor.readers import FeedReader, LocalReader, ProcessReader, Read, ReadRequest
from monitor.rules.compile import compile_rules
from monitor.storage.sqlite import SQLiteStorage
from monitor.text import Normalized
from tests import feedserver as fs
from tests.fakes import FakeSink

NOW = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)


def entry(n: int, *, title: str = "", age: timedelta = timedelta(hours=1)) -> dict[str, str]:
    return {
        "guid": f"urn:item:{n}",
        "title": title or f"Routine report number {n}",
        "link": f"http://example.test/news/{n}?utm_source=rss",
        "description": f"Body of item {n}.",
        "pubDate": format_datetime(NOW - age, usegmt=True),
    }


ORESHNIK = entry(100, title="Russia fires Oreshnik missile at Dnipro")


class Harness:
    """A Poller and a Deliverer wired to a real store, a real fetcher and a FakeSink."""

    def __init__(
        self, tmp_path: Path, server: fs.FeedServer, *, workers: int = 0, **overrides: Any
    ) -> None:
        self.server = server
        self.clock = FixedClock(NOW)
        data: dict[str, Any] = {
            "storage": {"path": str(tmp_path / "m.db")},
            "sinks": [{"type": "console", "name": "fake"}],
            "routes": [{"sinks": ["fake"]}],
            "rules": [
                {"kind": "terms", "id": "new-weapon", "severity": "critical", "any": ["oreshnik"]}
            ],
            "http": {"timeout": {"connect": 2, "read": 1, "total": 3}, "max_bytes": 1_000_000},
            "scheduler": {"backoff_min": 60, "backoff_max": 3600, "delivery_max_attempts": 3},
            **overrides,
        }
        self.config = AppConfig.model_validate(data)
        self.store = SQLiteStorage(self.config.storage.path)
        self.reader: FeedReader = LocalReader(Fetcher(self.config.http, self.clock))
        if workers:
            self.reader = ProcessReader(self.config.http, workers, log_level="info")
        self.sink = FakeSink("fake")
        rng = random.Random(7)
        rules = compile_rules(self.config.rules)
        self.poller = Poller(self.config, self.store, self.reader, rules, self.clock, rng)
        self.deliverer = Deliverer(self.config, self.store, {"fake": self.sink}, self.clock, rng)

    def feed(self, path: str = "/feed", **kw: Any) -> FeedConfig:
        return FeedConfig(
            id=path.strip("/").replace("/", "-") or "root", url=self.server.url(path), **kw
        )

    def advance(self, delta: timedelta) -> None:
        self.clock.set(self.clock.now() + delta)

    async def close(self) -> None:
        await self.reader.aclose()
        self.store.close()


@pytest.fixture(params=[0, 1], ids=["in-process", "worker-process"])
async def h(
    tmp_path: Path, feed_server: fs.FeedServer, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    """Every test twice: feeds read in this process, and in a worker process (http.workers)."""
    harness = Harness(tmp_path, feed_server, workers=request.param)
    yield harness
    await harness.close()


async def test_first_poll_claims_items_and_alerts_only_on_fresh_matches(h: Harness) -> None:
    """A first poll claims every item; only the fresh matching one is enqueued and delivered."""
    old_match = entry(1, title="Oreshnik used last year", age=timedelta(days=3))
    h.server.add_feed("/feed", fs.rss([entry(2), old_match, ORESHNIK]))
    outcome = await h.poller.poll(h.feed())
    assert (outcome.status, outcome.new, outcome.alerted) == ("ok", 3, 1)
    assert await h.deliverer.deliver_due() == 1
    [alert] = h.sink.sent
    assert alert.rule_id == "new-weapon"
    assert alert.item.url == "http://example.test/news/100"
    assert [t.text for t in alert.evidence.terms] == ["Oreshnik"]


async def test_old_items_alert_after_the_first_poll(h: Harness) -> None:
    """After a feed's first poll, an old but new-to-us item may alert (within retention)."""
    h.server.add_feed("/feed", fs.rss([entry(2)]))
    await h.poller.poll(h.feed())
    late = entry(3, title="Oreshnik report surfaces", age=timedelta(days=2))
    h.server.add_feed("/feed", fs.rss([entry(2), late]))
    outcome = await h.poller.poll(h.feed())
    assert (outcome.new, outcome.alerted) == (1, 1)


async def test_not_modified_costs_no_parse(h: Harness) -> None:
    """A 304 answer is recorded as not modified, nothing is parsed or claimed."""
    h.server.add_feed("/feed", fs.rss([ORESHNIK]))
    await h.poller.poll(h.feed())
    outcome = await h.poller.poll(h.feed())
    assert (outcome.status, outcome.parsed, outcome.new) == ("not_modified", 0, 0)
    assert h.server.count("/feed", status=304) == 1


async def test_unchanged_body_is_not_parsed_again(h: Harness) -> None:
    """A server without validators sending the same bytes costs no parse."""
    h.server.add_feed("/feed", fs.rss([ORESHNIK]), etag=None)
    await h.poller.poll(h.feed())
    outcome = await h.poller.poll(h.feed())
    assert (outcome.status, outcome.parsed) == ("unchanged", 0)


async def test_an_item_fires_once_across_feeds_and_reserves(h: Harness) -> None:
    """The same story (same canonical URL) from another guid or feed never fires twice."""
    h.server.add_feed("/a", fs.rss([ORESHNIK]))
    copy = {**ORESHNIK, "guid": "other-guid", "link": "http://example.test/news/100?fbclid=x"}
    h.server.add_feed("/b", fs.rss([copy]))
    first = await h.poller.poll(h.feed("/a"))
    second = await h.poller.poll(h.feed("/b"))
    h.server.add_feed("/a", fs.rss([ORESHNIK, entry(5)]))
    third = await h.poller.poll(h.feed("/a"))
    assert [first.alerted, second.alerted, third.alerted] == [1, 0, 0]
    assert third.new == 1
    await h.deliverer.deliver_due()
    assert len(h.sink.sent) == 1


async def test_permanent_redirect_moves_the_stored_url(h: Harness) -> None:
    """A 301 makes later polls go straight to the new URL; a 302 does not."""
    h.server.add_feed("/new", fs.rss([entry(1)]))
    h.server.set_route("/moved", fs.Redirect("/new", status=301))
    h.server.set_route("/temp", fs.Redirect("/new", status=302))
    await h.poller.poll(h.feed("/moved"))
    await h.poller.poll(h.feed("/temp"))
    moved = h.store.get_feed_state("moved")
    temp = h.store.get_feed_state("temp")
    assert moved is not None and moved.url == h.server.url("/new")
    assert temp is not None and temp.url == h.server.url("/temp")


def _bad(name: str) -> fs.Behaviour:
    behaviours: dict[str, Callable[[], fs.Behaviour]] = {
        "404": lambda: fs.Status(404),
        "410": lambda: fs.Status(410),
        "429": lambda: fs.Status(429, {"Retry-After": "120"}),
        "500": lambda: fs.Status(500),
        "redirect-loop": lambda: fs.Redirect("/feed", status=302),
        "slow": lambda: fs.Slow(fs.rss([entry(1)]), interval=1.5),
        "oversize": lambda: fs.Oversize(3_000_000, content_length=False),
        "gzip-bomb": lambda: fs.GzipBomb(),
        "html": fs.html_page,
        "empty": fs.empty_ok,
        "close-mid-body": lambda: fs.CloseMidBody(),
    }
    return behaviours[name]()


BAD = ["404", "429", "500", "redirect-loop", "slow", "oversize", "gzip-bomb", "html", "empty",
       "close-mid-body"]  # fmt: skip


@pytest.mark.parametrize("bad", BAD)
async def test_bad_responses_are_recorded_and_nothing_is_lost(h: Harness, bad: str) -> None:
    """A hostile answer leaves a clear error; the next good poll claims each item once."""
    h.server.add_feed("/feed", fs.rss([entry(1), ORESHNIK]))
    await h.poller.poll(h.feed())
    h.server.set_route("/feed", _bad(bad))
    with capture_logs() as logs:
        outcome = await h.poller.poll(h.feed())
    assert outcome.status == "error"
    state = h.store.get_feed_state("feed")
    assert state is not None and state.last_error and state.consecutive_errors == 1
    assert state.next_poll is not None and state.next_poll > h.clock.now()
    assert any(e["event"] == "polled" and e.get("error") for e in logs)
    h.server.add_feed("/feed", fs.rss([entry(1), ORESHNIK, entry(2)]), etag='"v2"')
    good = await h.poller.poll(h.feed())
    assert (good.status, good.new) == ("ok", 1)
    assert h.store.count_items() == 3
    assert await h.deliverer.deliver_due() == 1


async def test_gone_disables_the_feed_with_a_reason(h: Harness) -> None:
    """410 disables the feed; later polls do not touch the network."""
    h.server.set_route("/feed", fs.Status(410))
    await h.poller.poll(h.feed())
    state = h.store.get_feed_state("feed")
    assert state is not None and state.disabled_reason and "gone" in state.disabled_reason.lower()
    outcome = await h.poller.poll(h.feed())
    assert outcome.status == "disabled"
    assert h.server.count("/feed") == 1


async def test_retry_after_is_honoured(h: Harness) -> None:
    """A 429 with Retry-After: 3000 schedules the next poll no earlier than that."""
    h.server.set_route("/feed", fs.Status(429, {"Retry-After": "3000"}))
    outcome = await h.poller.poll(h.feed())
    assert outcome.next_poll is not None
    assert outcome.next_poll - NOW >= timedelta(seconds=3000)


async def test_backoff_grows_and_is_capped(h: Harness) -> None:
    """Consecutive failures back off exponentially up to backoff_max."""
    h.server.set_route("/feed", fs.Status(500))
    delays = []
    for _ in range(10):
        outcome = await h.poller.poll(h.feed())
        assert outcome.next_poll is not None
        delays.append((outcome.next_poll - h.clock.now()).total_seconds())
        h.advance(timedelta(hours=2))
    assert delays[2] > delays[1] > delays[0] * 1.3
    assert max(delays) <= 3600
    state = h.store.get_feed_state("feed")
    assert state is not None and state.consecutive_errors == 10


async def test_a_changed_config_url_starts_over(h: Harness) -> None:
    """Editing a feed's URL in the config drops the old validators and polls the new URL."""
    h.server.add_feed("/one", fs.rss([entry(1)]))
    h.server.add_feed("/two", fs.rss([entry(2)]))
    await h.poller.poll(FeedConfig(id="f", url=h.server.url("/one")))
    outcome = await h.poller.poll(FeedConfig(id="f", url=h.server.url("/two")))
    assert (outcome.status, outcome.new) == ("ok", 1)


async def test_transient_sink_failures_retry_then_die(h: Harness) -> None:
    """A failing sink is retried with backoff, then the delivery is dead but kept."""
    h.sink.fail_times = 10
    h.server.add_feed("/feed", fs.rss([ORESHNIK]))
    await h.poller.poll(h.feed())
    for _ in range(3):
        assert await h.deliverer.deliver_due() == 0
        h.advance(timedelta(hours=2))
    [record] = h.store.recent_alerts(dead_only=True)
    assert [d.state for d in record.deliveries] == ["dead"]
    assert record.deliveries[0].attempts == 3


async def test_a_recovering_sink_gets_the_alert(h: Harness) -> None:
    """A sink that fails once receives the alert on the next due pass, exactly once."""
    h.sink.fail_times = 1
    h.server.add_feed("/feed", fs.rss([ORESHNIK]))
    await h.poller.poll(h.feed())
    assert await h.deliverer.deliver_due() == 0
    assert await h.deliverer.deliver_due() == 0  # not due yet: backoff
    h.advance(timedelta(minutes=5))
    assert await h.deliverer.deliver_due() == 1
    assert len(h.sink.sent) == 1


async def test_a_permanent_sink_failure_is_dead_at_once(h: Harness) -> None:
    """A permanent refusal (a 4xx) is not retried: the delivery is dead after one attempt."""
    h.sink.fail_times, h.sink.transient = 1, False
    h.server.add_feed("/feed", fs.rss([ORESHNIK]))
    await h.poller.poll(h.feed())
    assert await h.deliverer.deliver_due() == 0
    [record] = h.store.recent_alerts(dead_only=True)
    assert [(d.state, d.attempts) for d in record.deliveries] == [("dead", 1)]
    assert h.store.retry_dead(record.alert_id, h.clock.now()) == 1
    assert await h.deliverer.deliver_due() == 1


@pytest.mark.parametrize(
    "odd", [fs.invalid_utf8_feed, fs.cp1251_feed_declared_utf8], ids=["invalid-utf8", "cp1251"]
)
async def test_badly_encoded_feeds_are_used_with_a_warning(
    h: Harness, odd: Callable[[], fs.Behaviour]
) -> None:
    """A feed with bytes that contradict its charset is read with a warning, and never twice."""
    h.server.set_route("/feed", odd())
    first = await h.poller.poll(h.feed())
    assert (first.status, first.new) == ("ok", 1)
    state = h.store.get_feed_state("feed")
    assert state is not None and state.warning and state.last_error is None
    again = await h.poller.poll(h.feed())
    assert again.new == 0
    assert h.store.count_items() == 1


async def test_a_poll_saves_its_feed_state_with_its_items(h: Harness) -> None:
    """The feed's state after a poll with new items counts them, written with the claim."""
    h.server.add_feed("/feed", fs.rss([entry(1), entry(2)]))
    await h.poller.poll(h.feed())
    state = h.store.get_feed_state("feed")
    assert state is not None and state.items_seen == 2 and state.body_hash
    h.server.add_feed("/feed", fs.rss([entry(1), entry(2), entry(3)]), etag='"v2"')
    outcome = await h.poller.poll(h.feed())
    state = h.store.get_feed_state("feed")
    assert outcome.new == 1 and state is not None and state.items_seen == 3


async def test_an_extreme_date_does_not_break_the_poll(h: Harness) -> None:
    """A pubDate at the edge of the calendar is read (or flagged), never a crash."""
    odd = {**entry(7), "pubDate": "Fri, 31 Dec 9999 23:59:59 -1200"}
    h.server.add_feed("/feed", fs.rss([odd, ORESHNIK]), content_type="application/xml")
    outcome = await h.poller.poll(h.feed())
    assert (outcome.status, outcome.new) == ("ok", 2)


async def test_a_new_url_for_a_feed_treats_its_backlog_as_history(h: Harness) -> None:
    """Pointing a feed at a new URL applies the first-poll age guard again."""
    h.server.add_feed("/one", fs.rss([entry(1)]))
    old = entry(9, title="Oreshnik strike reported last week", age=timedelta(days=6))
    h.server.add_feed("/two", fs.rss([old]))
    await h.poller.poll(FeedConfig(id="f", url=h.server.url("/one")))
    outcome = await h.poller.poll(FeedConfig(id="f", url=h.server.url("/two")))
    assert (outcome.new, outcome.alerted) == (1, 0)


async def test_a_rate_limited_sink_is_held_as_a_whole(h: Harness) -> None:
    """After a 429 with Retry-After, none of that sink's alerts is tried until it passes."""
    h.sink.fail_times, h.sink.retry_after = 1, 600
    other = {**ORESHNIK, "guid": "urn:other", "link": "http://example.test/other",
             "title": "Belarus puts Oreshnik launchers on combat duty"}  # fmt: skip
    h.server.add_feed("/feed", fs.rss([ORESHNIK, other]))
    await h.poller.poll(h.feed())
    assert await h.deliverer.deliver_due() == 0
    assert h.sink.attempts == 1
    h.advance(timedelta(minutes=5))
    assert await h.deliverer.deliver_due() == 0
    assert h.sink.attempts == 1  # held: the second alert was not tried either
    h.advance(timedelta(minutes=6))
    assert await h.deliverer.deliver_due() == 2


async def test_a_first_poll_takes_its_places_from_the_reader_worker(
    tmp_path: Path, feed_server: fs.FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a feed's first poll the worker finds the items' places and the poller looks up
    none itself, yet history records them; a later poll's new item the poller reads."""
    h = Harness(tmp_path, feed_server, workers=1)
    lookups: list[str] = []
    find = Gazetteer.find

    def counted(self: Gazetteer, norm: Normalized, broken: str | None = None) -> Any:
        lookups.append(norm.original)
        return find(self, norm, broken)

    monkeypatch.setattr(Gazetteer, "find", counted)
    window = (NOW - timedelta(days=1), NOW)
    try:
        h.server.add_feed("/feed", fs.rss([entry(1, title="Drones hit Odesa")]))
        assert (await h.poller.poll(h.feed())).new == 1
        assert lookups == []
        assert h.store.count("place:UA-51", *window) == 1
        h.server.add_feed(
            "/feed", fs.rss([entry(1, title="Drones hit Odesa"), entry(2, title="Kherson")])
        )
        assert (await h.poller.poll(h.feed())).new == 1
        assert lookups == ["Kherson", "Body of item 2."]
        assert h.store.count("place:UA-65", *window) == 1
    finally:
        await h.close()


async def test_worker_places_follow_the_text_of_the_item_kept(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """Two items share a guid; the first goes (its link is a known item's), the second
    stays: history gets the second's places, not the first's."""
    h = Harness(tmp_path, feed_server, workers=1)
    window = (NOW - timedelta(days=1), NOW)
    link = {"link": "http://example.test/news/1"}
    try:
        h.server.add_feed("/feed", fs.rss([
            {**entry(1, title="Weather"), **link},
            {**entry(2, title="Shelling in Kharkiv"), **link},
            {**entry(2, title="Shelling in Odesa"), "link": "http://example.test/news/3"},
        ]))  # fmt: skip
        assert (await h.poller.poll(h.feed())).new == 2
        assert h.store.count("place:UA-51", *window) == 1  # Odesa's region
        assert h.store.count("place:UA-63", *window) == 0  # not Kharkiv's
    finally:
        await h.close()


class _BogusPlaces:
    """A reader whose worker found places in another gazetteer (one the rules lack)."""

    def __init__(self, inner: FeedReader) -> None:
        self.inner = inner

    async def read(self, request: ReadRequest) -> Read:
        read = await self.inner.read(request)
        if read.parsed is None:
            return read
        bogus = ((("xx:nowhere", "nowhere", 0, 7),), ())
        return replace(read, places={i.content_hash: bogus for i in read.parsed.items})

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_places_from_another_gazetteer_are_found_again_here(h: Harness) -> None:
    """A worker's places naming a place the rules' gazetteer lacks (a package upgraded
    under a running daemon) are not used: the poller finds the item's places itself."""
    h.poller.reader = _BogusPlaces(h.poller.reader)
    h.server.add_feed("/feed", fs.rss([entry(1, title="Drones hit Odesa")]))
    assert (await h.poller.poll(h.feed())).new == 1
    assert h.store.count("place:UA-51", NOW - timedelta(days=1), NOW) == 1
