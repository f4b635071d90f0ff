"""``monitor send-test SINK``: send one clearly-marked sample alert through a sink."""

from __future__ import annotations

from datetime import datetime

from monitor.clock import Clock, SystemClock
from monitor.sinks.base import ReportingSink, Sink
from monitor.sinks.sample import sample_alert


async def send_test(sink: Sink, *, clock: Clock | None = None, now: datetime | None = None) -> str:
    """Send the sample alert; return one line on what the receiver answered.

    A refusal raises ``SinkError``, whose text says what the receiver answered.
    The caller owns the sink and closes it.
    """
    alert = sample_alert(now or (clock or SystemClock()).now())
    if isinstance(sink, ReportingSink):
        answer = await sink.deliver(alert)
    else:
        await sink.send(alert)
        answer = "accepted"
    return f"sink '{sink.name}': sent test alert {alert.alert_id}: {answer}"
