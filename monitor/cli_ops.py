"""Operator commands over the store and the sinks: `feeds`, `alerts`, `send-test`.

They read the same configuration as the daemon and may run beside it: the
store is SQLite in WAL mode, so reading (and re-queueing a dead delivery)
does not disturb a running daemon.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from monitor.cli_common import EXIT_CONFIG, EXIT_FAILED, EXIT_STARTUP, config_option, load_or_exit
from monitor.config.models import AppConfig
from monitor.exceptions import MonitorError, SinkError
from monitor.observability import redactor
from monitor.storage.sqlite import SQLiteStorage
from monitor.types import Delivery


@contextmanager
def _store(config: AppConfig) -> Iterator[SQLiteStorage]:
    try:
        store = SQLiteStorage(config.storage.path)
    except MonitorError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_STARTUP)
    try:
        yield store
    finally:
        store.close()


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _print(table: object) -> None:
    from rich.console import Console  # rich is only needed for tables

    Console(width=160).print(table)


@click.command()
@config_option
def feeds(config_path: Path) -> None:
    """Show each feed's health: last status, errors, next poll."""
    from rich.table import Table

    config = load_or_exit(config_path)
    with _store(config) as store:
        states = {s.feed_id: s for s in store.list_feed_states()}
    table = Table("feed", "status", "errors", "last success", "next poll", "items", "last error")
    for feed in config.feeds:
        s = states.get(feed.id)
        if s is None:
            table.add_row(feed.id, "never polled", "", "", "", "", "")
            continue
        status = s.disabled_reason or ("" if s.last_status is None else str(s.last_status))
        table.add_row(
            feed.id,
            status if feed.enabled else "off in config",
            str(s.consecutive_errors),
            _when(s.last_success),
            _when(s.next_poll),
            str(s.items_seen),
            redactor.redact(s.last_error or s.warning or "")[:80],
        )
    _print(table)


@click.group(invoke_without_command=True)
@config_option
@click.option("--limit", default=20, show_default=True, help="How many recent alerts.")
@click.option("--dead", is_flag=True, help="Only alerts with a dead delivery.")
@click.pass_context
def alerts(ctx: click.Context, config_path: Path, limit: int, dead: bool) -> None:
    """Show recent alerts with the state of each delivery (`alerts retry ID` re-queues)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    config = load_or_exit(config_path)
    with _store(config) as store:
        records = store.recent_alerts(limit, dead_only=dead)
    table = Table("alert", "created", "severity", "rule", "title", "deliveries")
    for r in records:
        states = ", ".join(
            f"{d.sink}:{d.state}"
            + (f"({d.attempts})" if d.attempts else "")
            + (
                f" #{d.delivery_id} {d.last_error[:60]}"
                if d.state == "dead" and d.last_error
                else ""
            )
            for d in r.deliveries
        )
        table.add_row(
            r.alert_id, _when(r.created_at), r.severity, r.rule_id, r.item_title[:50], states
        )
    _print(table)


def _delivery_state(d: Delivery) -> str:
    text = f"{d.sink}:{d.state}" + (f"({d.attempts})" if d.attempts else "")
    if d.state == "dead":
        text += f" #{d.delivery_id} {(d.last_error or '')[:60]}"
    return text


@alerts.command("retry")
@config_option
@click.argument("target")
def retry(config_path: Path, target: str) -> None:
    """Re-queue the dead deliveries of an alert (its id) or one delivery (its number)."""
    config = load_or_exit(config_path)
    key: int | str = int(target.lstrip("#")) if target.lstrip("#").isdigit() else target
    with _store(config) as store:
        requeued = store.retry_dead(key, datetime.now(UTC))
    if not requeued:
        click.echo(f"no dead delivery matches {target!r}; `monitor alerts --dead` lists them")
        sys.exit(EXIT_FAILED)
    click.echo(f"re-queued {requeued} deliver{'y' if requeued == 1 else 'ies'}")


@click.command("send-test")
@config_option
@click.argument("sink_name")
def send_test(config_path: Path, sink_name: str) -> None:
    """Send a sample alert through one sink and print what its server answered."""
    from monitor.sinks import build_sink
    from monitor.sinks.testing import send_test as send

    config = load_or_exit(config_path)
    by_name = {s.name: s for s in config.sinks}
    if sink_name not in by_name:
        known = ", ".join(sorted(by_name)) or "none"
        click.echo(f"error: no sink named {sink_name!r} (sinks: {known})", err=True)
        sys.exit(EXIT_CONFIG)
    try:
        sink = build_sink(by_name[sink_name])
    except MonitorError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_CONFIG)

    async def attempt() -> str:
        try:
            return await send(sink)
        finally:
            await sink.close()

    try:
        click.echo(asyncio.run(attempt()))
    except SinkError as e:
        click.echo(f"sink {sink_name!r} refused the test alert: {e}", err=True)
        sys.exit(EXIT_FAILED)
