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
from urllib.parse import parse_qsl, urlsplit

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
    enabled: bool = Field(
        True, description="false keeps the feed (and its state) but stops polling it."
    )


class ConsoleSinkConfig(Model):
    type: Literal["console"] = Field(description="Selects this sink type: console.")
    name: str = Field(pattern=_ID, description="Unique sink name that routes refer to.")


class FileSinkConfig(Model):
    type: Literal["file"] = Field(description="Selects this sink type: file.")
    name: str = Field(pattern=_ID, description="Unique sink name that routes refer to.")
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
    name: str = Field(pattern=_ID, description="Unique sink name that routes refer to.")
    timeout: Duration = Field(timedelta(seconds=10), description="Whole request, answer included.")


class SlackSinkConfig(HttpSinkBase):
    """A Slack incoming webhook; the message is Block Kit with a plain-text fallback."""

    type: Literal["slack"] = Field(description="Selects this sink type: slack.")
    webhook_url: SecretStr = Field(description="https://hooks.slack.com/services/...; a secret.")
    channel: str | None = Field(None, description="Override the webhook's channel, if allowed.")
    username: str | None = Field(
        None, description="Override the webhook's display name, if allowed."
    )
    icon_emoji: str | None = Field(None, description="e.g. ':rotating_light:'.")
    template: Path | None = Field(
        None, description="Jinja2 file for the plain-text fallback (`text`); default built in."
    )
    min_interval: Duration = Field(
        timedelta(seconds=1),
        description="Least time between two messages: Slack accepts about one per second "
        "per webhook, so alerts queue rather than hit 429s.",
    )

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: SecretStr) -> SecretStr:
        return _http_url(v, "webhook_url")


class WebhookSinkConfig(HttpSinkBase):
    """POSTs the alert JSON, signed with HMAC-SHA256 when ``secret`` is set."""

    type: Literal["webhook"] = Field(description="Selects this sink type: webhook.")
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

    type: Literal["email"] = Field(description="Selects this sink type: email.")
    name: str = Field(pattern=_ID, description="Unique sink name that routes refer to.")
    host: str = Field(min_length=1, description="SMTP server host name.")
    port: int | None = Field(
        None, ge=1, le=65535, description="Default: 587 starttls, 465 tls, 25 none."
    )
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (port 587), tls (465) or none (25; refuses a password)."
    )
    username: str | None = Field(None, description="SMTP login; set together with password.")
    password: SecretStr | None = Field(
        None, description="SMTP password; a secret (write it as ${VAR})."
    )
    ca_file: Path | None = Field(
        None, description="PEM bundle to verify the server with, instead of the system's."
    )
    from_addr: str = Field(description="Sender; its domain names the Message-IDs.")
    to: tuple[str, ...] = Field(
        min_length=1, description="Recipients: addresses or 'Name <address>'."
    )
    subject_template: str = Field(
        "[{{ severity_upper }}] {{ title }}",
        description="Jinja2 text; variables as in the e-mail templates.",
    )
    list_id: str | None = Field(
        None, description="List-Id, e.g. 'Ukraine desk <ukraine.alerts.example.org>'."
    )
    text_template: Path | None = Field(
        None, description="Jinja2 file for the plain-text part; default built in."
    )
    html_template: Path | None = Field(
        None, description="Jinja2 file for the HTML part (autoescaped); default built in."
    )
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

    type: Literal["apprise"] = Field(description="Selects this sink type: apprise.")
    name: str = Field(pattern=_ID, description="Unique sink name that routes refer to.")
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

    sinks: tuple[str, ...] = Field(
        min_length=1, description="Names of the sinks that receive the matching alerts."
    )
    min_severity: SeverityName = Field(
        "info", description="Only alerts of this severity or higher."
    )
    rules: tuple[str, ...] = Field((), description="Only these rule ids; empty means any rule.")
    feed_tags: tuple[str, ...] = Field(
        (), description="Only items of feeds with one of these tags."
    )
    default: bool = Field(
        False, description="Used only for alerts that no other (non-default) route matched."
    )
    digest: Duration | None = Field(
        None,
        description="Batch this route's alerts into one digest message every this long "
        "(e.g. 30m) instead of sending each at once.",
    )
    min_sources: int = Field(
        1,
        ge=1,
        description="Alert only once this many distinct feeds report the story; the alert "
        "is created when the last of them arrives and lists them all.",
    )
    health: bool = Field(
        False,
        description="An ops route: receives only source-health alerts (failing or silent "
        "feeds, dying sinks; rule ids health:*), and no news alerts.",
    )

    @property
    def severity(self) -> Severity:
        return Severity.parse(self.min_severity)

    @property
    def key(self) -> str:
        """Names the route in the store (digest queue, stories' alerted routes); stable
        when routes are reordered."""
        parts = [
            "health" if self.health else "",
            "default" if self.default else "",
            ",".join(self.sinks),
            self.min_severity,
            ",".join(self.rules),
            ",".join(self.feed_tags),
            f"digest={int(self.digest.total_seconds())}" if self.digest else "",
            f"k={self.min_sources}" if self.min_sources > 1 else "",
        ]
        return "|".join(parts)

    @model_validator(mode="after")
    def _modes(self) -> RouteConfig:
        if self.health and self.default:
            raise ValueError("a route is either `health: true` or `default: true`, not both")
        if self.health and (self.rules or self.feed_tags or self.min_sources > 1):
            raise ValueError(
                "a health route takes only sinks, min_severity and digest; remove rules, "
                "feed_tags and min_sources"
            )
        if self.digest is not None and self.digest <= timedelta(0):
            raise ValueError("digest must be longer than zero, e.g. 30m")
        return self


