"""Source positions, and pydantic ValidationErrors mapped back to them as ConfigIssues.

The loader records where every key path was written (``Doc.positions``);
``validation_issues`` turns each pydantic error into a ConfigIssue at that
file:line:column, with the key path, a message and a hint saying what to write.

Pydantic's ``loc`` is not always a key path: discriminated unions add member
tags (``rules.0.terms.anyy``), so ``_real_path`` keeps only segments that exist
in the data.

Reference problems (duplicate ids, routes naming undefined sinks or rules) are
found by ``AppConfig._references`` at the model's root, where ``loc`` is empty.
They are raised as ``PydanticCustomError``s of the types in ``REFERENCE_ERRORS``
whose ctx carries the offending ``name``, its ``collection`` and its ``loc``;
several at once come as one ``REFERENCE_PROBLEMS`` error listing them in
``ctx["problems"]``, because a model validator can raise only one error. Each
problem becomes its own issue here, located by its ctx ``loc`` (never by
parsing the message). The checks stay in the model, not the loader, so any
AppConfig, however it is built, is held to them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from monitor.config.models import (
    REFERENCE_ERRORS,
    REFERENCE_PROBLEMS,
    SECRET_VALUE_ERROR,
    AppConfig,
)
from monitor.exceptions import ConfigIssue

KeyPath = tuple[str | int, ...]

_TYPE_HINTS = {
    "bool_type": "write true or false, without quotes",
    "bool_parsing": "write true or false, without quotes",
    "int_type": "write a whole number such as 30, without quotes or units",
    "int_parsing": "write a whole number such as 30, without quotes or units",
    "int_from_float": "write a whole number such as 30, without quotes or units",
    "float_type": "write a number such as 0.5, without quotes",
    "float_parsing": "write a number such as 0.5, without quotes",
    "tuple_type": "write a list: one '- item' per line, or [a, b]",
    "union_tag_not_found": "add the 'type' (sinks) or 'kind' (rules) key",
}


@dataclass(frozen=True)
class Pos:
    """Where a key or list item was written; line and column are 1-based."""

    file: str
    line: int | None = None
    column: int | None = None


@dataclass
class Doc:
    """One file's plain data plus the source position of every key path in it."""

    data: dict[str, Any]
    positions: dict[KeyPath, Pos]
    # Values built from ${VAR}: they may be secrets, so errors never echo them.
    interpolated: set[KeyPath] = field(default_factory=set)


def render(kp: KeyPath) -> str:
    """('feeds', 2, 'interval') -> 'feeds[2].interval'."""
    out = ""
    for seg in kp:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else seg)
    return out


def validation_issues(error: ValidationError, doc: Doc) -> list[ConfigIssue]:
    """One issue per pydantic error or reference problem, deduplicated.

    Union members can repeat one error, hence the deduplication.
    """
    issues: list[ConfigIssue] = []
    seen: set[str] = set()
    for err in error.errors():
        is_reference = err["type"] in REFERENCE_ERRORS or err["type"] == REFERENCE_PROBLEMS
        for issue in _reference_issues(err, doc) if is_reference else [_issue(err, doc)]:
            if str(issue) not in seen:
                seen.add(str(issue))
                issues.append(issue)
    return issues


def _issue(err: ErrorDetails, doc: Doc) -> ConfigIssue:
    """Locate one pydantic error in the source and say what to change."""
    kp = _real_path(err["loc"], doc.data, keep_absent=err["type"] == "missing")
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "not a known setting"
    message += _echo(err, kp, doc, message)
    return _at(kp, doc, message, _hint(err, kp, doc.data))


def _reference_issues(err: ErrorDetails, doc: Doc) -> list[ConfigIssue]:
    """One issue per problem AppConfig._references found, each at the value it names."""
    ctx = err.get("ctx") or {}
    if err["type"] == REFERENCE_PROBLEMS:
        problems: list[dict[str, Any]] = list(ctx["problems"])
    else:
        problems = [{"type": err["type"], "message": err["msg"], **ctx}]
    issues = []
    for problem in problems:
        kp = _real_path(tuple(problem["loc"]), doc.data, keep_absent=False)
        issues.append(_at(kp, doc, problem["message"], _reference_hint(problem)))
    return issues


