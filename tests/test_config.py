"""Config loading: YAML, ${VAR} interpolation, include:, and errors that name file:line."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from ruamel.yaml import YAML

from monitor.config.issues import Doc, Pos
from monitor.config.loader import _Loader, _parse_yaml, json_schema, load_config, summarize
from monitor.config.models import AppConfig
from monitor.exceptions import ConfigError, ConfigIssue

DATA = Path(__file__).parent / "data" / "config"
VALID = DATA / "valid"
INVALID = DATA / "invalid"


def load_error(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, env={} if env is None else env)
    return info.value


# --- valid files ----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(VALID.glob("*.yaml")), ids=lambda p: p.name)
def test_valid_files_load(path: Path) -> None:
    """Every top-level file under data/config/valid loads without an environment."""
    assert isinstance(load_config(path, env={}), AppConfig)


def test_empty_file_gives_defaults() -> None:
    """A file holding only comments is the default configuration."""
    assert load_config(VALID / "empty.yaml", env={}) == AppConfig()


def test_includes_append_rules_in_file_order() -> None:
    """Globbed and nested includes append their rules after the main file's own, in order."""
    config = load_config(VALID / "full.yaml", env={})
    assert [r.id for r in config.rules] == [
        "oreshnik",
        "dnipropetrovsk",
        "record-drones",
        "new-weapon",
    ]
    assert config.include == ("rules/*.yaml",)


@pytest.mark.parametrize(
    ("env", "attribute", "expected"),
    [
        ({}, "feed.id", "local"),
        ({"FEED_ID": ""}, "feed.id", "local"),
        ({"FEED_ID": "kyiv"}, "feed.id", "kyiv"),
        ({}, "feed.url", "https://example.org/rss?key=none"),
        ({"FEED_HOST": "news.test", "FEED_KEY": "k1"}, "feed.url", "https://news.test/rss?key=k1"),
        ({}, "feed.title", "cost ${NOT_A_VAR}"),
        ({}, "feed.interval", timedelta(seconds=90)),
        ({"POLL": "60"}, "feed.interval", timedelta(seconds=60)),
        ({}, "feed.enabled", True),
        ({"FEED_ON": "false"}, "feed.enabled", False),
        ({}, "http.max_redirects", 5),
        ({"REDIRECTS": "3"}, "http.max_redirects", 3),
    ],
)
def test_env_interpolation(env: dict[str, str], attribute: str, expected: Any) -> None:
    """${VAR} and ${VAR:-default} expand anywhere in a string, and $${ stays a literal ${."""
    config = load_config(VALID / "env.yaml", env=env)
    section, name = attribute.split(".")
    owner = config.feeds[0] if section == "feed" else config.http
    assert getattr(owner, name) == expected


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit env mapping the process environment is used."""
    monkeypatch.setenv("POLL", "120")
    config = load_config(VALID / "env.yaml")
    assert config.feeds[0].interval == timedelta(seconds=120)


def test_interpolated_numbers_stay_strings_where_strings_are_expected(tmp_path: Path) -> None:
    """An interpolated "30" is a string for a text field and a number for a number field."""
    path = tmp_path / "c.yaml"
    path.write_text("feeds:\n  - {id: a, url: u, title: '${N}'}\nhttp:\n  max_bytes: ${N}\n")
    config = load_config(path, env={"N": "30"})
    assert config.feeds[0].title == "30"
    assert config.http.max_bytes == 30


def test_absolute_include_glob(tmp_path: Path) -> None:
    """An absolute include glob works and its rules are appended."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text("rules:\n  - {kind: terms, id: r1, any: [x]}\n")
    main = tmp_path / "main.yaml"
    main.write_text(f"include: {tmp_path}/rules/*.yaml\n")
    assert [r.id for r in load_config(main, env={}).rules] == ["r1"]


# --- invalid files --------------------------------------------------------------------


class Expect(NamedTuple):
    file: str
    line: int | None
    column: int | None
    key_path: str
    message: str
    hint: str = ""


