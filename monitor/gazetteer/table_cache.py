"""A per-user cache of the gazetteer's tables, so that a process starts faster.

Every ``monitor`` process needs the parsed places.json and the Aho-Corasick automaton
over its 55,000 aliases. Building them takes about 0.15 s of CPU; reading them back
from a pickle about a third of that. The cache is one file,
``$XDG_CACHE_HOME/media-monitor/gazetteer.pickle`` (``~/.cache/media-monitor/`` when
XDG_CACHE_HOME is unset), written atomically.

It is only ever a shortcut: the file starts with a key (a hash of places.json, the code
that derives the tables, and the Python, pyahocorasick and package versions) and is used
only if the key matches, so changed data or code is never served stale. A missing,
foreign, corrupt or unreadable file means the tables are built; an unwritable directory
(a read-only home in a container) means they are built each time, as without a cache.
Point XDG_CACHE_HOME at a writable volume to keep the shortcut there.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ahocorasick

import monitor
from monitor import text

__all__ = ["Tables", "cache_file", "cached_tables"]

# places.json parsed, and the automaton over its aliases.
Tables = tuple[dict[str, Any], ahocorasick.Automaton]

_FILE_NAME = "gazetteer.pickle"


def cached_tables(raw: bytes, build: Callable[[bytes], Tables]) -> Tables:
    """``build(raw)``, or its result from the cache file if that was built from the same."""
    path, key = cache_file(), _key(raw)
    if path is None or key is None:
        return build(raw)
    tables = _read(path, key)
    if tables is None:
        tables = build(raw)
        _write(path, key, tables)
    return tables


def cache_file() -> Path | None:
    """Where the cache lives (XDG base directory spec); None if there is no home."""
    base = Path(os.environ.get("XDG_CACHE_HOME", ""))
    if not base.is_absolute():  # unset, or relative: the spec says to ignore it
        try:
            base = Path.home() / ".cache"
        except RuntimeError:  # no HOME and no passwd entry
            return None
    return base / "media-monitor" / _FILE_NAME


def _key(raw: bytes) -> bytes | None:
    """A hash of everything the tables are derived from; None if a source is unreadable.

    The sources of this package and of monitor.text (break_words makes the automaton's
    keys) stand for "the code", so an edit invalidates the cache without a version bump.
    The pyahocorasick extension's size and mtime stand for its version (asking
    importlib.metadata costs more than the whole cache saves).
    """
    digest = hashlib.sha256(raw)
    try:
        for source in (__file__, Path(__file__).with_name("__init__.py"), text.__file__):
            digest.update(Path(source).read_bytes())
        lib = Path(ahocorasick.__file__).stat()
    except (OSError, TypeError):  # TypeError: a module without a __file__ (frozen, zipped)
        return None
    versions = (sys.version, sys.platform, monitor.__version__, lib.st_size, lib.st_mtime_ns)
    digest.update(repr(versions).encode())
    return digest.digest()


def _read(path: Path, key: bytes) -> Tables | None:
    """The cached tables, if the file holds those for ``key`` and only we can write it."""
    try:
        with path.open("rb") as f:
            # S301: the file is this user's own (see _ours), as trusted as their home.
            if not _ours(os.fstat(f.fileno())) or pickle.load(f) != key:  # noqa: S301
                return None
            data, automaton = pickle.load(f)  # noqa: S301
    except Exception:  # a damaged file can make unpickling raise anything: rebuild
        return None
    if not isinstance(data, dict) or not isinstance(automaton, ahocorasick.Automaton):
        return None
    return data, automaton


def _ours(st: os.stat_result) -> bool:
    """Unpickling can run code, so only a file of this user (or of root, as one baked into
    an image) that no one else can write."""
    return st.st_uid in (os.geteuid(), 0) and not st.st_mode & 0o022


def _write(path: Path, key: bytes, tables: Tables) -> None:
    """Best effort: write to a temporary file and rename it, so readers never see half."""
    tmp = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".gazetteer-", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(key, f, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(tables, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    except Exception:  # no cache is never an error: the tables were built all the same
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
