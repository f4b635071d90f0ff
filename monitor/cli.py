"""Command line: the only place that turns a MonitorError into an exit code.

Exit codes: 0 success; 1 the command ran but failed (``once`` could poll no
feed, ``health`` found the daemon not ready); 2 bad usage or configuration;
3 start-up failed (store, rules, the HTTP server's port).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import click
import structlog

from monitor import __version__
from monitor.cli_common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_STARTUP,
    config_option,
    load_or_exit,
)
from monitor.clock import Clock, FixedClock, SystemClock
from monitor.config.loader import json_schema, load_config, summarize
from monitor.config.models import AppConfig, ServerConfig
from monitor.exceptions import ConfigError, MonitorError

if TYPE_CHECKING:
    from monitor.app import App
    from monitor.readers import FeedReader

# Imported inside the commands that need them, so that `--help`, `check` and `schema`
# do not load every sink, the rule engine and the HTTP stack: monitor.app (and
# through it all of those), monitor.readers, rich's tables.

T = TypeVar("T")


def _with_app(config: AppConfig, clock: Clock, body: Callable[[App], Coroutine[Any, Any, T]]) -> T:
    """Build the app, run ``body`` on the event loop, always close what was opened."""

    from monitor.readers import build_reader

    async def main() -> T:
        # The feed reader first: its worker processes (if any) start now and import on the
        # other cores while this process imports and builds the rest.
        reader = build_reader(config, clock)
        try:
            await reader.start()
            app = _build_app(config, clock, reader)
        except BaseException:
            await reader.aclose()
            raise
        try:
            return await body(app)
        finally:
            await app.aclose()

    return asyncio.run(main())


def _build_app(config: AppConfig, clock: Clock, reader: FeedReader) -> App:
    """The app around ``reader``; exit 3 when it cannot be built (a bad rule, the store)."""
    from monitor.app import build_app

    try:
        return build_app(config, clock, reader=reader)
    except MonitorError as e:
        click.echo(f"error: cannot start: {e}", err=True)
        sys.exit(EXIT_STARTUP)


class _LazyGroup(click.Group):
    """Commands of other modules, imported when called (or listed by --help): the
    analysts' and operators' commands need not load for ``run`` and ``once``."""

    lazy: ClassVar[dict[str, str]] = {
        "derive": "monitor.cli_analyst:derive",
        "test": "monitor.cli_analyst:test_command",
        "backtest": "monitor.cli_analyst:backtest",
        "feeds": "monitor.cli_ops:feeds",
        "alerts": "monitor.cli_ops:alerts",
        "send-test": "monitor.cli_ops:send_test",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, name = target.partition(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="media-monitor")
def main() -> None:
    """media-monitor: news feeds in, escalation alerts out."""


@main.command()
@config_option
@click.option(
    "--watch",
    is_flag=True,
    help="Reload when the configuration file or a file it includes changes "
    "(SIGHUP always reloads).",
)
def run(config_path: Path, watch: bool) -> None:
    """Run the daemon: poll feeds on schedule and deliver alerts until stopped."""
    from monitor.daemon import Daemon

    config = load_or_exit(config_path)

    async def daemon(app: App) -> None:
        try:
            await Daemon(app, config_path=config_path, watch=watch).run()
        except MonitorError as e:  # the HTTP server's port, mostly
            click.echo(f"error: cannot start: {e}", err=True)
            sys.exit(EXIT_STARTUP)

    _with_app(config, SystemClock(), daemon)


@main.command()
@config_option
@click.option(
    "--timeout", default=2.0, show_default=True, help="Seconds to wait for the daemon's answer."
)
def health(config_path: Path, timeout: float) -> None:
    """Ask the running daemon's /readyz: exit 0 when ready, 1 otherwise (HEALTHCHECK)."""
    from monitor.server import ask_ready

    server = _server_settings(config_path)
    if not server.enabled:
        click.echo("not ready: the HTTP server is off (server.enabled: false)", err=True)
        sys.exit(EXIT_FAILED)
    ready, message = ask_ready(server.host, server.port, timeout)
    click.echo(message, err=not ready)
    if not ready:
        sys.exit(EXIT_FAILED)


def _server_settings(config_path: Path) -> ServerConfig:
    """The configured address; with an unreadable configuration, the defaults (and the
    MONITOR_SERVER__* variables): the daemon may well be running an older, valid one."""
    try:
        return load_config(config_path).server
    except ConfigError:
        from monitor.config.env import server_from_env

        click.echo(f"warning: cannot use {config_path}; asking the default address", err=True)
        return server_from_env()


@main.command()
@config_option
@click.option(
    "--at",
    "at",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    help="Treat this time (ISO 8601, UTC unless an offset is given) as now; replays archives.",
)
def once(config_path: Path, at: datetime | None) -> None:
    """Poll every feed once, deliver the alerts, exit (1 only if no feed could be polled)."""
    config = load_or_exit(config_path)
    clock: Clock = FixedClock(at if at.tzinfo else at.replace(tzinfo=UTC)) if at else SystemClock()
    ok = _with_app(config, clock, _once)
    if not ok:
        sys.exit(EXIT_FAILED)


async def _once(app: App) -> bool:
    feeds = [f for f in app.config.feeds if f.enabled]
    outcomes = await asyncio.gather(*(app.poller.poll(feed) for feed in feeds))
    delivered = await app.deliverer.deliver_due()
    failed = sum(1 for o in outcomes if o.status in {"error", "disabled"})
    structlog.get_logger("monitor").info(
        "once_done",
        feeds=len(feeds),
        failed=failed,
        items_parsed=sum(o.parsed for o in outcomes),
        new=sum(o.new for o in outcomes),
        alerts=sum(o.alerted for o in outcomes),
        delivered=delivered,
    )
    return not feeds or failed < len(feeds)


@main.command()
@config_option
def check(config_path: Path) -> None:
    """Validate a configuration file and print what it defines."""
    try:
        config = load_config(config_path)
    except ConfigError as e:
        click.echo(f"{config_path}: invalid configuration", err=True)
        click.echo(str(e), err=True)
        sys.exit(EXIT_CONFIG)
    try:
        from monitor.rules.compile import compile_rules

        compile_rules(config.rules)
    except MonitorError as e:
        click.echo(f"{config_path}: {e}", err=True)
        sys.exit(EXIT_CONFIG)
    click.echo(f"{config_path}: OK")
    click.echo(summarize(config))


@main.command()
@click.option(
    "--markdown",
    is_flag=True,
    help="Print the configuration reference (docs/configuration.md) instead.",
)
def schema(markdown: bool) -> None:
    """Print the JSON Schema of the configuration (for YAML editors)."""
    if markdown:
        from monitor.config.reference import reference

        click.echo(reference(), nl=False)
        return
    click.echo(json.dumps(json_schema(), indent=2))
