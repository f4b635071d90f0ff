"""The history of past mentions that novelty and burst rules read.

A mention is (key, item id, source, time, in context), the item that mentioned the key,
its feed, and when (the item's publication time, never later than when it was claimed).
Keys are free-form strings; the engine writes three families:

* ``place:UA-12`` (:func:`place_key`): every place an item mentions, rolled up to its
  region and country; in context when some novelty rule's context held near it. Burst
  rules count these.
* ``ctx:<context id>:place:UA-12`` (:func:`context_key`): the same place, recorded only
  when one particular context held near it (always in context). The context id is a
  stable hash of a novelty rule's context definition (:func:`context_id`), so rules with
  identical contexts share their history and a rule reads only its own context's:
  a drone strike on Poltava does not make Poltava "seen" for a ground-advance rule.
* ``term:oreshnik``: the terms burst rules track.

Rules ask four questions about history:

* ``seen``: was a key mentioned in a time range (in context, by default) at all?
* ``sources``: by how many distinct sources (optionally: by this one)?
* ``count``: how many mentions?
* ``earliest``: when is the oldest mention of any key (None: history is empty)? Burst
  rules stay silent until the history is old enough to hold a baseline.

Every range is ``since < at <= until``: "within ``window`` before ``now``" is
``(now - window, now]``, and the range before it ``(now - window - baseline, now - window]``
shares no instant with it.

:class:`MemoryHistory` is the pure, in-memory implementation (backtests, tests, and
the mentions of a poll's earlier items before they are claimed); the stores implement
the same Protocol with SQL. :class:`LayeredHistory` reads a store and such a memory
together.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from monitor.types import Mention

__all__ = [
    "History",
    "LayeredHistory",
    "MemoryHistory",
    "context_id",
    "context_key",
    "place_key",
]


def place_key(place_id: str) -> str:
    """The history key of a place: ``place:UA-12``."""
    return f"place:{place_id}"


def context_key(context: str, place_id: str) -> str:
    """The history key of a place mentioned with context ``context`` (an id) near it."""
    return f"ctx:{context}:place:{place_id}"


def context_id(terms: Iterable[str], within: int | None, *, inflect: bool) -> str:
    """A stable id for a context definition: the same terms (in any order, case or
    spacing), window and inflection give the same id, in every process and release."""
    spec = {
        "terms": sorted({" ".join(t.casefold().split()) for t in terms}),
        "within": "sentence" if within is None else within,
        "inflect": inflect,
    }
    return hashlib.sha256(json.dumps(spec, ensure_ascii=False).encode()).hexdigest()[:12]


class History(Protocol):
    """Read-only queries over past mentions; ranges are ``since < at <= until``."""

    def seen(self, key: str, since: datetime, until: datetime, *, in_context: bool = True) -> bool:
        """Whether ``key`` was mentioned in the range (only in context, unless told)."""
        ...

    def sources(
        self, key: str, since: datetime, until: datetime, *, source: str | None = None
    ) -> int:
        """How many distinct sources mentioned ``key`` in the range (0 or 1 with ``source``)."""
        ...

    def count(self, key: str, since: datetime, until: datetime) -> int:
        """How many mentions of ``key`` the range holds."""
        ...

    def earliest(self) -> datetime | None:
        """The time of the oldest mention of any key (None if there is none)."""
        ...


@dataclass(slots=True)
class _Series:
    """One key's mentions as parallel lists sorted by time; in-context times on their own."""

    times: list[datetime] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    in_context: list[datetime] = field(default_factory=list)
    items: dict[str, bool] = field(default_factory=dict)  # item id -> in context

    def add(self, at: datetime, source: str, in_context: bool) -> None:
        index = bisect_right(self.times, at)  # == len(times) when mentions come in order
        self.times.insert(index, at)
        self.sources.insert(index, source)
        if in_context:
            insort(self.in_context, at)

    def span(self, since: datetime, until: datetime) -> tuple[int, int]:
        return bisect_right(self.times, since), bisect_right(self.times, until)