class StorageConfig(Model):
    path: Path = Field(Path("data/monitor.db"), description="SQLite database file.")
    retention: Duration = Field(timedelta(days=30), description="Items older than this are pruned.")
    commit_delay: Duration = Field(
        timedelta(seconds=1),
        description=(
            "Polls' writes are committed together this long after the first (0: each at "
            "once). A crash loses at most this much polling, which the next poll redoes."
        ),
    )


class TimeoutConfig(Model):
    connect: Duration = Field(timedelta(seconds=10), description="Establishing the connection.")
    read: Duration = Field(
        timedelta(seconds=30), description="Waiting for each chunk of the answer."
    )
    total: Duration = Field(timedelta(seconds=60), description="Whole request, body included.")


class HttpConfig(Model):
    user_agent: str = Field(
        "",
        description="Defaults to 'media-monitor/VERSION (+project URL)'; say who you are.",
    )
    timeout: TimeoutConfig = Field(
        TimeoutConfig(), description="Connect, read and whole-request timeouts."
    )
    max_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Cap on a (decoded) body.")
    max_redirects: int = Field(
        5, ge=0, le=20, description="Most redirects followed; more is an error."
    )
    per_host_limit: int = Field(4, ge=1, description="Concurrent requests to one host.")
    global_limit: int = Field(64, ge=1, description="Concurrent requests in all.")
    workers: Annotated[int, Field(ge=0, le=32)] | Literal["auto"] = Field(
        "auto",
        description=(
            "Processes that fetch and parse feeds on other cores (0: all in the main "
            "process). auto: none below 200 feeds or on one core, else one per core but "
            "one, at most 4."
        ),
    )


class HealthConfig(Model):
    """When feeds and sinks count as unhealthy (alerts go to routes with ``health: true``)."""

    check_every: Duration = Field(timedelta(minutes=5), description="How often to check.")
    feed_failing_for: Duration = Field(
        timedelta(hours=1), description="A feed failing (every poll an error) this long."
    )
    silent_factor: float = Field(
        5, gt=1, description="A feed silent this many times its median gap between items..."
    )
    silent_min: Duration = Field(timedelta(hours=6), description="...and at least this long.")
    silent_items: int = Field(
        5, ge=3, description="Recent items needed to judge a feed's usual gap."
    )
    sink_dead: int = Field(
        1, ge=1, description="A sink with this many dead deliveries within sink_window."
    )
    sink_window: Duration = Field(timedelta(hours=1), description="See sink_dead.")


