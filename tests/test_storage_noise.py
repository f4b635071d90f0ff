"""Contract tests of the noise-control part of the Storage protocol: stories, cooldowns,
the digest queue, health conditions, item times, dead deliveries; and the v4 migration.

They use the ``store`` fixture of ``tests.test_storage`` (parametrised over backends).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.storage import codec, migrations
from monitor.storage.base import Storage
from monitor.storage.sqlite import SQLiteStorage
from monitor.types import (
    ClaimRequest,
    CooldownWrite,
    DigestEntry,
    Evidence,
    HealthCondition,
    Mention,
    OutboxEntry,
    Story,
    StorySource,
    TermHit,
)
from tests.test_storage import T0, make_alert, make_item, make_request
from tests.test_storage import open_store as open_store  # a fixture
from tests.test_storage import store as store  # a fixture


def make_story(
    item_id: str, *feeds: str, routes: tuple[str, ...] = ("r1", "suppressed:r2")
) -> Story:
    sources = tuple(
        StorySource(
            f"{item_id}-{f}",
            f,
            f"Title from {f}",
            f"https://{f}.example/x",
            T0,
            f"{f.upper()} News",
            "479 drone record russia ukraine",
        )
        for f in feeds
    )
    return Story(
        story_id=f"s-{item_id}",
        rule_id="drones",
        signature="479 drone record russia ukraine",
        created_at=T0,
        sources=sources,
        first_alert_id="a-1",
        pairs=(("drones", "warning"), ("record", "critical")),
        tags=("ua",),
        routes=routes,
        evidence=Evidence((TermHit("drone*", "title", 0, 6, "Drones"),), {"kind": "terms"}),
    )


def test_a_story_is_written_with_its_claimed_item_and_round_trips(store: Storage) -> None:
    """claim upserts the story of a claimed item; open_stories reads back every field."""
    story = make_story("i1", "a")
    store.claim([ClaimRequest(make_item("i1"), story=story)], T0)
    assert store.open_stories(T0 - timedelta(hours=1)) == [story]
    assert store.open_stories(T0) == []  # created_at > since, strictly


def test_a_story_is_upserted_whole(store: Storage) -> None:
    """A later claim replaces the story's sources and routes, keeping its creation time."""
    store.claim([ClaimRequest(make_item("i1"), story=make_story("i1", "a"))], T0)
    grown = make_story("i1", "a", "b", routes=("r1", "r2"))
    store.claim([ClaimRequest(make_item("i2"), story=grown)], T0 + timedelta(minutes=5))
    [read] = store.open_stories(T0 - timedelta(days=1))
    assert read.feeds == ("a", "b") and read.routes == ("r1", "r2")


def test_a_joined_story_appends_only_its_new_sources(store: Storage) -> None:
    """With the sources an item adds, a stored story gains them and keeps the rest; a story
    not stored yet is written whole."""
    grown = make_story("i1", "a", "b", "c", routes=("r1",))
    first = ClaimRequest(make_item("i1"), story=grown, story_sources=grown.sources[-1:])
    store.claim([first], T0)  # not stored yet: all three sources
    [read] = store.open_stories(T0 - timedelta(days=1))
    assert read == grown
    more = make_story("i1", "a", "b", "c", "d", routes=("r1", "r2"))
    second = ClaimRequest(make_item("i2"), story=more, story_sources=more.sources[-1:])
    store.claim([second], T0 + timedelta(minutes=5))
    [read] = store.open_stories(T0 - timedelta(days=1))
    assert read == more and read.feeds == ("a", "b", "c", "d")


def test_nothing_of_an_unclaimed_item_is_written(store: Storage) -> None:
    """A known item's story, cooldowns and digest entries are not written (one transaction)."""
    known = make_item("i1")
    store.claim([ClaimRequest(known)], T0)
    entry = DigestEntry("r", ("desk",), make_alert(known))
    request = ClaimRequest(
        known,
        story=make_story("i1", "a"),
        cooldowns=(CooldownWrite("r", "", T0 + timedelta(hours=1), "s"),),
        digests=(entry,),
    )
    store.claim([request], T0)
    assert store.open_stories(T0 - timedelta(days=1)) == []
    assert store.active_cooldowns(T0) == []
    assert store.queued_digests() == []


