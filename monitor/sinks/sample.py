"""A clearly-marked sample alert: what ``monitor send-test`` sends, and what every
template is rendered against at start-up so a broken template fails early."""

from __future__ import annotations

from datetime import datetime

from monitor.types import Alert, Evidence, Item, Severity, TermHit

SAMPLE_TITLE = "[TEST] media-monitor test alert: Oreshnik strike reported near Dnipro — ignore"
SAMPLE_SUMMARY = (
    "This is a test message from media-monitor, sent to check that this sink works. "
    "It is not news. Sample text: Russia launched a record 479 drones overnight and an "
    "Oreshnik missile struck near Dnipro, officials said."
)


def sample_alert(now: datetime, *, severity: Severity = Severity.WARNING) -> Alert:
    """A sample alert with every kind of evidence filled in; ``alert_id`` differs per call
    time so a receiver that drops repeats by Idempotency-Key still shows each test."""
    now = now.replace(microsecond=0)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    summary = SAMPLE_SUMMARY
    start = summary.index("Oreshnik")
    item = Item(
        id=f"send-test-item-{stamp}",
        feed_id="send-test",
        title=SAMPLE_TITLE,
        summary=summary,
        url="https://example.org/media-monitor/send-test?utm=no&check=1",
        published=now,
    )
    evidence = Evidence(
        terms=(
            TermHit("oreshnik", "summary", start, start + 8, "Oreshnik"),
            TermHit(
                "drone*", "summary", summary.index("drones"), summary.index("drones") + 6, "drones"
            ),
        ),
        details={
            "kind": "score",
            "snippet": summary[summary.index("Sample text: ") + 13 :],
            "numbers": [{"value": 479, "text": "479", "noun": "drones"}],
            "places": [{"name": "Dnipro", "region": "Dnipropetrovsk Oblast"}],
            "score": 7,
            "breakdown": {"oreshnik": 4, "drone*": 3},
            "sources": ["Sample Source A", "Sample Source B"],
            "test": True,
        },
    )
    return Alert(
        alert_id=f"send-test-{stamp}",
        rule_id="send-test",
        severity=severity,
        created_at=now,
        item=item,
        evidence=evidence,
        feed_title="media-monitor send-test",
    )
