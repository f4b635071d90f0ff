"""Pure parts of the sinks: alert JSON against its schema, Slack blocks, templates."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from monitor.config.models import EmailSinkConfig, SlackSinkConfig
from monitor.exceptions import ConfigError
from monitor.sinks import build_sink, send_test
from monitor.sinks.console import ConsoleSink
from monitor.sinks.render import alert_to_dict, template_context
from monitor.sinks.sample import sample_alert
from monitor.sinks.slack import (
    BLOCKS_MAX,
    FIELD_MAX,
    HEADER_MAX,
    SECTION_MAX,
    TEXT_MAX,
    SlackSink,
    fallback_text,
)
from monitor.sinks.templates import highlight_html, highlight_slack
from monitor.types import Severity
from tests.receivers import NOW, make_alert

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "alert.schema.json").read_text())

# --- a tiny JSON Schema walker (jsonschema is not a dependency) ------------------

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def _type_ok(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in {"integer", "number"}:
        return False
    return isinstance(value, _TYPES[name])


def validate(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Problems of ``value`` against the subset of 2020-12 the alert schema uses."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return validate(value, SCHEMA["$defs"][name], path)
    problems = []
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_type_ok(value, n) for n in names):
            return [f"{path}: {value!r} is not {types}"]
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: {value!r} != {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} not in {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        problems.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if "minLength" in schema and isinstance(value, str) and len(value) < schema["minLength"]:
        problems.append(f"{path}: too short")
    if "minimum" in schema and isinstance(value, int | float) and value < schema["minimum"]:
        problems.append(f"{path}: below {schema['minimum']}")
    if isinstance(value, dict):
        problems += [f"{path}: missing {k!r}" for k in schema.get("required", ()) if k not in value]
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, sub in value.items():
            if key in props:
                problems += validate(sub, props[key], f"{path}.{key}")
            elif extra is False:
                problems.append(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                problems += validate(sub, extra, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, sub in enumerate(value):
            problems += validate(sub, schema["items"], f"{path}[{i}]")
    return problems


@pytest.mark.parametrize(
    "alert",
    [
        make_alert(),
        make_alert(url=None, details={"kind": "terms"}),
        make_alert(title="no match", details={"sources": ["A", "B"], "thread_of": "x1"}),
        sample_alert(NOW),
    ],
    ids=["score", "no-url", "clustered", "sample"],
)
def test_alert_json_matches_published_schema(alert: Any) -> None:
    """Every alert_to_dict payload, through a JSON round trip, satisfies docs/alert.schema.json."""
    payload = json.loads(json.dumps(alert_to_dict(alert)))
    assert validate(payload, SCHEMA) == []


def test_schema_walker_catches_problems() -> None:
    """The validator used above does reject a broken payload (it is not vacuous)."""
    payload = alert_to_dict(make_alert())
    payload["severity"] = "loud"
    del payload["item"]["url"]
    payload["item"]["extra"] = 1
    problems = validate(payload, SCHEMA)
    assert len(problems) == 3


def test_schema_lists_every_key_alert_to_dict_writes() -> None:
    """A new key in alert_to_dict or item must be added to the schema too."""
    payload = alert_to_dict(make_alert())
    assert set(payload) == set(SCHEMA["properties"])
    assert set(payload["item"]) == set(SCHEMA["$defs"]["item"]["properties"])
    assert SCHEMA["properties"]["schema"]["const"] == payload["schema"]


# --- Slack blocks -----------------------------------------------------------------


def _slack(**kw: Any) -> SlackSink:
    config = SlackSinkConfig(type="slack", name="desk", webhook_url="https://hooks.example/T/B/X")
    return SlackSink(config.model_copy(update=kw))


def _texts(payload: dict[str, Any]) -> list[str]:
    """Every mrkdwn/plain_text string in the message's blocks and attachments."""
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in {"mrkdwn", "plain_text"}:
                found.append(node["text"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(payload["blocks"])
    walk(payload["attachments"])
    return found


def test_slack_message_structure() -> None:
    """Header with severity, linked title, fields, bold evidence, sources and a colour bar."""
    alert = make_alert(details={"sources": ["Reuters", "BBC", "Ukrainska Pravda"]})
    payload = _slack(channel="#desk", username="monitor", icon_emoji=":eyes:").payload(alert)
    blocks = payload["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "context"]
    assert blocks[0]["text"]["text"] == ":rotating_light: CRITICAL · new-weapon"
    title = blocks[1]["text"]["text"]
    assert title.startswith(
        "*<https://kyivindependent.com/russia-advances?id=7&amp;lang=en|Russian forces advance"
    )
    assert "479 drones &amp; missiles &lt;overnight&gt;" in title  # Slack's three escapes
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields[0] == "*Feed*\nThe Kyiv Independent"
    assert fields[1].startswith("*Published*\n<!date^1749373920^")
    evidence = blocks[3]["text"]["text"]
    assert "*Matched:* *Oreshnik*" in evidence
    assert "*Places:* Dnipropetrovsk Oblast" in evidence
    assert "*Numbers:* 479 drones" in evidence
    assert "*Score:* 7 (oreshnik 4, record 3)" in evidence
    assert "; *Oreshnik*" in evidence  # matched words bold inside the snippet
    assert (
        "Also reported by 3 sources: Reuters, BBC, Ukrainska Pravda"
        in blocks[4]["elements"][0]["text"]
    )
    assert payload["attachments"][0]["color"] == "#d40e0d"
    assert payload["channel"] == "#desk" and payload["icon_emoji"] == ":eyes:"
    assert "<https://kyivindependent.com/russia-advances?id=7&amp;lang=en|" in payload["text"]


def test_slack_limits_with_huge_title_and_summary() -> None:
    """Huge title, summary, snippet and source list stay within Slack's limits; the link stays."""
    url = "https://example.org/story?id=1&x=2"
    alert = make_alert(
        title="Oreshnik " + "very long title & more " * 500,
        summary="<summary> " * 2000,
        url=url,
        details={"snippet": "Oreshnik & " * 1000, "sources": [f"src{i}" for i in range(300)]},
    )
    payload = _slack().payload(alert)
    blocks = payload["blocks"]
    assert len(blocks) + len(payload["attachments"][0]["blocks"]) <= BLOCKS_MAX
    assert len(blocks[0]["text"]["text"]) <= HEADER_MAX
    for block in blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= SECTION_MAX
        for f in block.get("fields", []):
            assert len(f["text"]) <= FIELD_MAX
    for text in _texts(payload):
        assert len(text) <= SECTION_MAX
        assert not re.search(r"&(?!amp;|lt;|gt;)", text.replace("<!date^", "")), "unescaped &"
    assert blocks[1]["text"]["text"].startswith("*<https://example.org/story?id=1&amp;x=2|Oreshnik")
    assert blocks[1]["text"]["text"].count("…") == 2  # title and summary both cut
    assert "and 290 more" in blocks[4]["elements"][0]["text"]
    assert len(payload["text"]) <= TEXT_MAX
    assert "https://example.org/story?id=1&amp;x=2" in payload["text"]
    assert len(json.dumps(payload)) < 40_000


def test_fallback_keeps_link_when_cut() -> None:
    """Cutting the fallback text re-appends the link at the end."""
    text = fallback_text("x" * 5000, "https://e.org/a?b=1&c=2", limit=100)
    assert len(text) <= 100
    assert text.endswith("<https://e.org/a?b=1&amp;c=2>")


def test_highlighters_escape_and_bold() -> None:
    """Matched words are bolded case-insensitively; everything else is escaped."""
    assert highlight_slack("A <b> & oreshnik", ["Oreshnik"]) == "A &lt;b&gt; &amp; *oreshnik*"
    assert str(highlight_html("<i>Oreshnik</i>", ["oreshnik"])) == (
        "&lt;i&gt;<strong>Oreshnik</strong>&lt;/i&gt;"
    )


# --- templates --------------------------------------------------------------------


def test_template_override_is_used(tmp_path: Path) -> None:
    """A user's template replaces the packaged fallback and sees the documented variables."""
    path = tmp_path / "slack.j2"
    path.write_text("{{ severity_upper }} {{ rule }} {{ places | join('/') }} {{ title }}")
    payload = _slack(template=path).payload(make_alert(title="A & B"))
    assert payload["text"] == "CRITICAL new-weapon Dnipropetrovsk Oblast A &amp; B"


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("ok\n{% if title %}\nunclosed", 3, "template syntax"),
        ("line one\n{{ titel }}", None, "'titel' is undefined"),
        ("{{ title | nosuchfilter }}", 1, "No filter named 'nosuchfilter'"),
    ],
)
def test_bad_template_fails_at_build_naming_sink_and_file(
    tmp_path: Path, source: str, line: int | None, message: str
) -> None:
    """A template that does not compile or render stops the build with file, line and sink."""
    path = tmp_path / "bad.j2"
    path.write_text(source)
    config = SlackSinkConfig(
        type="slack", name="desk", webhook_url="https://hooks.example/x", template=path
    )
    with pytest.raises(ConfigError) as info:
        build_sink(config)
    issue = info.value.issues[0]
    assert issue.file == str(path)
    assert issue.line == line
    assert "sink 'desk'" in str(info.value) and message in str(info.value)
    assert "sinks[desk].template" in str(info.value)


def test_missing_template_file_and_bad_subject(tmp_path: Path) -> None:
    """A missing html_template file, and a broken subject_template, name the sink and key."""
    base = {
        "type": "email", "name": "mail", "host": "127.0.0.1",
        "from_addr": "a@example.org", "to": ["b@example.org"],
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"sinks\[mail\].html_template.*cannot read"):
        build_sink(EmailSinkConfig(**base, html_template=tmp_path / "nope.html"))
    with pytest.raises(ConfigError, match=r"subject_template.*sink 'mail'"):
        build_sink(EmailSinkConfig(**base, subject_template="{{ title "))


def test_template_context_has_evidence() -> None:
    """The variables templates get carry the evidence in display form."""
    ctx = template_context(make_alert(details={"sources": [{"feed": "bbc", "title": "BBC"}]}))
    assert ctx["matched"] == ["Oreshnik"]
    assert ctx["numbers"] == ["479 drones"]
    assert ctx["score"] == "7 (oreshnik 4, record 3)"
    assert ctx["sources"] == ["BBC"]
    assert ctx["alert"]["schema"] == "media-monitor/alert@1"


async def test_send_test_through_console() -> None:
    """send_test sends a clearly-marked sample and says what happened."""
    stream = io.StringIO()
    line = await send_test(ConsoleSink("screen", stream=stream), now=NOW)
    assert line == "sink 'screen': sent test alert send-test-20250608T091502: accepted"
    assert "[TEST]" in stream.getvalue()
    assert sample_alert(NOW).severity is Severity.WARNING


def test_evidence_lines_explain_each_kind_in_words() -> None:
    """Console evidence reads as sentences, not dictionaries, for each kind of evidence."""
    from monitor.sinks.render import evidence_lines

    details = {
        "rules": ["escalation-score", "new-front"],
        "novelty": {
            "place": {"id": "UA-12", "name": "Dnipropetrovsk Oblast"},
            "reason": "new region of a known country",
            "context_terms": ["advancing into"],
        },
        "score": 9.5,
        "breakdown": {"territorial": 4.5, "weapons": 3},
        "numbers": [{"value": 479, "noun": "drones", "text": "479"}],
        "places": [
            {"name": "Dnipropetrovsk Oblast", "kind": "region", "region": "UA-12"},
            {"name": "Pavlohrad", "kind": "city", "region": "UA-12"},
        ],
    }
    assert evidence_lines(details) == [
        "rules: escalation-score, new-front",
        "novelty: Dnipropetrovsk Oblast: new region of a known country (context: advancing into)",
        "score: 9.5 (territorial 4.5, weapons 3)",
        "numbers: 479 drones ('479')",
        "places: Dnipropetrovsk Oblast, Pavlohrad (UA-12)",
    ]
