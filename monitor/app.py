"""Wiring: the one place that builds every dependency from a config."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

from monitor.clock import Clock
from monitor.config.models import AppConfig
from monitor.deliver import Deliverer
from monitor.metrics import Metrics
from monitor.pipeline import Poller
from monitor.readers import FeedReader, build_reader, worker_count
from monitor.rules.compile import compile_rules
from monitor.rules.engine import RuleSet
from monitor.sinks import build_sinks
from monitor.sinks.base import Sink
from monitor.storage.base import Storage
from monitor.storage.sqlite import SQLiteStorage


@dataclass
class App:
    config: AppConfig
    clock: Clock
    storage: Storage
    reader: FeedReader
    sinks: dict[str, Sink]
    poller: Poller
    deliverer: Deliverer
    metrics: Metrics

    async def aclose(self) -> None:
        """Close what was opened; sinks first so nothing writes to a closed store."""
        for sink in self.sinks.values():
            await sink.close()
        await self.reader.aclose()
        self.storage.close()


def build_app(
    config: AppConfig,
    clock: Clock,
    *,
    rng: random.Random | None = None,
    reader: FeedReader | None = None,
) -> App:
    """Build every dependency; rules compile before anything is opened so a bad rule
    fails start-up without leaving a database or a client behind.

    ``reader``: one already built from ``config`` (and started: see monitor.cli); the
    caller closes it if this raises.
    """
    rng = rng or random.Random()
    rules = compile_rules(config.rules)
    storage = SQLiteStorage(
        config.storage.path, commit_delay=config.storage.commit_delay.total_seconds()
    )
    try:
        if reader is None:
            reader = build_reader(config, clock)
        sinks = build_sinks(config.sinks)
    except BaseException:
        storage.close()
        raise
    metrics = Metrics()
    poller = Poller(config, storage, reader, rules, clock, rng, metrics=metrics)
    deliverer = Deliverer(config, storage, sinks, clock, rng, metrics=metrics)
    return App(config, clock, storage, reader, sinks, poller, deliverer, metrics)


@dataclass
class Retired:
    """What ``reconfigure`` took out of service, to close once in-flight work is done with it."""

    sinks: dict[str, Sink] = field(default_factory=dict)
    reader: FeedReader | None = None

    async def aclose(self) -> None:
        for sink in self.sinks.values():
            await sink.close()
        if self.reader is not None:
            await self.reader.aclose()


def reconfigure(app: App, config: AppConfig, rules: RuleSet | None = None) -> Retired:
    """Swap in the parts built from ``config``: rules, sinks, poller, deliverer and, when
    ``http``, the log level or the number of workers changed, the feed reader. The store,
    clock and metrics stay (state is kept; a new ``storage.path`` needs a restart).
    Everything is built before anything is swapped, so a failure (``MonitorError``)
    leaves ``app`` as it was."""
    rules = rules if rules is not None else compile_rules(config.rules)
    sinks = build_sinks(config.sinks)
    retired = Retired(app.sinks)
    if _reader_settings(config) != _reader_settings(app.config):
        retired.reader = app.reader
        app.reader = build_reader(config, app.clock)
    rng = app.poller.rng
    app.config = config
    app.sinks = sinks
    app.poller = Poller(config, app.storage, app.reader, rules, app.clock, rng, metrics=app.metrics)
    app.deliverer = Deliverer(config, app.storage, sinks, app.clock, rng, metrics=app.metrics)
    return retired


def _reader_settings(config: AppConfig) -> tuple[object, ...]:
    workers = worker_count(config.http.workers, feeds=len(config.feeds), cpus=os.cpu_count())
    return config.http, workers, config.logging.level  # a worker logs at a level, in no format
