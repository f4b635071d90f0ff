"""E-mail sink against aiosmtpd on 127.0.0.1: STARTTLS and implicit TLS with AUTH, plain."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from structlog.testing import capture_logs

from monitor.clock import FixedClock
from monitor.config.models import EmailSinkConfig
from monitor.exceptions import SinkError
from monitor.sinks import build_sink, send_test
from monitor.sinks.email import EmailSink
from tests.receivers import NOW, SmtpServer, make_alert

PASSWORD = "sm7p-pa55word!"


@pytest.fixture(autouse=True)
async def _let_closing_transports_close() -> AsyncIterator[None]:
    """A failed TLS handshake closes its transport on the next loop turns; give the
    test's event loop those turns before it is closed, or the socket is reported
    unclosed (the daemon's loop keeps running, so this is a test-only concern)."""
    yield
    for _ in range(5):
        await asyncio.sleep(0.01)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path, tls="starttls", users={"desk": PASSWORD}) as server:
        yield server


def email_sink(server: SmtpServer, **kw: Any) -> EmailSink:
    options: dict[str, Any] = {
        "type": "email",
        "name": "mail",
        "host": "127.0.0.1",
        "port": server.port,
        "security": "starttls",
        "username": "desk",
        "password": SecretStr(PASSWORD),
        "ca_file": server.ca_file,
        "from_addr": "Media Monitor <alerts@monitor.example.org>",
        "to": ["desk@example.org", "Duty Officer <duty@example.org>"],
        "list_id": "Ukraine desk <ukraine.monitor.example.org>",
        "timeout": timedelta(seconds=2),
    }
    options.update(kw)
    sink = build_sink(EmailSinkConfig(**options), clock=FixedClock(NOW))
    assert isinstance(sink, EmailSink)
    return sink


async def test_starttls_auth_message_headers_and_parts(smtp: SmtpServer) -> None:
    """Over STARTTLS with AUTH: the headers, both parts and the links are right."""
    sink = email_sink(smtp)
    answer = await sink.deliver(make_alert())
    assert answer.startswith("2.0.0 queued as test-1") or "queued" in answer
    (mail,) = smtp.messages
    assert mail.authenticated_as == "desk"
    assert mail.mail_from == "alerts@monitor.example.org"
    assert mail.rcpt_tos == ["desk@example.org", "duty@example.org"]
    msg = mail.message
    assert msg["Message-ID"] == "<media-monitor.a1b2c3d4e5@monitor.example.org>"
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["List-Id"] == "Ukraine desk <ukraine.monitor.example.org>"
    assert msg["Subject"] == f"[CRITICAL] {make_alert().item.title}"
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Monitor-Severity"] == "critical"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    text_body, html_body = text.get_content(), html.get_content()
    url = "https://kyivindependent.com/russia-advances?id=7&lang=en"
    assert url in text_body
    assert "Matched:    Oreshnik" in text_body
    assert "Score:      7 (oreshnik 4, record 3)" in text_body
    assert "drones & missiles <overnight>" in text_body  # text is not escaped
    assert f'href="{url.replace("&", "&amp;")}"' in html_body
    assert "drones &amp; missiles &lt;overnight&gt;" in html_body  # html is
    assert "<strong>Oreshnik</strong>" in html_body
    assert "<overnight>" not in html_body


async def test_thread_update_replies_to_first_alert(smtp: SmtpServer) -> None:
    """An alert with thread_of carries In-Reply-To/References to the first alert's Message-ID."""
    sink = email_sink(smtp)
    await sink.send(make_alert(alert_id="first-1"))
    await sink.send(
        make_alert(alert_id="second-2", details={"thread_of": "first-1", "sources": ["BBC"]})
    )
    first, second = (m.message for m in smtp.messages)
    assert (
        second["In-Reply-To"]
        == first["Message-ID"]
        == "<media-monitor.first-1@monitor.example.org>"
    )
    assert second["References"] == first["Message-ID"]
    body = second.get_body(("plain",))
    assert body is not None
    assert "Also reported by 1 sources: BBC" in body.get_content()


async def test_implicit_tls(tmp_path: Path) -> None:
    """security: tls talks TLS from the first byte (port 465 style), with AUTH."""
    with SmtpServer(tmp_path, tls="tls", users={"desk": PASSWORD}) as server:
        sink = email_sink(server, security="tls")
        await sink.send(make_alert())
        assert server.messages[0].authenticated_as == "desk"


async def test_plain_smtp_without_auth_and_non_ascii(tmp_path: Path) -> None:
    """security: none without credentials works; a Cyrillic title survives the Subject."""
    with SmtpServer(tmp_path, tls=None) as server:
        sink = email_sink(server, security="none", username=None, password=None)
        title = "Удар «Орешником» по Днепропетровской области"
        await sink.send(make_alert(title=title))
        msg = server.messages[0].message
        assert msg["Subject"] == f"[CRITICAL] {title}"


