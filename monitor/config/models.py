"""Pydantic models of the configuration file.

Every model forbids unknown keys and is frozen. Durations accept seconds
(``300``) or a short form (``90s``, ``5m``, ``2h``, ``1d``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor.config.base import ID_PATTERN as _ID
from monitor.config.base import Duration, Model, SeverityName
from monitor.config.rule_models import RuleConfig
from monitor.types import Severity


class FeedConfig(Model):
    """One feed to poll."""

    id: str = Field(
        pattern=_ID, description="Stable name of the feed; keys its state in the store."
    )
    url: str = Field(description="http(s):// URL, file:// URL or a local path.")
    title: str = Field(
        "", description="Human name shown in alerts; defaults to the feed's own title."
    )
    tags: tuple[str, ...] = Field((), description="Free labels rules and routes can scope on.")
    language: str | None = Field(
        None, description="ISO 639-1 code, overrides the feed's declared language."
    )
    interval: Duration | None = Field(
        None, description="Poll interval; defaults to scheduler.interval."
    )
    enabled: bool = True


class ConsoleSinkConfig(Model):
    type: Literal["console"]
    name: str = Field(pattern=_ID)


class FileSinkConfig(Model):
    type: Literal["file"]
    name: str = Field(pattern=_ID)
    path: Path = Field(description="JSON-lines file the alerts are appended to.")


# Header names the webhook sink sets itself; a custom header may not replace them.
RESERVED_WEBHOOK_HEADERS = frozenset(
    {"content-type", "idempotency-key", "x-monitor-timestamp", "x-monitor-signature"}
)
# Custom header names whose values are treated as secrets (masked in logs).
_SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|password|cookie|signature", re.I)
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


# Error type for a bad secret value; config.issues must not echo its input.
SECRET_VALUE_ERROR = "secret_value"  # noqa: S105 - an error type name, not a password


def _http_url(value: SecretStr, what: str) -> SecretStr:
    """An http(s) URL, checked without ever echoing it (it is a secret)."""
    text = value.get_secret_value().strip()
    if not re.match(r"^https?://[^/\s]+", text, re.I):
        raise PydanticCustomError(
            SECRET_VALUE_ERROR,
            "{what} must be an http:// or https:// URL (value not shown: it is a secret)",
            {"what": what},
        )
    return SecretStr(text)


def _address(value: str) -> str:
    """``alerts@example.org`` or ``Desk <alerts@example.org>``."""
    _, addr = parseaddr(value)
    if not _EMAIL.match(addr):
        raise ValueError(f"{value!r} is not an e-mail address like alerts@example.org")
    return value.strip()


class HttpSinkBase(Model):
    name: str = Field(pattern=_ID)
    timeout: Duration = Field(timedelta(seconds=10), description="Whole request, answer included.")


class SlackSinkConfig(HttpSinkBase):
    """A Slack incoming webhook; the message is Block Kit with a plain-text fallback."""

    type: Literal["slack"]
    webhook_url: SecretStr = Field(description="https://hooks.slack.com/services/...; a secret.")
    channel: str | None = Field(None, description="Override the webhook's channel, if allowed.")
    username: str | None = None
    icon_emoji: str | None = Field(None, description="e.g. ':rotating_light:'.")
    template: Path | None = Field(
        None, description="Jinja2 file for the plain-text fallback (`text`); default built in."
    )

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: SecretStr) -> SecretStr:
        return _http_url(v, "webhook_url")


class WebhookSinkConfig(HttpSinkBase):
    """POSTs the alert JSON, signed with HMAC-SHA256 when ``secret`` is set."""

    type: Literal["webhook"]
    url: SecretStr = Field(description="Receiver URL; a secret (it may carry a token).")
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for X-Monitor-Signature.")
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Extra request headers (e.g. Authorization); values are kept secret.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: SecretStr) -> SecretStr:
        return _http_url(v, "url")

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, SecretStr]) -> dict[str, SecretStr]:
        taken = sorted(k for k in v if k.strip().lower() in RESERVED_WEBHOOK_HEADERS)
        if taken:
            raise ValueError(f"headers {', '.join(taken)} are set by the sink; remove them")
        return v

    def header_secrets(self) -> list[SecretStr]:
        """Values the log redactor masks: those of auth-like headers (masking every value
        would mask ordinary words like a team name everywhere in the logs)."""
        return [v for k, v in self.headers.items() if _SENSITIVE_HEADER.search(k)]


class EmailSinkConfig(Model):
    """SMTP with STARTTLS (587), implicit TLS (465) or none (25); text + HTML parts."""

    type: Literal["email"]
    name: str = Field(pattern=_ID)
    host: str = Field(min_length=1)
    port: int | None = Field(
        None, ge=1, le=65535, description="Default: 587 starttls, 465 tls, 25 none."
    )
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = Field(
        None, description="PEM bundle to verify the server with, instead of the system's."
    )
    from_addr: str = Field(description="Sender; its domain names the Message-IDs.")
    to: tuple[str, ...] = Field(min_length=1)
    subject_template: str = Field(
        "[{{ severity_upper }}] {{ title }}",
        description="Jinja2 text; variables as in the e-mail templates.",
    )
    list_id: str | None = Field(
        None, description="List-Id, e.g. 'Ukraine desk <ukraine.alerts.example.org>'."
    )
    text_template: Path | None = None
    html_template: Path | None = None
    timeout: Duration = Field(timedelta(seconds=30), description="Connect and each SMTP step.")

    @field_validator("from_addr")
    @classmethod
    def _from(cls, v: str) -> str:
        return _address(v)

    @field_validator("to")
    @classmethod
    def _to(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_address(a) for a in v)

    @model_validator(mode="after")
    def _auth(self) -> EmailSinkConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        if self.password is not None and self.security == "none":
            raise ValueError("security 'none' would send the password in clear; use starttls/tls")
        return self

    @property
    def smtp_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


class AppriseSinkConfig(Model):
    """Any service Apprise knows (needs the ``apprise`` extra)."""

    type: Literal["apprise"]
    name: str = Field(pattern=_ID)
    urls: tuple[SecretStr, ...] = Field(min_length=1, description="Apprise URLs; secrets.")
    template: Path | None = Field(None, description="Jinja2 file for the body; default built in.")


SinkConfig = Annotated[
    ConsoleSinkConfig
    | FileSinkConfig
    | SlackSinkConfig
    | WebhookSinkConfig
    | EmailSinkConfig
    | AppriseSinkConfig,
    Field(discriminator="type"),
]


def sink_secrets(sink: SinkConfig) -> list[SecretStr]:
    """The secret values one sink config holds."""
    match sink:
        case SlackSinkConfig():
            return [sink.webhook_url]
        case WebhookSinkConfig():
            return [sink.url, *([sink.secret] if sink.secret else []), *sink.header_secrets()]
        case EmailSinkConfig():
            return [sink.password] if sink.password else []
        case AppriseSinkConfig():
            return list(sink.urls)
    return []


class RouteConfig(Model):
    """Sends alerts that match every given condition to ``sinks``."""

    sinks: tuple[str, ...] = Field(min_length=1)
    min_severity: SeverityName = "info"
    rules: tuple[str, ...] = Field((), description="Only these rule ids; empty means any rule.")
    feed_tags: tuple[str, ...] = Field(
        (), description="Only items of feeds with one of these tags."
    )

    @property
    def severity(self) -> Severity:
        return Severity.parse(self.min_severity)


class StorageConfig(Model):
    path: Path = Field(Path("data/monitor.db"), description="SQLite database file.")
    retention: Duration = Field(timedelta(days=30), description="Items older than this are pruned.")


class TimeoutConfig(Model):
    connect: Duration = timedelta(seconds=10)
    read: Duration = timedelta(seconds=30)
    total: Duration = Field(timedelta(seconds=60), description="Whole request, body included.")


class HttpConfig(Model):
    user_agent: str = Field(
        "",
        description="Defaults to 'media-monitor/VERSION (+project URL)'; say who you are.",
    )
    timeout: TimeoutConfig = TimeoutConfig()
    max_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Cap on a (decoded) body.")
    max_redirects: int = Field(5, ge=0, le=20)
    per_host_limit: int = Field(4, ge=1, description="Concurrent requests to one host.")
    global_limit: int = Field(64, ge=1, description="Concurrent requests in all.")


class SchedulerConfig(Model):
    interval: Duration = Field(timedelta(minutes=5), description="Default poll interval.")
    jitter: float = Field(
        0.1, ge=0, le=0.5, description="Random spread as a fraction of the interval."
    )
    backoff_min: Duration = timedelta(minutes=1)
    backoff_max: Duration = timedelta(hours=6)
    max_item_age: Duration = Field(
        timedelta(hours=24),
        description="On a feed's first poll, older items are recorded without alerting.",
    )
    delivery_interval: Duration = Field(timedelta(seconds=5), description="Outbox delivery tick.")
    delivery_max_attempts: int = Field(8, ge=1)
    shutdown_timeout: Duration = Field(timedelta(seconds=20), description="Drain limit on stop.")

    @field_validator("backoff_max")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v.total_seconds() <= 0:
            raise ValueError("must be positive")
        return v


class LoggingConfig(Model):
    format: Literal["auto", "console", "json"] = Field(
        "auto", description="auto: key=value on a terminal, JSON otherwise."
    )
    level: Literal["debug", "info", "warning", "error"] = "info"


class AppConfig(Model):
    """The whole configuration file."""

    include: tuple[str, ...] = Field(
        (), description="Other YAML files (globs, relative to this file) merged into this one."
    )
    feeds: tuple[FeedConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = (ConsoleSinkConfig(type="console", name="console"),)
    routes: tuple[RouteConfig, ...] = (RouteConfig(sinks=("console",)),)
    storage: StorageConfig = StorageConfig()
    http: HttpConfig = HttpConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _references(self) -> AppConfig:
        """Ids and sink names are unique; routes name only defined sinks and rules.

        Every problem is collected, not just the first. A model validator can raise
        only one error, so a single problem is raised as its own type
        (``REFERENCE_ERRORS``) and several as one ``REFERENCE_PROBLEMS`` error whose
        ``ctx["problems"]`` lists each one as ``{"type", "message", **ctx}``. Every
        problem's ctx names the ``collection`` it is written in, the offending
        ``name`` and its ``loc`` (e.g. ``("routes", 1, "sinks", 0)``), which the
        loader turns into file:line. The checks stay here rather than in the loader
        so that an AppConfig built any other way is held to them too.
        """
        problems = [
            *_duplicates("feeds", "id", "feed id", [f.id for f in self.feeds]),
            *_duplicates("rules", "id", "rule id", [r.id for r in self.rules]),
            *_duplicates("sinks", "name", "sink name", [s.name for s in self.sinks]),
            *_undefined_in_routes(
                self.routes, {s.name for s in self.sinks}, {r.id for r in self.rules}
            ),
        ]
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise PydanticCustomError(
                REFERENCE_PROBLEMS,
                "{count} problems with ids and references: {summary}",
                {
                    "count": len(problems),
                    "summary": "; ".join(p.message() for p in problems),
                    "problems": tuple(
                        {"type": p.type, "message": p.message(), **(p.context or {})}
                        for p in problems
                    ),
                },
            )
        return self

    def secrets(self) -> list[SecretStr]:
        """Every secret value in the config, for the log redactor."""
        return [secret for sink in self.sinks for secret in sink_secrets(sink)]


# Error types AppConfig._references raises; see its docstring.
REFERENCE_ERRORS = frozenset({"duplicate_id", "undefined_sink", "undefined_rule"})
REFERENCE_PROBLEMS = "reference_problems"
_KNOWN_SHOWN = 10  # defined names quoted in an "is not defined" message


def _duplicates(
    collection: str, field: str, what: str, values: list[str]
) -> list[PydanticCustomError]:
    """One duplicate_id error per repeat of a value, located at the repeat."""
    first: dict[str, int] = {}
    problems = []
    for i, value in enumerate(values):
        if value not in first:
            first[value] = i
            continue
        problems.append(
            PydanticCustomError(
                "duplicate_id",
                "duplicate {what} '{name}' (first used by {first}); each must be unique",
                {
                    "collection": collection,
                    "name": value,
                    "loc": (collection, i, field),
                    "what": what,
                    "first": f"{collection}[{first[value]}]",
                },
            )
        )
    return problems


def _undefined_in_routes(
    routes: tuple[RouteConfig, ...], sink_names: set[str], rule_ids: set[str]
) -> list[PydanticCustomError]:
    """undefined_sink / undefined_rule for each name a route lists that nothing defines."""
    problems = []
    for i, route in enumerate(routes):
        for field, kind, names, defined in (
            ("sinks", "sink", route.sinks, sink_names),
            ("rules", "rule", route.rules, rule_ids),
        ):
            for j, name in enumerate(names):
                if name in defined:
                    continue
                problems.append(
                    PydanticCustomError(
                        f"undefined_{kind}",
                        "route names {kind} '{name}', which is not defined ({field}: {known})",
                        {
                            "collection": "routes",
                            "name": name,
                            "loc": ("routes", i, field, j),
                            "kind": kind,
                            "field": field,
                            "defined": tuple(sorted(defined)),
                            "known": _known(defined),
                        },
                    )
                )
    return problems


def _known(names: set[str]) -> str:
    """'a, b, c', 'none', or the first few and how many more."""
    shown = sorted(names)[:_KNOWN_SHOWN]
    more = len(names) - len(shown)
    return (", ".join(shown) or "none") + (f" and {more} more" if more else "")