def test_cooldowns_are_set_and_count_suppressions(store: Storage) -> None:
    """A set cooldown is active until its end; a suppression write counts on it."""
    until = T0 + timedelta(hours=6)
    store.claim(
        [ClaimRequest(make_item("i1"), cooldowns=(CooldownWrite("r", "UA-12", until, "s1"),))], T0
    )
    suppress = (CooldownWrite("r", "UA-12"), CooldownWrite("r", "UA-12"))
    store.claim([ClaimRequest(make_item("i2"), cooldowns=suppress)], T0)
    [active] = store.active_cooldowns(T0 + timedelta(hours=5))
    assert (active.until, active.story_id, active.suppressed) == (until, "s1", 2)
    assert store.active_cooldowns(until) == []


def test_digest_entries_queue_and_flush_once(store: Storage) -> None:
    """Queued alerts come back in order; a flush enqueues the digest once and empties the queue."""
    items = [make_item(f"i{n}") for n in range(3)]
    requests = [
        ClaimRequest(
            i,
            (OutboxEntry(make_alert(i), ()),),
            digests=(DigestEntry("r", ("desk",), make_alert(i)),),
        )
        for i in items
    ]
    assert store.claim(requests, T0).alerts_enqueued == 3
    assert store.due_deliveries(T0 + timedelta(days=1)) == []  # digest-only: no delivery yet
    queued = store.queued_digests()
    assert [q.alert.item.id for q in queued] == ["i0", "i1", "i2"]
    assert queued[0].sinks == ("desk",) and queued[0].enqueued_at == T0
    digest = make_alert(make_item("digest-1", url=None), "digest")
    ids = [q.entry_id for q in queued]
    assert store.flush_digest(ids, OutboxEntry(digest, ("desk",)), T0) == 1
    assert store.flush_digest(ids, OutboxEntry(digest, ("desk",)), T0) == 0
    assert store.queued_digests() == []
    [delivery] = store.due_deliveries(T0)
    assert delivery.alert == digest and delivery.sink == "desk"


def test_items_waiting_in_a_digest_are_not_pruned(store: Storage) -> None:
    """An item whose alert waits for its digest survives pruning."""
    i = make_item("i1")
    store.claim([ClaimRequest(i, digests=(DigestEntry("r", ("desk",), make_alert(i)),))], T0)
    assert store.prune_items(T0 + timedelta(days=1)) == 0
    assert store.count_items() == 1


def test_itemless_alerts_are_delivered_and_pruned_when_settled(store: Storage) -> None:
    """An alert about no stored item (health) is delivered like any other, then pruned."""
    alert = make_alert(make_item("health-x", url=None), "health:feed-failing")
    assert store.enqueue_alerts([OutboxEntry(alert, ("ops",))], T0) == 1
    [delivery] = store.due_deliveries(T0)
    assert delivery.alert == alert
    store.mark_delivered(delivery.delivery_id, T0)
    store.prune_items(T0 + timedelta(days=1))
    assert store.recent_alerts() == []


def test_health_conditions_are_saved_and_forgotten_with_their_alerts(store: Storage) -> None:
    """record_health upserts and deletes conditions and enqueues alerts in one call."""
    pending = HealthCondition("feed-failing:f", "feed-failing", "f", T0, False, "500")
    store.record_health([pending], [], [], T0)
    raised = HealthCondition("feed-failing:f", "feed-failing", "f", T0, True, "500 again")
    alert = make_alert(make_item("h1", url=None), "health:feed-failing")
    assert store.record_health([raised], [], [OutboxEntry(alert, ("ops",))], T0) == 1
    assert store.health_conditions() == [raised]
    store.record_health([], ["feed-failing:f"], [], T0)
    assert store.health_conditions() == []


def test_item_times_are_the_latest_first(store: Storage) -> None:
    """item_times gives a feed's latest publication times, newest first, up to the limit."""
    from dataclasses import replace

    items = [replace(make_item(f"i{n}"), published=T0 - timedelta(hours=n)) for n in range(4)]
    other = make_item("o", feed_id="feed-b")
    store.claim([ClaimRequest(i) for i in [*items, other]], T0)
    assert store.item_times("feed-a", 3) == [T0 - timedelta(hours=n) for n in range(3)]


