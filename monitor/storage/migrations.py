"""Numbered schema migrations for the SQLite store.

``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``. Each runs in
its own ``BEGIN IMMEDIATE`` transaction together with the bump of the one-row
``schema_version`` table, so a crash leaves the database at a whole version.
Never edit a released migration; append a new one.

A migration must not call ``executescript`` (it commits behind our back) and
must not commit or roll back itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from monitor.exceptions import StorageError
from monitor.storage import codec

Migration = Callable[[sqlite3.Connection], None]


def _v1_initial(conn: sqlite3.Connection) -> None:
    """Feeds, items, alerts and the delivery outbox."""
    statements = [
        """CREATE TABLE feeds (
            feed_id TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            last_status INTEGER,
            last_error TEXT,
            consecutive_errors INTEGER NOT NULL DEFAULT 0,
            last_polled TEXT,
            last_success TEXT,
            next_poll TEXT,
            disabled_reason TEXT,
            items_seen INTEGER NOT NULL DEFAULT 0,
            warning TEXT
        )""",
        """CREATE TABLE items (
            id TEXT PRIMARY KEY,
            feed_id TEXT NOT NULL,
            url TEXT,
            guid TEXT,
            title TEXT NOT NULL,
            summary TEXT NOT NULL,
            published TEXT NOT NULL,
            published_missing INTEGER NOT NULL DEFAULT 0 CHECK (published_missing IN (0, 1)),
            language TEXT,
            content_hash TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',
            first_seen TEXT NOT NULL
        )""",
        # Unique: a canonical URL is claimed once (invariant 1). NULLs do not collide.
        "CREATE UNIQUE INDEX items_url ON items (url)",
        "CREATE INDEX items_first_seen ON items (first_seen)",
        """CREATE TABLE alerts (
            alert_id TEXT PRIMARY KEY,
            rule_id TEXT NOT NULL,
            severity TEXT NOT NULL,
            created_at TEXT NOT NULL,
            item_id TEXT NOT NULL REFERENCES items (id),
            payload TEXT NOT NULL CHECK (json_valid(payload))
        )""",
        "CREATE INDEX alerts_item ON alerts (item_id)",
        "CREATE INDEX alerts_created ON alerts (created_at)",
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id TEXT NOT NULL REFERENCES alerts (alert_id),
            sink TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT,
            last_error TEXT,
            delivered_at TEXT,
            UNIQUE (alert_id, sink)
        )""",
        "CREATE INDEX deliveries_due ON deliveries (state, next_attempt)",
    ]
    for statement in statements:
        conn.execute(statement)


def _v2_feed_config_url(conn: sqlite3.Connection) -> None:
    """The URL the configuration gave, kept apart from ``url``, which follows redirects."""
    conn.execute("ALTER TABLE feeds ADD COLUMN config_url TEXT")


