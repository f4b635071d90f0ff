"""Contract tests for the Storage protocol, plus SQLite-specific failure and crash tests.

The contract tests use only the ``Storage`` protocol through the ``store`` fixture,
which is parametrised over backends; a new backend joins them by adding a branch
to ``open_store``. Tests below the "SQLite only" line exercise that backend's
environment: locks, read-only files, foreign files and kill -9.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.exceptions import StorageError
from monitor.storage import codec
from monitor.storage.base import Storage
from monitor.storage.sqlite import SQLiteStorage
from monitor.types import (
    Alert,
    ClaimRequest,
    Evidence,
    FeedState,
    Item,
    OutboxEntry,
    Severity,
    TermHit,
)

T0 = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)
SINKS = ("slack", "email")
REPO = Path(__file__).resolve().parents[1]

BACKENDS = ["sqlite", "sqlite-grouped"]


# -- builders -------------------------------------------------------------


def make_item(key: str, *, url: str | None = "", feed_id: str = "feed-a") -> Item:
    """An item with id ``key`` and, unless given, the URL ``https://news.example/<key>``."""
    return Item(
        id=key,
        feed_id=feed_id,
        title=f"Title {key}",
        summary=f"Summary of {key}: Покровськ, Dnipropetrovsk",
        url=f"https://news.example/{key}" if url == "" else url,
        published=T0 - timedelta(hours=1),
        guid=f"guid-{key}",
        tags=("war", "ukraine"),
        language="en",
        content_hash=f"hash-{key}",
    )


def make_alert(
    item: Item,
    rule_id: str = "escalation",
    *,
    created_at: datetime = T0,
    details: dict[str, Any] | None = None,
) -> Alert:
    return Alert(
        alert_id=f"{item.id}:{rule_id}",
        rule_id=rule_id,
        severity=Severity.CRITICAL,
        created_at=created_at,
        item=item,
        evidence=Evidence(
            terms=(TermHit(term="oreshnik", field="title", start=0, end=8, text="Oreshnik"),),
            details={"places": ["Dnipropetrovsk"], "score": 7.5} if details is None else details,
        ),
        feed_title="Example News",
    )


def make_request(
    item: Item, *rules: str, sinks: tuple[str, ...] = SINKS, created_at: datetime = T0
) -> ClaimRequest:
    alerts = tuple(
        OutboxEntry(alert=make_alert(item, rule, created_at=created_at), sinks=sinks)
        for rule in rules
    )
    return ClaimRequest(item=item, alerts=alerts)


# -- fixtures -------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Storage]]:
    """A factory that opens (or reopens) one backend at one test-private location."""
    opened: list[Storage] = []

    def factory() -> Storage:
        if request.param == "sqlite":
            store: Storage = SQLiteStorage(tmp_path / "nested" / "monitor.db")
        elif request.param == "sqlite-grouped":  # polls' writes committed together, later
            store = SQLiteStorage(tmp_path / "nested" / "monitor.db", commit_delay=60)
        else:  # pragma: no cover - a new backend must add its branch here
            raise AssertionError(request.param)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], Storage]) -> Storage:
    return open_store()


# -- feeds ----------------------------------------------------------------


def full_feed_state(feed_id: str, offset: int = 0) -> FeedState:
    """A FeedState with every field set to a non-default value, built from the dataclass fields."""
    kyiv = timezone(timedelta(hours=3))
    values: dict[str, Any] = {}
    for f in dataclasses.fields(FeedState):
        if f.name == "feed_id":
            values[f.name] = feed_id
        elif f.name in ("consecutive_errors", "last_status", "items_seen"):
            values[f.name] = 300 + offset + len(f.name)
        elif f.name in ("last_polled", "last_success", "next_poll"):
            values[f.name] = datetime(2025, 6, 8, 15, len(f.name), 7, 123456, tzinfo=kyiv)
        else:
            values[f.name] = f"{f.name}-{feed_id}-{offset}"
    return FeedState(**values)


def test_feed_state_round_trips_every_field(store: Storage) -> None:
    """A saved feed state comes back equal in every field, with datetimes tz-aware in UTC."""
    state = full_feed_state("feed-a")
    store.save_feed_state(state)
    loaded = store.get_feed_state("feed-a")
    assert loaded == state
    assert loaded is not None and loaded.last_polled is not None
    assert loaded.last_polled.utcoffset() == timedelta(0)


