"""Contract tests for the History protocol: the same queries against every implementation.

``MemoryHistory`` (pure, for backtests), ``SQLiteStorage`` (mentions written by ``claim``)
and ``LayeredHistory`` (a store plus a poll's not-yet-claimed items) must answer alike.
Mentions are recorded per item through ``Recorder.record``, which each backend maps to
its own way of learning them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.rules.history import History, LayeredHistory, MemoryHistory
from monitor.storage.sqlite import SQLiteStorage
from monitor.types import ClaimRequest, Item, Mention

NOW = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


class Recorder:
    """A History under test and the way to teach it an item's mentions."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.store: SQLiteStorage | None = None
        self.memory = MemoryHistory()
        self.history: History = self.memory
        if kind in ("sqlite", "layered"):
            self.store = SQLiteStorage(tmp_path / "h.db")
            self.history = self.store
        if kind == "layered":
            assert self.store is not None
            self.history = self.layered = LayeredHistory(self.store)
        self._items = 0

    def record(self, source: str, *mentions: Mention, item_id: str | None = None) -> None:
        """One item from ``source`` with these mentions (layered: odd items stay in memory)."""
        self._items += 1
        item_id = item_id or f"item-{self._items}"
        if self.kind == "memory" or (self.kind == "layered" and self._items % 2):
            target = self.memory if self.kind == "memory" else self.layered
            target.add(mentions, item_id=item_id, source=source)
            return
        assert self.store is not None
        item = Item(item_id, source, "t", "s", None, NOW)
        self.store.claim([ClaimRequest(item, mentions=mentions)], NOW)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


@pytest.fixture(params=["memory", "sqlite", "layered"])
def rec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Recorder]:
    recorder = Recorder(request.param, tmp_path)
    yield recorder
    recorder.close()


def m(key: str, at: datetime, in_context: bool = True) -> Mention:
    return Mention(key, at, in_context)


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (NOW - 2 * H, NOW, True),
        (NOW - H, NOW, False),  # since is exclusive: a mention exactly at since is outside
        (NOW - 3 * H, NOW - H, True),  # until is inclusive
        (NOW - 3 * H, NOW - 2 * H, False),
    ],
)
def test_seen_uses_a_left_open_range(
    rec: Recorder, since: datetime, until: datetime, expected: bool
) -> None:
    """A mention counts in ``(since, until]``."""
    rec.record("a", m("place:UA-12", NOW - H))
    assert rec.history.seen("place:UA-12", since, until) is expected


@pytest.mark.parametrize(
    ("in_context", "query_in_context", "expected"),
    [(True, True, True), (False, True, False), (False, False, True), (True, False, True)],
)
def test_seen_in_context_only_by_default(
    rec: Recorder, in_context: bool, query_in_context: bool, expected: bool
) -> None:
    """``seen`` asks for in-context mentions unless told ``in_context=False``."""
    rec.record("a", m("place:UA-12", NOW - H, in_context))
    found = rec.history.seen("place:UA-12", NOW - 2 * H, NOW, in_context=query_in_context)
    assert found is expected


def test_sources_counts_distinct_sources_and_one_source_on_request(rec: Recorder) -> None:
    """``sources`` counts distinct feeds; with ``source=`` it says whether that one is there."""
    for source in ("a", "a", "b", "c"):
        rec.record(source, m("place:UA-12", NOW - H))
    rec.record("d", m("place:UA-12", NOW - 5 * H))
    rec.record("e", m("place:UA-14", NOW - H))
    h = rec.history
    assert h.sources("place:UA-12", NOW - 2 * H, NOW) == 3
    assert h.sources("place:UA-12", NOW - 6 * H, NOW) == 4
    assert h.sources("place:UA-12", NOW - 2 * H, NOW, source="b") == 1
    assert h.sources("place:UA-12", NOW - 2 * H, NOW, source="d") == 0
    assert h.sources("place:nowhere", NOW - 2 * H, NOW) == 0


def test_count_counts_mentions_in_range(rec: Recorder) -> None:
    """``count`` is the number of mentions (items) of the key in the range."""
    for hours in (1, 1, 2, 3, 30):
        rec.record("a", m("term:oreshnik", NOW - hours * H, in_context=False))
    h = rec.history
    assert h.count("term:oreshnik", NOW - 2 * H, NOW) == 2  # the one at 2 h is at `since`
    assert h.count("term:oreshnik", NOW - 48 * H, NOW - 2 * H) == 3
    assert h.count("term:other", NOW - 48 * H, NOW) == 0


def test_a_key_counts_once_per_item(rec: Recorder) -> None:
    """The same key twice in one item's mentions is one mention, in context if either is."""
    rec.record("a", m("place:UA-12", NOW - H, False), m("place:UA-12", NOW - H, True))
    assert rec.history.count("place:UA-12", NOW - 2 * H, NOW) == 1
    assert rec.history.seen("place:UA-12", NOW - 2 * H, NOW)


