"""The Sink protocol, and the optional ``deliver`` that reports what the receiver said."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from monitor.types import Alert


class Sink(Protocol):
    name: str

    async def send(self, alert: Alert) -> None:
        """Deliver one alert or raise ``SinkError`` (with ``transient`` set honestly)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class ReportingSink(Sink, Protocol):
    async def deliver(self, alert: Alert) -> str:
        """Like ``send``, and return one line on the receiver's answer ('200 OK: ok')."""
        ...
