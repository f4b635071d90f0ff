"""Where alerts go. Each sink implements ``Sink``; ``render`` turns alerts into payloads."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.config.models import ConsoleSinkConfig, FileSinkConfig, SinkConfig
from monitor.sinks.base import Sink
from monitor.sinks.console import ConsoleSink
from monitor.sinks.file import FileSink


def build_sink(config: SinkConfig) -> Sink:
    match config:
        case ConsoleSinkConfig():
            return ConsoleSink(config.name)
        case FileSinkConfig():
            return FileSink(config.name, config.path)


def build_sinks(configs: Sequence[SinkConfig]) -> dict[str, Sink]:
    return {config.name: build_sink(config) for config in configs}
