"""Where alerts go. Each sink implements ``Sink``; ``render`` turns alerts into payloads.

``build_sink`` is the one place that turns a sink config into a sink. Building
checks everything that can be checked before the first alert — templates
compile and render, a CA bundle loads, an optional package is installed — and
raises ``ConfigError`` or ``SinkError`` naming the sink. Network clients are
opened on first use and closed by ``close()``.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.clock import Clock
from monitor.config.models import (
    AppriseSinkConfig,
    ConsoleSinkConfig,
    EmailSinkConfig,
    FileSinkConfig,
    SinkConfig,
    SlackSinkConfig,
    WebhookSinkConfig,
)
from monitor.sinks.base import ReportingSink, Sink
from monitor.sinks.testing import send_test

__all__ = ["ReportingSink", "Sink", "build_sink", "build_sinks", "send_test"]


def build_sink(config: SinkConfig, *, clock: Clock | None = None) -> Sink:
    # Each sink's module is imported when a sink of its kind is configured: e-mail
    # (aiosmtplib, the email package), HTTP and templates cost start-up time, and
    # Apprise is an optional extra.
    match config:
        case ConsoleSinkConfig():
            from monitor.sinks.console import ConsoleSink

            return ConsoleSink(config.name)
        case FileSinkConfig():
            from monitor.sinks.file import FileSink

            return FileSink(config.name, config.path)
        case SlackSinkConfig():
            from monitor.sinks.slack import SlackSink

            return SlackSink(config, clock=clock)
        case WebhookSinkConfig():
            from monitor.sinks.webhook import WebhookSink

            return WebhookSink(config, clock=clock)
        case EmailSinkConfig():
            from monitor.sinks.email import EmailSink

            return EmailSink(config, clock=clock)
        case AppriseSinkConfig():
            from monitor.sinks.apprise_sink import AppriseSink

            return AppriseSink(config)


def build_sinks(configs: Sequence[SinkConfig], *, clock: Clock | None = None) -> dict[str, Sink]:
    """Every sink, or the first error; nothing needs closing then (clients open lazily)."""
    return {config.name: build_sink(config, clock=clock) for config in configs}
