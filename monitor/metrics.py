"""Prometheus metrics: definitions, and the two calls the shell makes to record them.

Every metric lives in one ``Metrics`` object with its own ``CollectorRegistry``
(never the process-global one, so tests and a reload start clean). Counters and
the latency histogram are recorded where the facts are known:

    Poller.poll     -> Metrics.poll(outcome)             polls, HTTP statuses, bytes,
                                                          items, matches, alerts
    Deliverer       -> Metrics.delivery(sink, outcome, latency)

Gauges that describe stored state (dead deliveries, feeds in backoff, last
success per feed) are read from the store when Prometheus scrapes, by
``StoreCollector``, so they can never drift from what ``monitor feeds`` shows.
The pure core (parse, rules, decide, render) knows nothing of this module.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.exceptions import StorageError
from monitor.storage.base import Storage
from monitor.types import PollOutcome

__all__ = ["CONTENT_TYPE", "Metrics", "StoreCollector"]

# What generate_latest writes: the classic text format, which every Prometheus reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

DeliveryOutcome = Literal["delivered", "retry", "dead"]

# Alert created -> delivered: seconds for a healthy sink, hours for one that was down.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 21600)


class Metrics:
    """The process's metrics in their own registry; ``render()`` is the /metrics body."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.polls = Counter(
            "monitor_polls", "Feed polls by outcome.", ["feed", "outcome"], registry=r
        )
        self.http_responses = Counter(
            "monitor_http_responses", "Feed fetches by HTTP status code.", ["code"], registry=r
        )
        self.fetched_bytes = Counter(
            "monitor_fetched_bytes", "Feed body bytes downloaded.", ["feed"], registry=r
        )
        self.items = Counter(
            "monitor_items",
            "Items in parsed feeds: new (claimed now) or seen (already known).",
            ["state"],
            registry=r,
        )
        self.matches = Counter(
            "monitor_rule_matches",
            "Rule matches on new items that may alert.",
            ["rule"],
            registry=r,
        )
        self.alerts = Counter(
            "monitor_alerts", "Alerts enqueued in the outbox.", ["severity"], registry=r
        )
        self.deliveries = Counter(
            "monitor_deliveries",
            "Delivery attempts by sink and outcome (delivered, retry, dead).",
            ["sink", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "monitor_delivery_latency_seconds",
            "From alert created to delivered.",
            ["sink"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        Info("monitor_build", "Version of media-monitor and of Python.", registry=r).info(
            {"version": __version__, "python": platform.python_version()}
        )

    def poll(self, outcome: PollOutcome) -> None:
        """Record one finished poll."""
        self.polls.labels(outcome.feed_id, outcome.status).inc()
        if outcome.http_status is not None:
            self.http_responses.labels(str(outcome.http_status)).inc()
        if outcome.body_bytes:
            self.fetched_bytes.labels(outcome.feed_id).inc(outcome.body_bytes)
        if outcome.parsed:
            self.items.labels("new").inc(outcome.new)
            self.items.labels("seen").inc(max(0, outcome.parsed - outcome.new))
        for rule, count in outcome.rule_matches:
            self.matches.labels(rule).inc(count)
        for severity, count in outcome.alerts_by_severity:
            self.alerts.labels(severity).inc(count)

    def delivery(
        self, sink: str, outcome: DeliveryOutcome, latency: timedelta | None = None
    ) -> None:
        """Record one delivery attempt; ``latency`` only for a delivered one."""
        self.deliveries.labels(sink, outcome).inc()
        if latency is not None:
            self.latency.labels(sink).observe(max(0.0, latency.total_seconds()))

    def watch_store(
        self, storage: Callable[[], Storage], feeds: Callable[[], Sequence[str]]
    ) -> None:
        """Read the stored-state gauges from ``storage()`` for ``feeds()`` at each scrape."""
        self.registry.register(StoreCollector(storage, feeds))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StoreCollector(Collector):
    """Gauges read from the store at scrape time; ``monitor_store_up`` 0 when it cannot be."""

    def __init__(self, storage: Callable[[], Storage], feeds: Callable[[], Sequence[str]]) -> None:
        self._storage = storage
        self._feeds = feeds

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked collector: its families are read at scrape time only

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("monitor_store_up", "1 when the store answered this scrape.")
        try:
            families = self._families()
        except StorageError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> list[Metric]:
        store = self._storage()
        feeds = set(self._feeds())
        states = [s for s in store.list_feed_states() if s.feed_id in feeds]
        dead = GaugeMetricFamily("monitor_dead_deliveries", "Deliveries given up on (dead).")
        dead.add_metric([], store.dead_count())
        pending = GaugeMetricFamily(
            "monitor_pending_deliveries", "Deliveries waiting in the outbox."
        )
        pending.add_metric([], store.pending_count())
        backoff = GaugeMetricFamily(
            "monitor_feeds_in_backoff", "Configured feeds whose last poll failed (backing off)."
        )
        backoff.add_metric(
            [], sum(1 for s in states if s.consecutive_errors and not s.disabled_reason)
        )
        disabled = GaugeMetricFamily(
            "monitor_feeds_disabled", "Configured feeds disabled by the server (e.g. HTTP 410)."
        )
        disabled.add_metric([], sum(1 for s in states if s.disabled_reason))
        last = GaugeMetricFamily(
            "monitor_feed_last_success_timestamp_seconds",
            "Unix time of each feed's last successful poll.",
            labels=["feed"],
        )
        for s in sorted(states, key=lambda s: s.feed_id):
            if s.last_success is not None:
                last.add_metric([s.feed_id], s.last_success.timestamp())
        return [dead, pending, backoff, disabled, last]
