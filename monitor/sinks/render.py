"""Alert -> payloads. Pure: no I/O, so every sink formats alerts the same way.

``alert_to_dict`` is the documented alert JSON (README, "Alert JSON", and
``docs/alert.schema.json``); the file and webhook sinks send it as-is. The
other helpers read the evidence the way every human-facing sink shows it
(Slack, e-mail, Apprise): matched words, places, numbers, score, sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from monitor.types import Alert, Severity

ALERT_SCHEMA = "media-monitor/alert@1"

SEVERITY_MARK = {Severity.INFO: "ℹ", Severity.WARNING: "⚠", Severity.CRITICAL: "🚨"}
SEVERITY_COLOUR = {
    Severity.INFO: "#439fe0",
    Severity.WARNING: "#f2a900",
    Severity.CRITICAL: "#d40e0d",
}
_SEVERITY_MARK = SEVERITY_MARK
# Details the console shows in their own way (or not at all).


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
    lines.extend(f"  {line}" for line in evidence_lines(alert.evidence.details))
    others = sources(alert)
    if others:
        lines.append(f"  also reported by {len(others)}: " + ", ".join(others))
    lines.extend(f"  - {line}" for line in digest_lines(alert))
    snippet = alert.evidence.details.get("snippet")
    if isinstance(snippet, str) and snippet:
        lines.append("  » " + snippet[: width * 2])
    return "\n".join(lines)


def evidence_lines(details: Mapping[str, Any]) -> list[str]:
    """Kind-specific evidence as short human lines: why the rules fired, not raw data."""
    lines: list[str] = []
    rules = _as_list(details.get("rules"))
    if len(rules) > 1:
        lines.append("rules: " + ", ".join(map(str, rules)))
    novelty = details.get("novelty")
    if isinstance(novelty, dict):
        place = novelty.get("place") or {}
        name = place.get("name", "?") if isinstance(place, dict) else str(place)
        context = ", ".join(map(str, _as_list(novelty.get("context_terms"))))
        lines.append(
            f"novelty: {name}: {novelty.get('reason', 'new')}"
            + (f" (context: {context})" if context else "")
        )
    burst = details.get("burst")
    if isinstance(burst, dict):
        lines.append(
            f"burst: {burst.get('key')}: {burst.get('sources')} sources in the window, "
            f"{burst.get('mentions_in_window')} mentions vs {burst.get('baseline_rate_per_window')}"
            " usual"
        )
    if "score" in details:
        parts = details.get("breakdown")
        shown = ", ".join(f"{k} {v:g}" for k, v in parts.items()) if isinstance(parts, dict) else ""
        lines.append(f"score: {details['score']:g}" + (f" ({shown})" if shown else ""))
    numbers = [
        f"{n.get('value')} {n.get('noun', '')}".strip() + f" ({n.get('text')!r})"
        for n in _as_list(details.get("numbers"))
        if isinstance(n, dict)
    ]
    if numbers:
        lines.append("numbers: " + ", ".join(numbers))
    named = places_from(details)
    if named:
        lines.append("places: " + ", ".join(named))
    return lines


def places(alert: Alert) -> list[str]:
    """Place names from ``details["places"]`` of an alert."""
    return places_from(alert.evidence.details)


def places_from(details: Mapping[str, Any]) -> list[str]:
    """Place names from ``details["places"]``: strings, or dicts with a name (and region)."""
    names: list[str] = []
    for place in _as_list(details.get("places")):
        if isinstance(place, dict):
            name = str(place.get("name") or place.get("text") or place.get("id") or "")
            region = place.get("region")
            if name and region and place.get("kind", "city") == "city":
                name = f"{name} ({region})"
        else:
            name = str(place)
        if name:
            names.append(name)
    return names


def numbers(alert: Alert) -> list[str]:
    """Numbers read by the rule, as the text said them: '1,000 drones', 'record 479'."""
    shown = []
    for number in _as_list(alert.evidence.details.get("numbers")):
        if not isinstance(number, dict):
            shown.append(str(number))
            continue
        text = str(number.get("text") or number.get("value", ""))
        noun = number.get("noun")
        shown.append(f"{text} {noun}" if noun else text)
    return [n for n in shown if n]


def score(alert: Alert) -> str | None:
    """'7 (oreshnik 4, strike 3)' for a score rule, else None."""
    details = alert.evidence.details
    if "score" not in details:
        return None
    parts = details.get("breakdown")
    if isinstance(parts, dict) and parts:
        return f"{details['score']} ({', '.join(f'{k} {v}' for k, v in parts.items())})"
    return str(details["score"])


def sources(alert: Alert) -> list[str]:
    """Other sources that reported the same story (``details["sources"]``, set by clustering:
    one entry per feed, the alert's own feed included there but left out here)."""
    shown = []
    for source in _as_list(alert.evidence.details.get("sources")):
        if isinstance(source, dict):
            if source.get("feed") == alert.item.feed_id:
                continue
            source = source.get("feed_title") or source.get("title") or source.get("feed") or ""
        if source:
            shown.append(str(source))
    return shown


def is_digest(alert: Alert) -> bool:
    return alert.evidence.details.get("kind") == "digest"


def digest_entries(alert: Alert) -> list[dict[str, Any]]:
    """The batched alerts of a digest (``details["alerts"]``), each a dict with severity,
    rule, title, url and feed; [] for any other alert."""
    if not is_digest(alert):
        return []
    return [e for e in _as_list(alert.evidence.details.get("alerts")) if isinstance(e, dict)]


def digest_lines(alert: Alert) -> list[str]:
    """One line per batched alert: '[WARNING] title — feed <url> (rule)'."""
    lines = []
    for e in digest_entries(alert):
        url = f" <{e['url']}>" if e.get("url") else ""
        severity = str(e.get("severity", "")).upper()
        lines.append(
            f"[{severity}] {e.get('title', '')} — {e.get('feed', '')}{url} ({e.get('rule')})"
        )
    return lines


def thread_of(alert: Alert) -> str | None:
    """The alert_id of the first alert of the same story, when clustering set it."""
    value = alert.evidence.details.get("thread_of")
    return str(value) if value and value != alert.alert_id else None


def template_context(alert: Alert) -> dict[str, Any]:
    """Everything a message template may use; documented in README, "Sinks"."""
    item = alert.item
    details = alert.evidence.details
    snippet = details.get("snippet")
    return {
        "alert": alert_to_dict(alert),
        "alert_id": alert.alert_id,
        "rule": alert.rule_id,
        "severity": alert.severity.label,
        "severity_upper": alert.severity.label.upper(),
        "mark": SEVERITY_MARK[alert.severity],
        "colour": SEVERITY_COLOUR[alert.severity],
        "title": item.title,
        "url": item.url,
        "feed": alert.feed_title or item.feed_id,
        "published": iso(item.published),
        "published_missing": item.published_missing,
        "summary": item.summary,
        "snippet": snippet if isinstance(snippet, str) else "",
        "matched": matched_words(alert),
        "places": places(alert),
        "numbers": numbers(alert),
        "score": score(alert),
        "sources": sources(alert),
        "reason": str(details.get("reason") or ""),
        "digest": digest_entries(alert),
        "digest_lines": digest_lines(alert),
    }


def _as_list(value: Any) -> list[Any]:
    if value is None or isinstance(value, str | bytes | dict):
        return [value] if value else []
    try:
        return list(value)
    except TypeError:
        return [value]
