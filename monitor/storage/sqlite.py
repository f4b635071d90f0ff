"""The SQLite implementation of the Storage protocol (the default backend).

One connection in autocommit mode (``isolation_level=None``); every write is an
explicit ``BEGIN IMMEDIATE … COMMIT`` and multi-statement reads run in a
``BEGIN … COMMIT`` snapshot. The journal is WAL with ``synchronous=NORMAL``: a
process killed at any point (kill -9) loses no committed transaction and leaves
no half of one; a power cut may lose the last few commits, but whole.

Environmental SQLite failures (locked, read-only, disk I/O, not a database)
become ``StorageError`` naming the database file; anything else (a constraint
violation, a bad statement, an alert whose details cannot be encoded) is a bug
and propagates as it is, after the transaction has been rolled back.

Mentions (the places and terms each claimed item mentions) are written by ``claim`` in
the same transaction as the item, so history learns an item exactly when it is claimed;
``seen``, ``sources`` and ``count`` answer the rules' History queries from the table's
own ``(key, at, item)`` order. The table holds integers only (schema v7): names as
:func:`codec.history_id`, times as microseconds.

A poll that found new content writes once: ``claim(requests, now, feed_state=...)``
inserts the items and saves the feed's new state (ETag, body hash, next poll) in one
transaction, so after a crash the state and the items agree: either both are there, or
neither and the next poll fetches and claims the same items again. Polls that found
nothing new (304, same body, an error) only ``save_feed_state``.

Pruning and invariant 1: ``prune_items`` forgets items first seen before the
cutoff, so a feed that re-serves such an old item lets it be claimed again. The
retention window must exceed how far back the feeds' history reaches; the
pipeline also skips items older than the retention window.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

from monitor.exceptions import StorageError
from monitor.storage import codec, migrations, noise
from monitor.storage.base import AlertRecord
from monitor.types import (
    Alert,
    ClaimRequest,
    ClaimResult,
    Cooldown,
    Delivery,
    FeedState,
    HealthCondition,
    Item,
    OutboxEntry,
    QueuedDigest,
    Story,
)

#: Most ids or URLs bound in one ``IN (…)`` query.
CHUNK = 500

# Primary result codes (https://sqlite.org/rescode.html) that mean the environment
# failed rather than our code, with what to tell the user.
_LOCKED_HINT = "the database is locked by another writer; is a second media-monitor using it?"
_ENVIRONMENTAL: dict[int, str] = {
    3: "permission denied",  # SQLITE_PERM
    5: _LOCKED_HINT,  # SQLITE_BUSY
    6: _LOCKED_HINT,  # SQLITE_LOCKED
    7: "out of memory",  # SQLITE_NOMEM
    8: "the database file or its directory is read-only",  # SQLITE_READONLY
    10: "disk I/O error",  # SQLITE_IOERR
    11: "the database file is corrupt",  # SQLITE_CORRUPT
    13: "the disk is full",  # SQLITE_FULL
    14: "cannot open the database file; check the path and its permissions",  # SQLITE_CANTOPEN
    15: "locking protocol error",  # SQLITE_PROTOCOL
    26: "the file is not a SQLite database (or is encrypted); use another file",  # SQLITE_NOTADB
}

_FEED_COLUMNS = (
    "feed_id",
    "url",
    "config_url",
    "etag",
    "last_modified",
    "body_hash",
    "last_status",
    "last_error",
    "consecutive_errors",
    "last_polled",
    "last_success",
    "next_poll",
    "disabled_reason",
    "items_seen",
    "warning",
)
_FEED_DATES = frozenset({"last_polled", "last_success", "next_poll"})
_SAVE_FEED = (
    f"INSERT INTO feeds ({', '.join(_FEED_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _FEED_COLUMNS)}) ON CONFLICT (feed_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _FEED_COLUMNS[1:])
)
log = structlog.get_logger("monitor")
MentionRow = tuple[int, int, int, int, int]  # key, at, item, source, in context (see v7)
_GROUP_QUIET = 0.05  # seconds
_CACHE_KIB = 32 * 1024
_WAL_PAGES = 10_000

_INSERT_ITEM = (
    "INSERT INTO items (id, feed_id, url, guid, title, summary, published, published_missing,"
    " language, content_hash, tags, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"  # a known id or a known canonical URL: not ours to claim
)
_INSERT_ALERT = (
    "INSERT INTO alerts (alert_id, rule_id, severity, created_at, item_id, payload)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id) DO NOTHING"
)
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (alert_id, sink, state, attempts, next_attempt)"
    " VALUES (?, ?, 'pending', 0, ?) ON CONFLICT (alert_id, sink) DO NOTHING"
)
_INSERT_MENTION = (
    "INSERT INTO mentions (key, at, item, source, in_context) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (key, at, item) DO UPDATE"
    " SET in_context = max(in_context, excluded.in_context)"
)
_SELECT_DELIVERY = (
    "SELECT d.id, d.alert_id, d.sink, d.state, d.attempts, d.next_attempt, d.last_error,"
    " d.delivered_at, a.payload FROM deliveries d JOIN alerts a ON a.alert_id = d.alert_id"
)
# Items old enough to prune whose alerts have no pending delivery left and no alert
# waiting in a digest queue.
_PRUNABLE = (
    "SELECT i.id FROM items i WHERE i.first_seen < ? AND NOT EXISTS ("
    "SELECT 1 FROM alerts a JOIN deliveries d ON d.alert_id = a.alert_id"
    " WHERE a.item_id = i.id AND d.state = 'pending')"
    " AND NOT EXISTS (SELECT 1 FROM digest_queue q WHERE q.item_id = i.id)"
)
# Alerts about no item (digests, health alerts) old enough to prune and settled.
_PRUNABLE_ITEMLESS = (
    "SELECT a.alert_id FROM alerts a WHERE a.item_id IS NULL AND a.created_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.alert_id"
    " AND d.state = 'pending')"
)


def _hint(error: sqlite3.Error) -> str | None:
    """What to tell the user if ``error`` is environmental; None if it is a bug."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return None
    return _ENVIRONMENTAL.get(code & 0xFF)


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _placeholders(count: int) -> str:
    return ", ".join("?" for _ in range(count))


