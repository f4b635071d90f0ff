"""No secret value reaches a log line or `monitor check`'s output."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest
import structlog

from monitor.app import build_app
from monitor.cli_common import load_or_exit
from monitor.clock import SystemClock
from monitor.config.loader import load_config
from monitor.daemon import Daemon
from monitor.observability import REDACTED, configure_logging, redactor
from tests import feedserver as fs
from tests.configs import write_config
from tests.processes import monitor
from tests.receivers import Answer, SmtpServer, WebhookReceiver

TOKEN = "tok-7f3a9c1e5b2d"
HMAC_SECRET = "hmac-key-91b0c4e2aa"
SMTP_PASSWORD = "smtp-pass-4d8e0f17"


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The redactor and the logging setup are process-wide: leave them as found."""
    yield
    redactor.update(())
    configure_logging()


def oreshnik_feed() -> bytes:
    item = {
        "guid": "urn:oreshnik",
        "title": "Russia fires Oreshnik missile at Dnipro",
        "link": "http://example.test/oreshnik",
        "pubDate": format_datetime(datetime.now(UTC), usegmt=True),
    }
    return fs.rss([item])


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        monitor(*args), capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


@pytest.mark.slow
def test_no_secret_in_the_output_of_once_and_check(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """A full `monitor once` at debug level, with a webhook that fails quoting its secrets back
    and an SMTP server that refuses the password, and `monitor check`, print none of the
    webhook URL, its token, the HMAC key or the SMTP password."""
    url = feed_server.add_feed("/feed", oreshnik_feed())
    with (
        WebhookReceiver(secret=HMAC_SECRET.encode()) as receiver,
        SmtpServer(tmp_path, tls="starttls", users={"desk": "the-right-one"}) as smtp,
    ):
        hook_url = receiver.url(f"/hook/{TOKEN}")
        # The receiver quotes the secrets back; the error logged from its answer must not.
        receiver.default = Answer(500, f"bad key {HMAC_SECRET} for {hook_url}".encode())
        env = {"HOOK_URL": hook_url, "HOOK_SECRET": HMAC_SECRET, "SMTP_PASSWORD": SMTP_PASSWORD}
        config = write_config(
            tmp_path,
            [{"id": "f", "url": url}],
            extra={
                "logging": {"format": "json", "level": "debug"},
                "sinks": [
                    {"name": "hook", "type": "webhook", "url": "${HOOK_URL}"}
                    | {"secret": "${HOOK_SECRET}"},
                    {
                        "name": "mail",
                        "type": "email",
                        "host": "127.0.0.1",
                        "port": smtp.port,
                        "username": "desk",
                        "password": "${SMTP_PASSWORD}",
                        "ca_file": str(smtp.ca_file),
                        "from_addr": "alerts@example.org",
                        "to": ["desk@example.org"],
                    },
                ],
                "routes": [{"sinks": ["hook", "mail"]}],
            },
        )
        once = run("once", "-c", str(config), env=env)
        check = run("check", "-c", str(config), env=env)
        assert [r.signature_ok for r in receiver.requests] == [True]  # the key was in use
        assert set(smtp.auth_attempts) == {("desk", False)}  # and the password was tried

    assert once.returncode == 0, once.stderr
    events = [json.loads(x) for x in once.stderr.splitlines() if x.startswith("{")]
    failed = {e["sink"] for e in events if e["event"] == "delivery_failed"}
    assert failed == {"hook", "mail"}  # error lines were written: each could have leaked
    assert check.returncode == 0, check.stderr
    assert "OK" in check.stdout
    for output in (once.stdout, once.stderr, check.stdout, check.stderr):
        for secret in (hook_url, TOKEN, HMAC_SECRET, SMTP_PASSWORD):
            assert secret not in output


@pytest.mark.slow
def test_an_invalid_secret_is_not_echoed_by_check(tmp_path: Path) -> None:
    """`monitor check` names a bad webhook URL's key without quoting the value."""
    bad = f"ftp://example.org/{TOKEN}"
    config = write_config(
        tmp_path,
        [],
        extra={
            "sinks": [{"name": "hook", "type": "webhook", "url": "${HOOK_URL}"}],
            "routes": [{"sinks": ["hook"]}],
        },
    )
    done = run("check", "-c", str(config), env={"HOOK_URL": bad})
    assert done.returncode == 2
    assert "sinks[0].url" in done.stderr
    assert TOKEN not in done.stderr + done.stdout


def secret_sinks(tmp_path: Path, token: str, key: str) -> Path:
    return write_config(
        tmp_path,
        [],
        extra={
            "sinks": [
                {"name": "hook", "type": "webhook", "url": f"https://hooks.test/{token}"}
                | {"secret": key}
            ],
            "routes": [{"sinks": ["hook"]}],
        },
    )


def test_loading_hands_the_secrets_to_the_log_redactor(tmp_path: Path) -> None:
    """After the CLI loads a config, a secret that slips into any log line (structlog or a
    stdlib logger such as httpx's) is masked."""
    stream = io.StringIO()
    load_or_exit(secret_sinks(tmp_path, TOKEN, HMAC_SECRET))
    configure_logging("json", "info", stream=stream)
    structlog.get_logger("monitor").error("oops", error=f"POST https://hooks.test/{TOKEN}")
    logging.getLogger("httpx").warning("signing with %s", HMAC_SECRET)
    text = stream.getvalue()
    assert TOKEN not in text and HMAC_SECRET not in text
    assert text.count(REDACTED) == 2


async def test_a_reload_adds_the_new_secrets(tmp_path: Path) -> None:
    """Daemon.reload hands the new configuration's secrets to the redactor (and keeps the
    old ones, which in-flight work may still log)."""
    first = load_config(secret_sinks(tmp_path, TOKEN, HMAC_SECRET), env={})
    redactor.update(s.get_secret_value() for s in first.secrets())
    app = build_app(first, SystemClock())
    try:
        assert await Daemon(app).reload(
            load_config(secret_sinks(tmp_path, "tok-new-0c9d8e", "key-new-5a6b"), env={})
        )
    finally:
        await app.aclose()
    for secret in ("https://hooks.test/tok-new-0c9d8e", "key-new-5a6b", HMAC_SECRET):
        assert redactor.redact(f"x {secret} y") == f"x {REDACTED} y"


def test_feed_url_credentials_are_secrets(tmp_path: Path) -> None:
    """A key in a feed URL is redacted from the poll's log line and from `monitor feeds`."""
    from click.testing import CliRunner

    from monitor.cli import main

    key = "TOPSECRETKEY123"
    config = write_config(
        tmp_path,
        [{"id": "wire", "url": f"http://user:pw-{key}@127.0.0.1:9/feed?format=rss&apikey={key}"}],
    )
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "once", "-c", str(config)],
        capture_output=True,
        timeout=60,
    )
    output = (done.stdout + done.stderr).decode()
    assert "polled" in output and key not in output
    table = CliRunner().invoke(main, ["feeds", "-c", str(config)])
    assert "wire" in table.output and key not in table.output