def test_save_feed_state_upserts_and_lists_by_id(store: Storage) -> None:
    """Saving a feed state again replaces it, and the list holds each feed once in id order."""
    store.save_feed_state(full_feed_state("feed-b"))
    store.save_feed_state(full_feed_state("feed-a"))
    cleared = FeedState(feed_id="feed-b", url="https://moved.example/rss")
    store.save_feed_state(cleared)
    assert store.list_feed_states() == [full_feed_state("feed-a"), cleared]


def test_unknown_feed_state_is_none(store: Storage) -> None:
    """A feed never saved has no state."""
    assert store.get_feed_state("nope") is None


# -- claiming -------------------------------------------------------------


def test_claim_inserts_an_item_once(store: Storage) -> None:
    """A second claim of the same item id claims nothing and enqueues nothing."""
    first = store.claim([make_request(make_item("a"), "r1")], T0)
    second = store.claim([make_request(make_item("a"), "r1", "r2")], T0 + timedelta(minutes=5))
    assert (first.claimed, first.alerts_enqueued) == (("a",), 1)
    assert (second.claimed, second.alerts_enqueued) == ((), 0)
    assert store.count_items() == 1
    assert store.pending_count() == len(SINKS)


def test_same_canonical_url_under_another_id_is_not_claimed(store: Storage) -> None:
    """An item whose canonical URL is already stored is skipped, in a later call or the same one."""
    url = "https://news.example/story"
    store.claim([make_request(make_item("a", url=url), "r1")], T0)
    later = store.claim([make_request(make_item("b", url=url), "r1")], T0)
    same_batch = store.claim(
        [
            make_request(make_item("c", url="https://x/1"), "r1"),
            make_request(make_item("d", url="https://x/1"), "r1"),
        ],
        T0,
    )
    assert later.claimed == () and later.alerts_enqueued == 0
    assert same_batch.claimed == ("c",) and same_batch.alerts_enqueued == 1
    assert store.count_items() == 2


def test_items_without_url_are_told_apart_by_id(store: Storage) -> None:
    """Items with no canonical URL never collide with each other on the URL."""
    result = store.claim([make_request(make_item(k, url=None)) for k in ("a", "b")], T0)
    assert result.claimed == ("a", "b")


def test_alerts_are_enqueued_only_for_the_claimed_item(store: Storage) -> None:
    """In a batch a known item's alerts are dropped and a new item's get one delivery per sink."""
    store.claim([make_request(make_item("old"))], T0)
    result = store.claim(
        [make_request(make_item("old"), "r1"), make_request(make_item("new"), "r1", "r2")], T0
    )
    assert result.claimed == ("new",)
    assert result.alerts_enqueued == 2
    due = store.due_deliveries(T0)
    assert sorted((d.alert.alert_id, d.sink) for d in due) == [
        ("new:r1", "email"),
        ("new:r1", "slack"),
        ("new:r2", "email"),
        ("new:r2", "slack"),
    ]
    assert all(d.state == "pending" and d.attempts == 0 and d.next_attempt == T0 for d in due)


def test_claim_with_an_unencodable_alert_persists_nothing(store: Storage) -> None:
    """A claim that fails halfway (an alert detail json cannot encode) leaves no trace at all."""
    good = make_request(make_item("a"), "r1")
    bad_item = make_item("b")
    bad = ClaimRequest(
        item=bad_item,
        alerts=(OutboxEntry(make_alert(bad_item, details={"oops": object()}), SINKS),),
    )
    with pytest.raises(TypeError):
        store.claim([good, bad], T0)
    assert store.count_items() == 0
    assert store.pending_count() == 0
    assert store.recent_alerts() == []
    assert [i.id for i in store.unseen([good.item, bad_item])] == ["a", "b"]


def test_claim_with_an_alert_for_another_item_persists_nothing(store: Storage) -> None:
    """An alert attached to the wrong item is a bug: it raises and the whole claim rolls back."""
    item = make_item("a")
    wrong = ClaimRequest(item=item, alerts=(OutboxEntry(make_alert(make_item("zzz")), SINKS),))
    with pytest.raises(ValueError, match="zzz"):
        store.claim([make_request(make_item("first"), "r1"), wrong], T0)
    assert store.count_items() == 0
    assert store.pending_count() == 0


