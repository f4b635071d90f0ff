"""The shipped rules: they fire on the seed and news like it, and not on ordinary uses."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from monitor.analyst import Case, backtest, judge, read_cases
from monitor.config.loader import load_config
from monitor.derive import read_seed
from monitor.gazetteer import pack_mentions
from monitor.rules.compile import compile_rules
from monitor.rules.engine import RuleSet, find_places
from monitor.types import Item, Match

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "config" / "cases.jsonl"


@cache
def shipped() -> RuleSet:
    return compile_rules(load_config(ROOT / "config" / "monitor.yaml").rules)


def item(title: str, summary: str = "", *, when: datetime | None = None, feed: str = "f") -> Item:
    return Item(
        id=f"{feed}:{title}",
        feed_id=feed,
        title=title,
        summary=summary,
        url=None,
        published=when or datetime(2025, 6, 8, tzinfo=UTC),
        language="en",
    )


def seed_matches() -> dict[str, Match]:
    path = next((ROOT / "seeds").glob("*.txt"))
    seed = read_seed(path.name, path.read_text("utf-8"))
    title, _, body = seed.text.partition("\n")
    return {m.rule_id: m for m in shipped().evaluate(item(title, body))}


def texts(m: Match) -> set[str]:
    return {h.text.lower() for h in m.evidence.terms}


def test_the_seed_is_critical_on_score() -> None:
    """The seed scores critical, with weapons, territory and rhetoric in the breakdown."""
    m = seed_matches()["escalation-score"]
    assert m.severity.label == "critical"
    assert {"weapons", "territorial", "rhetoric"} <= set(m.evidence.details["breakdown"])


def test_the_seed_advance_into_a_new_region_fires_with_evidence() -> None:
    """ "advancing into ... for the first time" fires territorial-first, quoting both."""
    m = seed_matches()["territorial-first"]
    assert {"advancing into", "for the first time"} <= texts(m)
    assert "Dnipropetrovsk" in m.evidence.details["snippet"]


def test_the_seed_record_drone_amounts_fire() -> None:
    """ "record amounts of drones" fires record-attack."""
    assert {"record", "drones"} <= texts(seed_matches()["record-attack"])


def test_the_seed_oreshnik_fires() -> None:
    """The Oreshnik strike on Dnipro fires the named-weapon rule."""
    assert texts(seed_matches()["named-weapon"]) == {"oreshnik"}


def test_the_seed_rhetoric_fires() -> None:
    """Medvedev's "new realities on the ground" is hard rhetoric."""
    assert "new realities on the ground" in texts(seed_matches()["hard-rhetoric-phrases"])


def test_the_seed_advance_is_a_new_front_of_a_known_country() -> None:
    """The seed's advance into Dnipropetrovsk fires new-front: a new region of a known
    country. Its other places are known, and nothing in it is a new strike or country."""
    m = seed_matches()["new-front"]
    novelty = m.evidence.details["novelty"]
    assert novelty["place"]["id"] == "UA-12"
    assert novelty["reason"] == "new region of a known country"
    assert "advancing into" in novelty["context_terms"]
    assert [p["id"] for p in m.evidence.details["places"]] == ["UA-12"]
    assert "strike-reaches-new-region" not in seed_matches()
    assert "new-country" not in seed_matches()


def fired(title: str, rule_id: str) -> list[Match]:
    return [m for m in shipped().evaluate(item(title)) if m.rule_id == rule_id]


def test_a_region_outside_the_ground_baseline_is_a_new_front() -> None:
    """An advance into Poltava region fires new-front naming the place."""
    (m,) = fired("Russian troops advance into Poltava region", "new-front")
    assert [p["id"] for p in m.evidence.details["places"]] == ["UA-53"]
    assert m.severity.label == "critical"


@pytest.mark.parametrize(
    "title",
    [
        "Russian drone strike on Kharkiv kills two",
        "Missile attack on Odesa port damages grain terminal",
        "Russian missiles hit energy facility in Lviv overnight",
        "Drones attack Poltava overnight, regional governor says",
        "Russian offensive in Sumy Oblast continues",
        "Drones attack Tula and Ryazan regions, Russian governors say",
    ],
)
def test_cold_start_known_theatre_is_not_new(title: str) -> None:
    """With no history, strikes and fighting in the known theatre fire no novelty rule."""
    novelty = {"new-front", "strike-reaches-new-region", "new-country"}
    assert not [m.rule_id for m in shipped().evaluate(item(title)) if m.rule_id in novelty]


