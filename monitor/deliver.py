"""Delivery: from the outbox to the sinks.

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

import structlog

from monitor import decide
from monitor.clock import Clock
from monitor.config.models import AppConfig
from monitor.exceptions import SinkError
from monitor.sinks.base import Sink
from monitor.storage.base import Storage
from monitor.types import Delivery

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
    ) -> None:
        self.config = config
        self.storage = storage
        self.sinks = sinks
        self.clock = clock
        self.rng = rng or random.Random()

    async def deliver_due(self, limit: int = 500) -> int:
        """One pass over the due deliveries; returns how many were delivered."""
        due = self.storage.due_deliveries(self.clock.now(), limit)
        by_sink: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in due:
            by_sink[delivery.sink].append(delivery)
        counts = await asyncio.gather(
            *(self._deliver_to(name, batch) for name, batch in by_sink.items())
        )
        return sum(counts)

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
                    bug = SinkError(sink_name, f"internal error: {type(e).__name__}", transient=True)
                    self._failed(delivery, bug)
                    break
                self.storage.mark_delivered(delivery.delivery_id, self.clock.now())
                log.info("delivered", alert=delivery.alert.alert_id, rule=delivery.alert.rule_id)
                delivered += 1
        return delivered

    def _failed(self, delivery: Delivery, error: SinkError, *, force_dead: bool = False) -> None:
        scheduler = self.config.scheduler
        attempts = delivery.attempts + 1
        dead = force_dead or not error.transient or attempts >= scheduler.delivery_max_attempts
        delay = decide.backoff_delay(
            attempts, scheduler.backoff_min, scheduler.backoff_max, self.rng, error.retry_after
        )
        next_attempt = None if dead else self.clock.now() + delay
        self.storage.mark_failed(delivery.delivery_id, str(error), next_attempt, dead=dead)
        log_method = log.error if dead else log.warning
        log_method(
            "delivery_failed",
            alert=delivery.alert.alert_id,
            attempts=attempts,
            dead=dead,
            error=str(error),
        )