def test_claim_saves_the_feed_state_with_the_items(store: Storage) -> None:
    """A claim with a feed state saves it in the same call, counting the items it claimed."""
    store.claim([make_request(make_item("old"))], T0)
    state = dataclasses.replace(full_feed_state("feed-a"), items_seen=10)
    requests = [make_request(make_item(k), "r1") for k in ("old", "a", "b")]
    result = store.claim(requests, T0, feed_state=state)
    assert result.claimed == ("a", "b")
    assert store.get_feed_state("feed-a") == dataclasses.replace(state, items_seen=12)


def test_claim_with_a_feed_state_writes_both_or_neither(store: Storage) -> None:
    """A claim that fails halfway saves neither its items nor the feed state it carried."""
    store.save_feed_state(full_feed_state("feed-a"))
    bad_item = make_item("b")
    bad = ClaimRequest(
        item=bad_item,
        alerts=(OutboxEntry(make_alert(bad_item, details={"oops": object()}), SINKS),),
    )
    with pytest.raises(TypeError):
        store.claim(
            [make_request(make_item("a"), "r1"), bad], T0, feed_state=full_feed_state("feed-a", 1)
        )
    assert store.count_items() == 0
    assert store.get_feed_state("feed-a") == full_feed_state("feed-a")
    bad_state = dataclasses.replace(full_feed_state("feed-a", 2), next_poll=datetime(2025, 6, 8))
    with pytest.raises(ValueError):
        store.claim([make_request(make_item("a"), "r1")], T0, feed_state=bad_state)
    assert store.count_items() == 0
    assert store.pending_count() == 0
    assert store.get_feed_state("feed-a") == full_feed_state("feed-a")


def test_unseen_drops_known_ids_and_urls(store: Storage) -> None:
    """Unseen returns, in order, the items whose id and canonical URL are both unknown."""
    store.claim([make_request(make_item("a")), make_request(make_item("b", url="https://u/b"))], T0)
    candidates = [
        make_item("a"),
        make_item("c", url="https://u/b"),
        make_item("d"),
        make_item("e", url=None),
    ]
    assert [i.id for i in store.unseen(candidates)] == ["d", "e"]
    assert store.count_items() == 2


def test_unseen_handles_a_thousand_feeds_worth(store: Storage) -> None:
    """Unseen answers for 30 items × 1,000 feeds, half of them known, quickly and correctly."""
    items = [make_item(f"f{f}-i{i}", feed_id=f"f{f}") for f in range(1000) for i in range(30)]
    store.claim([ClaimRequest(item) for item in items[::2]], T0)
    started = time.perf_counter()
    fresh = store.unseen(items)
    elapsed = time.perf_counter() - started
    assert [i.id for i in fresh] == [i.id for i in items[1::2]]
    assert elapsed < 5.0, f"unseen took {elapsed:.2f} s for {len(items)} items"


# -- outbox ---------------------------------------------------------------


def test_due_deliveries_respect_next_attempt_order_and_limit(store: Storage) -> None:
    """Only pending deliveries due by ``now`` come back, longest-waiting first, up to the limit."""
    for minutes, key in ((20, "late"), (0, "first"), (10, "second")):
        store.claim(
            [make_request(make_item(key), "r", sinks=("slack",))], T0 + timedelta(minutes=minutes)
        )
    assert [d.alert.item.id for d in store.due_deliveries(T0 + timedelta(minutes=10))] == [
        "first",
        "second",
    ]
    assert [d.alert.item.id for d in store.due_deliveries(T0 + timedelta(hours=1), limit=2)] == [
        "first",
        "second",
    ]
    assert store.due_deliveries(T0 - timedelta(seconds=1)) == []


def test_a_failed_delivery_waits_for_its_next_attempt(store: Storage) -> None:
    """After a transient failure a delivery is due again only at its next attempt, error kept."""
    store.claim([make_request(make_item("a"), "r", sinks=("slack",))], T0)
    (delivery,) = store.due_deliveries(T0)
    retry_at = T0 + timedelta(minutes=2)
    store.mark_failed(delivery.delivery_id, "HTTP 503", retry_at, dead=False)
    assert store.due_deliveries(retry_at - timedelta(seconds=1)) == []
    (again,) = store.due_deliveries(retry_at)
    assert (again.attempts, again.last_error, again.next_attempt) == (1, "HTTP 503", retry_at)
    assert store.pending_count() == 1