class SQLiteStorage:
    """Storage in one SQLite file; migrates the schema on open.

    ``busy_timeout`` is how long (seconds) to wait for another writer's lock
    before raising ``StorageError``. ``read_only`` opens the file with
    ``mode=ro``: every write raises ``StorageError`` and the schema must already
    be current (nothing is migrated).

    ``commit_delay`` > 0 groups the polls' writes (``claim``, ``save_feed_state``):
    each runs in a savepoint of one open transaction, committed when writes pause for
    50 ms, ``commit_delay`` seconds after its first write at the latest, or before any
    other write, an outbox read (``due_deliveries``) or ``close``. A thousand feeds'
    claims touch the same index pages over and over; committed one by one, each
    commit writes them all to the WAL again. Reads on this connection see the open
    transaction's writes, so rules and stories see every claim at once; other
    processes and the outbox see them when they commit. A crash loses at most the
    last ``commit_delay`` of claims *and* the feed states saved with them, so those
    feeds are fetched and claimed again: nothing is lost and nothing is sent twice. A
    lost group (a failed commit, or SQLite rolling it back on a full disk) changes
    :meth:`data_version`, so a story book kept in memory is read again.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout: float = 5.0,
        read_only: bool = False,
        commit_delay: float = 0.0,
        commit_quiet: float | None = None,
    ) -> None:
        self.database = str(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._commit_delay = commit_delay
        self._group_open = False
        self._group_timer: threading.Timer | None = None
        self._group_started = self._group_last = 0.0  # time.monotonic()
        # A pause in writes this long commits the group early (see _group_timer_fired).
        self._group_quiet = min(
            commit_delay, _GROUP_QUIET if commit_quiet is None else commit_quiet
        )
        self._groups_lost = 0
        self._claims = 0  # claims by this connection (see data_version)
        self._earliest: tuple[int, int | None] | None = None  # (data_version, oldest at)
        self._conn = self._connect(busy_timeout)
        try:
            self._prepare(busy_timeout)
        except BaseException:
            self._conn.close()
            raise

    # -- connection -------------------------------------------------------

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        memory = self.database == ":memory:"
        if not memory and not self.read_only:
            try:
                Path(self.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StorageError(
                    "cannot create the database's directory", database=self.database
                ) from e
        target = self.database
        if self.read_only and not memory:
            target = Path(self.database).resolve().as_uri() + "?mode=ro"
        with self._guard("open the database"):
            conn = sqlite3.connect(
                target,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,  # calls are serialised by self._lock
                uri=self.read_only,
            )
        conn.row_factory = sqlite3.Row
        return conn

    def _prepare(self, busy_timeout: float) -> None:
        with self._guard("open the database"):
            self._conn.execute(f"PRAGMA busy_timeout = {max(0, int(busy_timeout * 1000))}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            # A page cache that holds the hot parts of the history's trees (SQLite's
            # default is 2 MiB), so a busy poll's claims do not re-read them from the OS.
            self._conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
            # Each grouped write is a savepoint, whose journal holds the original of every
            # page it changes; in a temporary file that is two writes per page (a poll's
            # history touches hundreds), most of a first poll's system time.
            self._conn.execute("PRAGMA temp_store = MEMORY")
            if self.read_only:
                self._check_read_only_schema()
                return
            self._enable_wal(busy_timeout)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            # Checkpoint the WAL every ~40 MB rather than every 4 MB: a checkpoint copies
            # pages back into the database, and a page written by several claims in
            # between is copied once.
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_PAGES}")
            migrations.migrate(self._conn, self.database)

    def _enable_wal(self, busy_timeout: float) -> None:
        """Switch to WAL, retrying SQLITE_BUSY: while another connection is switching a new
        file, SQLite answers busy at once, without calling the busy handler."""
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as e:
                busy = (getattr(e, "sqlite_errorcode", 0) & 0xFF) in (5, 6)
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _check_read_only_schema(self) -> None:
        version = migrations.current_version(self._conn)
        migrations.check_version(version, self.database)
        if version < migrations.latest_version():
            raise StorageError(
                f"database schema version {version} is older than this media-monitor's "
                f"({migrations.latest_version()}); open it once read-write to upgrade it",
                database=self.database,
            )

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn environmental SQLite errors into StorageError; let bugs through."""
        try:
            yield
        except sqlite3.Error as e:
            hint = _hint(e)
            if hint is None:
                raise
            raise StorageError(f"cannot {action} ({hint})", database=self.database) from e

    @contextmanager
    def _transaction(
        self, action: str, *, write: bool, grouped: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """One transaction: IMMEDIATE for writes, a read snapshot otherwise. ``grouped``
        writes join the open group transaction (see the class docstring)."""
        with self._lock, self._guard(action):
            conn = self._conn
            if grouped and self._commit_delay > 0:
                with self._in_group(conn):
                    yield conn
                return
            if self._group_open:
                if not write:
                    yield conn  # a read sees the group's writes, as a poll should
                    return
                self._commit_group()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    @contextmanager
    def _in_group(self, conn: sqlite3.Connection) -> Iterator[None]:
        """One grouped write: a savepoint of the group transaction, opened if need be."""
        now = time.monotonic()
        if not self._group_open:
            conn.execute("BEGIN IMMEDIATE")
            self._group_open = True
            self._group_started = now
            self._schedule_group_commit(self._group_quiet)
        self._group_last = now
        conn.execute("SAVEPOINT grouped")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO grouped")  # this write only; the group goes on
                conn.execute("RELEASE grouped")
            else:  # SQLite rolled the whole group back itself (disk full, I/O error)
                self._group_lost("rolled back by SQLite")
            raise
        conn.execute("RELEASE grouped")

    @contextmanager
    def _temp_on_disk(self) -> Iterator[None]:
        """Temporary files on disk for a while (see ``temp_store`` in _prepare): a prune's
        statement journals hold every page it deletes from, which after a long downtime
        can be hundreds of megabytes."""
        with self._lock, self._guard("set temp_store"):
            self._commit_group()  # outside any transaction, as the pragma needs
            self._conn.execute("PRAGMA temp_store = FILE")
            try:
                yield
            finally:
                self._conn.execute("PRAGMA temp_store = MEMORY")

    def _schedule_group_commit(self, delay: float) -> None:
        self._group_timer = threading.Timer(delay, self._group_timer_fired)
        self._group_timer.daemon = True
        self._group_timer.start()

    def _group_timer_fired(self) -> None:
        """Commit once writes pause for ``_group_quiet`` or the group is ``commit_delay``
        old, whichever comes first: a group holds the write lock, which other processes
        (``monitor alerts retry``, a replica) wait for, only while polls keep writing."""
        with self._lock:
            if not self._group_open:
                return
            now = time.monotonic()
            quiet_at = self._group_last + self._group_quiet
            due_at = self._group_started + self._commit_delay
            if now < quiet_at and now < due_at:
                self._schedule_group_commit(min(quiet_at, due_at) - now)
                return
            self._commit_group()

    def flush(self) -> None:
        """Commit the grouped writes now (see the class docstring)."""
        with self._lock:
            self._commit_group()

    def _commit_group(self) -> None:
        if not self._group_open:
            return
        self._end_group()
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            self._group_lost(str(e))

    def _end_group(self) -> None:
        self._group_open = False
        if self._group_timer is not None:
            self._group_timer.cancel()
            self._group_timer = None

    def _group_lost(self, why: str) -> None:
        """The group's writes are gone: the polls that made them are redone (their feed
        states went with them); data_version changes, so kept state is read again."""
        self._end_group()
        self._groups_lost += 1
        log.error("storage_group_lost", database=self.database, error=why)

    def _rollback(self) -> None:
        if not self._conn.in_transaction:
            return
        # The original error is the one worth reporting, not a failed rollback.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self._commit_group()
            self._conn.close()

    def __enter__(self) -> SQLiteStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.database!r})"

    # -- feeds ------------------------------------------------------------

    def get_feed_state(self, feed_id: str) -> FeedState | None:
        # One statement, once per poll: it needs no explicit snapshot (and its two commands).
        with self._lock, self._guard("read feed state"):
            row = self._conn.execute("SELECT * FROM feeds WHERE feed_id = ?", (feed_id,)).fetchone()
        return None if row is None else _feed_from_row(row)

    def save_feed_state(self, state: FeedState) -> None:
        with self._transaction("save feed state", write=True, grouped=True) as conn:
            _save_feed(conn, state)

    def list_feed_states(self) -> list[FeedState]:
        with self._transaction("list feed states", write=False) as conn:
            rows = conn.execute("SELECT * FROM feeds ORDER BY feed_id").fetchall()
        return [_feed_from_row(row) for row in rows]

    # -- items ------------------------------------------------------------

    def unseen(self, items: Sequence[Item]) -> list[Item]:
        ids = list(dict.fromkeys(item.id for item in items))
        urls = list(dict.fromkeys(item.url for item in items if item.url is not None))
        with self._transaction("look up items", write=False) as conn:
            known_ids = _known(conn, "id", ids)
            known_urls = _known(conn, "url", urls)
        fresh: list[Item] = []
        for item in items:  # the first of a batch's duplicates (same id or URL) is kept
            if item.id in known_ids or (item.url is not None and item.url in known_urls):
                continue
            fresh.append(item)
            known_ids.add(item.id)
            if item.url is not None:
                known_urls.add(item.url)
        return fresh

    def claim(
        self,
        requests: Sequence[ClaimRequest],
        now: datetime,
        *,
        feed_state: FeedState | None = None,
    ) -> ClaimResult:
        """One transaction for a poll's items and, when given, its feed's new state: a crash
        leaves both written or neither, never items without the state that claimed them."""
        stamp = codec.dt_to_text(now)
        claimed: list[str] = []
        enqueued = 0
        mentions: list[MentionRow] = []
        self._claims += 1  # even a failed claim: a kept story book must be read again
        with self._transaction("claim items", write=True, grouped=True) as conn:
            for request in requests:
                if not _insert_item(conn, request.item, stamp):
                    continue
                claimed.append(request.item.id)
                for entry in request.alerts:
                    enqueued += _enqueue(conn, request.item.id, entry, stamp)
                mentions += _mention_rows(request)
                _record_noise_control(conn, request, now)
            if mentions:  # in the table's (key, at) order: rows in a row share pages
                mentions.sort()
                conn.executemany(_INSERT_MENTION, mentions)
            if feed_state is not None:
                seen = feed_state.items_seen + len(claimed)
                _save_feed(conn, replace(feed_state, items_seen=seen))
            if mentions and self._earliest is not None:  # see earliest()
                version, known = self._earliest
                oldest = min(row[1] for row in mentions)
                self._earliest = (version, oldest if known is None else min(known, oldest))
        return ClaimResult(claimed=tuple(claimed), alerts_enqueued=enqueued)

    def prune_items(
        self, older_than: datetime, *, mentions_older_than: datetime | None = None
    ) -> int:
        """Also deletes mentions before ``mentions_older_than`` (default ``older_than``)."""
        cutoff = codec.dt_to_text(older_than)
        mention_cutoff = codec.dt_to_micros(mentions_older_than or older_than)
        with self._temp_on_disk(), self._transaction("prune items", write=True) as conn:
            conn.execute("DELETE FROM mentions WHERE at < ?", (mention_cutoff,))
            self._earliest = None
            conn.execute(
                "DELETE FROM story_sources WHERE story_id IN"
                " (SELECT story_id FROM stories WHERE created_at < ?)",
                (cutoff,),
            )
            conn.execute("DELETE FROM stories WHERE created_at < ?", (cutoff,))
            conn.execute("DELETE FROM cooldowns WHERE until < ?", (cutoff,))
            conn.execute(
                f"DELETE FROM deliveries WHERE alert_id IN ({_PRUNABLE_ITEMLESS})", (cutoff,)
            )
            conn.execute(f"DELETE FROM alerts WHERE alert_id IN ({_PRUNABLE_ITEMLESS})", (cutoff,))
            conn.execute(
                "DELETE FROM deliveries WHERE alert_id IN ("
                f"SELECT alert_id FROM alerts WHERE item_id IN ({_PRUNABLE}))",
                (cutoff,),
            )
            conn.execute(f"DELETE FROM alerts WHERE item_id IN ({_PRUNABLE})", (cutoff,))
            cursor = conn.execute(f"DELETE FROM items WHERE id IN ({_PRUNABLE})", (cutoff,))
        return cursor.rowcount

    def count_items(self) -> int:
        return self._count("count items", "SELECT count(*) FROM items")

    # -- history (monitor.rules.history.History) ----------------------------

    def seen(self, key: str, since: datetime, until: datetime, *, in_context: bool = True) -> bool:
        context = " AND in_context = 1" if in_context else ""
        return (
            self._mention_query(
                f"SELECT 1 FROM mentions WHERE key = ? AND at > ? AND at <= ?{context} LIMIT 1",
                key,
                since,
                until,
            )
            is not None
        )

    def sources(
        self, key: str, since: datetime, until: datetime, *, source: str | None = None
    ) -> int:
        if source is not None:
            found = self._mention_query(
                "SELECT 1 FROM mentions WHERE key = ? AND at > ? AND at <= ? AND source = ?"
                " LIMIT 1",
                key,
                since,
                until,
                source,
            )
            return int(found is not None)
        row = self._mention_query(
            "SELECT count(DISTINCT source) FROM mentions WHERE key = ? AND at > ? AND at <= ?",
            key,
            since,
            until,
        )
        return int(row[0]) if row else 0

    def count(self, key: str, since: datetime, until: datetime) -> int:
        row = self._mention_query(
            "SELECT count(*) FROM mentions WHERE key = ? AND at > ? AND at <= ?", key, since, until
        )
        return int(row[0]) if row else 0

    def earliest(self) -> datetime | None:
        # No index on ``at`` (see migration v5): the oldest mention is found by a scan,
        # then kept up to date by this connection's claims, until another writes.
        version, _ = self.data_version()  # this connection's claims update the cache
        with self._lock, self._guard("read mention history"):
            if self._earliest is None or self._earliest[0] != version:
                row = self._conn.execute("SELECT min(at) FROM mentions").fetchone()
                self._earliest = (version, row[0] if row is not None else None)
            oldest = self._earliest[1]
            return None if oldest is None else codec.micros_to_dt(oldest)

    def _mention_query(
        self, query: str, key: str, since: datetime, until: datetime, *extra: str
    ) -> sqlite3.Row | None:
        """One read of the mentions table; a single statement needs no explicit snapshot."""
        times = (codec.dt_to_micros(since), codec.dt_to_micros(until))
        params = (_history_id(key), *times, *map(_history_id, extra))
        with self._lock, self._guard("read mention history"):
            row: sqlite3.Row | None = self._conn.execute(query, params).fetchone()
        return row

    # -- outbox -----------------------------------------------------------

    def due_deliveries(
        self, now: datetime, limit: int = 100, *, skip_sinks: Sequence[str] = ()
    ) -> list[Delivery]:
        skip = f" AND d.sink NOT IN ({_placeholders(len(skip_sinks))})" if skip_sinks else ""
        self.flush()  # the outbox is read committed: an alert is sent once it is durable
        with self._transaction("read due deliveries", write=False) as conn:
            rows = conn.execute(
                f"{_SELECT_DELIVERY} WHERE d.state = 'pending' AND d.next_attempt <= ?{skip}"
                " ORDER BY d.next_attempt, d.id LIMIT ?",
                (codec.dt_to_text(now), *skip_sinks, limit),
            ).fetchall()
        return [_delivery_from_row(row, codec.alert_from_json(row["payload"])) for row in rows]

    def mark_delivered(self, delivery_id: int, now: datetime) -> None:
        with self._transaction("mark a delivery delivered", write=True) as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,"
                " delivered_at = ?, next_attempt = NULL WHERE id = ?",
                (codec.dt_to_text(now), delivery_id),
            )
            _expect_one(cursor, delivery_id)

    def mark_failed(
        self,
        delivery_id: int,
        error: str,
        next_attempt: datetime | None,
        *,
        dead: bool,
        now: datetime | None = None,
    ) -> None:
        """``now`` (when given) stamps a dead delivery's ``died_at`` for the health check."""
        if not dead and next_attempt is None:
            raise ValueError("a failed delivery that is not dead needs a next_attempt")
        with self._transaction("mark a delivery failed", write=True) as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?,"
                " next_attempt = ?, state = ?, died_at = ? WHERE id = ?",
                (
                    error,
                    codec.opt_dt_to_text(next_attempt),
                    "dead" if dead else "pending",
                    codec.opt_dt_to_text(now) if dead else None,
                    delivery_id,
                ),
            )
            _expect_one(cursor, delivery_id)

    def retry_dead(self, target: int | str, now: datetime) -> int:
        """Re-queue dead deliveries: one by delivery id (int) or all of an alert (str).

        They become pending, due at ``now``, with ``attempts`` reset to 0 so they
        get the full retry budget again; ``last_error`` is kept.
        """
        column = "id" if isinstance(target, int) else "alert_id"
        with self._transaction("re-queue dead deliveries", write=True) as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt = ?"
                f" WHERE state = 'dead' AND {column} = ?",
                (codec.dt_to_text(now), target),
            )
        return cursor.rowcount

    def recent_alerts(self, limit: int = 20, *, dead_only: bool = False) -> list[AlertRecord]:
        where = (
            "WHERE EXISTS (SELECT 1 FROM deliveries d"
            " WHERE d.alert_id = alerts.alert_id AND d.state = 'dead')"
            if dead_only
            else ""
        )
        with self._transaction("read recent alerts", write=False) as conn:
            rows = conn.execute(
                f"SELECT alert_id, payload FROM alerts {where}"
                " ORDER BY created_at DESC, alert_id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            alerts = {row["alert_id"]: codec.alert_from_json(row["payload"]) for row in rows}
            deliveries = _deliveries_of(conn, alerts)
        return [_record(alert, deliveries.get(alert.alert_id, [])) for alert in alerts.values()]

    def pending_count(self) -> int:
        return self._count(
            "count pending deliveries", "SELECT count(*) FROM deliveries WHERE state = 'pending'"
        )

    def dead_count(self) -> int:
        return self._count(
            "count dead deliveries", "SELECT count(*) FROM deliveries WHERE state = 'dead'"
        )

    def _count(self, action: str, query: str) -> int:
        with self._transaction(action, write=False) as conn:
            return int(conn.execute(query).fetchone()[0])

    def enqueue_alerts(self, entries: Sequence[OutboxEntry], now: datetime) -> int:
        """Alerts about no item (health alerts): each with one pending delivery per sink."""
        stamp = codec.dt_to_text(now)
        with self._transaction("enqueue alerts", write=True) as conn:
            return sum(_enqueue(conn, None, entry, stamp) for entry in entries)

    # -- noise control (monitor.suppress decides; see storage/noise.py) -------

    def data_version(self) -> tuple[int, int]:
        with self._lock, self._guard("read data version"):
            (version,) = self._conn.execute("PRAGMA data_version").fetchone()
            # A lost group is a change too: what this connection wrote is gone.
            return int(version) + (self._groups_lost << 32), self._claims

    def open_stories(self, since: datetime) -> list[Story]:
        with self._transaction("read stories", write=False) as conn:
            return noise.open_stories(conn, since)

    def active_cooldowns(self, now: datetime) -> list[Cooldown]:
        with self._transaction("read cooldowns", write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM cooldowns WHERE until > ? ORDER BY rule_id, key",
                (codec.dt_to_text(now),),
            ).fetchall()
        return [noise.cooldown_from_row(row) for row in rows]

    def queued_digests(self) -> list[QueuedDigest]:
        with self._transaction("read the digest queue", write=False) as conn:
            rows = conn.execute("SELECT * FROM digest_queue ORDER BY route, id").fetchall()
        return [noise.queued_from_row(row) for row in rows]

    def flush_digest(self, entry_ids: Sequence[int], digest: OutboxEntry, now: datetime) -> int:
        """In one transaction: take the entries off the queue and enqueue the digest alert
        (about no item). Returns 0, enqueuing nothing, if the entries were already taken."""
        with self._transaction("send a digest", write=True) as conn:
            if noise.count_queued(conn, entry_ids) != len(set(entry_ids)):
                return 0
            noise.delete_queued(conn, entry_ids)
            return _enqueue(conn, None, digest, codec.dt_to_text(now))

    def health_conditions(self) -> list[HealthCondition]:
        with self._transaction("read health conditions", write=False) as conn:
            rows = conn.execute("SELECT * FROM health_conditions ORDER BY key").fetchall()
        return [noise.health_from_row(row) for row in rows]

    def record_health(
        self,
        save: Sequence[HealthCondition],
        delete: Sequence[str],
        alerts: Sequence[OutboxEntry],
        now: datetime,
    ) -> int:
        """In one transaction: remember conditions, forget others, enqueue their alerts."""
        stamp = codec.dt_to_text(now)
        with self._transaction("record health conditions", write=True) as conn:
            for condition in save:
                noise.save_health(conn, condition)
            conn.executemany("DELETE FROM health_conditions WHERE key = ?", [(k,) for k in delete])
            return sum(_enqueue(conn, None, entry, stamp) for entry in alerts)

    def item_times(self, feed_id: str, limit: int = 20) -> list[datetime]:
        """Publication times of the feed's latest ``limit`` items, newest first."""
        with self._transaction("read item times", write=False) as conn:
            rows = conn.execute(
                "SELECT published FROM items WHERE feed_id = ? ORDER BY published DESC LIMIT ?",
                (feed_id, limit),
            ).fetchall()
        return [codec.dt_from_text(row[0]) for row in rows]

    def dead_since(self, since: datetime) -> dict[str, int]:
        """Deliveries that died after ``since``, counted per sink."""
        with self._transaction("count dead deliveries", write=False) as conn:
            rows = conn.execute(
                "SELECT sink, count(*) FROM deliveries WHERE died_at > ? GROUP BY sink",
                (codec.dt_to_text(since),),
            ).fetchall()
        return {row[0]: int(row[1]) for row in rows}


# -- row helpers (module level: they need a connection, not the store) ----


def _save_feed(conn: sqlite3.Connection, state: FeedState) -> None:
    values = [getattr(state, c) for c in _FEED_COLUMNS]
    for i, column in enumerate(_FEED_COLUMNS):
        if column in _FEED_DATES:
            values[i] = codec.opt_dt_to_text(values[i])
    conn.execute(_SAVE_FEED, values)


def _feed_from_row(row: sqlite3.Row) -> FeedState:
    values: dict[str, Any] = {c: row[c] for c in _FEED_COLUMNS}
    for column in _FEED_DATES:
        values[column] = codec.opt_dt_from_text(values[column])
    return FeedState(**values)


def _known(conn: sqlite3.Connection, column: str, values: Sequence[str]) -> set[str]:
    """Which of ``values`` the items table holds in ``column`` ("id" or "url")."""
    if column not in ("id", "url"):
        raise ValueError(f"not an items key column: {column!r}")
    found: set[str] = set()
    for chunk in _chunks(values):
        rows = conn.execute(
            f"SELECT {column} FROM items WHERE {column} IN ({_placeholders(len(chunk))})",
            chunk,
        )
        found.update(row[0] for row in rows)
    return found


def _insert_item(conn: sqlite3.Connection, item: Item, stamp: str) -> bool:
    """Insert the item unless its id or canonical URL is known; True if this call inserted it."""
    cursor = conn.execute(
        _INSERT_ITEM,
        (
            item.id,
            item.feed_id,
            item.url,
            item.guid,
            item.title,
            item.summary,
            codec.dt_to_text(item.published),
            int(item.published_missing),
            item.language,
            item.content_hash,
            json.dumps(list(item.tags), ensure_ascii=False) if item.tags else "[]",
            stamp,
        ),
    )
    return cursor.rowcount == 1


def _enqueue(conn: sqlite3.Connection, item_id: str | None, entry: OutboxEntry, stamp: str) -> int:
    """Insert the alert and one pending delivery per sink; 1 if the alert was new, else 0.

    ``item_id`` None: an alert about no stored item (a digest, a health alert)."""
    alert = entry.alert
    if item_id is not None and alert.item.id != item_id:
        raise ValueError(
            f"alert {alert.alert_id!r} is about item {alert.item.id!r}, not {item_id!r}"
        )
    cursor = conn.execute(
        _INSERT_ALERT,
        (
            alert.alert_id,
            alert.rule_id,
            alert.severity.label,
            codec.dt_to_text(alert.created_at),
            item_id,
            codec.alert_to_json(alert),
        ),
    )
    if cursor.rowcount != 1:
        return 0
    conn.executemany(
        _INSERT_DELIVERY, [(alert.alert_id, sink, stamp) for sink in dict.fromkeys(entry.sinks)]
    )
    return 1


def _record_noise_control(conn: sqlite3.Connection, request: ClaimRequest, now: datetime) -> None:
    """The claimed item's story (upserted whole), cooldown writes and digest entries."""
    if request.story is not None:
        noise.save_story(conn, request.story, now, added=request.story_sources)
    for write in request.cooldowns:
        noise.write_cooldown(conn, write, now)
    for entry in request.digests:
        noise.queue_digest(conn, entry, now)


def _mention_rows(request: ClaimRequest) -> list[MentionRow]:
    """The item's mentions as rows, its feed as their source (a key once per item)."""
    item = codec.history_id(request.item.id)
    source = _history_id(request.item.feed_id)
    times: dict[datetime, int] = {}  # an item's mentions mostly share one time
    return [
        (
            _history_id(m.key),
            times.get(m.at) or times.setdefault(m.at, codec.dt_to_micros(m.at)),
            item,
            source,
            int(m.in_context),
        )
        for m in request.mentions
    ]


# Keys and sources recur (places, feeds): hash each once. Item ids do not.
_history_id = lru_cache(maxsize=1 << 16)(codec.history_id)


def _expect_one(cursor: sqlite3.Cursor, delivery_id: int) -> None:
    if cursor.rowcount != 1:
        raise LookupError(f"no delivery with id {delivery_id}")


def _delivery_from_row(row: sqlite3.Row, alert: Alert) -> Delivery:
    return Delivery(
        delivery_id=row["id"],
        alert=alert,
        sink=row["sink"],
        attempts=row["attempts"],
        state=row["state"],
        last_error=row["last_error"],
        next_attempt=codec.opt_dt_from_text(row["next_attempt"]),
        delivered_at=codec.opt_dt_from_text(row["delivered_at"]),
    )


def _deliveries_of(conn: sqlite3.Connection, alerts: dict[str, Alert]) -> dict[str, list[Delivery]]:
    found: dict[str, list[Delivery]] = {}
    for chunk in _chunks(list(alerts)):
        rows = conn.execute(
            f"{_SELECT_DELIVERY} WHERE d.alert_id IN ({_placeholders(len(chunk))})"
            " ORDER BY d.alert_id, d.sink, d.id",
            chunk,
        )
        for row in rows:
            alert = alerts[row["alert_id"]]
            found.setdefault(alert.alert_id, []).append(_delivery_from_row(row, alert))
    return found


def _record(alert: Alert, deliveries: list[Delivery]) -> AlertRecord:
    return AlertRecord(
        alert_id=alert.alert_id,
        rule_id=alert.rule_id,
        severity=alert.severity.label,
        created_at=alert.created_at,
        item_title=alert.item.title,
        item_url=alert.item.url,
        feed_id=alert.item.feed_id,
        deliveries=tuple(deliveries),
    )
