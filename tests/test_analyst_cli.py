"""`monitor test` and `monitor backtest` end to end, on the shipped rules."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.storage.sqlite import SQLiteStorage
from monitor.types import ClaimRequest, Item
from tests.configs import write_config
from tests.feedserver import HTML_TYPE, Body, FeedServer, rss

ROOT = Path(__file__).resolve().parent.parent
RAID = "Russia launches record 728 drones at Ukraine overnight"
CALM = "Bakery wins award for the best sourdough in town"
ALERT_KEYS = {"schema", "alert_id", "rule", "severity", "created_at", "item", "evidence"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration in tmp_path with the shipped rules and its own store."""
    shipped = str(ROOT / "config" / "rules.yaml")
    return write_config(tmp_path, [], rules=[], extra={"include": [shipped]})


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def matches(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return data["matches"]  # type: ignore[no-any-return]


# --- monitor test -----------------------------------------------------------------------


def test_text_shows_the_rules_that_fire(config: Path) -> None:
    """A text prints the rules that fire with their severity."""
    result = run("test", "-c", str(config), RAID)
    assert result.exit_code == 0, result.output
    assert "record-raid" in result.output and "CRITICAL" in result.output


def test_json_lists_matches_with_evidence(config: Path) -> None:
    """--json prints {"matches": [...]} with each rule's severity and evidence."""
    found = {m["rule"]: m for m in matches(run("test", "-c", str(config), "--json", RAID))}
    raid = found["record-raid"]
    assert raid["severity"] == "critical"
    assert raid["evidence"]["numbers"][0]["value"] == 728
    assert raid["evidence"]["terms"][0]["text"] == "drones"


def test_json_is_an_empty_list_when_nothing_fires(config: Path) -> None:
    """Nothing firing is {"matches": []}, whichever side of the text --json is on."""
    assert matches(run("test", "-c", str(config), CALM, "--json")) == []


def test_explain_gives_every_rule_a_reason(config: Path) -> None:
    """--explain lists every rule, fired or not, with why."""
    result = run("test", "-c", str(config), "--explain", RAID)
    assert result.exit_code == 0, result.output
    for rule_id in ("escalation-score", "new-front", "named-weapon", "place-burst"):
        assert rule_id in result.output


def test_file_is_judged(config: Path, tmp_path: Path) -> None:
    """--file reads a title line and a body."""
    path = tmp_path / "a.txt"
    path.write_text("Oreshnik fired\nRussia fired an Oreshnik missile at Dnipro.\n")
    rules = {
        m["rule"] for m in matches(run("test", "-c", str(config), "--file", str(path), "--json"))
    }
    assert "named-weapon" in rules


def test_url_of_a_feed_judges_every_item(config: Path, feed_server: FeedServer) -> None:
    """--url of a feed judges each item; each match names its item."""
    url = feed_server.add_feed("/rss", rss([{"title": RAID}, {"title": CALM}]))
    found = matches(run("test", "-c", str(config), "--url", url, "--json"))
    assert {m["item"] for m in found} == {RAID}


def test_url_of_a_page_judges_its_text(config: Path, feed_server: FeedServer) -> None:
    """--url of an HTML page judges its title and text."""
    page = f"<html><head><title>News</title></head><body><p>{RAID}</p></body></html>"
    feed_server.set_route("/page", Body(page.encode(), content_type=HTML_TYPE))
    found = matches(run("test", "-c", str(config), "--url", feed_server.url("/page"), "--json"))
    assert "record-raid" in {m["rule"] for m in found}


def write_cases(path: Path, *lines: dict[str, Any] | str) -> Path:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), "utf-8"
    )
    return path


def test_cases_all_passing_exit_zero(config: Path, tmp_path: Path) -> None:
    """Cases that all pass print the confusion table and exit 0; --json OUT has each result."""
    cases = write_cases(
        tmp_path / "c.jsonl",
        {"title": RAID, "expect": "fire", "rule": "record-raid", "min_severity": "critical"},
        {"title": CALM, "expect": "silent"},
    )
    out = tmp_path / "results.json"
    result = run("test", "-c", str(config), "--cases", str(cases), "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "record-raid" in result.output and "overall" in result.output
    results = json.loads(out.read_text())["results"]
    assert [r["passed"] for r in results] == [True, True]
    assert results[0]["fired"][0]["evidence"]["terms"]


def test_a_missed_case_exits_one_unless_report_only(config: Path, tmp_path: Path) -> None:
    """A case that misses makes the run exit 1 and is listed; --report-only exits 0."""
    cases = write_cases(
        tmp_path / "c.jsonl",
        {"title": CALM, "expect": "fire", "rule": "named-weapon"},
        {"title": RAID, "expect": "silent", "lang": "en"},
    )
    result = run("test", "-c", str(config), "--cases", str(cases))
    assert result.exit_code == 1
    assert f"{cases}:1" in result.output and f"{cases}:2" in result.output
    assert "record-raid" in result.output  # the false alarm's evidence
    assert run("test", "-c", str(config), "--cases", str(cases), "--report-only").exit_code == 0


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not a JSON object"),
        ('{"title": "x", "expect": "maybe"}', "`expect`"),
        ('{"title": "x", "expect": "fire", "rule": "no-such-rule"}', "no-such-rule"),
        ('{"title": "x", "expect": "fire", "lang": "de"}', "`lang`"),
    ],
)
def test_a_malformed_case_line_exits_two_naming_it(
    config: Path, tmp_path: Path, bad: str, message: str
) -> None:
    """A malformed line is exit 2 with file:line and what is wrong."""
    cases = write_cases(tmp_path / "c.jsonl", {"title": CALM, "expect": "silent"}, "", bad)
    result = run("test", "-c", str(config), "--cases", str(cases))
    assert result.exit_code == 2
    assert f"{cases}:3" in result.output and message in result.output


