"""The configuration reference, generated from the models: ``monitor schema --markdown``.

``fields()`` walks AppConfig and every model inside it (list items, mapping
values, each member of the sink and rule unions) and returns one ``FieldDoc``
per key: its path, type, default and description. ``reference()`` renders them
as the Markdown of ``docs/configuration.md``; ``tests/test_docs.py`` fails when a
field has no description or when that file is not what this renders.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from monitor.config import env
from monitor.config.models import AppConfig

_SCALARS = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    timedelta: "duration",
    Path: "path",
    SecretStr: "secret string",
}
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


@dataclass(frozen=True)
class Section:
    """One model at one place in the file: ``scheduler``, ``sinks[]`` (type: webhook).

    A union (sinks, rules) has one section for the keys every member shares, its
    discriminator first (``members`` set), then one per member with the rest (``tag``).
    """

    path: str  # "" for the top level
    model: type[BaseModel]
    tag: str = ""  # "type: webhook" for a union member
    env_path: tuple[str, ...] | None = None  # key path the environment can set, if any
    members: tuple[type[BaseModel], ...] = ()  # the union's members, in its shared section
    skip: frozenset[str] = frozenset()  # a member's keys its union's shared section lists

    def own_fields(self) -> list[tuple[str, FieldInfo]]:
        items = list(self.model.model_fields.items())
        if self.members:
            shared = _shared(self.members)
            return [(n, info) for n, info in items if n in shared]
        return [(n, info) for n, info in items if n not in self.skip]


@dataclass(frozen=True)
class FieldDoc:
    section: Section
    name: str
    type: str
    default: str
    description: str

    @property
    def path(self) -> str:
        return f"{self.section.path}.{self.name}" if self.section.path else self.name


def sections() -> list[Section]:
    """Every model in the configuration, breadth first in field order."""
    found: list[Section] = []
    queue = [Section("", AppConfig, env_path=())]
    while queue:
        section = queue.pop(0)
        found.append(section)
        for name, info in section.own_fields():
            queue.extend(_nested(section, name, info.annotation))
    return found


def fields() -> list[FieldDoc]:
    """One entry per key of every section, in order."""
    docs = []
    for section in sections():
        if section.members:
            docs.append(_discriminator_doc(section))
        docs += [
            FieldDoc(section, name, _type(info.annotation), _default(info), info.description or "")
            for name, info in section.own_fields()
        ]
    return docs


def _discriminator_doc(section: Section) -> FieldDoc:
    tags = [_tag(m).split(": ") for m in section.members]
    key = tags[0][0]
    what = section.path.rstrip("[]").rsplit(".", 1)[-1].removesuffix("s")
    return FieldDoc(
        section,
        key,
        " or ".join(json.dumps(value) for _, value in tags),
        "required",
        f"Which {what} {key} this is; each has the keys below as well as its own.",
    )


def _nested(parent: Section, name: str, annotation: Any) -> list[Section]:
    """The sections a field's type opens: a model, list items, mapping values, union members."""
    path = f"{parent.path}.{name}" if parent.path else name
    env_path = None if parent.env_path is None else (*parent.env_path, name)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _nested(parent, name, args[0])
    if origin is tuple or origin is list:
        return _members(path + "[]", args[0])
    if origin is dict:
        return _members(path + ".<name>", args[1])
    if origin in (Union, types.UnionType):
        return [s for arg in args for s in _nested(parent, name, arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [Section(path, annotation, env_path=env_path)]
    return []


def _members(path: str, annotation: Any) -> list[Section]:
    """Sections for the models a list item or mapping value may be (tagged if several)."""
    models = _models(annotation)
    if len(models) <= 1:
        return [Section(path, m) for m in models]
    skip = frozenset({_tag(models[0]).split(": ")[0], *_shared(models)})
    members = [Section(path, m, tag=_tag(m), skip=skip) for m in models]
    return [Section(path, models[0], members=tuple(models)), *members]


def _shared(models: tuple[type[BaseModel], ...] | list[type[BaseModel]]) -> list[str]:
    """Keys every member has alike (same type and default), the discriminator aside."""
    first = models[0].model_fields
    tag = _tag(models[0]).split(": ")[0]
    return [
        name
        for name, info in first.items()
        if name != tag
        and all(
            name in m.model_fields
            and m.model_fields[name].annotation == info.annotation
            and m.model_fields[name].default == info.default
            for m in models[1:]
        )
    ]


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _tag(model: type[BaseModel]) -> str:
    """'type: webhook' from the member's Literal discriminator field."""
    for name, info in model.model_fields.items():
        if get_origin(info.annotation) is Literal and name in ("type", "kind"):
            return f"{name}: {get_args(info.annotation)[0]}"
    return model.__name__


def _type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type(args[0])
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin is tuple or origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"mapping of {_type(args[0])} to {_type(args[1])}"
    if origin in (Union, types.UnionType):
        models = _models(annotation)
        if len(models) > 1:
            return "one of: " + ", ".join(_tag(m).split(": ")[-1] for m in models)
        parts = [_type(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return _SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel) and not isinstance(value, list | tuple):
        return "see below"
    return f"`{_value(value)}`"


def _value(value: Any) -> str:
    if isinstance(value, timedelta):
        return duration(value)
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json", exclude_defaults=True))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Path):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def duration(value: timedelta) -> str:
    """timedelta -> the short form a file would use: 5m, 24h, 30d, 0.5s."""
    seconds = value.total_seconds()
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# --- Markdown -----------------------------------------------------------------------

HEADER = """\
# Configuration reference

<!-- Generated from monitor/config/*.py by `monitor schema --markdown`; do not edit.
     tests/test_docs.py fails when this file is out of date. -->

Every key of the YAML configuration, section by section. Unknown keys are
errors. Durations are seconds (`300`) or a number with a unit (`90s`, `5m`,
`2h`, `1d`). Any string value may use `${VAR}` or `${VAR:-default}` to read the
environment; secrets are best written that way.

## Environment overlay

Every setting in a section (not the lists) can also be set from the
environment, which wins over the file: `MONITOR_` + the key path in capitals,
with `__` between the parts. For example `MONITOR_STORAGE__PATH=/data/monitor.db`,
`MONITOR_SCHEDULER__INTERVAL=2m`, `MONITOR_HTTP__TIMEOUT__TOTAL=90s`,
`MONITOR_SERVER__HOST=0.0.0.0`, `MONITOR_LOGGING__FORMAT=json`.

- Lists (`feeds`, `rules`, `sinks`, `routes`, `include`) come from YAML only.
- `MONITOR_LOG_FORMAT` is shorthand for `MONITOR_LOGGING__FORMAT` (which wins
  if both are set).
- `MONITOR_*` names without `__` (`MONITOR_CONFIG`, `MONITOR_DB`) are not
  settings and are ignored here; `MONITOR_CONFIG` names the configuration file.
- A bad value is reported with the variable's name, together with every other
  problem in the configuration.
"""


def reference() -> str:
    """The whole of docs/configuration.md."""
    by_section: dict[Section, list[FieldDoc]] = {s: [] for s in sections()}
    for doc in fields():
        by_section[doc.section].append(doc)
    parts = [HEADER]
    for section, docs in by_section.items():
        parts.append(_section(section, docs))
    return "\n".join(parts)


def _section(section: Section, docs: list[FieldDoc]) -> str:
    title = f"`{section.path}`" if section.path else "Top level"
    if section.tag:
        title += f" with `{section.tag}`"
    elif section.members:
        title += ": keys of every kind"
    lines = [f"## {title}", ""]
    summary = (section.model.__doc__ or "").strip().split("\n\n")[0]
    if summary and section.model is not AppConfig and not section.members:
        lines += [" ".join(summary.split()), ""]
    if not docs:
        return "\n".join([*lines, "No keys besides the shared ones.", ""])
    if section.env_path:
        example = env.variable((*section.env_path, docs[0].name))
        lines += [f"Environment: `{env.variable(section.env_path)}__<KEY>`, e.g. `{example}`.", ""]
    lines += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for doc in docs:
        cells = (f"`{doc.path}`", doc.type, doc.default, doc.description)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