INVALID_CASES = {
    "bad_syntax.yaml": [
        Expect("bad_syntax.yaml", 5, 8, "", "expected ',' or ']'", ""),
    ],
    "unknown_key.yaml": [
        Expect(
            "unknown_key.yaml",
            7,
            5,
            "feeds[1].intervall",
            "not a known setting",
            "unknown key 'intervall'; did you mean 'interval'?",
        ),
    ],
    "unknown_key_far.yaml": [
        Expect(
            "unknown_key_far.yaml",
            4,
            3,
            "storage.colour",
            "not a known setting",
            "allowed keys: path, retention",
        ),
    ],
    "wrong_type.yaml": [
        Expect("wrong_type.yaml", 5, 5, "feeds[0].enabled", "got 'maybe'", "true or false"),
        Expect("wrong_type.yaml", 7, 3, "http.max_redirects", "got 'many'", "whole number"),
    ],
    "missing_env.yaml": [
        Expect(
            "missing_env.yaml",
            4,
            5,
            "feeds[0].url",
            "environment variable 'FEED_PATH' is not set",
            "set FEED_PATH or write ${FEED_PATH:-default}",
        ),
    ],
    "bad_include.yaml": [
        Expect("bad_include.yaml", 3, 5, "include", "matches no file", "relative to"),
        Expect("bad_include.yaml", 4, 5, "include", "'parts/missing.yaml' does not exist"),
    ],
    "include_cycle.yaml": [
        Expect(
            "parts/cycle_b.yaml",
            3,
            5,
            "include",
            "include cycle: include_cycle.yaml -> cycle_b.yaml -> include_cycle.yaml",
        ),
    ],
    "duplicate_key.yaml": [
        Expect("duplicate_key.yaml", 5, 5, "", 'duplicate key "url"', "may appear once"),
    ],
    "undefined_sink.yaml": [
        Expect("undefined_sink.yaml", 7, 22, "routes[1].sinks[1]", "sink 'slack'"),
    ],
    "bad_duration.yaml": [
        Expect("bad_duration.yaml", 5, 5, "feeds[0].interval", "'5 minutes' is not a duration"),
    ],
    "included_error.yaml": [
        Expect("parts/bad_rule.yaml", 5, 5, "rules[1].anyy", "not a known", "did you mean 'any'"),
    ],
    "included_settings.yaml": [
        Expect("parts/settings.yaml", 3, 1, "storage", "cannot be set in an included file"),
    ],
    "top_list.yaml": [
        Expect("top_list.yaml", 1, 1, "", "top level must be a mapping"),
    ],
    "missing_key.yaml": [
        Expect("missing_key.yaml", 3, 5, "sinks[0].path", "Field required", "add 'path'"),
        Expect("missing_key.yaml", 5, 5, "sinks[1]", "Input tag 'pager'"),
    ],
    "duplicate_id.yaml": [
        Expect("duplicate_id.yaml", 5, 5, "feeds[1].id", "duplicate feed id 'a'"),
    ],
    "rule_without_terms.yaml": [
        Expect("rule_without_terms.yaml", 3, 5, "rules[0]", "needs `any` or `all`"),
    ],
}


def check_issue(issue: ConfigIssue, expect: Expect) -> None:
    assert Path(issue.file).resolve() == (INVALID / expect.file).resolve()
    assert (issue.line, issue.column) == (expect.line, expect.column)
    assert issue.key_path == expect.key_path
    assert expect.message in issue.message
    assert expect.hint in issue.hint
    assert f"{expect.file.rsplit('/', 1)[-1]}:{expect.line}:{expect.column}" in str(issue)


@pytest.mark.parametrize(
    ("name", "expected"), sorted(INVALID_CASES.items()), ids=sorted(INVALID_CASES)
)
def test_invalid_files(name: str, expected: list[Expect]) -> None:
    """Each bad file fails with issues naming the file, line, column, key path and a fix."""
    error = load_error(INVALID / name)
    assert len(error.issues) == len(expected), error
    for issue, expect in zip(error.issues, expected, strict=True):
        check_issue(issue, expect)


