"""E-mail sink: one multipart/alternative message (text + HTML) per alert, over SMTP.

Headers a mail client can thread and filter on: ``Message-ID`` is stable per
alert (``<media-monitor.ALERT_ID@FROM-DOMAIN>``, so a retry that did reach the
server is recognisable as the same message), ``List-Id`` names the sink, and an
update of a story (``details["thread_of"]`` = the first alert's id) carries
``In-Reply-To`` and ``References`` pointing at the first alert's Message-ID.

SMTP outcomes: connection failures, timeouts and 4xx replies are transient;
5xx replies, a rejected login and a server lacking STARTTLS/AUTH are permanent.
The password never appears in an error.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib

from monitor.clock import Clock, SystemClock
from monitor.config.models import EmailSinkConfig
from monitor.exceptions import ConfigError, ConfigIssue, SinkError
from monitor.sinks.http import short
from monitor.sinks.render import thread_of
from monitor.sinks.templates import MessageTemplate, compile_template, load_template
from monitor.types import Alert

SUBJECT_MAX = 200


def message_id(alert_id: str, domain: str) -> str:
    """``<media-monitor.ALERT_ID@DOMAIN>``, with the id reduced to safe characters."""
    local = re.sub(r"[^A-Za-z0-9._-]", "-", alert_id)
    return f"<media-monitor.{local}@{domain}>"


def domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2].lower() or "media-monitor.invalid"


class EmailSink:
    """Sends each alert as one e-mail to the configured recipients."""

    def __init__(self, config: EmailSinkConfig, *, clock: Clock | None = None) -> None:
        self.name = config.name
        self.config = config
        self.domain = domain_of(config.from_addr)
        self._clock = clock or SystemClock()
        key = f"sinks[{config.name}]"
        self.subject = compile_template(
            config.subject_template, flavour="text", sink=config.name,
            key=f"{key}.subject_template", origin="subject_template",
        )  # fmt: skip
        self.text: MessageTemplate = load_template(
            "email_text.txt.j2", config.text_template, flavour="text",
            sink=config.name, key=f"{key}.text_template",
        )  # fmt: skip
        self.html: MessageTemplate = load_template(
            "email_html.html.j2", config.html_template, flavour="html",
            sink=config.name, key=f"{key}.html_template",
        )  # fmt: skip
        self._tls = _tls_context(config)

    @property
    def list_id(self) -> str:
        value = self.config.list_id
        if value and "<" in value:
            return value
        if value:
            return f"<{value}>"
        return f"media-monitor {self.name} <{self.name}.media-monitor.{self.domain}>"

    def message(self, alert: Alert) -> EmailMessage:
        """The message for ``alert``, dated now."""
        msg = EmailMessage()
        subject = " ".join(self.subject.render(alert).split())
        msg["Subject"] = subject if len(subject) <= SUBJECT_MAX else subject[:199] + "…"
        msg["From"] = self.config.from_addr
        msg["To"] = ", ".join(self.config.to)
        msg["Date"] = format_datetime(self._clock.now(), usegmt=True)
        msg["Message-ID"] = message_id(alert.alert_id, self.domain)
        first = thread_of(alert)
        if first:
            msg["In-Reply-To"] = message_id(first, self.domain)
            msg["References"] = message_id(first, self.domain)
        msg["List-Id"] = self.list_id
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Monitor-Alert-Id"] = alert.alert_id
        msg["X-Monitor-Rule"] = alert.rule_id
        msg["X-Monitor-Severity"] = alert.severity.label
        msg.set_content(self.text.render(alert) + "\n")
        msg.add_alternative(self.html.render(alert) + "\n", subtype="html")
        return msg

    async def deliver(self, alert: Alert) -> str:
        """Send; return the server's final reply ('250 ...')."""
        cfg = self.config
        password = cfg.password.get_secret_value() if cfg.password else None
        timeout = cfg.timeout.total_seconds()
        try:
            async with asyncio.timeout(timeout):
                refused, reply = await aiosmtplib.send(
                    self.message(alert),
                    hostname=cfg.host,
                    port=cfg.smtp_port,
                    username=cfg.username,
                    password=password,
                    use_tls=cfg.security == "tls",
                    start_tls=cfg.security == "starttls",
                    tls_context=self._tls,
                    timeout=timeout,
                )
        except (aiosmtplib.SMTPException, OSError) as e:  # TimeoutError is an OSError
            # Not chained, so no server text reaches a log without the password masked.
            raise self._error(e, password) from None
        note = f" (refused: {', '.join(sorted(refused))})" if refused else ""
        return short(reply, [password] if password else []) + note

    def _error(self, e: BaseException, password: str | None) -> SinkError:
        secrets = [password] if password else []
        where = f"SMTP {self.config.host}:{self.config.smtp_port}"
        transient, what = classify(e)
        text = short(f"{type(e).__name__}: {e}", secrets)
        return SinkError(self.name, f"{where}: {what}: {text}", transient=transient)

    async def send(self, alert: Alert) -> None:
        await self.deliver(alert)

    async def close(self) -> None:
        return None  # a connection is opened per message and closed after it


def classify(e: BaseException) -> tuple[bool, str]:
    """(transient, what happened) for an SMTP or socket error."""
    if _is_cert_error(e):
        return False, "the server's TLS certificate is not trusted (see ca_file)"
    if isinstance(e, aiosmtplib.SMTPAuthenticationError):
        return e.code < 500, "login refused"  # 454 is a temporary auth failure, 535 is not
    if isinstance(e, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in e.recipients]
        return any(c < 500 for c in codes), "every recipient refused"
    if isinstance(e, aiosmtplib.SMTPResponseException):
        return e.code < 500, f"server replied {e.code}"
    if isinstance(e, aiosmtplib.SMTPNotSupported) or type(e) is aiosmtplib.SMTPException:
        # aiosmtplib raises the bare base class only for a missing STARTTLS or AUTH.
        return False, "server lacks a required feature (STARTTLS, AUTH or SMTPUTF8)"
    if isinstance(e, TimeoutError | aiosmtplib.SMTPTimeoutError):
        return True, "timed out"
    return True, "connection failed"


def _is_cert_error(e: BaseException | None) -> bool:
    seen = 0
    while e is not None and seen < 5:
        if isinstance(e, ssl.SSLCertVerificationError):
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


def _tls_context(config: EmailSinkConfig) -> ssl.SSLContext | None:
    if config.ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=str(config.ca_file))
    except (OSError, ssl.SSLError) as e:
        issue = ConfigIssue(
            str(config.ca_file),
            f"sink '{config.name}': cannot load the CA bundle: {type(e).__name__}: {e}",
            key_path=f"sinks[{config.name}].ca_file",
        )
        raise ConfigError([issue]) from e
