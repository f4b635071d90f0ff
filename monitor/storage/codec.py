"""JSON (de)serialisation of alerts, items and evidence for the stores.

Pure: values in, values out. Datetimes are written as fixed-width ISO 8601 in
UTC (``2025-06-08T12:00:00.000000Z``) so that text comparison in SQL is
chronological comparison. Severity is stored by its label. The mention history,
the largest table by far, is all integers instead (:func:`dt_to_micros`,
:func:`history_id`).

``Evidence.details`` must hold JSON-able data with string keys: tuples come back
as lists, and anything json cannot encode raises ``TypeError`` or
``ValueError`` (a bug in the caller, not an environmental failure).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.types import Alert, Evidence, Item, Severity, TermHit

#: Bumped when the payload layout changes; old payloads stay readable.
PAYLOAD_VERSION = 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def dt_to_text(value: datetime) -> str:
    """Fixed-width ISO 8601 UTC text; a naive datetime is a bug and raises ValueError."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}; pass a timezone-aware datetime")
    # isoformat pads the year to four digits, unlike strftime("%Y") on glibc.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def dt_from_text(text: str) -> datetime:
    """Parse stored text back into an aware UTC datetime (naive text is read as UTC)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def dt_to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch: the history's times (integers sort and compare
    in less space than text). A naive datetime is a bug and raises ValueError."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}; pass a timezone-aware datetime")
    return (value - _EPOCH) // _MICROSECOND


def micros_to_dt(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def history_id(name: str) -> int:
    """A history key, source or item id as a signed 64-bit integer (BLAKE2b of its UTF-8).

    Stored: never change it. The history is only ever looked up by name, so the names
    themselves need not be kept; among the 10^5 or so names a database holds, two share
    an id with a probability of about 10^-10.
    """
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def opt_dt_to_text(value: datetime | None) -> str | None:
    return None if value is None else dt_to_text(value)


def opt_dt_from_text(text: str | None) -> datetime | None:
    return None if text is None else dt_from_text(text)


def item_to_dict(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "feed_id": item.feed_id,
        "title": item.title,
        "summary": item.summary,
        "url": item.url,
        "published": dt_to_text(item.published),
        "published_missing": item.published_missing,
        "guid": item.guid,
        "tags": list(item.tags),
        "language": item.language,
        "content_hash": item.content_hash,
    }


def item_from_dict(data: dict[str, Any]) -> Item:
    return Item(
        id=data["id"],
        feed_id=data["feed_id"],
        title=data["title"],
        summary=data["summary"],
        url=data.get("url"),
        published=dt_from_text(data["published"]),
        published_missing=bool(data.get("published_missing", False)),
        guid=data.get("guid"),
        tags=tuple(data.get("tags", ())),
        language=data.get("language"),
        content_hash=data.get("content_hash", ""),
    )


def evidence_to_dict(evidence: Evidence) -> dict[str, Any]:
    """Terms and details kept apart (unlike ``Evidence.to_dict``) so they round-trip."""
    return {
        "terms": [
            {"term": h.term, "field": h.field, "start": h.start, "end": h.end, "text": h.text}
            for h in evidence.terms
        ],
        "details": dict(evidence.details),
    }


def evidence_from_dict(data: dict[str, Any]) -> Evidence:
    terms = tuple(
        TermHit(term=t["term"], field=t["field"], start=t["start"], end=t["end"], text=t["text"])
        for t in data.get("terms", ())
    )
    return Evidence(terms=terms, details=dict(data.get("details", {})))


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    return {
        "v": PAYLOAD_VERSION,
        "alert_id": alert.alert_id,
        "rule_id": alert.rule_id,
        "severity": alert.severity.label,
        "created_at": dt_to_text(alert.created_at),
        "item": item_to_dict(alert.item),
        "evidence": evidence_to_dict(alert.evidence),
        "feed_title": alert.feed_title,
    }


def alert_from_dict(data: dict[str, Any]) -> Alert:
    version = data.get("v", PAYLOAD_VERSION)
    if version > PAYLOAD_VERSION:
        raise ValueError(f"alert payload version {version} is newer than {PAYLOAD_VERSION}")
    return Alert(
        alert_id=data["alert_id"],
        rule_id=data["rule_id"],
        severity=Severity.parse(data["severity"]),
        created_at=dt_from_text(data["created_at"]),
        item=item_from_dict(data["item"]),
        evidence=evidence_from_dict(data.get("evidence", {})),
        feed_title=data.get("feed_title", ""),
    )


def alert_to_json(alert: Alert) -> str:
    """The whole alert as compact JSON; raises TypeError/ValueError for unencodable details."""
    return json.dumps(
        alert_to_dict(alert),
        ensure_ascii=False,
        allow_nan=False,
        sort_keys=True,
        separators=(",", ":"),
    )


def alert_from_json(text: str) -> Alert:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("alert payload is not a JSON object")
    return alert_from_dict(data)
