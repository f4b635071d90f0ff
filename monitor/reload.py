"""Reading a configuration again for a running daemon: SIGHUP and ``run --watch``.

    SIGHUP / a changed file -> read_config (every issue logged, None: refused)
        -> Daemon.reload(config) (monitor.daemon applies it)

This module only reads files and reports; applying a configuration is the
daemon's job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import structlog

from monitor.config.loader import config_files, load_config
from monitor.config.models import AppConfig
from monitor.exceptions import ConfigError

log = structlog.get_logger("monitor")

WATCHED_SUFFIXES = (".yaml", ".yml")  # a new file may match an include glob


async def read_config(path: Path, env: Mapping[str, str] | None) -> AppConfig | None:
    """The configuration at ``path``, or None with every issue logged (``reload_refused``)."""
    log.info("reloading", config=str(path))
    try:
        return await asyncio.to_thread(load_config, path, env)
    except ConfigError as e:
        issues = [str(issue) for issue in e.issues] or [str(e)]
        log.error("reload_refused", config=str(path), issues=issues, count=len(issues))
        return None


async def watch_config(
    path: Path,
    env: Mapping[str, str] | None,
    stop: asyncio.Event,
    on_change: Callable[[], Awaitable[object]],
) -> None:
    """Call ``on_change`` when ``path`` or a file it includes changes, until ``stop``.

    The directories are watched rather than the files, so an editor that replaces a
    file (write aside, rename over) is seen too; the set of files is read again
    after each change, since the includes may have changed.
    """
    from watchfiles import awatch  # only --watch needs it

    while not stop.is_set():
        files = set(await asyncio.to_thread(config_files, path, env))
        files.add(path.resolve())
        dirs = sorted({f.parent for f in files if f.parent.is_dir()})

        def relevant(_change: object, changed: str, files: set[Path] = files) -> bool:
            p = Path(changed)
            return p in files or p.suffix in WATCHED_SUFFIXES

        log.info("watching", files=sorted(str(f) for f in files))
        async for _ in awatch(*dirs, watch_filter=relevant, stop_event=stop, recursive=False):
            await on_change()
            break


def warn_restart_needed(old: AppConfig, new: AppConfig) -> None:
    """Settings a reload cannot apply to a running process: say so rather than ignore."""
    for name, before, after in (
        ("storage.path", old.storage.path, new.storage.path),
        ("server", old.server, new.server),
    ):
        if before != after:
            log.warning("reload_needs_restart", setting=name, hint="restart to apply it")