def _v3_mentions(conn: sqlite3.Connection) -> None:
    """Place and term mentions, the history novelty and burst rules read.

    One row per (key, item); ``at`` is the mention's time (fixed-width UTC text, so
    text order is time order). No foreign key to items: mentions are pruned by their
    own cutoff, which may reach further back than the items'.
    """
    conn.execute(
        """CREATE TABLE mentions (
            key TEXT NOT NULL,
            item_id TEXT NOT NULL,
            source TEXT NOT NULL,
            at TEXT NOT NULL,
            in_context INTEGER NOT NULL DEFAULT 0 CHECK (in_context IN (0, 1)),
            PRIMARY KEY (key, item_id)
        ) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX mentions_key_at ON mentions (key, at)")
    conn.execute("CREATE INDEX mentions_at ON mentions (at)")


def _v4_noise_control(conn: sqlite3.Connection) -> None:
    """Stories, cooldowns, the digest queue and raised health conditions; alerts that are
    about no item (digests, health alerts); when a delivery died.

    SQLite cannot drop a NOT NULL or add a column default to a foreign key in place, so
    ``alerts`` (``item_id`` becomes nullable) and ``deliveries`` (which references it;
    gains ``died_at``) are rebuilt: the old tables are renamed aside, copied into new
    ones and dropped children first, so foreign keys hold at every step.
    """
    statements = [
        "ALTER TABLE deliveries RENAME TO deliveries_v3",
        "ALTER TABLE alerts RENAME TO alerts_v3",
        "DROP INDEX alerts_item",
        "DROP INDEX alerts_created",
        "DROP INDEX deliveries_due",
        """CREATE TABLE alerts (
            alert_id TEXT PRIMARY KEY,
            rule_id TEXT NOT NULL,
            severity TEXT NOT NULL,
            created_at TEXT NOT NULL,
            item_id TEXT REFERENCES items (id),
            payload TEXT NOT NULL CHECK (json_valid(payload))
        )""",
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id TEXT NOT NULL REFERENCES alerts (alert_id),
            sink TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT,
            last_error TEXT,
            delivered_at TEXT,
            died_at TEXT,
            UNIQUE (alert_id, sink)
        )""",
        "INSERT INTO alerts SELECT alert_id, rule_id, severity, created_at, item_id, payload"
        " FROM alerts_v3",
        "INSERT INTO deliveries (id, alert_id, sink, state, attempts, next_attempt, last_error,"
        " delivered_at) SELECT id, alert_id, sink, state, attempts, next_attempt, last_error,"
        " delivered_at FROM deliveries_v3",
        "DROP TABLE deliveries_v3",
        "DROP TABLE alerts_v3",
        "CREATE INDEX alerts_item ON alerts (item_id)",
        "CREATE INDEX alerts_created ON alerts (created_at)",
        "CREATE INDEX deliveries_due ON deliveries (state, next_attempt)",
        "CREATE INDEX deliveries_died ON deliveries (died_at) WHERE died_at IS NOT NULL",
        # One row per story; sources, pairs, tags, routes and evidence are JSON.
        """CREATE TABLE stories (
            story_id TEXT PRIMARY KEY,
            rule_id TEXT NOT NULL,
            signature TEXT NOT NULL,
            first_alert_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sources TEXT NOT NULL CHECK (json_valid(sources)),
            pairs TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(pairs)),
            tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
            routes TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(routes)),
            evidence TEXT CHECK (evidence IS NULL OR json_valid(evidence))
        )""",
        "CREATE INDEX stories_created ON stories (created_at)",
        """CREATE TABLE cooldowns (
            rule_id TEXT NOT NULL,
            key TEXT NOT NULL,
            until TEXT NOT NULL,
            story_id TEXT NOT NULL DEFAULT '',
            suppressed INTEGER NOT NULL DEFAULT 0,
            last_suppressed TEXT,
            PRIMARY KEY (rule_id, key)
        ) WITHOUT ROWID""",
        # No foreign keys: an entry outlives nothing it names; prune skips queued items.
        """CREATE TABLE digest_queue (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            route TEXT NOT NULL,
            sinks TEXT NOT NULL CHECK (json_valid(sinks)),
            alert_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            payload TEXT NOT NULL CHECK (json_valid(payload)),
            enqueued_at TEXT NOT NULL,
            UNIQUE (route, alert_id)
        )""",
        """CREATE TABLE health_conditions (
            key TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            since TEXT NOT NULL,
            raised INTEGER NOT NULL DEFAULT 0 CHECK (raised IN (0, 1)),
            message TEXT NOT NULL DEFAULT ''
        )""",
    ]
    for statement in statements:
        conn.execute(statement)


def _v5_mentions_by_key_and_time(conn: sqlite3.Connection) -> None:
    """Mentions stored in (key, at, item_id) order, and no other index.

    History reads are a key and a time range, which this order answers directly; and a
    key's new mentions land at the end of its range, so a claim dirties a few pages
    instead of scattering writes over more trees: the (key, at) and (at) indexes made
    recording a poll's mentions, the largest part of claiming a busy feed, cost three
    times as much. What only ``at`` answers is rare: pruning (hourly, a scan) and the
    oldest mention (computed once per connection, then kept up to date).
    """
    conn.execute("ALTER TABLE mentions RENAME TO mentions_v4")
    conn.execute(
        """CREATE TABLE mentions (
            key TEXT NOT NULL,
            at TEXT NOT NULL,
            item_id TEXT NOT NULL,
            source TEXT NOT NULL,
            in_context INTEGER NOT NULL DEFAULT 0 CHECK (in_context IN (0, 1)),
            PRIMARY KEY (key, at, item_id)
        ) WITHOUT ROWID"""
    )
    conn.execute(
        "INSERT INTO mentions (key, at, item_id, source, in_context)"
        " SELECT key, at, item_id, source, in_context FROM mentions_v4"
    )
    conn.execute("DROP TABLE mentions_v4")  # and its indexes


