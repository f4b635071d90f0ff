"""Real receivers on 127.0.0.1 for sink tests: an HTTP webhook receiver and SMTP servers.

HTTP (stdlib ``ThreadingHTTPServer`` in a thread, port 0)::

    with WebhookReceiver(secret=b"k") as rx:          # or the ``receiver`` fixture
        rx.then(Answer(500), Answer(429, headers={"Retry-After": "7"}))  # next answers, in order
        rx.default = Answer(200, b"ok")               # after those
        url = rx.url("/hook")
        ...
        req = rx.requests[0]                          # method, path, headers, body, json()
        assert req.signature_ok                       # HMAC checked when a secret is set

Answers are small behaviours: ``Answer(status, body, headers)``, ``Hang(seconds)``
(say nothing until the client gives up), ``Close()`` (drop the connection without
a word).

SMTP (aiosmtpd ``Controller`` in its own thread)::

    with SmtpServer(tmp_path, tls="starttls", users={"desk": "pw"}) as smtp:  # "tls", None
        smtp.ca_file                                  # PEM to trust (trustme CA)
        smtp.reply_rcpt = "451 4.3.0 try later"       # or reply_data / None
        ...
        smtp.messages[0].message                      # email.message.EmailMessage

and :func:`make_alert`, an alert with every kind of evidence, for the sink tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from monitor.types import Alert, Evidence, Item, Severity, TermHit

# --- HTTP -----------------------------------------------------------------------


@dataclass
class Received:
    """One request as the receiver saw it; ``headers`` has lower-cased keys."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None = None  # None: no secret configured

    def json(self) -> Any:
        return json.loads(self.body)


class Behaviour(Protocol):
    def respond(self, handler: _Handler) -> None: ...


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)

    def respond(self, handler: _Handler) -> None:
        handler.send_response(self.status)
        for name, value in {"Content-Type": "text/plain", **self.headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(self.body)))
        handler.end_headers()
        handler.wfile.write(self.body)


@dataclass
class Hang:
    """Read the request, then say nothing for ``seconds`` (or until the server stops)."""

    seconds: float = 30.0

    def respond(self, handler: _Handler) -> None:
        handler.server.stopping.wait(self.seconds)
        handler.close_connection = True


@dataclass
class Close:
    """Read the request, then close the connection without answering."""

    def respond(self, handler: _Handler) -> None:
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)
        handler.close_connection = True


