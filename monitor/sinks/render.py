"""Alert -> payloads. Pure: no I/O, so every sink formats alerts the same way.

``alert_to_dict`` is the documented alert JSON (README, "Alert JSON"); the file
sink writes it as-is and later sinks (webhook, Slack) build on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.types import Alert, Severity

ALERT_SCHEMA = "media-monitor/alert@1"

_SEVERITY_MARK = {Severity.INFO: "ℹ", Severity.WARNING: "⚠", Severity.CRITICAL: "🚨"}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    item = alert.item
    return {
        "schema": ALERT_SCHEMA,
        "alert_id": alert.alert_id,
        "rule": alert.rule_id,
        "severity": alert.severity.label,
        "created_at": iso(alert.created_at),
        "item": {
            "id": item.id,
            "title": item.title,
            "url": item.url,
            "feed": item.feed_id,
            "feed_title": alert.feed_title,
            "published": iso(item.published),
            "published_missing": item.published_missing,
            "summary": item.summary,
            "language": item.language,
            "tags": list(item.tags),
        },
        "evidence": alert.evidence.to_dict(),
    }


def matched_words(alert: Alert) -> list[str]:
    """The distinct matched texts, in order of first appearance."""
    seen: dict[str, None] = {}
    for hit in alert.evidence.terms:
        seen.setdefault(hit.text, None)
    return list(seen)


def console_block(alert: Alert, *, width: int = 100) -> str:
    """A readable block: severity, rule, title, link, feed, matched words."""
    item = alert.item
    mark = _SEVERITY_MARK[alert.severity]
    lines = [
        f"{mark} {alert.severity.label.upper()}  {alert.rule_id}",
        f"  {item.title}",
        f"  {item.url or '(no link)'}",
        f"  feed: {alert.feed_title or item.feed_id}   published: {iso(item.published)}"
        + ("  (date missing, first seen)" if item.published_missing else ""),
    ]
    words = matched_words(alert)
    if words:
        lines.append("  matched: " + ", ".join(words))
    for key, value in alert.evidence.details.items():
        if key in {"kind", "snippet"}:
            continue
        lines.append(f"  {key}: {value}")
    snippet = alert.evidence.details.get("snippet")
    if isinstance(snippet, str) and snippet:
        lines.append("  » " + snippet[: width * 2])
    return "\n".join(lines)