def test_delivered_is_settled(store: Storage) -> None:
    """A delivered delivery is never due again and records when it was delivered."""
    store.claim([make_request(make_item("a"), "r", sinks=("slack",))], T0)
    (delivery,) = store.due_deliveries(T0)
    store.mark_delivered(delivery.delivery_id, T0 + timedelta(seconds=3))
    assert store.due_deliveries(T0 + timedelta(days=1)) == []
    assert store.pending_count() == 0
    (record,) = store.recent_alerts()
    (done,) = record.deliveries
    assert (done.state, done.attempts, done.delivered_at) == (
        "delivered",
        1,
        T0 + timedelta(seconds=3),
    )


def test_dead_deliveries_stay_visible_and_can_be_retried(store: Storage) -> None:
    """A dead delivery leaves the queue but stays listed, and retry_dead re-queues it afresh."""
    store.claim([make_request(make_item("a"), "r")], T0)
    first, second = store.due_deliveries(T0)
    store.mark_failed(first.delivery_id, "timeout", T0 + timedelta(minutes=1), dead=False)
    store.mark_failed(first.delivery_id, "HTTP 404", None, dead=True)
    store.mark_failed(second.delivery_id, "HTTP 404", None, dead=True)
    assert store.due_deliveries(T0 + timedelta(days=1)) == []
    assert (store.pending_count(), store.dead_count()) == (0, 2)
    (record,) = store.recent_alerts(dead_only=True)
    assert {(d.state, d.attempts, d.last_error) for d in record.deliveries} == {
        ("dead", 2, "HTTP 404"),
        ("dead", 1, "HTTP 404"),
    }

    later = T0 + timedelta(hours=1)
    assert store.retry_dead(first.delivery_id, later) == 1
    assert store.retry_dead("a:r", later) == 1
    assert store.retry_dead("a:r", later) == 0
    requeued = store.due_deliveries(later)
    assert {(d.delivery_id, d.state, d.attempts, d.next_attempt) for d in requeued} == {
        (first.delivery_id, "pending", 0, later),
        (second.delivery_id, "pending", 0, later),
    }
    assert store.recent_alerts(dead_only=True) == []


def test_mark_failed_without_next_attempt_must_be_dead(store: Storage) -> None:
    """A pending delivery with no next attempt would never be sent, so it is refused."""
    store.claim([make_request(make_item("a"), "r", sinks=("slack",))], T0)
    (delivery,) = store.due_deliveries(T0)
    with pytest.raises(ValueError, match="next_attempt"):
        store.mark_failed(delivery.delivery_id, "boom", None, dead=False)


def test_marking_an_unknown_delivery_raises(store: Storage) -> None:
    """Marking a delivery that does not exist is a bug and raises LookupError."""
    with pytest.raises(LookupError):
        store.mark_delivered(12345, T0)
    with pytest.raises(LookupError):
        store.mark_failed(12345, "x", T0, dead=False)


def test_recent_alerts_shape(store: Storage) -> None:
    """Recent alerts come newest first, limited, with item title, URL, feed and every delivery."""
    for minutes, key in ((0, "a"), (5, "b"), (10, "c")):
        when = T0 + timedelta(minutes=minutes)
        store.claim([make_request(make_item(key), "r", created_at=when)], when)
    records = store.recent_alerts(limit=2)
    assert [r.alert_id for r in records] == ["c:r", "b:r"]
    record = records[0]
    assert (record.rule_id, record.severity, record.created_at) == (
        "r",
        "critical",
        T0 + timedelta(minutes=10),
    )
    assert (record.item_title, record.item_url, record.feed_id) == (
        "Title c",
        "https://news.example/c",
        "feed-a",
    )
    assert sorted(d.sink for d in record.deliveries) == sorted(SINKS)
    assert all(
        d.alert == make_alert(make_item("c"), "r", created_at=record.created_at)
        for d in record.deliveries
    )