def expected_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """What a receiver computes: sha256= HMAC-SHA256(secret, f"{timestamp}." + body)."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        receiver = self.server.receiver
        received = Received(self.command, self.path, headers, body, receiver.check(headers, body))
        behaviour = receiver.record(received)
        behaviour.respond(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stopping = threading.Event()


class WebhookReceiver:
    """Records every POST, checks its HMAC, and answers as told."""

    def __init__(self, *, secret: bytes | None = None) -> None:
        self.secret = secret
        self.default: Behaviour = Answer()
        self.requests: list[Received] = []
        self._queue: list[Behaviour] = []
        self._lock = threading.Lock()
        self._httpd = _Server()
        self._httpd.receiver = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def then(self, *behaviours: Behaviour) -> WebhookReceiver:
        """Answer the next requests with these, in order, then with ``default``."""
        with self._lock:
            self._queue.extend(behaviours)
        return self

    def check(self, headers: dict[str, str], body: bytes) -> bool | None:
        if self.secret is None:
            return None
        got = headers.get("x-monitor-signature", "")
        want = expected_signature(self.secret, headers.get("x-monitor-timestamp", ""), body)
        return hmac.compare_digest(got, want)

    def record(self, received: Received) -> Behaviour:
        with self._lock:
            self.requests.append(received)
            return self._queue.pop(0) if self._queue else self.default

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


# --- SMTP -----------------------------------------------------------------------


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    authenticated_as: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _SmtpHandler:
    def __init__(self, server: SmtpServer) -> None:
        self.owner = server

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if self.owner.reply_rcpt:
            return self.owner.reply_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        if self.owner.reply_data:
            return self.owner.reply_data
        login = (
            session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None
        )
        data = envelope.original_content or envelope.content or b""
        assert isinstance(data, bytes)
        self.owner.messages.append(
            Mail(str(envelope.mail_from), list(envelope.rcpt_tos), data, login)
        )
        return "250 2.0.0 queued as test-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """aiosmtpd on 127.0.0.1: plain, STARTTLS (required) or implicit TLS, optionally AUTH.

    The certificate is for 127.0.0.1 and localhost, signed by a trustme CA written
    to ``ca_file``. AUTH (PLAIN/LOGIN) checks ``users`` and is offered only over TLS.
    """

    def __init__(
        self,
        tmp_path: Path,
        *,
        tls: str | None = "starttls",
        users: dict[str, str] | None = None,
    ) -> None:
        self.messages: list[Mail] = []
        self.reply_rcpt: str | None = None
        self.reply_data: str | None = None
        self.users = users or {}
        self.auth_attempts: list[tuple[str, bool]] = []
        self.ca = trustme.CA()
        self.ca_file = tmp_path / "smtp-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
        self.port = _free_port()
        kwargs: dict[str, Any] = {"auth_require_tls": True}
        if users:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = True
        if tls == "starttls":
            kwargs.update(tls_context=server_ctx, require_starttls=True)
        elif tls == "tls":
            # aiosmtpd only counts STARTTLS as TLS for AUTH; this socket is TLS from the start.
            # (auth_required would warn "AUTH while not requiring TLS"; AUTH is still offered.)
            kwargs.update(ssl_context=server_ctx, auth_require_tls=False, auth_required=False)
        self.controller = Controller(
            _SmtpHandler(self), hostname="127.0.0.1", port=self.port, **kwargs
        )

    def _authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = False
        login = ""
        if isinstance(data, LoginPassword):
            login = data.login.decode()
            ok = self.users.get(login) == data.password.decode()
        self.auth_attempts.append((login, ok))
        # handled=False: aiosmtpd then answers 535 itself (True means 'I replied already').
        return AuthResult(success=ok, handled=False, auth_data=data)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.controller.stop()


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it is true; the servers record from their own threads."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# --- alerts ---------------------------------------------------------------------

NOW = datetime(2025, 6, 8, 9, 15, 2, tzinfo=UTC)
TITLE = "Russian forces advance into Dnipropetrovsk region; Oreshnik strike reported"
SUMMARY = (
    "Russian troops have entered Dnipropetrovsk Oblast for the first time, officials said, "
    "as Russia launched a record 479 drones & missiles <overnight>."
)


def make_alert(
    *,
    alert_id: str = "a1b2c3d4e5",
    title: str = TITLE,
    summary: str = SUMMARY,
    url: str | None = "https://kyivindependent.com/russia-advances?id=7&lang=en",
    severity: Severity = Severity.CRITICAL,
    details: dict[str, Any] | None = None,
) -> Alert:
    start = title.find("Oreshnik")
    terms = (TermHit("oreshnik", "title", start, start + 8, "Oreshnik"),) if start >= 0 else ()
    item = Item(
        id="item-1",
        feed_id="kyiv-independent",
        title=title,
        summary=summary,
        url=url,
        published=datetime(2025, 6, 8, 9, 12, tzinfo=UTC),
        language="en",
        tags=("war",),
    )
    info: dict[str, Any] = {
        "kind": "score",
        "snippet": "as Russia launched a record 479 drones & missiles <overnight>; Oreshnik",
        "numbers": [{"value": 479, "text": "479", "noun": "drones"}],
        "places": ["Dnipropetrovsk Oblast"],
        "score": 7,
        "breakdown": {"oreshnik": 4, "record": 3},
    }
    info.update(details or {})
    return Alert(
        alert_id=alert_id,
        rule_id="new-weapon",
        severity=severity,
        created_at=NOW,
        item=item,
        evidence=Evidence(terms, info),
        feed_title="The Kyiv Independent",
    )