class SchedulerConfig(Model):
    interval: Duration = Field(timedelta(minutes=5), description="Default poll interval.")
    jitter: float = Field(
        0.1, ge=0, le=0.5, description="Random spread as a fraction of the interval."
    )
    backoff_min: Duration = Field(
        timedelta(minutes=1), description="First retry delay after a failure (doubles each time)."
    )
    backoff_max: Duration = Field(
        timedelta(hours=6), description="Longest retry delay after failures."
    )
    max_item_age: Duration = Field(
        timedelta(hours=24),
        description="On a feed's first poll, older items are recorded without alerting.",
    )
    delivery_interval: Duration = Field(timedelta(seconds=5), description="Outbox delivery tick.")
    delivery_max_attempts: int = Field(8, ge=1, description="Attempts before a delivery is dead.")
    shutdown_timeout: Duration = Field(timedelta(seconds=20), description="Drain limit on stop.")
    story_window: Duration = Field(
        timedelta(hours=24),
        description="A report joins a story (near-duplicate title) first alerted within this "
        "long; later it starts a new one.",
    )
    story_similarity: int = Field(
        70,
        ge=50,
        le=101,
        description="How alike two normalised titles must be (0-100, rapidfuzz "
        "token_set_ratio) to be one story; 101 turns clustering off.",
    )
    health: HealthConfig = Field(
        default_factory=lambda: HealthConfig(),
        description="Thresholds of the source-health alerts sent to `health: true` routes.",
    )

    @field_validator("backoff_max")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v.total_seconds() <= 0:
            raise ValueError("must be positive")
        return v


class ServerConfig(Model):
    """The daemon's HTTP server: /healthz, /readyz and /metrics (Prometheus)."""

    enabled: bool = Field(True, description="Serve the endpoints while `monitor run` runs.")
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address to listen on; 0.0.0.0 for every interface (the container "
        "image sets it with MONITOR_SERVER__HOST).",
    )
    port: int = Field(
        8080, ge=0, le=65535, description="TCP port; 0 picks a free one (logged at start)."
    )


class LoggingConfig(Model):
    format: Literal["auto", "console", "json"] = Field(
        "auto", description="auto: key=value on a terminal, JSON otherwise."
    )
    level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level logged."
    )


class AppConfig(Model):
    """The whole configuration file."""

    include: tuple[str, ...] = Field(
        (), description="Other YAML files (globs, relative to this file) merged into this one."
    )
    feeds: tuple[FeedConfig, ...] = Field((), description="The feeds to poll (see `feeds[]`).")
    rules: tuple[RuleConfig, ...] = Field(
        (), description="The rules items are matched against (see `rules[]`)."
    )
    sinks: tuple[SinkConfig, ...] = Field(
        (ConsoleSinkConfig(type="console", name="console"),),
        description="Where alerts can go, each with a unique name (see `sinks[]`).",
    )
    routes: tuple[RouteConfig, ...] = Field(
        (RouteConfig(sinks=("console",)),),
        description="Which alerts go to which sinks (see `routes[]`).",
    )
    storage: StorageConfig = Field(
        StorageConfig(), description="The SQLite database: feed state, items, the outbox."
    )
    http: HttpConfig = Field(
        HttpConfig(), description="How feeds are fetched: timeouts, limits, redirects."
    )
    scheduler: SchedulerConfig = Field(
        SchedulerConfig(), description="Poll intervals, backoff, delivery and shutdown timing."
    )
    logging: LoggingConfig = Field(LoggingConfig(), description="Log format and level.")
    server: ServerConfig = Field(
        ServerConfig(), description="The HTTP server for /healthz, /readyz and /metrics."
    )

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
        """Every secret value in the config, for the log redactor: the sinks' secrets and
        credentials in feed URLs (a password, or a token-like query parameter)."""
        feed_secrets = [SecretStr(v) for feed in self.feeds for v in url_credentials(feed.url)]
        return [secret for sink in self.sinks for secret in sink_secrets(sink)] + feed_secrets


_CREDENTIAL_PARAMS = re.compile(
    r"(api[_-]?key|key|token|access[_-]?token|secret|password|passwd|pass|auth|sig|signature)$",
    re.IGNORECASE,
)


def url_credentials(url: str) -> list[str]:
    """Values in a URL that are credentials: the userinfo password and the values of
    query parameters named like keys or tokens (paid wire feeds carry them this way)."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if v and _CREDENTIAL_PARAMS.search(k)]
    return found


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