def test_a_strike_far_beyond_the_theatre_is_a_warning() -> None:
    """A drone strike in Khabarovsk Krai is a strike reaching a new region (warning)."""
    (m,) = fired("Ukrainian drones hit airbase in Khabarovsk region", "strike-reaches-new-region")
    assert m.severity.label == "warning"
    assert m.evidence.details["novelty"]["reason"] == "new region of a known country"


def test_a_drone_down_in_a_neighbour_is_a_new_country() -> None:
    """Drone wreckage in Poland is a new country (critical); Poland pledging aid is not."""
    (m,) = fired("Russian drones crash in Poland as NATO scrambles jets", "new-country")
    assert m.evidence.details["novelty"]["reason"] == "new country"
    assert not fired("Poland pledges more air defense systems for Ukraine", "new-country")


def backtest_rules(items: list[Item]) -> list[str]:
    """The rule of each alert a backtest of ``items`` (in time order) raises."""
    alerts: list[str] = []
    backtest(items, shipped(), on_alert=lambda a: alerts.append(a.rule_id))
    return alerts


def test_with_history_a_new_region_fires_once() -> None:
    """In a backtest the second report of the same new region is no longer new."""
    start = datetime(2025, 6, 9, tzinfo=UTC)
    items = [
        item("Drone attack on Khabarovsk region damages energy facility", when=start),
        item("Second drone attack on Khabarovsk region in a day", when=start + timedelta(hours=3)),
    ]
    assert backtest_rules(items).count("strike-reaches-new-region") == 1


def test_a_strike_does_not_hide_a_later_new_front() -> None:
    """A drone strike on Poltava, then an advance into Poltava region: still a new front."""
    start = datetime(2025, 6, 9, tzinfo=UTC)
    items = [
        item("Drones attack Poltava overnight, governor says", when=start),
        item("Russian troops advance into Poltava region", when=start + timedelta(hours=5)),
    ]
    assert backtest_rules(items).count("new-front") == 1


def test_an_advance_hides_a_later_advance_into_the_same_region() -> None:
    """new-front's own history: a second report of the advance into Poltava is not new."""
    start = datetime(2025, 6, 9, tzinfo=UTC)
    items = [
        item("Russian troops advance into Poltava region", when=start),
        item("Russian forces pushed into Poltava region", when=start + timedelta(hours=5)),
    ]
    assert backtest_rules(items).count("new-front") == 1


def test_a_place_in_an_aside_is_not_near_the_next_clause() -> None:
    """ "Putin, visiting Khabarovsk, says the offensive…": Khabarovsk is no new front."""
    title = "Putin, visiting Khabarovsk, says the offensive in Ukraine will go on"
    assert not fired(title, "new-front")


def test_an_advance_before_a_trailing_clause_is_a_new_front() -> None:
    """The comma after the place does not cut the advance off from it."""
    title = "Russian forces advanced into the Poltava region, officials said"
    (m,) = fired(title, "new-front")
    assert [p["id"] for p in m.evidence.details["places"]] == ["UA-53"]


def test_the_cases_file_is_balanced() -> None:
    """At least 40 positives and 40 negatives, and 8 of each language among them."""
    cases = read_cases(CASES)
    expect = Counter(c.expect for c in cases)
    assert expect["fire"] >= 40 and expect["silent"] >= 40
    langs = Counter(c.lang for c in cases)
    assert all(langs[lang] >= 8 for lang in ("en", "uk", "ru")), langs
    for line in CASES.read_text("utf-8").splitlines():
        json.loads(line)


@pytest.mark.parametrize(
    "case", read_cases(CASES, shipped().rule_ids), ids=lambda c: f"{c.line}-{c.expect}"
)
def test_case(case: Case) -> None:
    """Each regression case fires (its rule) or stays silent, judged on its own."""
    result = judge(case, shipped())
    fired = [(m.rule_id, m.evidence.to_dict().get("snippet")) for m in result.matches]
    assert result.passed, f"{case.where}: expected {case.expect} {case.rule or ''}: {fired}"


def test_places_found_beforehand_assess_alike() -> None:
    """Places a reader worker finds and packs give the assessment the scan's own give:
    every case and the seed, through pack_mentions and Gazetteer.unpack."""
    rules = shipped()
    gazetteer = rules.gazetteer
    assert gazetteer is not None
    path = next((ROOT / "seeds").glob("*.txt"))
    title, _, body = read_seed(path.name, path.read_text("utf-8")).text.partition("\n")
    items = [item(title, body), *(item(c.title, c.summary or "") for c in read_cases(CASES))]
    for news in items:
        packed = [pack_mentions(field) for field in find_places(gazetteer, news)]
        places = tuple(gazetteer.unpack(field) for field in packed)
        assert rules.assess(news, places=places) == rules.assess(news), news.title
