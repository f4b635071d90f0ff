"""Burst rules: a place or term suddenly reported by many sources, fired on the crossing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from monitor.config.rule_models import RuleConfig
from monitor.rules.compile import compile_rules
from monitor.rules.engine import RuleSet
from monitor.rules.history import MemoryHistory
from monitor.types import Item, Match, Mention

_RULES = TypeAdapter(list[RuleConfig])
NOW = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
TEXT = "Explosions reported in the Dnipropetrovsk region overnight"
KEY = "place:UA-12"


def burst(**kw: Any) -> RuleSet:
    rule = {
        "kind": "burst",
        "id": "place-burst",
        "severity": "warning",
        "keys": "places",
        "terms": [],
        "min_sources": 3,
        "window": "2h",
        "factor": 5,
        "baseline_window": "14d",
    }
    return compile_rules(_RULES.validate_python([rule | kw]))


WARM = ("place:elsewhere", "z", 15 * DAY)  # history older than window + baseline_window


def history(*mentions: tuple[str, str, timedelta], warm: bool = True) -> MemoryHistory:
    """Past mentions as (key, source, how long before NOW); ``warm``: with a mention of
    another key 15 days back, so that the history covers a 14-day baseline."""
    h = MemoryHistory()
    for n, (key, source, ago) in enumerate((WARM, *mentions) if warm else mentions):
        h.add([Mention(key, NOW - ago)], item_id=f"past-{n}", source=source)
    return h


def fired(
    rules: RuleSet, h: MemoryHistory | None, *, text: str = TEXT, feed: str = "c"
) -> list[Match]:
    return rules.evaluate(Item("i", feed, text, "", None, NOW), history=h, now=NOW)


@pytest.mark.parametrize(
    ("past", "feed", "fires"),
    [
        ([("a", 30 * MIN), ("b", 90 * MIN)], "c", True),  # the third source crosses
        ([("a", 30 * MIN), ("a", 90 * MIN)], "a", False),  # three mentions, one source
        ([("a", 30 * MIN), ("a", 90 * MIN)], "c", False),  # two sources
        ([("a", 30 * MIN), ("b", 90 * MIN)], "b", False),  # b is counted already
        ([("a", 30 * MIN), ("b", 90 * MIN), ("d", MIN)], "c", False),  # 4th: past the crossing
        ([("a", 30 * MIN), ("b", 150 * MIN)], "c", False),  # b is before the window
    ],
)
def test_fires_when_distinct_sources_reach_min_sources(
    past: list[tuple[str, timedelta]], feed: str, fires: bool
) -> None:
    """It fires on the item that brings the key to exactly ``min_sources`` sources in 2 h."""
    h = history(*[(KEY, source, ago) for source, ago in past])
    assert bool(fired(burst(), h, feed=feed)) is fires


@pytest.mark.parametrize(
    ("baseline_mentions", "fires"),
    [
        (0, True),  # empty baseline: the floor, 1 per 14 d, is 0.006 per 2 h
        (40, True),  # 40 per 14 d is 0.24 per 2 h; x5 is 1.2 <= 3
        (200, False),  # 200 per 14 d is 1.19 per 2 h; x5 is 5.95 > 3
    ],
)
def test_the_rate_must_be_factor_times_the_baseline(baseline_mentions: int, fires: bool) -> None:
    """A key that is always in the news does not burst on three sources."""
    spread = [(KEY, "z", 3 * timedelta(hours=1) + n * MIN) for n in range(baseline_mentions)]
    h = history((KEY, "a", 30 * MIN), (KEY, "b", 60 * MIN), *spread)
    assert bool(fired(burst(), h)) is fires


def test_evidence_has_the_burst_numbers_and_the_place() -> None:
    """details.burst gives key, sources, mentions in the window, baseline rate and factor."""
    h = history((KEY, "a", 30 * MIN), (KEY, "b", 60 * MIN), (KEY, "z", 3 * DAY))
    [match] = fired(burst(), h)
    assert match.evidence.details["burst"] == {
        "key": KEY,
        "sources": 3,
        "mentions_in_window": 3,
        "baseline_rate_per_window": round(1 / (14 * 12), 3),  # one mention in 14 d
        "factor": 5,
    }
    [place] = match.evidence.details["places"]
    assert place["id"] == "UA-12" and TEXT[place["start"] : place["end"]] == "Dnipropetrovsk region"


def test_cities_roll_up_to_their_region() -> None:
    """Mentions of Dnipro and Pavlohrad both count for UA-12 at level region."""
    h = history((KEY, "a", 30 * MIN), (KEY, "b", 60 * MIN))
    [match] = fired(burst(), h, text="Blasts heard in Pavlohrad")
    assert match.evidence.details["burst"]["key"] == KEY


def test_without_history_a_burst_never_fires() -> None:
    """history=None: there is nothing to count sources in."""
    assert fired(burst(min_sources=1), None) == []


def test_an_item_older_than_the_window_does_not_count() -> None:
    """Only an item published within the window can cross it."""
    h = history((KEY, "a", 30 * MIN), (KEY, "b", 60 * MIN))
    old = Item("i", "c", TEXT, "", None, NOW - 3 * timedelta(hours=1))
    assert burst().evaluate(old, history=h, now=NOW) == []


def test_term_bursts_track_their_terms() -> None:
    """keys: terms counts each term's mentions; the evidence quotes the term."""
    rules = burst(keys="terms", terms=["oreshnik", "glide bomb*"])
    h = history(("term:oreshnik", "a", 10 * MIN), ("term:oreshnik", "b", 20 * MIN))
    [match] = fired(rules, h, text="Russia fires another Oreshnik at Dnipro")
    assert match.evidence.details["burst"]["key"] == "term:oreshnik"
    assert [t.text for t in match.evidence.terms] == ["Oreshnik"]
    assert fired(rules, h, text="Glide bombs hit Kharkiv") == []  # glide bomb*: one source


