"""Frozen value types passed between the pipeline's stages.

Pydantic stops at ``monitor.config``; past the loader everything is one of
these. They hold data only: no I/O, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Severity(enum.IntEnum):
    """Ordered, so routes can say ``min_severity: warning``."""

    INFO = 10
    WARNING = 20
    CRITICAL = 30

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {value!r}; use one of: {choices}") from None


@dataclass(frozen=True, slots=True)
class Item:
    """One news item, normalised.

    ``id`` is stable across polls: derived from the feed's guid, else the
    canonical link, else a hash of the content. ``published_missing`` flags that
    the feed gave no date and ``published`` is the time we first saw it.
    """

    id: str
    feed_id: str
    title: str
    summary: str
    url: str | None
    published: datetime
    published_missing: bool = False
    guid: str | None = None
    tags: tuple[str, ...] = ()
    language: str | None = None
    content_hash: str = ""


@dataclass(frozen=True, slots=True)
class TermHit:
    """A matched term: which term of the rule, where in which field, what the text said."""

    term: str
    field: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a rule fired. Extra kinds of evidence (places, numbers, scores) go in ``details``."""

    terms: tuple[TermHit, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "terms": [
                {"term": h.term, "field": h.field, "start": h.start, "end": h.end, "text": h.text}
                for h in self.terms
            ],
            **dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class Match:
    rule_id: str
    severity: Severity
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class Alert:
    """A match on an item, ready to be routed. ``alert_id`` is the idempotency key."""

    alert_id: str
    rule_id: str
    severity: Severity
    created_at: datetime
    item: Item
    evidence: Evidence
    feed_title: str = ""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What came back from one conditional GET.

    ``body`` is None when the server answered 304. ``permanent_url`` is set when
    a 301/308 chain moved the feed and the stored URL should follow.
    """

    url: str
    status: int
    body: bytes | None
    headers: Mapping[str, str]
    etag: str | None = None
    last_modified: str | None = None
    permanent_url: str | None = None
    elapsed_ms: float = 0.0

    @property
    def not_modified(self) -> bool:
        return self.body is None


@dataclass(frozen=True, slots=True)
class FeedState:
    """A feed's HTTP state and health as the store keeps it between polls."""

    feed_id: str
    url: str
    config_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_status: int | None = None
    last_error: str | None = None
    consecutive_errors: int = 0
    last_polled: datetime | None = None
    last_success: datetime | None = None
    next_poll: datetime | None = None
    disabled_reason: str | None = None
    items_seen: int = 0
    warning: str | None = None

    @property
    def ever_succeeded(self) -> bool:
        return self.last_success is not None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An alert and the sinks it must reach, enqueued in the same transaction as its item."""

    alert: Alert
    sinks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Mention:
    """One key an item mentions, for the history that novelty and burst rules read.

    ``key`` is ``place:<place id>`` (the place and, rolled up, its region and country) or
    ``term:<normalised term>``; ``in_context`` is true when conflict-context terms occur
    near the place. The item and its source (feed id) are recorded alongside.
    """

    key: str
    at: datetime
    in_context: bool = False


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """An item to claim; ``alerts`` are enqueued and ``mentions`` recorded only if this call
    is the one that claims it."""

    item: Item
    alerts: tuple[OutboxEntry, ...] = ()
    mentions: tuple[Mention, ...] = ()


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claimed: tuple[str, ...]
    alerts_enqueued: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert owed to one sink."""

    delivery_id: int
    alert: Alert
    sink: str
    attempts: int
    state: str = "pending"
    last_error: str | None = None
    next_attempt: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """Result of one poll of one feed: counts on success, or the error that stopped it."""

    feed_id: str
    status: str  # "ok" | "not_modified" | "unchanged" | "error" | "disabled"
    new: int = 0
    matched: int = 0
    alerted: int = 0
    parsed: int = 0  # items in the parsed body; 0 when nothing was parsed
    error: Exception | None = None
    http_status: int | None = None
    next_poll: datetime | None = None