def _v6_story_sources(conn: sqlite3.Connection) -> None:
    """A story's sources as rows of their own, in the order they joined.

    As a JSON column, every report joining a story rewrote all its sources: a story that
    hundreds of feeds carry made each join cost hundreds of times more. ``stories`` is
    rebuilt without the column (it is in a CHECK, which DROP COLUMN refuses).
    """
    conn.execute(
        """CREATE TABLE story_sources (
            story_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            feed_id TEXT NOT NULL,
            feed_title TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL,
            url TEXT,
            at TEXT NOT NULL,
            signature TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (story_id, seq)
        ) WITHOUT ROWID"""
    )
    conn.execute(
        """INSERT INTO story_sources
        SELECT s.story_id, CAST(j.key AS INTEGER),
               json_extract(j.value, '$.item_id'),
               json_extract(j.value, '$.feed'),
               coalesce(json_extract(j.value, '$.feed_title'), ''),
               json_extract(j.value, '$.title'),
               json_extract(j.value, '$.url'),
               json_extract(j.value, '$.at'),
               coalesce(json_extract(j.value, '$.signature'), '')
        FROM stories AS s, json_each(s.sources) AS j"""
    )
    conn.execute("ALTER TABLE stories RENAME TO stories_v5")
    conn.execute(
        """CREATE TABLE stories (
            story_id TEXT PRIMARY KEY,
            rule_id TEXT NOT NULL,
            signature TEXT NOT NULL,
            first_alert_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            pairs TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(pairs)),
            tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
            routes TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(routes)),
            evidence TEXT CHECK (evidence IS NULL OR json_valid(evidence))
        )"""
    )
    conn.execute(
        "INSERT INTO stories SELECT story_id, rule_id, signature, first_alert_id, created_at,"
        " updated_at, pairs, tags, routes, evidence FROM stories_v5"
    )
    conn.execute("DROP TABLE stories_v5")
    conn.execute("CREATE INDEX stories_created ON stories (created_at)")


def _v7_compact_mentions(conn: sqlite3.Connection) -> None:
    """Mentions as integers: key, source and item id by :func:`codec.history_id`, the time
    in microseconds (:func:`codec.dt_to_micros`).

    A row shrinks from about 100 bytes to 35, and so does the table, which is most of
    the database: every commit writes each page its claims touched, and a busy poll's
    mentions touch pages all over the table, so recording them cost twice as much.
    """
    conn.create_function("v7_id", 1, codec.history_id, deterministic=True)
    conn.create_function("v7_micros", 1, _micros_of_text, deterministic=True)
    conn.execute("ALTER TABLE mentions RENAME TO mentions_v6")
    conn.execute(
        """CREATE TABLE mentions (
            key INTEGER NOT NULL,
            at INTEGER NOT NULL,
            item INTEGER NOT NULL,
            source INTEGER NOT NULL,
            in_context INTEGER NOT NULL DEFAULT 0 CHECK (in_context IN (0, 1)),
            PRIMARY KEY (key, at, item)
        ) WITHOUT ROWID"""
    )
    conn.execute(
        "INSERT INTO mentions (key, at, item, source, in_context)"
        " SELECT v7_id(key), v7_micros(at), v7_id(item_id), v7_id(source), in_context"
        " FROM mentions_v6"
    )
    conn.execute("DROP TABLE mentions_v6")


def _micros_of_text(text: str) -> int:
    return codec.dt_to_micros(codec.dt_from_text(text))


MIGRATIONS: list[Migration] = [
    _v1_initial,
    _v2_feed_config_url,
    _v3_mentions,
    _v4_noise_control,
    _v5_mentions_by_key_and_time,
    _v6_story_sources,
    _v7_compact_mentions,
]


def latest_version() -> int:
    return len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database; 0 for a database we never touched."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


def check_version(version: int, database: str) -> None:
    """Refuse a database written by a newer media-monitor."""
    known = latest_version()
    if version > known:
        raise StorageError(
            f"database schema version {version} is newer than this media-monitor "
            f"(knows up to {known}); upgrade media-monitor or use another database file",
            database=database,
        )


def _check_foreign(conn: sqlite3.Connection, database: str) -> None:
    """Refuse a SQLite file that already holds another application's tables."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' LIMIT 1"
    ).fetchone()
    if row is not None:
        raise StorageError(
            f"this SQLite database has tables (e.g. {row[0]!r}) but no media-monitor "
            "schema_version; it belongs to something else, use another database file",
            database=database,
        )


def _set_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
    )
    conn.execute(
        "INSERT INTO schema_version (id, version) VALUES (1, ?) "
        "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        (version,),
    )


def migrate(conn: sqlite3.Connection, database: str) -> int:
    """Apply every pending migration, each in its own transaction; return the final version.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Safe against
    another process migrating at the same time: the version is re-read under
    the write lock before each step.
    """
    version = current_version(conn)
    check_version(version, database)
    while version < latest_version():
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = current_version(conn)
            check_version(version, database)
            if version == 0:
                _check_foreign(conn, database)
            if version < latest_version():
                MIGRATIONS[version](conn)
                version += 1
                _set_version(conn, version)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return version
