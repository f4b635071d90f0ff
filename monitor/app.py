"""Wiring: the one place that builds every dependency from a config."""

from __future__ import annotations

import random
from dataclasses import dataclass

from monitor.clock import Clock
from monitor.config.models import AppConfig
from monitor.deliver import Deliverer
from monitor.fetch import Fetcher
from monitor.pipeline import Poller
from monitor.rules.compile import compile_rules
from monitor.sinks import build_sinks
from monitor.sinks.base import Sink
from monitor.storage.base import Storage
from monitor.storage.sqlite import SQLiteStorage


@dataclass
class App:
    config: AppConfig
    clock: Clock
    storage: Storage
    fetcher: Fetcher
    sinks: dict[str, Sink]
    poller: Poller
    deliverer: Deliverer

    async def aclose(self) -> None:
        """Close what was opened; sinks first so nothing writes to a closed store."""
        for sink in self.sinks.values():
            await sink.close()
        await self.fetcher.aclose()
        self.storage.close()


def build_app(config: AppConfig, clock: Clock, *, rng: random.Random | None = None) -> App:
    """Build every dependency; rules compile before anything is opened so a bad rule
    fails start-up without leaving a database or a client behind."""
    rng = rng or random.Random()
    rules = compile_rules(config.rules)
    storage = SQLiteStorage(config.storage.path)
    try:
        fetcher = Fetcher(config.http, clock)
        sinks = build_sinks(config.sinks)
    except BaseException:
        storage.close()
        raise
    poller = Poller(config, storage, fetcher, rules, clock, rng)
    deliverer = Deliverer(config, storage, sinks, clock, rng)
    return App(config, clock, storage, fetcher, sinks, poller, deliverer)
