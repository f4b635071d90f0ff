"""Pure policy: when to poll next, which items may alert, where alerts go.

No I/O and no clock: ``now`` and the random source are parameters, so every
decision here is reproducible in a test.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from monitor.config.models import AppConfig, RouteConfig
from monitor.config.rule_models import BurstRuleConfig, NoveltyRuleConfig
from monitor.exceptions import FetchError, MonitorError
from monitor.types import Alert, FeedState, FetchResult, Item, Match, Severity


def jittered(interval: timedelta, jitter: float, rng: random.Random) -> timedelta:
    """``interval`` spread uniformly by ±``jitter`` of itself, so feeds do not poll in lockstep."""
    spread = interval.total_seconds() * jitter
    return timedelta(seconds=max(1.0, interval.total_seconds() + rng.uniform(-spread, spread)))


def backoff_delay(
    consecutive_errors: int,
    minimum: timedelta,
    maximum: timedelta,
    rng: random.Random,
    retry_after: float | None = None,
) -> timedelta:
    """Exponential backoff with jitter and a cap; a server's Retry-After is a floor.

    The n-th consecutive error waits ``minimum * 2**(n-1)`` capped at ``maximum``,
    scaled by a random factor in [0.8, 1.2] (never above the cap).
    """
    exponent = max(0, consecutive_errors - 1)
    base = min(maximum.total_seconds(), minimum.total_seconds() * 2 ** min(exponent, 32))
    delay = min(maximum.total_seconds(), base * rng.uniform(0.8, 1.2))
    if retry_after is not None:
        delay = max(delay, min(retry_after, maximum.total_seconds()))
    return timedelta(seconds=delay)


def may_alert(
    item: Item, *, first_poll: bool, now: datetime, max_item_age: timedelta, retention: timedelta
) -> bool:
    """Whether a newly claimed item may raise alerts.

    On a feed's first successful poll, items older than ``max_item_age`` are
    history, not news. Items older than the store's retention never alert: the
    store may have pruned them and would otherwise take a re-served old item for
    a new one. An undated item on a first poll is of unknown age: history too.
    """
    if first_poll and item.published_missing:
        return False
    age = now - item.published
    if age > retention:
        return False
    return not (first_poll and age > max_item_age)


def alert_id(rule_id: str, item_id: str) -> str:
    """Stable per (rule, item): the idempotency key receivers can drop repeats by."""
    digest = hashlib.sha256(f"{rule_id}\0{item_id}".encode()).hexdigest()
    return digest[:32]


def make_alert(match: Match, item: Item, *, now: datetime, feed_title: str) -> Alert:
    return Alert(
        alert_id=alert_id(match.rule_id, item.id),
        rule_id=match.rule_id,
        severity=match.severity,
        created_at=now,
        item=item,
        evidence=match.evidence,
        feed_title=feed_title,
    )


def route_holds(
    route: RouteConfig, pairs: Iterable[tuple[str, Severity]], feed_tags: Iterable[str]
) -> bool:
    """Whether a news route's conditions hold for one of the (rule id, severity) pairs."""
    if route.health:
        return False
    if route.feed_tags and not set(feed_tags).intersection(route.feed_tags):
        return False
    return any(
        severity >= route.severity and (not route.rules or rule_id in route.rules)
        for rule_id, severity in pairs
    )


def matching_routes(
    pairs: Sequence[tuple[str, Severity]], feed_tags: Iterable[str], routes: Sequence[RouteConfig]
) -> list[RouteConfig]:
    """The news routes an alert takes: every non-default route whose conditions hold for
    one of its (rule, severity) pairs; if there is none, the default routes that hold.
    Health routes never take news alerts."""
    tags = tuple(feed_tags)
    found = [r for r in routes if not r.default and route_holds(r, pairs, tags)]
    return found or [r for r in routes if r.default and route_holds(r, pairs, tags)]


def sinks_of(routes: Iterable[RouteConfig]) -> tuple[str, ...]:
    """The union of the routes' sinks, in order of first mention."""
    return tuple(dict.fromkeys(sink for r in routes for sink in r.sinks))


def route(alert: Alert, feed_tags: Sequence[str], routes: Sequence[RouteConfig]) -> tuple[str, ...]:
    """The sinks an alert goes to: the union over every route that takes it (see
    ``matching_routes``; a merged alert is taken by a route for any of its ``rules``).
    Health alerts (rule ``health:*``) go to the health routes only."""
    if alert.rule_id.startswith("health:"):
        return health_sinks(routes, alert.severity)
    rules = alert.evidence.details.get("rules") or [alert.rule_id]
    pairs = [(str(rule_id), alert.severity) for rule_id in rules]
    return sinks_of(matching_routes(pairs, feed_tags, routes))


def health_sinks(
    routes: Sequence[RouteConfig], severity: Severity = Severity.CRITICAL
) -> tuple[str, ...]:
    """The sinks of the ``health: true`` routes that take ``severity`` (source-health
    alerts go there only)."""
    return sinks_of(r for r in routes if r.health and severity >= r.severity)


def after_success(
    state: FeedState,
    result: FetchResult,
    *,
    now: datetime,
    next_poll: datetime,
    body_hash: str | None = None,
    claimed: int = 0,
    warning: str | None = None,
) -> FeedState:
    """The feed's state after a poll that reached the feed (200 or 304)."""
    return replace(
        state,
        url=result.permanent_url or state.url,
        etag=result.etag or state.etag,
        last_modified=result.last_modified or state.last_modified,
        body_hash=body_hash or state.body_hash,
        last_status=result.status,
        last_error=None,
        consecutive_errors=0,
        last_polled=now,
        last_success=now,
        next_poll=next_poll,
        items_seen=state.items_seen + claimed,
        warning=warning if result.body is not None else state.warning,
    )


def after_failure(
    state: FeedState,
    error: MonitorError,
    *,
    now: datetime,
    minimum: timedelta,
    maximum: timedelta,
    rng: random.Random,
    interval: timedelta,
) -> FeedState:
    """The feed's state after a failed poll: error recorded, next poll backed off.

    The first failure retries after ``minimum`` but never later than the normal
    interval would; later ones back off exponentially. 410 disables the feed.
    """
    errors = state.consecutive_errors + 1
    retry_after = error.retry_after if isinstance(error, FetchError) else None
    delay = backoff_delay(errors, minimum, maximum, rng, retry_after)
    if errors == 1 and retry_after is None:
        delay = min(delay, interval)
    gone = isinstance(error, FetchError) and error.gone
    status = error.status if isinstance(error, FetchError) else state.last_status
    return replace(
        state,
        last_status=status,
        last_error=str(error),
        consecutive_errors=errors,
        last_polled=now,
        next_poll=now + delay,
        disabled_reason=(f"disabled: {error.message}" if gone else state.disabled_reason),
    )


def history_span(config: AppConfig) -> timedelta:
    """How far back novelty and burst rules look: mentions must be kept that long,
    or a place seen 45 days ago would be "new" again under a 90-day novelty window."""
    spans = [timedelta(0)]
    for rule in config.rules:
        if isinstance(rule, NoveltyRuleConfig):
            spans.append(rule.window)
        elif isinstance(rule, BurstRuleConfig):
            spans.append(rule.window + rule.baseline_window)
    return max(spans)
