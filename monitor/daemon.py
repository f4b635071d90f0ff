"""The long-running daemon: APScheduler jobs, signals, graceful drain.

One job per feed (no overlap, coalesced misfires) that calls ``Poller.poll``
and then moves its own next run to the time ``decide`` chose (the normal
interval with jitter, or a backoff). A delivery job drains the outbox and a
maintenance job prunes old items. The first SIGTERM/SIGINT stops scheduling
and waits for in-flight work up to ``scheduler.shutdown_timeout``; a second
one exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.app import App
from monitor.config.models import FeedConfig

log = structlog.get_logger("monitor")

FIRST_POLL_SPREAD = timedelta(seconds=30)
PRUNE_EVERY = timedelta(hours=1)
EXIT_FORCED = 130


class Daemon:
    def __init__(self, app: App, *, rng: random.Random | None = None) -> None:
        self.app = app
        self.rng = rng or random.Random()
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._stop = asyncio.Event()
        self._inflight: set[asyncio.Task[object]] = set()
        self._signals = 0

    async def run(self) -> None:
        """Run until a stop signal, then drain and close."""
        self._install_signal_handlers()
        self._schedule()
        self.scheduler.start()
        log.info("started", feeds=len(self._feeds()), rules=len(self.app.config.rules))
        await self._stop.wait()
        await self._drain()

    def stop(self) -> None:
        self._stop.set()

    def _feeds(self) -> list[FeedConfig]:
        return [f for f in self.app.config.feeds if f.enabled]

    def _schedule(self) -> None:
        config = self.app.config
        now = self.app.clock.now()
        for feed in self._feeds():
            interval = self.app.poller.interval(feed)
            self.scheduler.add_job(
                self._poll_job,
                IntervalTrigger(seconds=interval.total_seconds(), jitter=self._jitter(interval)),
                args=(feed,),
                id=f"feed:{feed.id}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(interval.total_seconds()),
                next_run_time=self._first_run(feed, now),
            )
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

    def _jitter(self, interval: timedelta) -> int:
        return int(interval.total_seconds() * self.app.config.scheduler.jitter)

    def _first_run(self, feed: FeedConfig, now: datetime) -> datetime:
        """Keep a stored backoff across restarts; otherwise spread first polls a little."""
        state = self.app.storage.get_feed_state(feed.id)
        if state and state.next_poll and state.next_poll > now:
            return state.next_poll
        interval = self.app.poller.interval(feed)
        spread = min(FIRST_POLL_SPREAD, interval * self.app.config.scheduler.jitter).total_seconds()
        return now + timedelta(seconds=self.rng.uniform(0, spread))

    async def _poll_job(self, feed: FeedConfig) -> None:
        if self._stop.is_set():
            return
        with self._tracked():
            outcome = await self.app.poller.poll(feed)
        job = self.scheduler.get_job(f"feed:{feed.id}")
        if job is None or self._stop.is_set():
            return
        if outcome.status == "disabled":
            job.remove()
            log.error("feed_disabled", feed=feed.id)
        elif outcome.next_poll is not None:
            job.modify(next_run_time=outcome.next_poll)

    async def _deliver_job(self) -> None:
        with self._tracked():
            await self.app.deliverer.deliver_due()

    async def _prune_job(self) -> None:
        cutoff = self.app.clock.now() - self.app.config.storage.retention
        pruned = self.app.storage.prune_items(cutoff)
        if pruned:
            log.info("pruned", items=pruned)

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _drain(self) -> None:
        # Pause, not shutdown: APScheduler's asyncio executor cancels running jobs on
        # shutdown, and in-flight polls deserve the chance to finish.
        self.scheduler.pause()
        pending = [t for t in self._inflight if not t.done()]
        timeout = self.app.config.scheduler.shutdown_timeout.total_seconds()
        log.info("stopping", in_flight=len(pending), timeout_s=timeout)
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                task.cancel()
            if still:
                log.warning("stop_timeout", cancelled=len(still))
        self.scheduler.shutdown(wait=False)
        log.info("stopped")

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("forced_exit", signal=sig.name)
            os._exit(EXIT_FORCED)
        log.info("signal", signal=sig.name)
        self._stop.set()
