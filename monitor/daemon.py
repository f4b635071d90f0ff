"""The long-running daemon: APScheduler jobs, signals, reload, graceful drain, readiness.

One job per feed (no overlap, coalesced misfires) that calls ``Poller.poll``
and then moves its own next run to the time ``decide`` chose (the normal
interval with jitter, or a backoff). A delivery job drains the outbox and a
maintenance job prunes old items. An HTTP server (``monitor.server``) answers
``/healthz``, ``/readyz`` (``readiness()``) and ``/metrics``.

SIGHUP, or a change to the configuration files under ``--watch``, reloads: the
new configuration is loaded and checked in full first; an invalid one is refused
(every issue logged) and the old one keeps running. A valid one is applied by
``reload``: feeds added, removed or changed are (re)scheduled, rules recompiled,
sinks rebuilt (the old ones closed once in-flight deliveries are done with them);
the store, and so every feed's state, stays.

The first SIGTERM/SIGINT stops scheduling, waits for in-flight polls and then
delivers what is due in the outbox, all within ``scheduler.shutdown_timeout``;
what is still undelivered stays in the outbox for the next start. A second
signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import Coroutine, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger

from monitor import decide
from monitor.app import App, Retired, reconfigure
from monitor.config.models import AppConfig, FeedConfig
from monitor.exceptions import MonitorError, StorageError
from monitor.health_watch import HealthWatch
from monitor.observability import configure_logging, redactor
from monitor.reload import read_config, warn_restart_needed, watch_config
from monitor.rules.compile import compile_rules
from monitor.server import OK, Checks, HealthServer, polls_check

log = structlog.get_logger("monitor")

FIRST_POLL_SPREAD = timedelta(seconds=30)
PRUNE_EVERY = timedelta(hours=1)
EXIT_FORCED = 130


def feed_job_id(feed_id: str) -> str:
    return f"feed:{feed_id}"


class Daemon:
    def __init__(
        self,
        app: App,
        *,
        rng: random.Random | None = None,
        config_path: Path | None = None,
        watch: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.rng = rng or random.Random()
        self.config_path = config_path
        self.watch = watch
        self.env = env
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.server: HealthServer | None = None
        self._stop = asyncio.Event()
        self._polls: set[asyncio.Task[object]] = set()
        self._deliveries: set[asyncio.Task[object]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._reloading = asyncio.Lock()
        self._signals = 0
        self._feeds_by_id: dict[str, FeedConfig] = {}
        # Readiness: when each feed's last poll (since start) finished, when its next is
        # due, and the feeds whose first poll does not hold readiness back (a backoff
        # stored before start, or added by a reload); they count once overdue.
        self._polled: dict[str, datetime] = {}
        self._due: dict[str, datetime | None] = {}
        self._deferred: set[str] = set()

    async def run(self) -> None:
        """Serve, schedule, run until a stop signal, then drain and close."""
        self._install_signal_handlers()
        self.app.metrics.watch_store(lambda: self.app.storage, lambda: list(self._feeds_by_id))
        await self._start_server()
        try:
            self._schedule()
            self.scheduler.start()
            log.info("started", feeds=len(self._feeds()), rules=len(self.app.config.rules))
            if self.watch and self.config_path is not None:
                self._spawn(
                    watch_config(self.config_path, self.env, self._stop, self.reload_from_disk)
                )
            await self._stop.wait()
            await self._drain()
        finally:
            if self.server is not None:
                await self.server.close()

    def stop(self) -> None:
        self._stop.set()

    def _feeds(self) -> list[FeedConfig]:
        return [f for f in self.app.config.feeds if f.enabled]

    async def _start_server(self) -> None:
        settings = self.app.config.server
        if not settings.enabled:
            return
        self.server = HealthServer(
            settings.host, settings.port, readiness=self.readiness, metrics=self.app.metrics.render
        )
        await self.server.start()

    # --- scheduling -------------------------------------------------------------------

    def _schedule(self) -> None:
        config = self.app.config
        now = self.app.clock.now()
        for feed in self._feeds():
            self._add_feed(feed, now)
        self.scheduler.add_job(
            self._deliver_job,
            IntervalTrigger(seconds=config.scheduler.delivery_interval.total_seconds()),
            id="deliver",
            max_instances=1,
            coalesce=True,
            next_run_time=now + config.scheduler.delivery_interval,
        )
        self.scheduler.add_job(
            self._prune_job,
            IntervalTrigger(seconds=PRUNE_EVERY.total_seconds()),
            id="prune",
            max_instances=1,
            coalesce=True,
            next_run_time=now + timedelta(minutes=1),
        )
        health_every = config.scheduler.health.check_every
        self.scheduler.add_job(
            self._health_job,
            IntervalTrigger(seconds=health_every.total_seconds()),
            id="health",
            max_instances=1,
            coalesce=True,
            next_run_time=now + health_every,
        )

    def _add_feed(self, feed: FeedConfig, now: datetime) -> None:
        first = self._first_run(feed, now)
        self._feeds_by_id[feed.id] = feed
        self._due[feed.id] = first
        self.scheduler.add_job(
            self._poll_job,
            self._trigger(feed),
            args=(feed.id,),
            id=feed_job_id(feed.id),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(self.app.poller.interval(feed).total_seconds())),
            next_run_time=first,
        )

    def _remove_feed(self, feed_id: str) -> None:
        self._feeds_by_id.pop(feed_id, None)
        for state in (self._polled, self._due):
            state.pop(feed_id, None)
        self._deferred.discard(feed_id)
        job = self.scheduler.get_job(feed_job_id(feed_id))
        if job is not None:
            job.remove()

    def _trigger(self, feed: FeedConfig) -> IntervalTrigger:
        interval = self.app.poller.interval(feed)
        return IntervalTrigger(seconds=interval.total_seconds(), jitter=self._jitter(interval))

    def _jitter(self, interval: timedelta) -> int:
        return int(interval.total_seconds() * self.app.config.scheduler.jitter)

    def _first_run(self, feed: FeedConfig, now: datetime) -> datetime:
        """Keep a stored backoff across restarts; otherwise spread first polls a little."""
        state = self.app.storage.get_feed_state(feed.id)
        if state and state.next_poll and state.next_poll > now:
            self._deferred.add(feed.id)
            return state.next_poll
        interval = self.app.poller.interval(feed)
        spread = min(FIRST_POLL_SPREAD, interval * self.app.config.scheduler.jitter).total_seconds()
        return now + timedelta(seconds=self.rng.uniform(0, spread))

    # --- jobs -------------------------------------------------------------------------

    async def _poll_job(self, feed_id: str) -> None:
        feed = self._feeds_by_id.get(feed_id)
        if feed is None or self._stop.is_set():
            return
        with self._tracked(self._polls):
            outcome = await self.app.poller.poll(feed)
        job = self.scheduler.get_job(feed_job_id(feed_id))
        if job is None or self._stop.is_set():
            return
        self._polled[feed_id] = self.app.clock.now()
        self._due[feed_id] = outcome.next_poll
        if outcome.status == "disabled":
            job.remove()
            log.error("feed_disabled", feed=feed_id)
        elif outcome.next_poll is not None:
            job.modify(next_run_time=outcome.next_poll)

    async def _deliver_job(self) -> None:
        # Each sink's batch runs as its own task and the job returns at once: a slow
        # sink must not hold back the next pass for the others (see Deliverer.start_due).
        for task in self.app.deliverer.start_due():
            self._deliveries.add(task)
            task.add_done_callback(self._delivery_done)

    def _delivery_done(self, task: asyncio.Task[int]) -> None:
        self._deliveries.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery_pass_failed", error=str(task.exception()))

    async def _health_job(self) -> None:
        """Source-health alerts (failing/silent feeds, dying sinks) to ``health: true`` routes."""
        HealthWatch(self.app.config, self.app.storage).check(self.app.clock.now())

    async def _prune_job(self) -> None:
        now = self.app.clock.now()
        config = self.app.config
        pruned = self.app.storage.prune_items(
            now - config.storage.retention,
            mentions_older_than=now - max(config.storage.retention, decide.history_span(config)),
        )
        if pruned:
            log.info("pruned", items=pruned)

    @contextlib.contextmanager
    def _tracked(self, tasks: set[asyncio.Task[object]]) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                tasks.discard(task)

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(_discard(coro))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- readiness --------------------------------------------------------------------

    def readiness(self) -> Checks:
        """/readyz: the store answers, the scheduler runs, and polls are keeping up."""
        return {
            "store": self._store_check(),
            "scheduler": self._scheduler_check(),
            "polls": self._polls_check(),
        }

    def _store_check(self) -> str:
        try:
            self.app.storage.pending_count()
        except StorageError as e:
            return f"unreachable: {e}"
        return OK

    def _scheduler_check(self) -> str:
        if self._stop.is_set():
            return "stopping"
        return OK if self.scheduler.state == STATE_RUNNING else "not running"

    def _polls_check(self) -> str:
        slack = self.app.config.http.timeout.total
        return polls_check(
            self.app.clock.now(),
            {f.id: self.app.poller.interval(f) + slack for f in self._feeds_by_id.values()},
            polled=self._polled.keys() | self._deferred,
            due=self._due,
        )

    # --- reload -----------------------------------------------------------------------

    async def reload_from_disk(self) -> bool:
        """Load the configuration file again and apply it; False when it was refused."""
        if self.config_path is None:
            log.warning("reload_skipped", reason="no configuration file to read")
            return False
        config = await read_config(self.config_path, self.env)
        return config is not None and await self.reload(config)

    async def reload(self, new: AppConfig) -> bool:
        """Apply ``new`` in place of the running configuration; False (logged) if refused."""
        async with self._reloading:
            if self._stop.is_set():
                return False
            old = self.app.config
            try:
                rules = await asyncio.to_thread(compile_rules, new.rules)
                polls, deliveries = set(self._polls), set(self._deliveries)
                retired = reconfigure(self.app, new, rules)
            except MonitorError as e:
                log.error("reload_refused", issues=[str(e)], count=1)
                return False
            redactor.update(
                [s.get_secret_value() for s in (*old.secrets(), *new.secrets())]
            )  # old ones too: in-flight work may still log them
            if new.logging != old.logging:
                configure_logging(new.logging.format, new.logging.level)
            changes = self._reschedule(old, new)
            warn_restart_needed(old, new)
            log.info("reloaded", **changes, rules=len(new.rules), sinks=len(new.sinks))
            self._spawn(self._retire(retired, polls, deliveries))
            return True

    def _reschedule(self, old: AppConfig, new: AppConfig) -> dict[str, list[str]]:
        """Add, remove and update feed jobs; reschedule the ones whose interval changed."""
        now = self.app.clock.now()
        before = dict(self._feeds_by_id)
        after = {f.id: f for f in self._feeds()}
        added = [i for i in after if i not in before]
        removed = [i for i in before if i not in after]
        changed = [i for i in after if i in before and after[i] != before[i]]
        for feed_id in removed:
            self._remove_feed(feed_id)
        for feed_id in added:
            self._add_feed(after[feed_id], now)
            self._deferred.add(feed_id)  # a reload does not make a ready daemon unready
        for feed_id in changed:
            self._feeds_by_id[feed_id] = after[feed_id]
            if self.scheduler.get_job(feed_job_id(feed_id)) is None:
                self._add_feed(after[feed_id], now)  # disabled by a 410; its URL may be new
        for feed_id in after:
            if feed_id in added:
                continue
            was = old.scheduler.jitter, before[feed_id].interval or old.scheduler.interval
            now_is = new.scheduler.jitter, self.app.poller.interval(after[feed_id])
            job = self.scheduler.get_job(feed_job_id(feed_id))
            if was != now_is and job is not None:
                job.reschedule(self._trigger(after[feed_id]))
                self._due[feed_id] = job.next_run_time
        if new.scheduler.delivery_interval != old.scheduler.delivery_interval:
            seconds = new.scheduler.delivery_interval.total_seconds()
            self.scheduler.reschedule_job("deliver", trigger=IntervalTrigger(seconds=seconds))
        if new.scheduler.health.check_every != old.scheduler.health.check_every:
            seconds = new.scheduler.health.check_every.total_seconds()
            self.scheduler.reschedule_job("health", trigger=IntervalTrigger(seconds=seconds))
        return {"added": added, "removed": removed, "changed": changed}

    async def _retire(
        self,
        retired: Retired,
        polls: set[asyncio.Task[object]],
        deliveries: set[asyncio.Task[object]],
    ) -> None:
        """Close what a reload replaced once the work that started with it is finished."""
        pending = [t for t in (*polls, *deliveries) if not t.done()]
        if pending:
            await asyncio.wait(pending)
        await retired.aclose()

    # --- stopping ---------------------------------------------------------------------

    async def _drain(self) -> None:
        # Pause, not shutdown: APScheduler's asyncio executor cancels running jobs on
        # shutdown, and in-flight polls deserve the chance to finish.
        self.scheduler.pause()
        loop = asyncio.get_running_loop()
        timeout = self.app.config.scheduler.shutdown_timeout.total_seconds()
        deadline = loop.time() + timeout
        pending = [t for t in (*self._polls, *self._deliveries) if not t.done()]
        log.info("stopping", in_flight=len(pending), timeout_s=timeout)
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                task.cancel()
            if still:
                log.warning("stop_timeout", cancelled=len(still))
                await asyncio.wait(still, timeout=1)
        delivered = await self._flush_outbox(deadline)
        if self._background:  # a reload closing replaced sinks, the --watch loop
            _, still = await asyncio.wait(self._background, timeout=1)
            for task in still:
                task.cancel()
        self.scheduler.shutdown(wait=False)
        log.info("stopped", delivered=delivered, undelivered=self._undelivered())

    async def _flush_outbox(self, deadline: float) -> int:
        """Deliver what is due until nothing is, a pass delivers nothing, or the deadline."""
        loop = asyncio.get_running_loop()
        delivered = 0
        while (remaining := deadline - loop.time()) > 0:
            if not self.app.storage.due_deliveries(self.app.clock.now(), 1):
                break
            try:
                count = await asyncio.wait_for(self.app.deliverer.deliver_due(), remaining)
            except TimeoutError:
                log.warning("stop_timeout", what="deliveries")
                break
            delivered += count
            if count == 0:
                break  # every due one failed: its sink is struggling, retry after restart
        return delivered

    def _undelivered(self) -> int | None:
        try:
            return self.app.storage.pending_count()
        except StorageError:
            return None

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_hangup)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("forced_exit", signal=sig.name)
            os._exit(EXIT_FORCED)
        log.info("signal", signal=sig.name)
        self._stop.set()

    def _on_hangup(self) -> None:
        log.info("signal", signal="SIGHUP")
        self._spawn(self.reload_from_disk())


async def _discard(coro: Coroutine[Any, Any, object]) -> None:
    await coro