def _reference_hint(problem: Mapping[str, Any]) -> str:
    if problem["type"] == "duplicate_id":
        return f"rename this entry, or remove it if it repeats {problem['first']}"
    close = difflib.get_close_matches(problem["name"], problem["defined"], n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"define it under {problem['field']}:, or name one that is defined"


def _at(kp: KeyPath, doc: Doc, message: str, hint: str) -> ConfigIssue:
    pos = _nearest(kp, doc.positions)
    return ConfigIssue(
        pos.file, message, line=pos.line, column=pos.column, key_path=render(kp), hint=hint
    )


def _real_path(loc: tuple[str | int, ...], data: Any, *, keep_absent: bool) -> KeyPath:
    """Keep only segments that are real keys/indexes; pydantic adds union tags like 'terms'.

    An absent key is kept only at the end of a "missing" error's loc; anywhere
    else an absent name is a discriminator tag.
    """
    kept: list[str | int] = []
    node = data
    for i, seg in enumerate(loc):
        if isinstance(node, dict) and isinstance(seg, str):
            if seg in node:
                node = node[seg]
            elif not (keep_absent and i == len(loc) - 1):
                continue  # a discriminator tag, not a key
            kept.append(seg)
        elif isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node):
            node = node[seg]
            kept.append(seg)
        else:
            break  # inside a scalar: the rest names union members, not keys
    return tuple(kept)


def _nearest(kp: KeyPath, positions: Mapping[KeyPath, Pos]) -> Pos:
    """Position of the deepest prefix of ``kp`` that was written in a file."""
    for n in range(len(kp), -1, -1):
        if kp[:n] in positions:
            return positions[kp[:n]]
    return positions[()]


def _echo(err: ErrorDetails, kp: KeyPath, doc: Doc, message: str) -> str:
    """'; got X' for short scalar inputs not already in the message and not from ${VAR}."""
    value = err.get("input")
    if err["type"] in ("missing", "extra_forbidden", SECRET_VALUE_ERROR) or kp in doc.interpolated:
        return ""  # a secret's value, or one from the environment, is never repeated
    if not isinstance(value, str | int | float) or len(repr(value)) > 60 or repr(value) in message:
        return ""
    return f"; got {value!r}"


def _hint(err: ErrorDetails, kp: KeyPath, data: Mapping[str, Any]) -> str:
    """The fix, in YAML terms: pydantic's messages say what is wrong, not what to write."""
    kind = err["type"]
    if kind == "missing" and kp:
        return f"add {kp[-1]!r}"
    if kind == "extra_forbidden" and kp:
        return _unknown_key_hint(str(kp[-1]), _model_at(kp[:-1], data))
    return _TYPE_HINTS.get(kind, "")


def _unknown_key_hint(key: str, model: type[BaseModel] | None) -> str:
    """Most unknown keys are typos, so suggest the nearest field before listing them all."""
    if model is None:
        return "remove it"
    names = list(model.model_fields)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    return f"remove it; allowed keys: {', '.join(names)}"


def _model_at(kp: KeyPath, data: Any) -> type[BaseModel] | None:
    """The model class that validated the mapping at ``kp``, picking union members by tag."""
    candidates: list[type[BaseModel]] = [AppConfig]
    node = data
    for seg in kp:
        if isinstance(seg, int):
            node = node[seg] if isinstance(node, list) and seg < len(node) else None
            continue
        model = _choose(candidates, node)
        if model is None or seg not in model.model_fields:
            return None
        candidates = _models_in(model.model_fields[seg].annotation)
        node = node.get(seg) if isinstance(node, dict) else None
    return _choose(candidates, node)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every BaseModel class inside a type such as tuple[Annotated[A | B, ...], ...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _choose(candidates: list[type[BaseModel]], node: Any) -> type[BaseModel] | None:
    """The one candidate, or the one whose Literal tag field matches the mapping's value."""
    if len(candidates) == 1:
        return candidates[0]
    if not isinstance(node, dict):
        return None
    for model in candidates:
        for name, info in model.model_fields.items():
            if get_origin(info.annotation) is Literal and node.get(name) in get_args(
                info.annotation
            ):
                return model
    return None
