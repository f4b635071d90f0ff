"""Delivery: from the outbox to the sinks.

    due digests | one digest alert each (queued alerts off the queue, one transaction)
    due deliveries | group by sink | sink.send (each sink in its own task)
        | mark delivered / retry later with backoff / dead

A transient failure keeps the sink's order and stops its batch (the sink is
struggling; the rest waits for the next pass); a permanent one (a 4xx, a bad
payload) is dead at once: retrying cannot help, and `monitor alerts --dead`
shows it for a human to act on and `monitor alerts retry` re-queues it.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import datetime

import structlog

from monitor import decide, suppress
from monitor.clock import Clock
from monitor.config.models import AppConfig
from monitor.exceptions import SinkError
from monitor.metrics import Metrics
from monitor.sinks.base import Sink
from monitor.storage.base import Storage
from monitor.types import Delivery, OutboxEntry, QueuedDigest

log = structlog.get_logger("monitor")


class Deliverer:
    """Delivers due outbox entries; each sink in its own task so a slow one delays no other."""

    def __init__(
        self,
        config: AppConfig,
        storage: Storage,
        sinks: dict[str, Sink],
        clock: Clock,
        rng: random.Random | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.storage = storage
        self.sinks = sinks
        self.clock = clock
        self.rng = rng or random.Random()
        self.metrics = metrics
        # A sink that failed transiently (or said Retry-After) is held as a whole until
        # its backoff ends: hammering a rate-limited webhook with the next alert only
        # prolongs the limit, and its backlog must not crowd out other sinks' rows.
        self._held_until: dict[str, datetime] = {}
        self._running: dict[str, asyncio.Task[int]] = {}

    def start_due(self, limit: int = 500) -> list[asyncio.Task[int]]:
        """Start delivering what is due, one task per sink, and return without waiting.

        A sink whose previous batch is still running (a paced Slack webhook working
        through a backlog, a receiver that hangs) is skipped, so it never holds back
        the next pass for the other sinks. Digests that are due become alerts first.
        """
        self.flush_digests()
        now = self.clock.now()
        busy = {name for name, task in self._running.items() if not task.done()}
        held = {name for name, until in self._held_until.items() if until > now}
        due = self.storage.due_deliveries(now, limit, skip_sinks=sorted(busy | held))
        by_sink: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in due:
            by_sink[delivery.sink].append(delivery)
        started = []
        for name, batch in by_sink.items():
            task = asyncio.create_task(self._deliver_to(name, batch), name=f"deliver:{name}")
            self._running[name] = task
            started.append(task)
        return started

    async def deliver_due(self, limit: int = 500) -> int:
        """One pass, waited for (``once``, the drain on stop, tests); how many were delivered."""
        counts = await asyncio.gather(*self.start_due(limit))
        return sum(counts)

    def running(self) -> list[asyncio.Task[int]]:
        """Batches still in flight, for the drain on stop."""
        return [task for task in self._running.values() if not task.done()]

    async def _deliver_to(self, sink_name: str, batch: list[Delivery]) -> int:
        delivered = 0
        with structlog.contextvars.bound_contextvars(sink=sink_name):
            sink = self.sinks.get(sink_name)
            for delivery in batch:
                if sink is None:
                    error = SinkError(sink_name, "sink is no longer configured", transient=False)
                    self._failed(delivery, error, force_dead=True)
                    continue
                try:
                    await sink.send(delivery.alert)
                except SinkError as e:
                    self._failed(delivery, e)
                    if e.transient:
                        break  # the sink is struggling: keep its order, try the rest later
                    continue
                except Exception as e:  # a bug in a sink: loud, but the other sinks go on
                    log.critical("sink_bug", alert=delivery.alert.alert_id, exc_info=True)
                    bug = SinkError(
                        sink_name, f"internal error: {type(e).__name__}", transient=True
                    )
                    self._failed(delivery, bug)
                    break
                now = self.clock.now()
                self._held_until.pop(sink_name, None)
                self.storage.mark_delivered(delivery.delivery_id, now)
                if self.metrics is not None:
                    self.metrics.delivery(sink_name, "delivered", now - delivery.alert.created_at)
                log.info("delivered", alert=delivery.alert.alert_id, rule=delivery.alert.rule_id)
                delivered += 1
        return delivered

    def flush_digests(self) -> int:
        """Turn each digest route's batch into one digest alert once its oldest entry has
        waited the route's ``digest`` interval; returns how many digests were enqueued.

        A batch whose route is gone from the configuration (or no longer a digest) goes out
        at once to the sinks stored with it: nothing queued is ever dropped.
        """
        now = self.clock.now()
        every = {r.key: r.digest for r in self.config.routes if r.digest is not None}
        batches: dict[str, list[QueuedDigest]] = defaultdict(list)
        for entry in self.storage.queued_digests():
            batches[entry.route].append(entry)
        sent = 0
        for route, entries in batches.items():
            oldest = min(e.enqueued_at for e in entries)
            if not suppress.digest_due(oldest, now, every.get(route)):
                continue
            digest = suppress.digest_alert(route, [e.alert for e in entries], now)
            sinks = tuple(dict.fromkeys(s for e in entries for s in e.sinks))
            ids = [e.entry_id for e in entries]
            if self.storage.flush_digest(ids, OutboxEntry(digest, sinks), now):
                log.info("digest", alert=digest.alert_id, alerts=len(entries), sinks=list(sinks))
                sent += 1
        return sent

    def _failed(self, delivery: Delivery, error: SinkError, *, force_dead: bool = False) -> None:
        scheduler = self.config.scheduler
        attempts = delivery.attempts + 1
        dead = force_dead or not error.transient or attempts >= scheduler.delivery_max_attempts
        delay = decide.backoff_delay(
            attempts, scheduler.backoff_min, scheduler.backoff_max, self.rng, error.retry_after
        )
        next_attempt = None if dead else self.clock.now() + delay
        if error.transient and next_attempt is not None:
            self._held_until[delivery.sink] = next_attempt
        self.storage.mark_failed(
            delivery.delivery_id, str(error), next_attempt, dead=dead, now=self.clock.now()
        )
        if self.metrics is not None:
            self.metrics.delivery(delivery.sink, "dead" if dead else "retry")
        log_method = log.error if dead else log.warning
        log_method(
            "delivery_failed",
            alert=delivery.alert.alert_id,
            attempts=attempts,
            dead=dead,
            error=str(error),
        )