def test_a_delivery_rebuilds_the_whole_alert(store: Storage) -> None:
    """The alert read back from the outbox equals the one enqueued, evidence and all."""
    item = make_item("a")
    alert = make_alert(
        item, details={"places": ["Дніпропетровська"], "nested": {"n": [1, 2.5, None]}}
    )
    store.claim([ClaimRequest(item, (OutboxEntry(alert, ("slack",)),))], T0)
    (delivery,) = store.due_deliveries(T0)
    assert delivery.alert == alert


def test_prune_keeps_pending_and_recent_and_deletes_settled_old(store: Storage) -> None:
    """Pruning drops old items whose alerts are settled, with those alerts, and keeps the rest."""
    old = T0 - timedelta(days=40)
    store.claim(
        [
            make_request(make_item("settled"), "r", sinks=("slack",)),
            make_request(make_item("pending"), "r", sinks=("slack",)),
            make_request(make_item("quiet")),
        ],
        old,
    )
    store.claim([make_request(make_item("recent"), "r", sinks=("slack",))], T0)
    by_item = {d.alert.item.id: d for d in store.due_deliveries(T0)}
    store.mark_delivered(by_item["settled"].delivery_id, old)
    store.mark_delivered(by_item["recent"].delivery_id, T0)

    assert store.prune_items(T0 - timedelta(days=30)) == 2
    assert store.count_items() == 2
    assert sorted(r.alert_id for r in store.recent_alerts()) == ["pending:r", "recent:r"]
    assert store.pending_count() == 1
    # Documented: an item pruned past retention can be claimed again if re-served.
    assert [i.id for i in store.unseen([make_item("settled"), make_item("pending")])] == ["settled"]


def test_data_survives_reopening(open_store: Callable[[], Storage]) -> None:
    """Whatever one store object wrote, a new one opened on the same database reads."""
    first = open_store()
    first.claim([make_request(make_item("a"), "r")], T0)
    first.save_feed_state(full_feed_state("feed-a"))
    first.close()
    second = open_store()
    assert second.count_items() == 1
    assert second.pending_count() == len(SINKS)
    assert second.get_feed_state("feed-a") == full_feed_state("feed-a")


# -- codec ----------------------------------------------------------------


@settings(database=None, deadline=None)
@given(
    st.datetimes(datetime(1000, 1, 2), datetime(9999, 12, 30), timezones=st.timezones()),
    st.datetimes(datetime(1000, 1, 2), datetime(9999, 12, 30), timezones=st.timezones()),
)
def test_stored_datetime_text_sorts_chronologically(a: datetime, b: datetime) -> None:
    """Stored datetime text round-trips and compares as text exactly as the instants compare."""
    # Compare in UTC: Python never calls a datetime in a DST fold equal to one in another zone.
    ua, ub = a.astimezone(UTC), b.astimezone(UTC)
    ta, tb = codec.dt_to_text(a), codec.dt_to_text(b)
    assert codec.dt_from_text(ta) == ua
    assert (ta < tb) == (ua < ub)


def test_naive_datetimes_are_refused() -> None:
    """A naive datetime is a bug, not something to guess a zone for."""
    with pytest.raises(ValueError, match="naive"):
        codec.dt_to_text(datetime(2025, 6, 8, 12, 0))


# -- SQLite only ----------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "monitor.db"


def seeded(path: Path) -> int:
    """Create a database with one pending and one dead delivery; return the pending one's id."""
    with SQLiteStorage(path) as store:
        store.claim([make_request(make_item("a"), "r")], T0)
        first, second = store.due_deliveries(T0)
        store.mark_failed(second.delivery_id, "gone", None, dead=True)
        return first.delivery_id


WRITES: dict[str, Callable[[SQLiteStorage, int], object]] = {
    "save_feed_state": lambda s, _: s.save_feed_state(FeedState("f", "https://f.example/rss")),
    "claim": lambda s, _: s.claim([make_request(make_item("new"), "r")], T0),
    "mark_delivered": lambda s, d: s.mark_delivered(d, T0),
    "mark_failed": lambda s, d: s.mark_failed(d, "x", T0, dead=False),
    "retry_dead": lambda s, _: s.retry_dead("a:r", T0),
    "prune_items": lambda s, _: s.prune_items(T0 + timedelta(days=400)),
}


