"""Console sink: a readable block per alert on standard output."""

from __future__ import annotations

import sys
from typing import TextIO

from monitor.sinks.render import console_block
from monitor.types import Alert


class ConsoleSink:
    def __init__(self, name: str, *, stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream

    async def send(self, alert: Alert) -> None:
        stream = self._stream or sys.stdout
        stream.write(console_block(alert) + "\n\n")
        stream.flush()

    async def close(self) -> None:
        return None
