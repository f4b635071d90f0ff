"""SQLite statements for noise control: stories, cooldowns, the digest queue, health.

Module-level functions on a connection inside the caller's transaction, split out of
``sqlite.py`` by domain (reader splits its storage the same way). They persist what they
are given; ``monitor.suppress`` decides.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from monitor.storage import codec
from monitor.types import (
    Cooldown,
    CooldownWrite,
    DigestEntry,
    HealthCondition,
    QueuedDigest,
    Story,
    StorySource,
)

_INSERT_STORY = (
    "INSERT INTO stories (story_id, signature, created_at, rule_id, first_alert_id,"
    " updated_at, pairs, tags, routes, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (story_id) DO NOTHING"
)
_UPDATE_STORY = (
    "UPDATE stories SET rule_id = ?, first_alert_id = ?, updated_at = ?, pairs = ?, tags = ?,"
    " routes = ?, evidence = ? WHERE story_id = ?"
)
_INSERT_SOURCE = (
    "INSERT OR REPLACE INTO story_sources (story_id, seq, item_id, feed_id, feed_title, title,"
    " url, at, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COUNT_SOURCES = "SELECT coalesce(max(seq) + 1, 0) FROM story_sources WHERE story_id = ?"
_SELECT_SOURCES = (
    "SELECT story_sources.* FROM story_sources JOIN stories USING (story_id)"
    " WHERE stories.created_at > ? ORDER BY story_id, seq"
)
_SET_COOLDOWN = (
    "INSERT INTO cooldowns (rule_id, key, until, story_id) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (rule_id, key) DO UPDATE SET until = excluded.until,"
    " story_id = excluded.story_id"
)
_COUNT_SUPPRESSED = (
    "UPDATE cooldowns SET suppressed = suppressed + 1, last_suppressed = ?"
    " WHERE rule_id = ? AND key = ?"
)
_QUEUE_DIGEST = (
    "INSERT INTO digest_queue (route, sinks, alert_id, item_id, payload, enqueued_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (route, alert_id) DO NOTHING"
)
_SAVE_HEALTH = (
    "INSERT INTO health_conditions (key, kind, subject, since, raised, message)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET since = excluded.since,"
    " raised = excluded.raised, message = excluded.message"
)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


# -- stories -------------------------------------------------------------------


def save_story(
    conn: sqlite3.Connection,
    story: Story,
    now: datetime,
    *,
    added: Sequence[StorySource] | None = None,
) -> None:
    """Insert the story, or update a stored one: its fields, and its sources by appending
    ``added`` (None: rewrite them all). Sources are rows of their own, so a story that
    many feeds carry costs one small row per join, not a rewrite of all of them."""
    evidence = None if story.evidence is None else codec.evidence_to_dict(story.evidence)
    fields = (
        story.rule_id,
        story.first_alert_id,
        codec.dt_to_text(now),
        _json([list(p) for p in story.pairs]),
        _json(list(story.tags)),
        _json(list(story.routes)),
        None if evidence is None else _json(evidence),
    )
    head = (story.story_id, story.signature, codec.dt_to_text(story.created_at))
    if conn.execute(_INSERT_STORY, (*head, *fields)).rowcount == 0:  # stored already
        conn.execute(_UPDATE_STORY, (*fields, story.story_id))
        if added is not None:
            # After the stored ones, wherever the in-memory story thinks they go: a source
            # another writer appended meanwhile is never overwritten.
            (count,) = conn.execute(_COUNT_SOURCES, (story.story_id,)).fetchone()
            _write_sources(conn, story.story_id, enumerate(added, start=count))
            return
        conn.execute("DELETE FROM story_sources WHERE story_id = ?", (story.story_id,))
    _write_sources(conn, story.story_id, enumerate(story.sources))


def _write_sources(
    conn: sqlite3.Connection, story_id: str, sources: Iterable[tuple[int, StorySource]]
) -> None:
    conn.executemany(
        _INSERT_SOURCE,
        [
            (
                story_id,
                n,
                s.item_id,
                s.feed_id,
                s.feed_title,
                s.title,
                s.url,
                codec.dt_to_text(s.at),
                s.signature,
            )
            for n, s in sources
        ],
    )


def open_stories(conn: sqlite3.Connection, since: datetime) -> list[Story]:
    """Stories created after ``since``, oldest first, each with its sources in order."""
    cutoff = codec.dt_to_text(since)
    sources: dict[str, list[StorySource]] = {}
    for row in conn.execute(_SELECT_SOURCES, (cutoff,)):
        sources.setdefault(row["story_id"], []).append(
            StorySource(
                item_id=row["item_id"],
                feed_id=row["feed_id"],
                title=row["title"],
                url=row["url"],
                at=codec.dt_from_text(row["at"]),
                feed_title=row["feed_title"],
                signature=row["signature"],
            )
        )
    rows = conn.execute(
        "SELECT * FROM stories WHERE created_at > ? ORDER BY created_at, story_id", (cutoff,)
    )
    return [_story_from_row(row, sources.get(row["story_id"], [])) for row in rows]


def _story_from_row(row: sqlite3.Row, sources: list[StorySource]) -> Story:
    evidence = row["evidence"]
    return Story(
        story_id=row["story_id"],
        rule_id=row["rule_id"],
        signature=row["signature"],
        created_at=codec.dt_from_text(row["created_at"]),
        sources=tuple(sources),
        first_alert_id=row["first_alert_id"],
        pairs=tuple((str(r), str(s)) for r, s in json.loads(row["pairs"])),
        tags=tuple(json.loads(row["tags"])),
        routes=tuple(json.loads(row["routes"])),
        evidence=None if evidence is None else codec.evidence_from_dict(json.loads(evidence)),
    )


# -- cooldowns -----------------------------------------------------------------


def write_cooldown(conn: sqlite3.Connection, write: CooldownWrite, now: datetime) -> None:
    if write.until is None:
        conn.execute(_COUNT_SUPPRESSED, (codec.dt_to_text(now), write.rule_id, write.key))
    else:
        conn.execute(
            _SET_COOLDOWN,
            (write.rule_id, write.key, codec.dt_to_text(write.until), write.story_id),
        )


def cooldown_from_row(row: sqlite3.Row) -> Cooldown:
    return Cooldown(
        rule_id=row["rule_id"],
        key=row["key"],
        until=codec.dt_from_text(row["until"]),
        story_id=row["story_id"],
        suppressed=row["suppressed"],
    )


# -- digest queue --------------------------------------------------------------


def queue_digest(conn: sqlite3.Connection, entry: DigestEntry, now: datetime) -> None:
    alert = entry.alert
    conn.execute(
        _QUEUE_DIGEST,
        (
            entry.route,
            _json(list(entry.sinks)),
            alert.alert_id,
            alert.item.id,
            codec.alert_to_json(alert),
            codec.dt_to_text(now),
        ),
    )


def queued_from_row(row: sqlite3.Row) -> QueuedDigest:
    return QueuedDigest(
        entry_id=row["id"],
        route=row["route"],
        sinks=tuple(json.loads(row["sinks"])),
        alert=codec.alert_from_json(row["payload"]),
        enqueued_at=codec.dt_from_text(row["enqueued_at"]),
    )


def _id_chunks(entry_ids: Sequence[int]) -> list[tuple[list[int], str]]:
    chunks = []
    for start in range(0, len(entry_ids), 500):
        chunk = list(entry_ids[start : start + 500])
        chunks.append((chunk, ", ".join("?" for _ in chunk)))
    return chunks


def count_queued(conn: sqlite3.Connection, entry_ids: Sequence[int]) -> int:
    return sum(
        int(conn.execute(f"SELECT count(*) FROM digest_queue WHERE id IN ({marks})", chunk)
            .fetchone()[0])
        for chunk, marks in _id_chunks(entry_ids)
    )  # fmt: skip


def delete_queued(conn: sqlite3.Connection, entry_ids: Sequence[int]) -> None:
    for chunk, marks in _id_chunks(entry_ids):
        conn.execute(f"DELETE FROM digest_queue WHERE id IN ({marks})", chunk)


# -- health --------------------------------------------------------------------


def save_health(conn: sqlite3.Connection, condition: HealthCondition) -> None:
    conn.execute(
        _SAVE_HEALTH,
        (
            condition.key,
            condition.kind,
            condition.subject,
            codec.dt_to_text(condition.since),
            int(condition.raised),
            condition.message,
        ),
    )


def health_from_row(row: sqlite3.Row) -> HealthCondition:
    return HealthCondition(
        key=row["key"],
        kind=row["kind"],
        subject=row["subject"],
        since=codec.dt_from_text(row["since"]),
        raised=bool(row["raised"]),
        message=row["message"],
    )
