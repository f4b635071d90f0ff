"""File sink: one JSON object per line per alert (the documented alert JSON)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from monitor.exceptions import SinkError
from monitor.sinks.render import alert_to_dict
from monitor.types import Alert


class FileSink:
    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path

    async def send(self, alert: Alert) -> None:
        line = json.dumps(alert_to_dict(alert), ensure_ascii=False) + "\n"
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as e:
            raise SinkError(self.name, f"cannot append to {self.path}", transient=True) from e

    async def deliver(self, alert: Alert) -> str:
        await self.send(alert)
        return f"appended one line to {self.path}"

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write of a whole line in append mode, so a reader never sees half an alert.
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()

    async def close(self) -> None:
        return None
