"""Source-health alerts: failing feeds, silent feeds, dying sinks, on ``health: true`` routes.

    feed states, recent item times, dead deliveries per sink | observe (what holds now)
        | suppress.health_plan against the stored conditions (raise once, clear once)
        | store the conditions and enqueue their alerts (one transaction)

This module only gathers observations and sequences the calls; ``monitor.suppress``
decides. The daemon runs :meth:`HealthWatch.check` every ``scheduler.health.check_every``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from monitor import decide, suppress
from monitor.config.models import AppConfig
from monitor.storage.base import Storage
from monitor.types import Alert, OutboxEntry, Severity

log = structlog.get_logger("monitor")

RECENT_ITEMS = 20  # items whose gaps give a feed's usual rhythm


class HealthWatch:
    """Raises and clears source-health conditions as alerts (``health:<kind>``)."""

    def __init__(self, config: AppConfig, storage: Storage) -> None:
        self.config = config
        self.storage = storage

    def check(self, now: datetime) -> int:
        """One check; returns how many health alerts were enqueued. Without a health route
        there is no one to tell, and nothing is checked."""
        if not decide.health_sinks(self.config.routes, Severity.CRITICAL):
            return 0
        stored = {c.key: c for c in self.storage.health_conditions()}
        plan = suppress.health_plan(self.observe(now), stored, now)
        alerts = [
            *(self._entry(suppress.health_alert(c, cleared=False, now=now)) for c in plan.raised),
            *(self._entry(suppress.health_alert(c, cleared=True, now=now)) for c in plan.cleared),
        ]
        entries = [e for e in alerts if e.sinks]
        save = [*plan.pending, *plan.raised]
        delete = [*plan.forget, *(c.key for c in plan.cleared)]
        if not (save or delete or entries):
            return 0
        enqueued = self.storage.record_health(save, delete, entries, now)
        for c in plan.raised:
            log.warning("health_raised", condition=c.key, reason=c.message)
        for c in plan.cleared:
            log.info("health_cleared", condition=c.key)
        return enqueued

    def _entry(self, alert: Alert) -> OutboxEntry:
        return OutboxEntry(alert, decide.health_sinks(self.config.routes, alert.severity))

    def observe(self, now: datetime) -> list[suppress.Observation]:
        """The conditions that hold now."""
        health = self.config.scheduler.health
        states = {s.feed_id: s for s in self.storage.list_feed_states()}
        found: list[suppress.Observation] = []
        for feed in self.config.feeds:
            if not feed.enabled:
                continue
            state = states.get(feed.id)
            if state is not None and (state.consecutive_errors > 0 or state.disabled_reason):
                message = state.disabled_reason or state.last_error or "failing"
                errors = f" ({state.consecutive_errors} polls in a row)"
                failing = suppress.Observation(
                    "feed-failing",
                    feed.id,
                    message + errors,
                    since=state.last_success,
                    after=health.feed_failing_for,
                )
                found.append(failing)
                continue  # a failing feed is silent too; one alert says it
            times = self.storage.item_times(feed.id, RECENT_ITEMS)
            quiet = suppress.silence(
                times,
                now,
                factor=health.silent_factor,
                minimum=health.silent_min,
                items=health.silent_items,
            )
            if quiet is not None:
                gap = suppress.usual_gap(times)
                message = f"no new item for {_hours(quiet)}; usually one every {_hours(gap)}"
                found.append(suppress.Observation("feed-silent", feed.id, message))
        dead = self.storage.dead_since(now - health.sink_window)
        for sink in self.config.sinks:
            count = dead.get(sink.name, 0)
            if count >= health.sink_dead:
                window = _hours(health.sink_window)
                message = f"{count} deliveries declared dead within {window}"
                found.append(suppress.Observation("sink-dying", sink.name, message))
        return found


def _hours(delta: timedelta | None) -> str:
    """'7.5h' or '45m' for a timedelta; '?' for None."""
    if delta is None:
        return "?"
    value = delta.total_seconds()
    return f"{value / 3600:.1f}h" if value >= 3600 else f"{value / 60:.0f}m"
