"""build_sink picks the right sink; sink configs validate; the optional Apprise sink."""

from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from monitor.config.models import AppConfig, AppriseSinkConfig, WebhookSinkConfig
from monitor.exceptions import SinkError
from monitor.sinks import build_sinks
from monitor.sinks.console import ConsoleSink
from monitor.sinks.email import EmailSink
from monitor.sinks.file import FileSink
from monitor.sinks.slack import SlackSink
from monitor.sinks.webhook import WebhookSink
from tests.receivers import WebhookReceiver, make_alert

HAS_APPRISE = importlib.util.find_spec("apprise") is not None

SINKS: list[dict[str, Any]] = [
    {"type": "console", "name": "screen"},
    {"type": "file", "name": "archive", "path": "alerts.jsonl"},
    {"type": "slack", "name": "desk", "webhook_url": "https://hooks.slack.com/services/T/B/SLACKSECRET",
     "channel": "#ukraine", "timeout": "5s"},
    {"type": "webhook", "name": "siem", "url": "https://siem.example.org/in?token=URLTOKEN",
     "secret": "HMACSECRET", "headers": {"Authorization": "Bearer HEADERTOKEN", "X-Team": "desk"}},
    {"type": "email", "name": "mail", "host": "smtp.example.org", "username": "u",
     "password": "SMTPSECRET", "from_addr": "alerts@example.org", "to": ["desk@example.org"]},
]  # fmt: skip


def test_build_sinks_picks_each_type(tmp_path: Path) -> None:
    """Each config type becomes its sink, under its name."""
    config = AppConfig.model_validate({"sinks": SINKS, "routes": []})
    sinks = build_sinks(config.sinks)
    kinds = {name: type(sink) for name, sink in sinks.items()}
    assert kinds == {
        "screen": ConsoleSink,
        "archive": FileSink,
        "desk": SlackSink,
        "siem": WebhookSink,
        "mail": EmailSink,
    }


def test_secrets_are_listed_for_the_redactor() -> None:
    """AppConfig.secrets() returns every sink secret (and sensitive header), nothing else."""
    config = AppConfig.model_validate({"sinks": SINKS, "routes": []})
    values = {s.get_secret_value() for s in config.secrets()}
    assert values == {
        "https://hooks.slack.com/services/T/B/SLACKSECRET",
        "https://siem.example.org/in?token=URLTOKEN",
        "HMACSECRET",
        "Bearer HEADERTOKEN",
        "SMTPSECRET",
    }
    dumped = repr(config) + str(config.model_dump())
    for secret in values:
        assert secret not in dumped


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ({"type": "slack", "name": "s", "webhook_url": "hooks.slack.com/x"}, "http:// or https://"),
        ({"type": "webhook", "name": "w", "url": "ftp://x/y"}, "http:// or https://"),
        ({"type": "webhook", "name": "w", "url": "https://x/y",
          "headers": {"Idempotency-Key": "1"}}, "set by the sink"),
        ({"type": "slack", "name": "s", "webhook_url": "https://x/y", "colour": "red"},
         "Extra inputs"),
        ({"type": "apprise", "name": "a", "urls": []}, "at least 1"),
    ],
)  # fmt: skip
def test_bad_sink_configs(sink: dict[str, Any], message: str) -> None:
    """Bad URLs, reserved headers, unknown keys and empty URL lists are refused."""
    with pytest.raises(ValidationError, match=message):
        AppConfig.model_validate({"sinks": [sink], "routes": []})


@pytest.mark.skipif(HAS_APPRISE, reason="apprise is installed; this checks the message without it")
def test_apprise_missing_says_how_to_install() -> None:
    """Without the apprise package, building the sink says which extra to install."""
    config = AppriseSinkConfig(type="apprise", name="chat", urls=(SecretStr("json://h/x"),))
    with pytest.raises(SinkError, match=r"install media-monitor\[apprise\]") as info:
        build_sinks([config])
    assert info.value.sink_name == "chat" and not info.value.transient


@pytest.mark.skipif(not HAS_APPRISE, reason="apprise not installed (optional extra)")
async def test_apprise_posts_through_json_url() -> None:
    """Through Apprise's json:// service, the alert reaches a real receiver."""
    with WebhookReceiver() as rx:
        url = rx.url("/apprise").replace("http://", "json://")
        config = AppriseSinkConfig(type="apprise", name="chat", urls=(SecretStr(url),))
        (sink,) = build_sinks([config]).values()
        try:
            await sink.send(make_alert())
        finally:
            await sink.close()
        assert "Oreshnik" in rx.requests[0].json()["title"]


async def test_console_sink_still_writes() -> None:
    """The console sink is untouched by the new sinks."""
    out = io.StringIO()
    await ConsoleSink("c", stream=out).send(make_alert())
    assert "new-weapon" in out.getvalue()


README = Path(__file__).parent.parent / "README.md"


def _readme_sinks_block(lang: str) -> str:
    section = README.read_text().split("## Sinks\n", 1)[1].split("\n## ", 1)[0]
    return section.split(f"```{lang}\n", 1)[1].split("```", 1)[0]


def test_readme_sink_examples_are_valid_config() -> None:
    """The YAML in README "Sinks" is a valid sinks section (secrets filled in)."""
    from ruamel.yaml import YAML

    text = re.sub(
        r"\$\{(\w+)\}",
        lambda m: f"https://example.org/{m.group(1).lower()}",
        _readme_sinks_block("yaml"),
    )
    data = YAML(typ="safe", pure=True).load(text)
    config = AppConfig.model_validate({**data, "routes": []})
    assert [s.type for s in config.sinks] == [
        "console",
        "file",
        "slack",
        "webhook",
        "email",
        "apprise",
    ]


async def test_readme_verification_example_accepts_real_request() -> None:
    """The Python verifier in README "Sinks" accepts what the webhook sink sends, and
    rejects a tampered body."""
    namespace: dict[str, Any] = {}
    exec(_readme_sinks_block("python"), namespace)
    verify = namespace["verify"]
    with WebhookReceiver() as rx:
        config = WebhookSinkConfig(
            type="webhook", name="w", url=SecretStr(rx.url()), secret=SecretStr("k3y")
        )
        sink = WebhookSink(config)
        try:
            await sink.send(make_alert())
        finally:
            await sink.close()
    request = rx.requests[0]
    headers = {"X-Monitor-Timestamp": request.headers["x-monitor-timestamp"],
               "X-Monitor-Signature": request.headers["x-monitor-signature"]}  # fmt: skip
    assert verify(b"k3y", headers, request.body)
    assert not verify(b"k3y", headers, request.body.replace(b"critical", b"info"))
    assert not verify(b"other", headers, request.body)