@pytest.mark.parametrize("seed", range(5))
def test_random_mentions_match_a_brute_force_count(rec: Recorder, seed: int) -> None:
    """Every query agrees with a direct count over random mentions."""
    rng = random.Random(seed)
    rows = []
    for i in range(60):
        key = rng.choice(["place:UA-12", "place:MD", "term:oreshnik"])
        at = NOW - timedelta(minutes=rng.randrange(0, 600, 15))
        source, in_context = rng.choice("abcd"), rng.random() < 0.5
        rows.append((key, at, source, in_context))
        rec.record(source, m(key, at, in_context), item_id=f"r{i}")
    for _ in range(20):
        key = rng.choice(["place:UA-12", "place:MD", "term:oreshnik"])
        since = NOW - timedelta(minutes=rng.randrange(0, 660, 15))
        until = since + timedelta(minutes=rng.randrange(0, 300, 15))
        inside = [r for r in rows if r[0] == key and since < r[1] <= until]
        assert rec.history.count(key, since, until) == len(inside)
        assert rec.history.sources(key, since, until) == len({r[2] for r in inside})
        assert rec.history.seen(key, since, until) is any(r[3] for r in inside)
        assert rec.history.seen(key, since, until, in_context=False) is bool(inside)


def test_earliest_is_the_oldest_mention_of_any_key(rec: Recorder) -> None:
    """``earliest`` is None for an empty history, else the oldest mention's time."""
    assert rec.history.earliest() is None
    rec.record("a", m("place:UA-12", NOW - H))
    rec.record("b", m("term:oreshnik", NOW - 30 * H, in_context=False))
    rec.record("c", m("place:MD", NOW - 2 * H))
    assert rec.history.earliest() == NOW - 30 * H


# -- SQLite only: mentions ride on claim, and are pruned -------------------------------


def _item(item_id: str, feed_id: str = "a", url: str | None = None) -> Item:
    return Item(item_id, feed_id, "t", "s", url, NOW)


def test_claim_records_mentions_only_for_items_it_inserts(tmp_path: Path) -> None:
    """An item already claimed (by id or URL) adds no mentions the second time."""
    with SQLiteStorage(tmp_path / "m.db") as store:
        first = ClaimRequest(_item("x", url="https://n.example/1"), mentions=(m("k", NOW),))
        assert store.claim([first], NOW).claimed == ("x",)
        again = ClaimRequest(_item("x", "b"), mentions=(m("k", NOW), m("k2", NOW)))
        same_url = ClaimRequest(_item("y", "c", url="https://n.example/1"), mentions=(m("k", NOW),))
        assert store.claim([again, same_url], NOW).claimed == ()
        assert store.count("k", NOW - H, NOW) == 1
        assert store.sources("k", NOW - H, NOW) == 1
        assert store.count("k2", NOW - H, NOW) == 0


def test_mentions_of_a_claim_commit_with_it(tmp_path: Path) -> None:
    """A claim that fails part-way leaves neither its items nor their mentions."""
    with SQLiteStorage(tmp_path / "m.db") as store:
        good = ClaimRequest(_item("x"), mentions=(m("k", NOW),))
        naive = ClaimRequest(_item("y"), mentions=(Mention("k", NOW.replace(tzinfo=None)),))
        with pytest.raises(ValueError, match="naive datetime"):
            store.claim([good, naive], NOW)
        assert store.count_items() == 0
        assert store.count("k", NOW - H, NOW) == 0


def test_prune_deletes_old_mentions(tmp_path: Path) -> None:
    """Pruning forgets mentions before the cutoff (its own cutoff when given)."""
    with SQLiteStorage(tmp_path / "m.db") as store:
        for n, days in enumerate((1, 40, 100)):
            at = NOW - timedelta(days=days)
            store.claim([ClaimRequest(_item(f"i{n}"), mentions=(m("k", at),))], NOW)
        year = timedelta(days=365)
        store.prune_items(NOW - timedelta(days=30), mentions_older_than=NOW - timedelta(days=90))
        assert store.count("k", NOW - year, NOW) == 2
        store.prune_items(NOW - timedelta(days=30))
        assert store.count("k", NOW - year, NOW) == 1


def test_earliest_follows_other_writers_and_pruning(tmp_path: Path) -> None:
    """The oldest mention is kept by this connection; another process's older mention
    and a prune are both seen."""
    path = tmp_path / "m.db"
    with SQLiteStorage(path) as store, SQLiteStorage(path) as other:
        store.claim([ClaimRequest(_item("a"), mentions=(m("k", NOW - H),))], NOW)
        assert store.earliest() == NOW - H
        other.claim([ClaimRequest(_item("b"), mentions=(m("k", NOW - 50 * H),))], NOW)
        assert store.earliest() == NOW - 50 * H
        store.prune_items(NOW - 30 * H)
        assert store.earliest() == NOW - H
