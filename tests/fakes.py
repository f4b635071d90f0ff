"""Test doubles for the seams we do not exercise for real in a given test."""

from __future__ import annotations

from monitor.exceptions import SinkError
from monitor.types import Alert


class FakeSink:
    """Records alerts; can be told to fail the next N sends."""

    def __init__(
        self,
        name: str = "fake",
        *,
        fail_times: int = 0,
        transient: bool = True,
        retry_after: float | None = None,
    ) -> None:
        self.name = name
        self.sent: list[Alert] = []
        self.attempts = 0
        self.fail_times = fail_times
        self.transient = transient
        self.retry_after = retry_after
        self.closed = False

    async def send(self, alert: Alert) -> None:
        self.attempts += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise SinkError(
                self.name,
                "receiver said no",
                transient=self.transient,
                retry_after=self.retry_after,
            )
        self.sent.append(alert)

    async def close(self) -> None:
        self.closed = True
