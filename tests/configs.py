"""Builds configuration files for tests that run the real CLI or daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ORESHNIK_RULE = {
    "kind": "terms",
    "id": "new-weapon",
    "severity": "critical",
    "any": ["oreshnik"],
}


def write_config(
    tmp_path: Path,
    feeds: list[dict[str, Any]],
    *,
    rules: list[dict[str, Any]] | None = None,
    scheduler: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A config with a SQLite file and a JSON-lines file sink under ``tmp_path``."""
    data: dict[str, Any] = {
        "storage": {"path": str(tmp_path / "monitor.db")},
        "sinks": [{"name": "out", "type": "file", "path": str(tmp_path / "alerts.jsonl")}],
        "routes": [{"sinks": ["out"]}],
        "feeds": feeds,
        "rules": rules if rules is not None else [ORESHNIK_RULE],
        "scheduler": {"jitter": 0, **(scheduler or {})},
        "logging": {"format": "json"},
        "server": {"port": 0},  # never a fixed port in tests; the daemon logs the one it got
        **(extra or {}),
    }
    path = tmp_path / "monitor.yaml"
    with path.open("w") as f:
        YAML(typ="safe", pure=True).dump(data, f)
    return path