def test_every_invalid_fixture_has_a_case() -> None:
    """No fixture under data/config/invalid is left untested."""
    assert {p.name for p in INVALID.glob("*.yaml")} == set(INVALID_CASES)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        (
            "feeds:\n  - id: a\n    url: ${A}\n  - id: b\n    url: ${B}\n",
            {},
            [(3, "feeds[0].url", "'A' is not set"), (5, "feeds[1].url", "'B' is not set")],
        ),
        (
            "feeds:\n  - id: a\n    url: x/${1BAD}\n",
            {},
            [(3, "feeds[0].url", "malformed ${...} reference")],
        ),
        (
            "feeds:\n  - id: a\n    url: u\n    enabled: nope\n    bogus: 1\n",
            {},
            [(4, "feeds[0].enabled", "valid boolean"), (5, "feeds[0].bogus", "not a known")],
        ),
        (
            "feeds:\n  - {id: a, url: u}\n  - {id: a, url: v}\n  - {id: a, url: w}\n"
            "rules:\n  - {kind: terms, id: r1, any: [x]}\n"
            "routes:\n  - sinks: [console, slak]\n    rules: [r2]\n  - sinks: [nowhere]\n",
            {},
            [
                (3, "feeds[1].id", "duplicate feed id 'a' (first used by feeds[0])"),
                (4, "feeds[2].id", "duplicate feed id 'a' (first used by feeds[0])"),
                (8, "routes[0].sinks[1]", "sink 'slak', which is not defined (sinks: console)"),
                (9, "routes[0].rules[0]", "rule 'r2', which is not defined (rules: r1)"),
                (10, "routes[1].sinks[0]", "sink 'nowhere', which is not defined"),
            ],
        ),
    ],
)
def test_generated_invalid(
    tmp_path: Path, text: str, env: dict[str, str], expected: list[tuple[int, str, str]]
) -> None:
    """Every problem in a file is reported at once, each at its own line."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    error = load_error(path, env)
    found = [(i.line, i.key_path, i.message) for i in error.issues]
    assert len(found) == len(expected), error
    for (line, key_path, message), (want_line, want_path, want_message) in zip(
        found, expected, strict=True
    ):
        assert (line, key_path) == (want_line, want_path)
        assert want_message in message


def test_reference_errors_carry_type_and_location() -> None:
    """AppConfig's reference checks raise typed errors whose ctx locates the offending name."""
    with pytest.raises(ValidationError) as info:
        AppConfig.model_validate({"routes": [{"sinks": ["slack"]}]})
    (err,) = info.value.errors()
    assert err["type"] == "undefined_sink"
    assert err.get("ctx", {})["collection"] == "routes"
    assert err.get("ctx", {})["name"] == "slack"
    assert err.get("ctx", {})["loc"] == ("routes", 0, "sinks", 0)

    with pytest.raises(ValidationError) as info:
        AppConfig.model_validate({"sinks": [{"type": "console", "name": "c"}] * 2, "routes": []})
    (err,) = info.value.errors()
    assert err["type"] == "duplicate_id"
    assert err.get("ctx", {})["loc"] == ("sinks", 1, "name")


def test_several_reference_errors_come_as_one_combined_error() -> None:
    """A model validator raises one error, so several problems are listed in its ctx."""
    with pytest.raises(ValidationError) as info:
        AppConfig.model_validate({"routes": [{"sinks": ["a", "b"], "rules": ["r"]}]})
    (err,) = info.value.errors()
    assert err["type"] == "reference_problems"
    assert "3 problems" in err["msg"]
    problems = err.get("ctx", {})["problems"]
    assert [(p["type"], p["name"]) for p in problems] == [
        ("undefined_sink", "a"),
        ("undefined_sink", "b"),
        ("undefined_rule", "r"),
    ]


