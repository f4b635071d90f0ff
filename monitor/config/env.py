"""The environment overlay (12-factor): ``MONITOR_SECTION__KEY=value`` over the YAML.

Rules, applied by the loader after includes and before validation:

* A variable ``MONITOR_<SECTION>__<KEY>[__<SUBKEY>...]`` sets ``section.key[.subkey]``;
  names are case-insensitive (``MONITOR_SCHEDULER__INTERVAL=2m``,
  ``MONITOR_HTTP__TIMEOUT__TOTAL=90s``, ``MONITOR_SERVER__HOST=0.0.0.0``). It wins
  over the file. Values are strings, read as YAML values would be: ``30``, ``true``,
  ``5m``.
* Sections are the top-level settings that are mappings (storage, http, scheduler,
  logging, server, ...). Lists (feeds, rules, sinks, routes, include) come from YAML
  only: ``${VAR}`` inside the file covers their values.
* ``MONITOR_LOG_FORMAT`` is shorthand for ``MONITOR_LOGGING__FORMAT`` (which wins
  when both are set).
* Other ``MONITOR_*`` names without ``__`` (``MONITOR_CONFIG``, ``MONITOR_DB``) are
  not settings and are left alone.

Errors name the variable; the loader does not echo its value (a value from the
environment may be a secret), though a validator's own message may quote a bad
duration or the like. This follows
pydantic-settings' conventions (prefix, ``__`` nesting, case-insensitive names)
without its ``BaseSettings`` root, which would bypass the loader's positions
and its one-error-list-for-everything reporting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from monitor.config.issues import Doc, KeyPath, Pos, render
from monitor.config.models import AppConfig, ServerConfig
from monitor.exceptions import ConfigIssue

PREFIX = "MONITOR_"
NESTING = "__"
SHORTHANDS = {"MONITOR_LOG_FORMAT": ("logging", "format")}


def sections() -> list[str]:
    """The top-level settings the environment may set: those that are models."""
    return [
        name
        for name, info in AppConfig.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    ]


def variable(kp: KeyPath) -> str:
    """('scheduler', 'interval') -> 'MONITOR_SCHEDULER__INTERVAL'."""
    return PREFIX + NESTING.join(str(seg).upper() for seg in kp)


def settings(env: Mapping[str, str]) -> list[tuple[str, KeyPath]]:
    """(variable, key path) for each overlay variable set in ``env``, in name order."""
    found: dict[KeyPath, str] = {}
    shorthand: dict[KeyPath, str] = {}
    for name in sorted(env):
        upper = name.upper()
        if upper in SHORTHANDS:
            shorthand[SHORTHANDS[upper]] = name
        elif upper.startswith(PREFIX) and NESTING in upper[len(PREFIX) :]:
            found[tuple(seg.lower() for seg in upper[len(PREFIX) :].split(NESTING))] = name
    return [(name, kp) for kp, name in {**shorthand, **found}.items()]


def overlay(doc: Doc, env: Mapping[str, str]) -> list[ConfigIssue]:
    """Set each overlay variable's value in ``doc`` (positions name the variable)."""
    issues: list[ConfigIssue] = []
    allowed = sections()
    for name, kp in settings(env):
        where = Pos(f"environment variable {name}")
        if any(not seg for seg in kp):
            hint = "write MONITOR_SECTION__KEY, e.g. MONITOR_SCHEDULER__INTERVAL"
            issues.append(_issue(where, kp, "an empty name between '__'", hint))
        elif kp[0] not in allowed or len(kp) < 2:
            hint = (
                f"sections: {', '.join(allowed)}; lists (feeds, rules, sinks, routes) "
                "come from the YAML file only"
            )
            issues.append(_issue(where, kp, f"{kp[0]!r} is not a settings section", hint))
        elif not _put(doc.data, kp, env[name]):
            issues.append(
                _issue(where, kp, f"{render(kp[:-1])} in the file is not a mapping", "fix the file")
            )
        else:
            doc.positions[kp] = where
            doc.interpolated.add(kp)  # from the environment: errors never echo the value
    return issues


def server_from_env(env: Mapping[str, str] | None = None) -> ServerConfig:
    """The server settings from MONITOR_SERVER__* alone (defaults for the rest, or for all
    when they are invalid): ``monitor health`` without a usable configuration file."""
    env = os.environ if env is None else env
    values = {kp[1]: env[name] for name, kp in settings(env) if len(kp) == 2 and kp[0] == "server"}
    try:
        return ServerConfig.model_validate(values)
    except ValidationError:
        return ServerConfig()


def _put(data: dict[str, Any], kp: KeyPath, value: str) -> bool:
    node = data
    for seg in kp[:-1]:
        child = node.setdefault(str(seg), {})
        if not isinstance(child, dict):
            return False
        node = child
    node[str(kp[-1])] = value
    return True


def _issue(where: Pos, kp: KeyPath, message: str, hint: str) -> ConfigIssue:
    return ConfigIssue(where.file, message, key_path=render(kp), hint=hint)