def test_assess_records_tracked_terms_as_mentions() -> None:
    """The terms burst rules track become term: mentions, whether or not a rule fires."""
    rules = burst(keys="terms", terms=["oreshnik", "glide bomb*"])
    item = Item("i", "c", "Glide bombs and an Oreshnik", "", None, NOW)
    keys = {m.key for m in rules.assess(item, now=NOW).mentions}
    assert {"term:oreshnik", "term:glide bomb*"} <= keys


def test_a_burst_fires_once_per_crossing_in_a_stream() -> None:
    """Replaying a stream, the alert comes with the third source only."""
    rules, h = burst(), history()
    alerts = []
    for n, feed in enumerate(["a", "a", "b", "c", "d", "c", "e"]):
        item = Item(f"i{n}", feed, TEXT, "", None, NOW + n * MIN)
        assessment = rules.assess(item, history=h, now=NOW + n * MIN)
        alerts += [(n, feed) for _ in assessment.matches]
        h.add(assessment.mentions, item_id=item.id, source=feed)
    assert alerts == [(3, "c")]


@pytest.mark.parametrize(
    ("oldest", "fires"),
    [
        (None, False),  # an empty history
        (3 * DAY, False),  # three days: no 14-day baseline yet
        (14 * DAY, False),  # 14 days, but the window's 2 h are not before the baseline
        (14 * DAY + 2 * timedelta(hours=1), True),  # window + baseline_window: covered
    ],
)
def test_a_burst_waits_until_history_covers_its_baseline(
    oldest: timedelta | None, fires: bool
) -> None:
    """On a cold start every busy place would burst (an empty baseline counts as one
    mention): the rule is silent until the oldest mention is window + baseline_window old."""
    past = [(KEY, "a", 30 * MIN), (KEY, "b", 60 * MIN)]
    if oldest is not None:
        past.append(("place:elsewhere", "z", oldest))
    h = history(*past, warm=False)
    assert bool(fired(burst(), h)) is fires


def test_explain_says_how_short_the_history_is() -> None:
    """The reason gives the days of history held and the days the baseline needs."""
    h = history((KEY, "a", 30 * MIN), (KEY, "b", 60 * MIN), (KEY, "z", 3 * DAY + 2 * HOUR),
                warm=False)  # fmt: skip
    item = Item("i", "c", TEXT, "", None, NOW)
    [verdict] = burst().explain(item, history=h, now=NOW)
    assert verdict.reason == "history too short for a baseline: 3 days of 14"
    [verdict] = burst().explain(item, history=MemoryHistory(), now=NOW)
    assert verdict.reason == "history too short for a baseline: 0 days of 14"


def test_a_cold_start_stream_is_silent_until_the_baseline_is_covered() -> None:
    """Replaying a daily burst (three feeds within minutes) from an empty history: the
    first 15 days are warm-up (14 days of baseline, 2 h of window); day 15 fires."""
    rules, h = burst(), MemoryHistory()
    days = []
    for day in range(17):
        for n, feed in enumerate("abc"):
            at = NOW + day * DAY + n * MIN
            item = Item(f"i{day}-{n}", feed, TEXT, "", None, at)
            assessment = rules.assess(item, history=h, now=at)
            days += [day for _ in assessment.matches]
            h.add(assessment.mentions, item_id=item.id, source=feed)
    assert days == [15, 16]


@pytest.mark.parametrize(
    "bad",
    [{"keys": "terms", "terms": []}, {"keys": "places", "terms": ["x"]},
     {"min_sources": 0}, {"window": 0}, {"keys": "people"}],
)  # fmt: skip
def test_bad_burst_config_is_rejected(bad: dict[str, Any]) -> None:
    """Term bursts need terms, place bursts take none; counts and windows are positive."""
    with pytest.raises(ValidationError):
        burst(**bad)