def test_reference_hints(tmp_path: Path) -> None:
    """An undefined name close to a defined one gets a did-you-mean hint."""
    path = tmp_path / "c.yaml"
    path.write_text("routes:\n  - sinks: [consol]\n")
    (issue,) = load_error(path).issues
    assert issue.hint == "did you mean 'console'?"


def test_interpolated_values_are_never_echoed(tmp_path: Path) -> None:
    """A bad value that came from the environment (maybe a secret) is not quoted in errors."""
    path = tmp_path / "c.yaml"
    path.write_text("http:\n  max_redirects: ${TOKEN}\n")
    error = load_error(path, {"TOKEN": "s3cr3t-value"})
    assert "http.max_redirects" in str(error)
    assert "s3cr3t" not in str(error)


def test_duplicate_key_error_does_not_quote_values(tmp_path: Path) -> None:
    """ruamel's duplicate-key text quotes both values; the error keeps only the key."""
    path = tmp_path / "c.yaml"
    path.write_text("storage:\n  path: a.db\n  path: hunter2.db\n")
    error = load_error(path)
    assert 'duplicate key "path"' in str(error)
    assert "hunter2" not in str(error)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "No such file"), (b"feeds: \xff\xfe\n", "cannot read config file")],
)
def test_unreadable_file(tmp_path: Path, content: bytes | None, message: str) -> None:
    """A missing or undecodable file is a ConfigError naming it."""
    path = tmp_path / "c.yaml"
    if content is not None:
        path.write_bytes(content)
    error = load_error(path)
    assert str(error).startswith(str(path))
    assert message in str(error)


# --- schema and summary ---------------------------------------------------------------


def test_json_schema_is_usable_by_editors() -> None:
    """The schema is JSON, declares its dialect and title, and describes every section."""
    schema = json_schema()
    json.dumps(schema)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] == "media-monitor configuration"
    assert {"feeds", "rules", "sinks", "routes", "storage"} <= set(schema["properties"])
    assert {"type": "string"} in schema["properties"]["include"]["anyOf"]


def test_summarize_counts_sections() -> None:
    """The summary counts feeds, rules, sinks and routes and names the database."""
    config = load_config(VALID / "full.yaml", env={"MONITOR_DB": "/var/lib/monitor/m.db"})
    assert summarize(config) == (
        "feeds: 2 (1 enabled, 1 disabled)\n"
        "rules: 4 (terms: 4), 1 disabled\n"
        "sinks: 2 (console: 1, file: 1)\n"
        "routes: 2\n"
        "storage: /var/lib/monitor/m.db"
    )


@pytest.mark.parametrize("seconds", [0.5, 1, 90, 2_592_000, 31_536_000])
def test_durations_survive_a_dump_and_reload(seconds: float) -> None:
    """A duration written by model_dump reads back as the same duration."""
    from datetime import timedelta

    from monitor.config.base import format_duration, parse_duration

    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)
    config = AppConfig()
    assert AppConfig.model_validate(config.model_dump()) == config


# --- the fast parse ---------------------------------------------------------------------
#
# load_config parses with ruamel's plain scanner and parser feeding the round-trip
# constructor, and falls back to the round-trip parser (see monitor.config.loader). What
# it makes of a file must be what the round-trip parser alone makes of it: the data and
# the position of every key path.

REPO_CONFIGS = Path(__file__).parent.parent / "config"


def parsed(text: str, *, fast: bool) -> str:
    """The data and positions the loader gets from ``text`` (before includes), as a repr:
    ruamel's tagged values have no equality of their own."""
    root = _parse_yaml(text, fast=fast)
    doc = Doc({}, {(): Pos("f")})
    doc.data = _Loader({}, fast=fast).convert(root, "f", (), doc)
    return repr((doc.data, doc.positions))


def assert_parses_alike(text: str) -> None:
    try:
        expected = parsed(text, fast=False)
    except Exception:  # nothing to compare with
        return
    assert parsed(text, fast=True) == expected