def test_nothing_to_judge_is_a_usage_error(config: Path) -> None:
    """Without a text, --file, --url or --cases the command exits 2."""
    assert run("test", "-c", str(config)).exit_code == 2


# --- monitor backtest -------------------------------------------------------------------

T0 = datetime(2025, 6, 9, 6, tzinfo=UTC)


def archive_rows() -> list[dict[str, Any]]:
    """Out of time order on purpose; one HTML summary; a new region reported twice."""
    at = lambda h: (T0 + timedelta(hours=h)).isoformat().replace("+00:00", "Z")  # noqa: E731
    return [
        {"published": at(5), "title": "Second drone attack on Khabarovsk region", "source": "b",
         "link": "https://example.test/2", "lang": "en"},
        {"published": at(0), "title": "Drone attack on Khabarovsk region damages energy facility",
         "source": "a", "link": "https://example.test/1", "lang": "en"},
        {"published": at(30), "title": "Overnight", "source": "a",
         "summary": "<p>Russia launched <b>728 drones</b> at Ukraine</p>"},
        {"published": at(31), "title": CALM, "source": "c"},
    ]  # fmt: skip


def read_alerts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def check_archive_alerts(alerts: list[dict[str, Any]]) -> None:
    assert all(set(a) == ALERT_KEYS for a in alerts)
    new = [a for a in alerts if a["rule"] == "strike-reaches-new-region"]
    assert [a["item"]["title"] for a in new] == [
        "Drone attack on Khabarovsk region damages energy facility"
    ]
    raid = next(a for a in alerts if a["rule"] == "record-raid")
    assert raid["item"]["summary"] == "Russia launched 728 drones at Ukraine"
    assert raid["created_at"] == raid["item"]["published"] == "2025-06-10T12:00:00Z"
    times = [a["item"]["published"] for a in alerts]
    assert times == sorted(times)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_backtest_over_an_archive(config: Path, tmp_path: Path, suffix: str) -> None:
    """A JSON-lines archive (or gzipped) is run in time order and alerts are written."""
    text = "".join(json.dumps(r) + "\n" for r in archive_rows())
    path = tmp_path / f"items{suffix}"
    if suffix.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    out = tmp_path / "alerts.out.jsonl"
    result = run("backtest", "-c", str(config), "--input", str(path), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "4 items" in result.output and "2025-06-10" in result.output
    check_archive_alerts(read_alerts(out))


def test_backtest_over_a_directory_of_feeds(config: Path, tmp_path: Path) -> None:
    """Every feed file in a directory is read; the file name is the source."""
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    day = "Mon, 09 Jun 2025"
    one = {"title": RAID, "guid": "1", "pubDate": f"{day} 06:00:00 GMT"}
    two = {"title": CALM, "guid": "2", "pubDate": f"{day} 07:00:00 GMT"}
    (feeds / "one.xml").write_bytes(rss([one]))
    (feeds / "two.xml").write_bytes(rss([two]))
    out = tmp_path / "alerts.out.jsonl"
    result = run("backtest", "-c", str(config), "--input", str(feeds), "--output", str(out))
    assert result.exit_code == 0, result.output
    alerts = read_alerts(out)
    assert {a["item"]["feed"] for a in alerts} == {"one"}
    assert "record-raid" in {a["rule"] for a in alerts}


def test_backtest_over_the_store(config: Path, tmp_path: Path) -> None:
    """--since reads the store read-only and judges its recent items."""
    store = SQLiteStorage(tmp_path / "monitor.db")
    now = datetime.now(UTC)
    old = Item("old", "f", RAID, "", "https://example.test/old", now - timedelta(days=30))
    new = Item("new", "f", RAID, "", "https://example.test/new", now - timedelta(hours=1))
    store.claim([ClaimRequest(old), ClaimRequest(new)], now)
    store.close()
    out = tmp_path / "alerts.out.jsonl"
    result = run("backtest", "-c", str(config), "--since", "7d", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert {a["item"]["id"] for a in read_alerts(out)} == {"new"}


def test_a_bad_archive_line_is_named(config: Path, tmp_path: Path) -> None:
    """An archive line without a time is exit 2 naming file:line."""
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"title": "x", "published": "2025-06-09"}) + "\n{}\n")
    result = run("backtest", "-c", str(config), "--input", str(path))
    assert result.exit_code == 2
    assert f"{path}:2" in result.output
