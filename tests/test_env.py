"""The environment overlay: MONITOR_SECTION__KEY over the YAML, errors naming the variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config.env import server_from_env, settings
from monitor.config.loader import load_config
from monitor.exceptions import ConfigError


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "storage: {path: from-yaml.db}\n"
        "scheduler: {interval: 5m, jitter: 0.2}\n"
        "http: {timeout: {connect: 3}}\n"
        "feeds: [{id: f, url: 'http://127.0.0.1:9/feed'}]\n"
    )
    return path


def test_nested_variables_override_the_file(config: Path) -> None:
    """MONITOR_SECTION__KEY (any case) wins over the YAML; other keys keep the file's values."""
    loaded = load_config(
        config,
        env={
            "MONITOR_STORAGE__PATH": "/data/monitor.db",
            "monitor_scheduler__interval": "2m",
            "MONITOR_HTTP__TIMEOUT__TOTAL": "90s",
            "MONITOR_SERVER__HOST": "0.0.0.0",
            "MONITOR_SERVER__PORT": "9100",
            "MONITOR_SERVER__ENABLED": "false",
        },
    )
    assert loaded.storage.path == Path("/data/monitor.db")
    assert loaded.scheduler.interval == timedelta(minutes=2)
    assert loaded.scheduler.jitter == 0.2
    assert loaded.http.timeout.connect == timedelta(seconds=3)
    assert loaded.http.timeout.total == timedelta(seconds=90)
    assert (loaded.server.host, loaded.server.port, loaded.server.enabled) == (
        "0.0.0.0",
        9100,
        False,
    )
    assert [f.id for f in loaded.feeds] == ["f"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MONITOR_LOG_FORMAT": "json"}, "json"),
        ({"MONITOR_LOGGING__FORMAT": "console"}, "console"),
        ({"MONITOR_LOG_FORMAT": "json", "MONITOR_LOGGING__FORMAT": "console"}, "console"),
        ({}, "auto"),
    ],
)
def test_log_format_shorthand(config: Path, env: dict[str, str], expected: str) -> None:
    """MONITOR_LOG_FORMAT sets logging.format unless MONITOR_LOGGING__FORMAT does."""
    assert load_config(config, env=env).logging.format == expected


def test_names_without_nesting_are_not_settings(config: Path) -> None:
    """MONITOR_CONFIG, MONITOR_DB and the like are left alone."""
    env = {"MONITOR_CONFIG": "/x.yaml", "MONITOR_DB": "/d.db", "MONITOR_HTTP_PORT": "80"}
    assert settings(env) == []
    assert load_config(config, env=env).storage.path == Path("from-yaml.db")


@pytest.mark.parametrize(
    ("name", "value", "key_path", "expected"),
    [
        ("MONITOR_SCHEDULER__INTERVAL", "soon-ish", "scheduler.interval", "is not a duration"),
        ("MONITOR_SERVER__PORT", "eighty", "server.port", "valid integer"),
        ("MONITOR_STORAGE__PTAH", "x.db", "storage.ptah", "did you mean 'path'"),
        ("MONITOR_FEEDS__0__URL", "http://x", "feeds.0.url", "YAML file only"),
        ("MONITOR_LOG_FORMAT", "xml", "logging.format", "'auto', 'console' or 'json'"),
        ("MONITOR_SCHEDULER____INTERVAL", "1m", "scheduler..interval", "empty name"),
    ],
)
def test_errors_name_the_variable_and_not_its_value(
    config: Path, name: str, value: str, key_path: str, expected: str
) -> None:
    """A bad variable is an issue at 'environment variable NAME' with the key path; the
    loader does not echo the value (one from the environment may be a secret)."""
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={name: value})
    [issue] = caught.value.issues
    assert issue.file == f"environment variable {name}"
    assert issue.key_path == key_path
    assert expected in str(issue)
    assert "; got" not in str(issue)


def test_every_bad_variable_and_file_problem_is_reported_together(tmp_path: Path) -> None:
    """Env issues come with the file's validation issues in one ConfigError."""
    path = tmp_path / "monitor.yaml"
    path.write_text("scheduler: {jitter: 9}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"MONITOR_SERVER__PORT": "-1", "MONITOR_RULES__X": "y"})
    where = sorted(i.file for i in caught.value.issues)
    assert where == [
        str(path),
        "environment variable MONITOR_RULES__X",
        "environment variable MONITOR_SERVER__PORT",
    ]


def test_server_from_env_falls_back_to_defaults() -> None:
    """`monitor health` without a usable file reads MONITOR_SERVER__* or the defaults."""
    assert server_from_env({"MONITOR_SERVER__PORT": "9000"}).port == 9000
    assert server_from_env({"MONITOR_SERVER__PORT": "nope"}).port == 8080
    assert server_from_env({}).host == "127.0.0.1"


@pytest.mark.slow
def test_monitor_log_format_reaches_the_logs(config: Path) -> None:
    """MONITOR_LOG_FORMAT=console gives key=value lines even when stderr is not a TTY
    (where auto would write JSON), and =json gives JSON."""
    base = {**os.environ, "MONITOR_STORAGE__PATH": str(config.parent / "m.db")}

    def stderr_of(fmt: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "once", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**base, "MONITOR_LOG_FORMAT": fmt},
        )
        return [line for line in done.stderr.splitlines() if "once_done" in line]

    [console] = stderr_of("console")
    assert not console.startswith("{") and "feeds=1" in console
    [line] = stderr_of("json")
    assert json.loads(line)["event"] == "once_done"