@pytest.mark.parametrize(
    "path",
    sorted([*DATA.rglob("*.yaml"), *REPO_CONFIGS.glob("*.yaml")]),
    ids=lambda p: str(p.relative_to(p.parents[1])),
)
def test_fast_parse_reads_every_fixture_alike(path: Path) -> None:
    assert_parses_alike(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "text",
    [
        "# comment\na: 1  # end of line\n\n# between\nb:\n  # inside\n  - x  # item\n  - y\n",
        "base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  y: 3\nlist: [*b, 2]\n",
        "folded: >\n  one\n  two\n\n  three\nliteral: |\n  x\n   y\nkept: |+\n  z\n\nend: 1\n",
        "s: no\nt: on\nu: yes\nv: 0o17\nw: 017\nx: 1_000\ny: 0x1F\nz: .inf\nn: ~\nd: 2025-01-01\n",
        "%YAML 1.1\n---\na: no\nb: on\n",
        'a: this is\n  a plain\n  scalar\nb: "quoted\n  on two lines"\n',
        "a: 1\r\nb:\r\n  - 2\r\n",
        "\ufeffa: 1\n",
        "a: b\u2028c\nd: e\x85f\n",
        "feeds:\n- {id: a, url: 'http://h/1'}  # one\n- {id: b,\n   url: \"http://h/2\"}\n",
    ],
    ids=[
        "comments",
        "anchors",
        "block-scalars",
        "yaml-1.2-scalars",
        "yaml-1.1",
        "multi-line",
        "crlf",
        "bom",
        "odd-line-breaks",
        "flow",
    ],
)
def test_fast_parse_reads_tricky_yaml_alike(text: str) -> None:
    assert_parses_alike(text)


_WORDS = st.sampled_from(
    [
        "a",
        "id",
        "no",
        "on",
        "null",
        "1",
        "0x1f",
        "1_0",
        "-.5",
        "-",
        "?",
        "[x]",
        "*",
        "&",
        "|",
        ">",
        "ünï",
        "http://h/p?x=%20&y=1",
        "x y",
        "a: b",
        "# h",
        "it's",
        'q"x',
        "two\nlines",
        "tab\there",
        " lead",
        "trail ",
        "",
    ]
)
_SCALARS = _WORDS | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_WORDS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(data=_DATA, flow=st.sampled_from([False, True, None]), marks=st.lists(st.integers(0, 5)))
def test_fast_parse_reads_generated_yaml_alike(
    data: Any, flow: bool | None, marks: list[int]
) -> None:
    """Data dumped in any style, with comments and blank lines strewn through it."""
    yaml = YAML(typ="rt")
    yaml.default_flow_style = flow
    out = io.StringIO()
    yaml.dump({"root": data, "feeds": [{"id": "f", "url": "u"}]}, out)
    lines = out.getvalue().split("\n")
    for n, mark in enumerate(marks):
        at = n * 7 % (len(lines) + 1)
        if mark == 0:
            lines.insert(at, "# a comment")
        elif mark == 1:
            lines.insert(at, "")
        elif mark == 2 and at < len(lines) and lines[at].strip() and lines[at][-1] not in "|>-+":
            lines[at] += "  # at the end"
    assert_parses_alike("\n".join(lines))


def test_a_file_only_the_round_trip_parser_reads_still_loads(tmp_path: Path) -> None:
    """The plain scanner refuses a tab on a blank line after an empty one; the round-trip
    scanner reads it, and so does the loader."""
    path = tmp_path / "monitor.yaml"
    path.write_text("feeds:\n\n  \t\n  - {id: a, url: 'file:///tmp/a.xml'}\n")
    assert [f.id for f in load_config(path, env={}).feeds] == ["a"]


def test_fast_parse_skips_comments() -> None:
    """The plain scanner is used (were the loader to fall back every time, it would only be
    slower): it drops the comments the round-trip scanner keeps."""
    text = "a: 1  # a note\n"
    assert _parse_yaml(text, fast=False).ca.items
    assert not _parse_yaml(text, fast=True).ca.items
    # A tag (which the plain parser would expand differently) sends a file round-trip.
    assert _parse_yaml("a: !!str 1  # a note\n", fast=True).ca.items
