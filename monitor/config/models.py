"""Pydantic models of the configuration file.

Every model forbids unknown keys and is frozen. Durations accept seconds
(``300``) or a short form (``90s``, ``5m``, ``2h``, ``1d``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor.config.base import ID_PATTERN as _ID
from monitor.config.base import Model, SeverityName
from monitor.config.rule_models import RuleConfig
from monitor.types import Severity

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> timedelta:
    """``300`` / ``"90s"`` / ``"5m"`` / ``"2h"`` / ``"1d"`` -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration, not a boolean")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    raise ValueError(f"{value!r} is not a duration; write seconds (300) or 90s, 5m, 2h, 1d")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda td: f"{td.total_seconds():g}s", return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)?\s*$"},
            ],
            "description": "seconds, or a number with a unit: 90s, 5m, 2h, 1d",
        }
    ),
]


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


SinkConfig = Annotated[ConsoleSinkConfig | FileSinkConfig, Field(discriminator="type")]


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
        return []


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