def test_dead_deliveries_are_counted_per_sink_since(store: Storage) -> None:
    """Deliveries marked dead with a time are counted per sink after a given time."""
    store.claim([make_request(make_item("i1"), "r1", "r2")], T0)
    deliveries = store.due_deliveries(T0)
    for d in deliveries[:3]:
        store.mark_failed(d.delivery_id, "no", None, dead=True, now=T0)
    store.mark_failed(
        deliveries[3].delivery_id, "later", T0 + timedelta(hours=1), dead=False, now=T0
    )
    counts = store.dead_since(T0 - timedelta(hours=1))
    assert sum(counts.values()) == 3
    assert store.dead_since(T0) == {}


# -- migrations (SQLite) ---------------------------------------------------------------


def _database_at(path: Path, version: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new database at schema ``version``, as that release made it."""
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:version])
        SQLiteStorage(path).close()


def _raw(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """A plain autocommit connection, to write or inspect what the store would not."""
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))


def test_v3_alerts_and_deliveries_survive_the_v4_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upgrading a v3 database keeps alerts, deliveries (ids included) and foreign keys."""
    path = tmp_path / "m.db"
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
        with SQLiteStorage(path) as old:
            old.claim([make_request(make_item("i1"), "r1")], T0)
            first = old.due_deliveries(T0)
            old.mark_delivered(first[0].delivery_id, T0)
    with SQLiteStorage(path) as store:
        [record] = store.recent_alerts()
        assert sorted((d.delivery_id, d.state) for d in record.deliveries) == [
            (first[0].delivery_id, "delivered"),
            (first[1].delivery_id, "pending"),
        ]
        store.claim([make_request(make_item("i2"), "r1")], T0)
        assert {d.delivery_id for d in store.due_deliveries(T0)} > {first[1].delivery_id}
    with _raw(path) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"stories", "cooldowns", "digest_queue", "health_conditions"} <= tables
        assert not {"alerts_v3", "deliveries_v3"} & tables