@pytest.mark.parametrize("operation", sorted(WRITES))
def test_writes_to_a_locked_database_raise_storage_error(db_path: Path, operation: str) -> None:
    """While another connection holds an exclusive lock each write raises StorageError."""
    delivery_id = seeded(db_path)
    store = SQLiteStorage(db_path, busy_timeout=0.05)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StorageError, match="locked") as caught:
            WRITES[operation](store, delivery_id)
        assert caught.value.identity == str(db_path)
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert store.count_items() == 1  # WAL: reads go on beside the writer
    finally:
        other.close()
        store.close()


def test_the_lock_is_released_after_a_failed_write(db_path: Path) -> None:
    """A write that failed on a lock leaves the store usable once the lock is gone."""
    seeded(db_path)
    with SQLiteStorage(db_path, busy_timeout=0.05) as store:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StorageError):
            store.claim([make_request(make_item("b"), "r")], T0)
        other.close()
        assert store.claim([make_request(make_item("b"), "r")], T0).claimed == ("b",)


def test_read_only_database_refuses_writes(db_path: Path) -> None:
    """A database opened read-only reads fine and raises StorageError on every write."""
    delivery_id = seeded(db_path)
    with SQLiteStorage(db_path, read_only=True) as store:
        assert store.count_items() == 1
        for operation in WRITES.values():
            with pytest.raises(StorageError, match="read-only"):
                operation(store, delivery_id)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root ignores file modes; read_only=True covers this case",
)
def test_read_only_file_refuses_writes(db_path: Path) -> None:
    """A database file and directory without write permission raise StorageError on write."""
    delivery_id = seeded(db_path)
    modes = {p: p.stat().st_mode for p in [db_path.parent, *db_path.parent.iterdir()]}
    for p in modes:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        with SQLiteStorage(db_path) as store, pytest.raises(StorageError):
            store.mark_delivered(delivery_id, T0)
    except StorageError:
        pass  # refusing already at open (no write access for WAL) is as good
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    """Opening a file that is not SQLite raises StorageError saying so and leaves the file alone."""
    junk = b"<rss><channel><title>not a database</title></channel></rss>\n" * 20
    db_path.write_bytes(junk)
    with pytest.raises(StorageError, match="not a SQLite database") as caught:
        SQLiteStorage(db_path)
    assert caught.value.identity == str(db_path)
    assert db_path.read_bytes() == junk


def test_a_missing_read_only_database_is_refused(tmp_path: Path) -> None:
    """Opening a missing database read-only raises StorageError instead of creating it."""
    with pytest.raises(StorageError, match="cannot open"):
        SQLiteStorage(tmp_path / "absent.db", read_only=True)
    assert not (tmp_path / "absent.db").exists()


def test_database_uses_wal_and_creates_parent_directories(tmp_path: Path) -> None:
    """Opening creates missing parent directories and switches the file to WAL."""
    path = tmp_path / "a" / "b" / "monitor.db"
    SQLiteStorage(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import UTC, datetime
    from monitor.storage import codec
    from monitor.storage.sqlite import SQLiteStorage
    from monitor.types import Alert, ClaimRequest, Evidence, Item, OutboxEntry, Severity

    path, mode = sys.argv[1], sys.argv[2]
    now = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)

    def request(key):
        item = Item(id=key, feed_id="f", title=key, summary="", url="https://x/" + key,
                    published=now)
        alert = Alert(alert_id=key + ":r", rule_id="r", severity=Severity.CRITICAL,
                      created_at=now, item=item, evidence=Evidence())
        return ClaimRequest(item, (OutboxEntry(alert, ("slack",)),))

    store = SQLiteStorage(path)
    result = store.claim([request("a")], now)
    assert result.claimed == ("a",), result
    if mode == "mid-claim":
        # Die inside the next claim's transaction, after its item row is written.
        codec.alert_to_json = lambda alert: os.kill(os.getpid(), signal.SIGKILL)
        store.claim([request("b")], now)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("mode", ["after-commit", "mid-claim"])
def test_kill_9_keeps_committed_claims_exactly_once(db_path: Path, mode: str) -> None:
    """Killed right after a claim commits, or inside the next one, each claim is whole or absent."""
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(db_path), mode],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with SQLiteStorage(db_path) as store:
        assert store.count_items() == 1
        (delivery,) = store.due_deliveries(T0)
        assert (delivery.alert.alert_id, delivery.sink, delivery.state) == (
            "a:r",
            "slack",
            "pending",
        )
        assert [
            i.id
            for i in store.unseen(
                [make_item("a", url="https://x/a"), make_item("b", url="https://x/b")]
            )
        ] == ["b"]


