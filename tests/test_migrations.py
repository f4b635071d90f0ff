"""Tests of the SQLite schema migrations: versioning, upgrade, refusal and rollback."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from monitor.exceptions import StorageError
from monitor.storage import migrations
from monitor.storage.sqlite import SQLiteStorage
from monitor.types import FeedState

LATEST = len(migrations.MIGRATIONS)


def version_rows(path: Path) -> list[tuple[int, int]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute("SELECT id, version FROM schema_version"))
    finally:
        conn.close()


def execute(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def table_names(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "monitor.db"


def test_a_fresh_database_gets_every_migration(db_path: Path) -> None:
    """Opening a new file applies every migration and records the version in one row."""
    SQLiteStorage(db_path).close()
    assert version_rows(db_path) == [(1, LATEST)]
    assert {"feeds", "items", "alerts", "deliveries", "schema_version"} <= table_names(db_path)


def test_reopening_a_current_database_changes_nothing(db_path: Path) -> None:
    """Opening an up-to-date database keeps its version and its data."""
    with SQLiteStorage(db_path) as store:
        store.save_feed_state(FeedState("feed-a", "https://a.example/rss"))
    with SQLiteStorage(db_path) as store:
        assert [s.feed_id for s in store.list_feed_states()] == ["feed-a"]
    assert version_rows(db_path) == [(1, LATEST)]


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    """A database written by a newer media-monitor is refused with a message saying what to do."""
    SQLiteStorage(db_path).close()
    execute(db_path, f"UPDATE schema_version SET version = {LATEST + 3}")
    expected = (
        f"database schema version {LATEST + 3} is newer than this media-monitor "
        f"(knows up to {LATEST}); upgrade media-monitor or use another database file"
    )
    for read_only in (False, True):
        with pytest.raises(StorageError) as caught:
            SQLiteStorage(db_path, read_only=read_only)
        assert caught.value.message == expected
        assert str(caught.value) == f"{expected}: {db_path}"
    assert version_rows(db_path) == [(1, LATEST + 3)]


def test_an_older_database_is_upgraded_keeping_its_data(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at version 1 is migrated to the latest version and its rows survive."""
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
        SQLiteStorage(db_path).close()
    assert version_rows(db_path) == [(1, 1)]
    execute(
        db_path,
        "INSERT INTO feeds (feed_id, url, consecutive_errors) VALUES ('f', 'https://f/rss', 2)",
    )
    with SQLiteStorage(db_path) as store:
        state = store.get_feed_state("f")
    assert state == FeedState("f", "https://f/rss", consecutive_errors=2)
    assert version_rows(db_path) == [(1, LATEST)]


def test_each_migration_runs_in_its_own_transaction(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing migration rolls back only itself; the ones before it stay applied."""
    seen: list[tuple[int, bool]] = []

    def tracking(index: int, step: migrations.Migration) -> migrations.Migration:
        def run(conn: sqlite3.Connection) -> None:
            seen.append((index, conn.in_transaction))
            step(conn)

        return run

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("bug in migration")

    steps = [tracking(i, s) for i, s in enumerate(migrations.MIGRATIONS)]
    monkeypatch.setattr(migrations, "MIGRATIONS", [*steps, broken])
    with pytest.raises(RuntimeError, match="bug in migration"):
        SQLiteStorage(db_path)
    assert seen == [(i, True) for i in range(LATEST)]
    assert version_rows(db_path) == [(1, LATEST)]
    assert "half_done" not in table_names(db_path)


def test_a_foreign_sqlite_database_is_refused(db_path: Path) -> None:
    """A SQLite file holding another application's tables is refused and left untouched."""
    execute(db_path, "CREATE TABLE users (name TEXT)", "INSERT INTO users VALUES ('ann')")
    with pytest.raises(StorageError, match="belongs to something else"):
        SQLiteStorage(db_path)
    assert table_names(db_path) == {"users"}


def test_read_only_open_of_an_outdated_database_is_refused(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-only mode cannot migrate, so an outdated schema is refused with the fix named."""
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
        SQLiteStorage(db_path).close()
    with pytest.raises(StorageError, match="open it once read-write"):
        SQLiteStorage(db_path, read_only=True)
    assert version_rows(db_path) == [(1, 1)]


def test_concurrent_first_opens_migrate_once(db_path: Path) -> None:
    """Several stores opening one new database at once all succeed and the schema is built once."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_and_close() -> None:
        try:
            barrier.wait()
            SQLiteStorage(db_path).close()
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=open_and_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert version_rows(db_path) == [(1, LATEST)]
