"""Frozen value types passed between the pipeline's stages.

Pydantic stops at ``monitor.config``; past the loader everything is one of
these. They hold data only: no I/O, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import partial
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar

N = TypeVar("N", bound=tuple[Any, ...])


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

    def __reduce__(self) -> tuple[type[Item], tuple[Any, ...]]:
        # Reader workers send every parsed item to the poller: as the constructor's
        # arguments, pickling and unpickling take half the time that dataclasses' own
        # field-by-field state does.
        return Item, _item_fields(self)


_item_fields = attrgetter(*(f.name for f in fields(Item)))


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


class Mention(NamedTuple):
    """One key an item mentions, for the history that novelty and burst rules read.

    ``key`` is ``place:<place id>`` (the place and, rolled up, its region and country) or
    ``term:<normalised term>``; ``in_context`` is true when conflict-context terms occur
    near the place. The item and its source (feed id) are recorded alongside.

    A NamedTuple: a conflict item makes a couple of hundred, and a tuple is built in a
    third of a frozen dataclass's time.
    """

    key: str
    at: datetime
    in_context: bool = False


@dataclass(frozen=True, slots=True)
class StorySource:
    """One report of a story: which feed said it, with what title and link, when."""

    item_id: str
    feed_id: str
    title: str
    url: str | None
    at: datetime
    feed_title: str = ""
    signature: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape alerts carry in ``details["sources"]`` (no signature)."""
        return {
            "feed": self.feed_id,
            "feed_title": self.feed_title,
            "title": self.title,
            "url": self.url,
            "at": self.at.isoformat().replace("+00:00", "Z"),
        }


_FEED_ID = attrgetter("feed_id")


@dataclass(frozen=True, slots=True)
class Story:
    """Near-duplicate items from one or more feeds, clustered (``monitor.suppress``).

    ``pairs`` are the (rule id, severity label) pairs any of its items fired; ``rule_id``
    the highest-severity one; ``routes`` the keys of the routes already alerted for it
    (``suppressed:<key>`` when a cooldown held the alert back); ``evidence`` the first
    matching item's merged evidence, kept for an alert that a later, non-matching report
    releases (``min_sources``).
    """

    story_id: str
    rule_id: str
    signature: str
    created_at: datetime
    sources: tuple[StorySource, ...]
    first_alert_id: str | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    evidence: Evidence | None = None

    @property
    def feeds(self) -> tuple[str, ...]:
        """The distinct sources (feeds), in order of first report."""
        return tuple(dict.fromkeys(map(_FEED_ID, self.sources)))  # C loops: stories get long


@dataclass(frozen=True, slots=True)
class Cooldown:
    """After an alert for (rule, key), alerts for the same (rule, key) wait until ``until``.

    ``story_id`` is the story that set it (its own later alerts are not held back);
    ``suppressed`` counts the alerts it held back.
    """

    rule_id: str
    key: str
    until: datetime
    story_id: str = ""
    suppressed: int = 0


@dataclass(frozen=True, slots=True)
class CooldownWrite:
    """Set a cooldown (``until`` given) or count one more suppression (``until`` None)."""

    rule_id: str
    key: str
    until: datetime | None = None
    story_id: str = ""


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """An alert batched for a digest route (``route`` is the route's key)."""

    route: str
    sinks: tuple[str, ...]
    alert: Alert


@dataclass(frozen=True, slots=True)
class QueuedDigest:
    """A digest entry as the store holds it until its digest is sent."""

    entry_id: int
    route: str
    sinks: tuple[str, ...]
    alert: Alert
    enqueued_at: datetime


@dataclass(frozen=True, slots=True)
class HealthCondition:
    """A source-health condition the store remembers: pending (not yet raised) or raised."""

    key: str  # "feed-failing:<feed id>", "feed-silent:<feed id>", "sink-dying:<sink>"
    kind: str  # "feed-failing" | "feed-silent" | "sink-dying"
    subject: str
    since: datetime
    raised: bool = False
    message: str = ""


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """An item to claim; ``alerts`` are enqueued and ``mentions`` recorded only if this call
    is the one that claims it — and so are its story, cooldown writes and digest entries.

    ``story_sources`` are the sources the story gains with this item, appended to the
    stored ones; None writes the story whole.
    """

    item: Item
    alerts: tuple[OutboxEntry, ...] = ()
    mentions: tuple[Mention, ...] = ()
    story: Story | None = None
    cooldowns: tuple[CooldownWrite, ...] = ()
    digests: tuple[DigestEntry, ...] = ()
    story_sources: tuple[StorySource, ...] | None = None


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
    # For the metrics (monitor.metrics): body bytes downloaded, and per-label counts.
    body_bytes: int = 0
    rule_matches: tuple[tuple[str, int], ...] = ()  # (rule id, matches on new items)
    alerts_by_severity: tuple[tuple[str, int], ...] = ()  # (severity label, alerts enqueued)


def tuple_maker(cls: type[N], fields: tuple[str, ...]) -> Callable[[Iterable[Any]], N]:
    """``cls`` (a NamedTuple) from an iterable of all its fields, in order: as ``cls(*t)``
    without a call of its ``__new__``, a Python function, per tuple -- for the hot loops
    that make one per place or mention. ``fields`` must be exactly ``cls``'s, so that a
    field added later is not silently left out of the tuples made."""
    if getattr(cls, "_fields", None) != fields:
        raise TypeError(f"{cls.__name__} has fields {getattr(cls, '_fields', None)}, not {fields}")
    return partial(tuple.__new__, cls)