def test_unseen_keeps_only_the_first_of_a_batchs_duplicates(store: Storage) -> None:
    """Within one batch, a second item with the same id or URL is not offered as new."""
    first = make_item("a", url="https://example.test/story")
    same_url = make_item("b", url="https://example.test/story")
    same_id = make_item("a", url="https://example.test/other")
    other = make_item("c")
    assert store.unseen([first, same_url, same_id, other]) == [first, other]


# -- grouped commits (SQLite) ---------------------------------------------------------


def _committed_items(path: Path) -> list[str]:
    """What another connection (another process) sees."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM items ORDER BY id")]
    finally:
        conn.close()


def test_grouped_writes_are_seen_here_at_once_and_elsewhere_when_committed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.db"
    with SQLiteStorage(path, commit_delay=0.3, commit_quiet=0.3) as store:
        store.claim([make_request(make_item("i1"))], T0)
        store.save_feed_state(FeedState("feed-a", "https://a.example/rss"))
        assert store.unseen([make_item("i1"), make_item("i2")]) == [make_item("i2")]
        assert _committed_items(path) == []
        deadline = time.monotonic() + 10
        while not _committed_items(path):  # the delay passes: committed by the timer
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _committed_items(path) == ["i1"]


def test_a_failed_grouped_write_undoes_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with SQLiteStorage(path, commit_delay=60, commit_quiet=60) as store:
        store.claim([make_request(make_item("i1"))], T0)
        bad = dataclasses.replace(make_item("i2"), title=None)  # type: ignore[arg-type]
        with pytest.raises(sqlite3.IntegrityError):
            store.claim([make_request(make_item("i3")), make_request(bad)], T0)
    assert _committed_items(path) == ["i1"]


def test_the_outbox_is_read_committed(tmp_path: Path) -> None:
    """Deliveries are read only once their alerts are durable: reading them commits."""
    path = tmp_path / "m.db"
    with SQLiteStorage(path, commit_delay=60, commit_quiet=60) as store:
        store.claim([make_request(make_item("i1"), "r1")], T0)
        assert _committed_items(path) == []
        assert len(store.due_deliveries(T0)) == len(SINKS)
        assert _committed_items(path) == ["i1"]


def test_another_write_commits_the_group_first(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with SQLiteStorage(path, commit_delay=60, commit_quiet=60) as store:
        store.claim([make_request(make_item("i1"), "r1")], T0)
        [delivery, *_] = store.due_deliveries(T0)
        store.claim([make_request(make_item("i2"))], T0)
        store.mark_delivered(delivery.delivery_id, T0)
        assert _committed_items(path) == ["i1", "i2"]


def test_a_pause_in_writes_commits_the_group_early(tmp_path: Path) -> None:
    """The group holds the write lock other processes wait for only while polls write."""
    path = tmp_path / "m.db"
    with SQLiteStorage(path, commit_delay=60, commit_quiet=0.05) as store:
        store.claim([make_request(make_item("i1"))], T0)
        deadline = time.monotonic() + 10
        while not _committed_items(path):
            assert time.monotonic() < deadline, "not committed after a pause"
            time.sleep(0.02)


def test_a_group_sqlite_rolled_back_is_reported_lost(tmp_path: Path) -> None:
    """On a full disk SQLite rolls the whole group back: the write fails as a storage
    error, the loss changes data_version, and later writes start a new group."""
    path = tmp_path / "m.db"
    with SQLiteStorage(path, commit_delay=60, commit_quiet=60) as store:
        store.claim([make_request(make_item("i1"))], T0)
        version = store.data_version()
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now full
        big = dataclasses.replace(make_item("i2"), summary="x" * 200_000)
        with pytest.raises(StorageError, match="full"):
            store.claim([make_request(big)], T0)
        assert store.data_version()[0] != version[0]
        store._conn.execute("PRAGMA max_page_count = 1000000")
        store.claim([make_request(make_item("i3"))], T0)
    assert _committed_items(path) == ["i3"]  # i1 went with the lost group; its poll is redone
