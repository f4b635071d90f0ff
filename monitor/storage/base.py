"""The Storage protocol every backend implements and the contract tests exercise.

Storage persists what it is given and answers questions; it decides nothing.
Every method raises ``StorageError`` for environmental failures (locked,
read-only, unreachable, newer schema).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.rules.history import History
from monitor.types import (
    ClaimRequest,
    ClaimResult,
    Cooldown,
    Delivery,
    FeedState,
    HealthCondition,
    Item,
    OutboxEntry,
    QueuedDigest,
    Story,
)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as `monitor alerts` shows it, with the state of each delivery."""

    alert_id: str
    rule_id: str
    severity: str
    created_at: datetime
    item_title: str
    item_url: str | None
    feed_id: str
    deliveries: tuple[Delivery, ...]


class Storage(History, Protocol):
    """Everything the daemon persists; it also answers the rules' History queries
    (``seen``, ``sources``, ``count`` over the mentions ``claim`` recorded)."""

    # feeds
    def get_feed_state(self, feed_id: str) -> FeedState | None: ...
    def save_feed_state(self, state: FeedState) -> None: ...
    def list_feed_states(self) -> list[FeedState]: ...

    # items
    def unseen(self, items: Sequence[Item]) -> list[Item]:
        """The items whose id and canonical URL the store has never claimed (read-only)."""
        ...

    def claim(
        self,
        requests: Sequence[ClaimRequest],
        now: datetime,
        *,
        feed_state: FeedState | None = None,
    ) -> ClaimResult:
        """In one transaction: insert each item unless its id or URL is known; for the
        items this call inserted, insert their alerts with one pending delivery per sink,
        their mentions (source: the item's feed), their story (upserted whole), cooldown
        writes (set one, or count a suppression) and digest-queue entries; and save
        ``feed_state`` (as ``save_feed_state`` would) with its ``items_seen`` increased by
        the number of items this call claimed. All of it is written, or none of it: a
        crash never leaves claimed items with the feed state of before their poll (whose
        ETag and body hash would fetch and parse them again) or the reverse."""
        ...

    def prune_items(
        self, older_than: datetime, *, mentions_older_than: datetime | None = None
    ) -> int:
        """Delete items first seen before ``older_than`` whose alerts are all settled, and
        mentions from before ``mentions_older_than`` (default: ``older_than``)."""
        ...

    def count_items(self) -> int: ...

    # outbox
    def due_deliveries(
        self, now: datetime, limit: int = 100, *, skip_sinks: Sequence[str] = ()
    ) -> list[Delivery]:
        """Pending deliveries due at ``now``, oldest first, leaving out sinks on hold."""
        ...

    def mark_delivered(self, delivery_id: int, now: datetime) -> None: ...
    def mark_failed(
        self,
        delivery_id: int,
        error: str,
        next_attempt: datetime | None,
        *,
        dead: bool,
        now: datetime | None = None,
    ) -> None:
        """Record a failed attempt; a dead one is stamped ``now`` (for ``dead_since``)."""
        ...

    def recent_alerts(self, limit: int = 20, *, dead_only: bool = False) -> list[AlertRecord]: ...
    def pending_count(self) -> int: ...
    def dead_count(self) -> int: ...
    def retry_dead(self, target: int | str, now: datetime) -> int:
        """Re-queue dead deliveries, due at ``now`` with attempts reset: one delivery by its
        id (int) or every dead delivery of an alert (str alert id). Returns how many."""
        ...

    def enqueue_alerts(self, entries: Sequence[OutboxEntry], now: datetime) -> int:
        """Enqueue alerts about no stored item; returns how many were new."""
        ...

    # noise control: stories, cooldowns, digests, source health
    def data_version(self) -> tuple[int, int]:
        """(changes by others, claims by this connection): the first changes when another
        connection (another process) has written to the store, or writes of this one were
        lost; the second counts this connection's claims (what a kept story book follows)."""
        ...

    def open_stories(self, since: datetime) -> list[Story]:
        """Stories created after ``since``, oldest first."""
        ...

    def active_cooldowns(self, now: datetime) -> list[Cooldown]:
        """Cooldowns that last beyond ``now``, with their suppression counts."""
        ...

    def queued_digests(self) -> list[QueuedDigest]:
        """Every alert waiting for its digest, by route then in order of arrival."""
        ...

    def flush_digest(self, entry_ids: Sequence[int], digest: OutboxEntry, now: datetime) -> int:
        """In one transaction: take the entries off the queue and enqueue the digest alert;
        0 (and nothing written) if some entry was already taken."""
        ...

    def health_conditions(self) -> list[HealthCondition]: ...
    def record_health(
        self,
        save: Sequence[HealthCondition],
        delete: Sequence[str],
        alerts: Sequence[OutboxEntry],
        now: datetime,
    ) -> int:
        """In one transaction: upsert ``save``, delete the ``delete`` keys, enqueue ``alerts``."""
        ...

    def item_times(self, feed_id: str, limit: int = 20) -> list[datetime]:
        """Publication times of the feed's latest ``limit`` items, newest first."""
        ...

    def dead_since(self, since: datetime) -> dict[str, int]:
        """Deliveries that died after ``since``, per sink."""
        ...

    def close(self) -> None: ...


def ids(items: Iterable[Item]) -> list[str]:
    return [item.id for item in items]