def test_v4_mentions_survive_the_v5_reordering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upgrading a v4 database keeps every mention, answers history from the new order,
    and drops the (key, at) index the order replaces."""
    path = tmp_path / "m.db"
    mentions = (Mention("place:UA-12", T0, in_context=True), Mention("place:UA", T0))
    _database_at(path, 4, monkeypatch)
    with _raw(path) as conn:  # as v4 wrote them (its statement names the (key, item_id) key)
        for m in mentions:
            conn.execute(
                "INSERT INTO mentions (key, item_id, source, at, in_context)"
                " VALUES (?, ?, ?, ?, ?)",
                (m.key, "i1", "feed-a", codec.dt_to_text(m.at), int(m.in_context)),
            )
    with SQLiteStorage(path) as store:
        window = (T0 - timedelta(hours=1), T0)
        assert store.seen("place:UA-12", *window, in_context=True)
        assert not store.seen("place:UA", *window, in_context=True)
        assert store.count("place:UA", *window) == 1
        store.claim([ClaimRequest(make_item("i2"), mentions=mentions)], T0)
        assert store.sources("place:UA-12", *window) == 1
        assert store.count("place:UA-12", *window) == 2
    with _raw(path) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert not {"mentions_key_at", "mentions_at"} & indexes
        assert "mentions_v4" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}


def test_v5_story_sources_move_to_their_own_rows_in_v6(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A v5 story's JSON sources become rows, in order, every field kept; the column goes."""
    path = tmp_path / "m.db"
    _database_at(path, 5, monkeypatch)
    story = make_story("i1", "a", "b")
    sources = [
        {"item_id": s.item_id, "feed": s.feed_id, "feed_title": s.feed_title, "title": s.title,
         "url": s.url, "at": codec.dt_to_text(s.at), "signature": s.signature}
        for s in story.sources
    ]  # fmt: skip
    sources[1].pop("feed_title")  # written before feed titles were kept
    with _raw(path) as conn:
        conn.execute(
            "INSERT INTO stories (story_id, rule_id, signature, first_alert_id, created_at,"
            " updated_at, sources, pairs, tags, routes, evidence) VALUES"
            " (?, 'drones', ?, 'a-1', ?, ?, ?, '[[\"drones\", \"warning\"]]', '[\"ua\"]',"
            " '[\"r1\"]', NULL)",
            (story.story_id, story.signature, codec.dt_to_text(T0), codec.dt_to_text(T0),
             json.dumps(sources)),
        )  # fmt: skip
    with SQLiteStorage(path) as store:
        [read] = store.open_stories(T0 - timedelta(days=1))
    assert read.sources == (story.sources[0], replace(story.sources[1], feed_title=""))
    assert read.pairs == (("drones", "warning"),) and read.routes == ("r1",)
    with _raw(path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(stories)")}
        assert "sources" not in columns


def test_v6_mentions_become_integers_in_v7(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every v6 mention is kept, answered by name and time as before, and earliest() is
    exact to the microsecond; the table holds integers only."""
    path = tmp_path / "m.db"
    _database_at(path, 6, monkeypatch)
    early = T0 - timedelta(hours=2, microseconds=7)
    rows = [
        ("place:UA-12", T0, "i1", "feed-a", 1),
        ("place:UA-12", T0, "i2", "feed-b", 0),
        ("place:UA", early, "i1", "feed-a", 0),
        ("term:oreshnik", T0, "i3", "feed-a", 0),
    ]
    with _raw(path) as conn:
        conn.executemany(
            "INSERT INTO mentions (key, at, item_id, source, in_context) VALUES (?, ?, ?, ?, ?)",
            [(k, codec.dt_to_text(at), i, s, c) for k, at, i, s, c in rows],
        )
    window = (T0 - timedelta(hours=1), T0)
    with SQLiteStorage(path) as store:
        assert store.seen("place:UA-12", *window)
        assert not store.seen("place:UA", *window, in_context=False)
        assert store.seen("place:UA", early - timedelta(microseconds=1), early, in_context=False)
        assert store.sources("place:UA-12", *window) == 2
        assert store.sources("place:UA-12", *window, source="feed-b") == 1
        assert store.sources("place:UA-12", *window, source="feed-c") == 0
        assert store.count("term:oreshnik", *window) == 1
        assert store.earliest() == early
        store.prune_items(T0 + timedelta(days=1), mentions_older_than=T0)
        assert store.earliest() == T0
    with _raw(path) as conn:
        types = conn.execute("SELECT DISTINCT typeof(key), typeof(at), typeof(item),"
                             " typeof(source) FROM mentions").fetchall()  # fmt: skip
        assert types == [("integer",) * 4]
        assert "mentions_v6" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}


def test_pruned_stories_take_their_sources_along(tmp_path: Path) -> None:
    with SQLiteStorage(tmp_path / "m.db") as store:
        story = make_story("i1", "a", "b")
        store.claim([ClaimRequest(make_item("i1"), story=story)], T0)
        store.prune_items(T0 + timedelta(days=1))
        assert store.open_stories(T0 - timedelta(days=1)) == []
    with _raw(tmp_path / "m.db") as conn:
        assert conn.execute("SELECT count(*) FROM story_sources").fetchone() == (0,)


def test_a_prune_journals_on_disk_and_claims_in_memory(tmp_path: Path) -> None:
    """Savepoint journals stay in memory for claims; a prune's, which can be as large as
    what it deletes, go to disk for the prune only."""
    with SQLiteStorage(tmp_path / "m.db", commit_delay=1.0) as store:
        conn = store._conn
        assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
        store.claim([ClaimRequest(make_item("i1"))], T0)
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        assert store.prune_items(T0 + timedelta(days=1)) == 1
        conn.set_trace_callback(None)
        order = [s for s in statements if s.startswith(("PRAGMA temp_store", "DELETE FROM"))]
        assert order[0] == "PRAGMA temp_store = FILE"
        assert order[-1] == "PRAGMA temp_store = MEMORY"
        assert all(s.startswith("DELETE FROM") for s in order[1:-1])
        assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2
