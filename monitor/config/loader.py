"""YAML + environment -> AppConfig, with errors that name file, line and key path.

The flow, one file at a time::

    read text -> ruamel round-trip parse (keeps line/column) -> plain data
      + {key path: (file, line, column)} -> ${VAR} interpolation -> include:
      (lists appended, positions re-keyed) -> MONITOR_SECTION__KEY overlay
      (monitor.config.env) -> AppConfig.model_validate
      -> ValidationError mapped back to positions (monitor.config.issues)
      -> ConfigError(issues)

Problems found while reading (syntax, missing variables, includes) are all
collected and reported together; validation is skipped when there are any,
because the data it would see is incomplete and its complaints misleading.

The parse is pure Python, a third of a second for a thousand feeds, and a good
part of it is the round-trip scanner collecting comments, which a config never
needs. So a load first parses with ruamel's plain scanner and parser feeding the
same round-trip constructor: the same data and the same positions, a fifth less
time (the one difference is tags, which the plain parser expands: a file with a
``!`` is parsed round-trip anyway). A file the plain parser cannot read goes to
the round-trip one, which decides, so every syntax error is found, placed and
worded exactly as that parser has it (and every other error is placed alike: the
positions are the same).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.parser import Parser
from ruamel.yaml.scanner import Scanner

from monitor.config import env as env_overlay
from monitor.config.issues import Doc, KeyPath, Pos, render, validation_issues
from monitor.config.models import AppConfig
from monitor.exceptions import ConfigError, ConfigIssue

__all__ = ["KeyPath", "Pos", "config_files", "json_schema", "load_config", "summarize"]

_LIST_KEYS = ("feeds", "rules", "sinks", "routes")
_MAGIC = re.compile(r"[*?\[]")
_REF = re.compile(r"\$\$\{|\$\{(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\})?")


def load_config(path: Path, env: Mapping[str, str] | None = None) -> AppConfig:
    """Load, interpolate, include and validate ``path``; raise ConfigError listing every issue."""
    env = os.environ if env is None else env
    loader = _Loader(env, fast=True)
    doc = loader.load(Path(path), origin=None, top=True)
    if loader.issues or doc is None:
        raise ConfigError(loader.issues)
    # A bad variable is left out of the data, which stays complete: validate it anyway.
    issues = env_overlay.overlay(doc, env)
    try:
        config = AppConfig.model_validate(doc.data)
    except ValidationError as e:
        raise ConfigError(issues + validation_issues(e, doc)) from e
    if issues:
        raise ConfigError(issues)
    return config


def config_files(path: Path, env: Mapping[str, str] | None = None) -> list[Path]:
    """``path`` and every file it includes, as far as they can be read (for ``--watch``)."""
    loader = _Loader(os.environ if env is None else env, fast=True)
    loader.load(Path(path), origin=None, top=True)
    return list(dict.fromkeys(loader.files))


class _Loader:
    """Reads a file and its includes, collecting issues instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str], *, fast: bool) -> None:
        self.env = env
        self.fast = fast
        self.issues: list[ConfigIssue] = []
        self.stack: list[Path] = []
        self.files: list[Path] = []  # every file read or tried, resolved

    def issue(self, pos: Pos, message: str, key_path: KeyPath = (), hint: str = "") -> None:
        self.issues.append(
            ConfigIssue(
                pos.file,
                message,
                line=pos.line,
                column=pos.column,
                key_path=render(key_path),
                hint=hint,
            )
        )

    def load(self, path: Path, origin: Pos | None, *, top: bool) -> Doc | None:
        """One file and, recursively, what it includes; None when it cannot be read at all."""
        root = self.parse(path, origin)
        if root is None:
            return None
        doc = Doc({}, {(): Pos(str(path))})
        doc.data = self.convert(root, str(path), (), doc)
        if not top:
            self.check_included_keys(doc)
        self.stack.append(path.resolve())
        try:
            self.include(doc, path.parent)
        finally:
            self.stack.pop()
        return doc

    def parse(self, path: Path, origin: Pos | None) -> CommentedMap | None:
        """Text -> round-trip mapping; empty -> {}; any failure -> an issue and None."""
        where = origin or Pos(str(path))
        self.files.append(path.resolve())
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            what = f"included file {str(path)!r}" if origin else "config file"
            self.issue(where, f"cannot read {what}: {reason}")
            return None
        try:
            root = _parse_yaml(text, fast=self.fast)
        except YAMLError as e:
            self.issues.append(_yaml_issue(str(path), e))
            return None
        if root is None:
            return CommentedMap()
        if not isinstance(root, CommentedMap):
            kind = "a list" if isinstance(root, CommentedSeq) else "a single value"
            self.issue(
                Pos(str(path), 1, 1),
                f"the top level must be a mapping of keys (feeds:, rules:, ...), not {kind}",
            )
            return None
        return root

    def convert(self, node: Any, file: str, kp: KeyPath, doc: Doc) -> Any:
        """Round-trip node -> plain Python, recording positions and interpolating strings."""
        if isinstance(node, CommentedMap):
            out: dict[str, Any] = {}
            for key, value in node.items():
                sub = (*kp, str(key))
                doc.positions[sub] = _lc_pos(file, node.lc.data.get(key), doc.positions[kp])
                out[str(key)] = self.convert(value, file, sub, doc)
            return out
        if isinstance(node, CommentedSeq):
            items = []
            for i, value in enumerate(node):
                doc.positions[(*kp, i)] = _lc_pos(file, node.lc.data.get(i), doc.positions[kp])
                items.append(self.convert(value, file, (*kp, i), doc))
            return items
        if isinstance(node, bool):
            return bool(node)
        if isinstance(node, int | float):
            return _plain_number(node)
        if isinstance(node, str):
            return self.interpolate(str(node), kp, doc)
        return node

    def interpolate(self, text: str, kp: KeyPath, doc: Doc) -> str:
        """Expand ``${VAR}`` and ``${VAR:-default}``; ``$${`` is a literal ``${``.

        As in the shell, ``:-`` also applies when VAR is set but empty. The result
        is always a string: pydantic's lax mode turns "30" into 30 where a
        number is expected, and keeps it a string where one is.
        """

        def expand(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            name, default = m.group("name"), m.group("default")
            doc.interpolated.add(kp)
            if name is None:
                self.issue(
                    doc.positions[kp],
                    "malformed ${...} reference",
                    kp,
                    "write ${NAME} or ${NAME:-default}; write $${ for a literal ${",
                )
                return ""
            value = self.env.get(name)
            if value is None or (value == "" and default is not None):
                if default is not None:
                    return default
                self.issue(
                    doc.positions[kp],
                    f"environment variable {name!r} is not set",
                    kp,
                    f"set {name} or write ${{{name}:-default}}",
                )
                return ""
            return value

        return _REF.sub(expand, text)

    def check_included_keys(self, doc: Doc) -> None:
        """Included files add list items only; settings belong in the main file."""
        for key, value in doc.data.items():
            if key not in (*_LIST_KEYS, "include"):
                self.issue(
                    doc.positions[(key,)],
                    f"{key!r} cannot be set in an included file",
                    (key,),
                    "only feeds, rules, sinks, routes and include may appear here; "
                    "move it to the main file",
                )
            elif key != "include" and not isinstance(value, list):
                self.issue(doc.positions[(key,)], "must be a list", (key,), "write '- item' lines")

    def include(self, doc: Doc, base: Path) -> None:
        """Resolve ``include:`` and append each included file's lists, in order."""
        patterns = self.include_patterns(doc)
        for i, pattern in enumerate(patterns):
            pos = doc.positions.get(("include", i), doc.positions.get(("include",), Pos("")))
            for path in self.expand(pattern, base, pos):
                if path.resolve() in self.stack:
                    chain = " -> ".join(p.name for p in (*self.stack, path.resolve()))
                    self.issue(pos, f"include cycle: {chain}", ("include",), "remove one include")
                    continue
                sub = self.load(path, pos, top=False)
                if sub is not None:
                    _merge(doc, sub)

    def include_patterns(self, doc: Doc) -> list[str]:
        """``include:`` as a list of strings (a single string is allowed); stored back as a list."""
        raw = doc.data.get("include", [])
        if isinstance(raw, str):
            raw = [raw]
            doc.positions[("include", 0)] = doc.positions[("include",)]
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            self.issue(
                doc.positions[("include",)],
                "include must be a path or a list of paths",
                ("include",),
                "write include: rules/*.yaml or one '- path' per line",
            )
            raw = []
        if "include" in doc.data:
            doc.data["include"] = raw
        return list(raw)

    def expand(self, pattern: str, base: Path, pos: Pos) -> list[Path]:
        """Files a path or glob names, relative to the including file; none found is an issue."""
        if not _MAGIC.search(pattern):
            path = base / pattern
            if path.is_file():
                return [path]
            self.issue(pos, f"included file {pattern!r} does not exist", ("include",), _rel(base))
            return []
        p = Path(pattern)
        root, rel = (
            (Path(p.anchor), str(p.relative_to(p.anchor))) if p.is_absolute() else (base, pattern)
        )
        found = sorted(f for f in root.glob(rel) if f.is_file())
        if not found:
            self.issue(pos, f"include {pattern!r} matches no file", ("include",), _rel(base))
        return found


def _parse_yaml(text: str, *, fast: bool) -> Any:
    """ruamel's round-trip load of ``text``; ``fast``: fed by its plain scanner and parser
    where they can (see the module doc). Raises YAMLError as the round-trip parser does."""
    if fast and "!" not in text:
        yaml = YAML(typ="rt")
        yaml.Scanner, yaml.Parser = Scanner, Parser
        with contextlib.suppress(Exception):  # whatever it trips on, the round-trip one decides
            return yaml.load(text)
    return YAML(typ="rt").load(text)


def _rel(base: Path) -> str:
    return f"paths are relative to the including file's directory, {str(base) or '.'!r}"


def _plain_number(node: int | float) -> int | float:
    """ruamel's ScalarInt/ScalarFloat -> int/float, so nothing ruamel leaks past the loader."""
    return int(node) if isinstance(node, int) else float(node)


def _lc_pos(file: str, lc: list[int] | None, fallback: Pos) -> Pos:
    """ruamel's 0-based [line, column, ...] -> Pos; merge keys (<<) have none, use the parent's."""
    if not lc:
        return fallback
    return Pos(file, lc[0] + 1, lc[1] + 1)


def _yaml_issue(file: str, e: YAMLError) -> ConfigIssue:
    """ruamel's error -> ConfigIssue at its problem mark, with its problem text."""
    if not isinstance(e, MarkedYAMLError):
        return ConfigIssue(file, f"YAML error: {e}")
    mark = e.problem_mark or e.context_mark
    message = e.problem or e.context or "YAML syntax error"
    hint = ""
    if isinstance(e, DuplicateKeyError):
        # ruamel's text goes on to quote both values, which may be secrets.
        message = message.split(" with value ", 1)[0]
        hint = "each key may appear once in a mapping; merge or remove the duplicate"
    elif e.context and e.problem and e.context_mark is not None:
        message += f" ({e.context} started at line {e.context_mark.line + 1})"
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return ConfigIssue(file, message, line=line, column=column, hint=hint)


def _merge(doc: Doc, sub: Doc) -> None:
    """Append ``sub``'s lists to ``doc``'s; positions keep pointing into ``sub``'s file."""
    for key in _LIST_KEYS:
        items = sub.data.get(key)
        if not isinstance(items, list):
            continue  # absent, or reported by check_included_keys
        target = doc.data.setdefault(key, [])
        if not isinstance(target, list):
            continue  # the including file's own bad value; validation reports it
        doc.positions.setdefault((key,), sub.positions[(key,)])
        offset = len(target)
        target.extend(items)
        for kp, pos in sub.positions.items():
            if len(kp) >= 2 and kp[0] == key and isinstance(kp[1], int):
                doc.positions[(key, kp[1] + offset, *kp[2:])] = pos
        for kp in sub.interpolated:
            if len(kp) >= 2 and kp[0] == key and isinstance(kp[1], int):
                doc.interpolated.add((key, kp[1] + offset, *kp[2:]))


# --- schema and summary -------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """AppConfig's JSON Schema for editors (yaml-language-server: $schema=...)."""
    schema = AppConfig.model_json_schema(mode="validation")
    # The loader also accepts a single string for include; the model only sees lists.
    schema["properties"]["include"] = {
        "anyOf": [{"type": "string"}, schema["properties"]["include"]],
        "description": schema["properties"]["include"].get("description", ""),
    }
    schema.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "media-monitor configuration",
        **schema,
    }


def summarize(config: AppConfig) -> str:
    """A few lines for ``monitor check``: counts and the storage path, never values of secrets."""
    enabled = sum(1 for f in config.feeds if f.enabled)
    kinds = Counter[str](r.kind for r in config.rules)
    types = Counter[str](s.type for s in config.sinks)
    disabled_rules = sum(1 for r in config.rules if not r.enabled)
    lines = [
        f"feeds: {len(config.feeds)} ({enabled} enabled, {len(config.feeds) - enabled} disabled)",
        f"rules: {len(config.rules)}{_counts(kinds)}"
        + (f", {disabled_rules} disabled" if disabled_rules else ""),
        f"sinks: {len(config.sinks)}{_counts(types)}",
        f"routes: {len(config.routes)}",
        f"storage: {config.storage.path}",
    ]
    return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    if not counter:
        return ""
    return " (" + ", ".join(f"{k}: {n}" for k, n in sorted(counter.items())) + ")"
