"""The Sink protocol: the console and file sinks now, Slack, webhook and e-mail later."""

from __future__ import annotations

from typing import Protocol

from monitor.types import Alert


class Sink(Protocol):
    name: str

    async def send(self, alert: Alert) -> None:
        """Deliver one alert or raise ``SinkError`` (with ``transient`` set honestly)."""
        ...

    async def close(self) -> None: ...
