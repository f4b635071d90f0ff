"""Logging: one structlog setup for the whole process.

Key=value on a terminal, JSON lines otherwise (containers, files);
``logging.format`` (or ``MONITOR_LOG_FORMAT``) forces one. Context such as
``feed=``, ``rule=`` and ``sink=`` is bound with contextvars so every line a
poll writes carries its feed. A redaction processor replaces every configured
secret value wherever it appears, so a secret that slips into an exception
message still never reaches the log; the CLI and the daemon's reload hand it
``AppConfig.secrets()`` after each load. Records of stdlib loggers (httpx,
asyncio, ...) are redacted too.

structlog is imported by the functions that use it, not here: a reader worker
(monitor.read_worker) sets up stdlib logging with this module and never loads
structlog, nor rich, which structlog imports when it can.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

LogFormat = Literal["auto", "console", "json"]
REDACTED = "***"


class SecretRedactor:
    """A structlog processor that masks known secret values in every field."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first so a secret containing another is masked whole.
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not self.secrets:
            return event
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = self.redact(value)
            elif isinstance(value, BaseException):
                event[key] = self.redact(str(value))
        return event

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


redactor = SecretRedactor()


def configure_logging(
    fmt: LogFormat = "auto", level: str = "info", stream: TextIO | None = None
) -> None:
    """Set up structlog (and route stdlib logging through the same level)."""
    import structlog

    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    configure_stdlib_logging(level, stream)


def configure_stdlib_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Send stdlib logging (httpx, asyncio, ...) to ``stream``, at ``level`` but never
    below warnings, secrets masked. All a reader worker needs: it logs nothing itself."""
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(
        level=max(numeric, logging.WARNING), stream=stream or sys.stderr, force=True
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_redact_record)


def _redact_record(record: logging.LogRecord) -> bool:
    """A stdlib logging filter: mask secrets in the message and the traceback text."""
    if not redactor.secrets:
        return True
    record.msg, record.args = redactor.redact(record.getMessage()), None
    if record.exc_info:
        record.exc_text = redactor.redact(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
    return True


def get_logger(**bound: Any) -> Any:
    import structlog

    return structlog.get_logger("monitor").bind(**bound)