class MemoryHistory:
    """History in memory: per key, time-sorted lists searched with bisect.

    Adding is O(log n) plus the insert (an append when mentions come in time order, as
    in a backtest); ``seen`` and ``count`` are O(log n); ``sources`` is linear in the
    mentions within the range. A key is recorded once per item.
    """

    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}
        self._earliest: datetime | None = None

    def add(self, mentions: Iterable[Mention], *, item_id: str, source: str) -> None:
        """Record an item's mentions; a key the item already has stays one mention (in
        context if either was)."""
        for mention in mentions:
            series = self._series.get(mention.key)
            if series is None:
                series = self._series[mention.key] = _Series()
            known = series.items.get(item_id)
            if known is None:
                series.items[item_id] = mention.in_context
                series.add(mention.at, source, mention.in_context)
                if self._earliest is None or mention.at < self._earliest:
                    self._earliest = mention.at
            elif mention.in_context and not known:  # the same key, now in context
                series.items[item_id] = True
                insort(series.in_context, mention.at)

    def seen(self, key: str, since: datetime, until: datetime, *, in_context: bool = True) -> bool:
        series = self._series.get(key)
        if series is None:
            return False
        times = series.in_context if in_context else series.times
        first = bisect_right(times, since)  # the first mention after ``since``
        return first < len(times) and times[first] <= until

    def sources(
        self, key: str, since: datetime, until: datetime, *, source: str | None = None
    ) -> int:
        names = self.source_names(key, since, until)
        if source is not None:
            return int(source in names)
        return len(names)

    def source_names(self, key: str, since: datetime, until: datetime) -> set[str]:
        """The distinct sources that mentioned ``key`` in the range."""
        series = self._series.get(key)
        if series is None:
            return set()
        lo, hi = series.span(since, until)
        return set(series.sources[lo:hi])

    def count(self, key: str, since: datetime, until: datetime) -> int:
        series = self._series.get(key)
        if series is None:
            return 0
        lo, hi = series.span(since, until)
        return hi - lo

    def earliest(self) -> datetime | None:
        return self._earliest

    def __len__(self) -> int:
        return sum(len(s.times) for s in self._series.values())


class LayeredHistory:
    """A base history (the store) plus mentions not yet in it (a poll's earlier items).

    Added mentions are indexed only when first asked about: with no rule that reads
    history (no novelty or burst rule), a poll's items are never indexed at all.
    """

    def __init__(self, base: History, top: MemoryHistory | None = None) -> None:
        self.base = base
        self._top = top if top is not None else MemoryHistory()
        self._pending: list[tuple[Iterable[Mention], str, str]] = []

    def add(self, mentions: Iterable[Mention], *, item_id: str, source: str) -> None:
        self._pending.append((mentions, item_id, source))

    @property
    def top(self) -> MemoryHistory:
        """The added mentions, indexed."""
        for mentions, item_id, source in self._pending:
            self._top.add(mentions, item_id=item_id, source=source)
        self._pending.clear()
        return self._top

    def seen(self, key: str, since: datetime, until: datetime, *, in_context: bool = True) -> bool:
        return self.top.seen(key, since, until, in_context=in_context) or self.base.seen(
            key, since, until, in_context=in_context
        )

    def sources(
        self, key: str, since: datetime, until: datetime, *, source: str | None = None
    ) -> int:
        if source is not None:
            found = self.top.sources(key, since, until, source=source)
            return found or self.base.sources(key, since, until, source=source)
        extra = sum(
            1
            for name in self.top.source_names(key, since, until)
            if not self.base.sources(key, since, until, source=name)
        )
        return self.base.sources(key, since, until) + extra

    def count(self, key: str, since: datetime, until: datetime) -> int:
        return self.top.count(key, since, until) + self.base.count(key, since, until)

    def earliest(self) -> datetime | None:
        found = [t for t in (self.top.earliest(), self.base.earliest()) if t is not None]
        return min(found, default=None)