@pytest.mark.parametrize(
    ("setup", "transient", "text"),
    [
        ({"reply_rcpt": "451 4.3.0 try again later"}, True, "every recipient refused"),
        ({"reply_rcpt": "550 5.1.1 no such user"}, False, "every recipient refused"),
        ({"reply_data": "452 4.3.1 insufficient storage"}, True, "server replied 452"),
        ({"reply_data": "554 5.7.1 message rejected as spam"}, False, "server replied 554"),
    ],
)
async def test_smtp_replies_map_to_sink_errors(
    smtp: SmtpServer, setup: dict[str, str], transient: bool, text: str
) -> None:
    """4xx replies are transient, 5xx permanent."""
    for key, value in setup.items():
        setattr(smtp, key, value)
    with pytest.raises(SinkError) as info:
        await email_sink(smtp).send(make_alert())
    assert info.value.transient is transient
    assert text in str(info.value)
    assert f"SMTP 127.0.0.1:{smtp.port}" in str(info.value)


async def test_starttls_against_plain_server_is_permanent(tmp_path: Path) -> None:
    """security: starttls against a server without STARTTLS is a permanent, explained error."""
    with SmtpServer(tmp_path, tls=None) as server, pytest.raises(SinkError) as info:
        await email_sink(server, username=None, password=None).send(make_alert())
    assert info.value.transient is False
    assert "lacks a required feature" in str(info.value)
    assert "STARTTLS extension not supported" in str(info.value)


async def test_wrong_password_is_permanent_and_not_shown(smtp: SmtpServer) -> None:
    """A refused login is permanent; neither password appears in the error."""
    with pytest.raises(SinkError) as info:
        await email_sink(smtp, password=SecretStr("wrong-" + PASSWORD)).send(make_alert())
    assert info.value.transient is False
    assert "login refused" in str(info.value)
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(info.value)
    assert smtp.auth_attempts and all(a == ("desk", False) for a in smtp.auth_attempts)
    assert smtp.messages == []


async def test_untrusted_certificate_is_permanent(smtp: SmtpServer) -> None:
    """Without the CA bundle the server's certificate is not trusted: a permanent error."""
    with pytest.raises(SinkError) as info:
        await email_sink(smtp, ca_file=None).send(make_alert())
    assert info.value.transient is False
    assert "certificate" in str(info.value)


async def test_nothing_listening_is_transient(tmp_path: Path) -> None:
    """Connection refused is transient."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with SmtpServer(tmp_path) as server:
        sink = email_sink(server, port=port)
    with pytest.raises(SinkError) as info:
        await sink.send(make_alert())
    assert info.value.transient
    assert "connection failed" in str(info.value)


async def test_silent_server_times_out_transient(smtp: SmtpServer) -> None:
    """A server that accepts the connection and never greets is a transient timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        sink = email_sink(smtp, port=silent.getsockname()[1], timeout=timedelta(seconds=0.5))
        with pytest.raises(SinkError) as info:
            await sink.send(make_alert())
    assert info.value.transient
    assert "timed out" in str(info.value)


async def test_password_never_logged(smtp: SmtpServer) -> None:
    """Building, sending and failing never put the password in a log event or error."""
    with capture_logs() as logs:
        sink = email_sink(smtp)
        await sink.send(make_alert())
        smtp.reply_data = f"554 5.7.1 rejected {PASSWORD}"  # a server that echoes it
        with pytest.raises(SinkError) as info:
            await sink.send(make_alert())
    assert PASSWORD not in json.dumps(logs, default=str) + str(info.value) + repr(info.value)
    assert "***" in str(info.value)
    assert PASSWORD not in repr(sink.config)


async def test_send_test_reports_smtp_reply(smtp: SmtpServer) -> None:
    """send_test returns the server's final reply."""
    line = await send_test(email_sink(smtp), now=NOW)
    assert re.fullmatch(r"sink 'mail': sent test alert send-test-\S+: .*queued as test-1.*", line)
    assert smtp.messages[0].message["Subject"].startswith("[WARNING] [TEST]")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password": None}, "set both username and password"),
        ({"security": "none"}, "in clear"),
        ({"to": []}, "at least 1"),
        ({"from_addr": "not an address"}, "not an e-mail address"),
    ],
)
def test_config_rejects(change: dict[str, Any], message: str) -> None:
    """Incomplete credentials, a password in clear, no recipients and a bad sender are refused."""
    options: dict[str, Any] = {
        "type": "email", "name": "m", "host": "h", "username": "u", "password": "p",
        "from_addr": "a@example.org", "to": ["b@example.org"],
    }  # fmt: skip
    options.update(change)
    with pytest.raises(ValidationError, match=message):
        EmailSinkConfig(**options)


def test_default_ports() -> None:
    """The port follows the security mode unless given."""
    base = {"type": "email", "name": "m", "host": "h", "from_addr": "a@x.org", "to": ["b@x.org"]}
    ports = [EmailSinkConfig(**base, security=s).smtp_port for s in ("starttls", "tls", "none")]
    assert ports == [587, 465, 25]
