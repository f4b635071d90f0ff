"""Operator commands: alerts (list, --dead, retry) and send-test, against real servers."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import main
from monitor.storage.sqlite import SQLiteStorage
from tests import feedserver as fs
from tests.configs import write_config
from tests.receivers import Answer, WebhookReceiver


def _config(tmp_path: Path, feed_url: str, hook_url: str) -> Path:
    return write_config(
        tmp_path,
        [{"id": "f", "url": feed_url}],
        extra={
            "sinks": [{"name": "hook", "type": "webhook", "url": hook_url, "timeout": "5s"}],
            "routes": [{"sinks": ["hook"]}],
        },
    )


def _oreshnik_feed() -> bytes:
    return fs.rss(
        [
            {
                "guid": "urn:o",
                "title": "Russia fires Oreshnik missile at Dnipro",
                "link": "http://example.test/o",
                "pubDate": format_datetime(datetime.now(UTC), usegmt=True),
            }
        ]
    )


def test_a_dead_delivery_is_listed_and_retried(tmp_path: Path, feed_server: fs.FeedServer) -> None:
    """A 404 kills the delivery; `alerts --dead` shows it and `alerts retry` re-sends it."""
    runner = CliRunner()
    with WebhookReceiver() as rx:
        rx.default = Answer(404, b"no such hook")
        config = _config(tmp_path, feed_server.add_feed("/feed", _oreshnik_feed()), rx.url())
        assert runner.invoke(main, ["once", "-c", str(config)]).exit_code == 0
        listed = runner.invoke(main, ["alerts", "-c", str(config), "--dead"])
        assert listed.exit_code == 0 and "hook:dead" in listed.output

        store = SQLiteStorage(tmp_path / "monitor.db")
        [record] = store.recent_alerts(dead_only=True)
        store.close()
        rx.default = Answer(200)
        retried = runner.invoke(main, ["alerts", "retry", record.alert_id, "-c", str(config)])
        assert retried.exit_code == 0, retried.output
        assert "re-queued 1 delivery" in retried.output
        assert runner.invoke(main, ["once", "-c", str(config)]).exit_code == 0
        assert len(rx.requests) == 2
    nothing = runner.invoke(main, ["alerts", "retry", record.alert_id, "-c", str(config)])
    assert nothing.exit_code == 1 and "no dead delivery" in nothing.output


def test_send_test_reports_the_answer_and_failures(tmp_path: Path) -> None:
    """send-test prints what the receiver said, exits 1 when refused and 2 for an unknown sink."""
    runner = CliRunner()
    with WebhookReceiver() as rx:
        config = _config(tmp_path, "http://127.0.0.1:9/feed", rx.url())
        ok = runner.invoke(main, ["send-test", "hook", "-c", str(config)])
        assert ok.exit_code == 0, ok.output
        assert "sink 'hook'" in ok.output and "200" in ok.output
        assert rx.requests[0].json()["schema"] == "media-monitor/alert@1"
        rx.default = Answer(500, b"down")
        refused = runner.invoke(main, ["send-test", "hook", "-c", str(config)])
        assert refused.exit_code == 1
        assert rx.url() not in refused.output  # the webhook URL is a secret
    unknown = runner.invoke(main, ["send-test", "pager", "-c", str(config)])
    assert unknown.exit_code == 2 and "sinks: hook" in unknown.output
