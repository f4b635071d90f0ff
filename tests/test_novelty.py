"""Novelty rules: a place reached by the war for the first time, against baseline and history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from monitor.config.rule_models import RuleConfig
from monitor.exceptions import RuleError
from monitor.rules.compile import compile_rules
from monitor.rules.engine import RuleSet
from monitor.rules.history import MemoryHistory, context_id, context_key, place_key
from monitor.types import Item, Match, Mention, Severity

_RULES = TypeAdapter(list[RuleConfig])
NOW = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CONTEXT = ["advanc*", "offensive", "captur*", "seiz*", "troops", "shell*", "strik*",
           "attack*", "drone*", "missile*", "наступ*", "обстріл*", "удар*"]  # fmt: skip
SEED = (
    "Russia has begun advancing into Ukraine’s Dnipropetrovsk region for the first time "
    "in the three-year-plus long war."
)
BASELINE = ["UA-14", "Dnipro", "Ukraine", "Russia"]  # the theatre, without UA-12


def novelty(**kw: Any) -> dict[str, Any]:
    rule = {
        "kind": "novelty",
        "id": "new-region",
        "severity": "critical",
        "level": "region",
        "context": {"terms": CONTEXT, "within": "sentence"},
        "baseline": BASELINE,
        "window": "90d",
    }
    return rule | kw


def ruleset(*rules: dict[str, Any]) -> RuleSet:
    return compile_rules(_RULES.validate_python(list(rules)))


def item(title: str, summary: str = "", *, feed: str = "f", published: datetime = NOW) -> Item:
    return Item("i", feed, title, summary, None, published)


# The history key of a place seen with novelty()'s context near it.
CONTEXT_ID = context_id(CONTEXT, None, inflect=True)


def history(*mentions: tuple[str, datetime, bool]) -> MemoryHistory:
    """Past mentions as (place id, when, with novelty()'s context near it)."""
    h = MemoryHistory()
    for n, (place, at, in_context) in enumerate(mentions):
        keys = [Mention(place_key(place), at, in_context)]
        if in_context:
            keys.append(Mention(context_key(CONTEXT_ID, place), at, True))
        h.add(keys, item_id=f"past-{n}", source=f"feed-{n}")
    return h


def fired(rules: RuleSet, text: str, h: MemoryHistory | None = None) -> list[Match]:
    return rules.evaluate(item(text), history=h, now=NOW)


@pytest.mark.parametrize(
    ("text", "place", "reason"),
    [
        (SEED, "UA-12", "new region of a known country"),
        ("Росія почала наступ на Дніпропетровщину", "UA-12", "new region of a known country"),
        ("Russian missiles struck Pavlohrad overnight", "UA-12", "new region of a known country"),
        ("Russian drones struck Moldova's capital Chisinau", "MD", "new country"),
        ("Drone attack on Chisinau, officials say", "MD", "new country"),
    ],
)
def test_fires_on_a_new_place_in_context(text: str, place: str, reason: str) -> None:
    """A place outside the baseline, with conflict context near it, is novel."""
    [match] = fired(ruleset(novelty()), text)
    novel = match.evidence.details["novelty"]
    assert (novel["place"]["id"], novel["reason"]) == (place, reason)
    assert novel["country_known"] is (reason != "new country")
    assert novel["window_days"] == 90
    assert novel["context_terms"]
    assert match.severity is Severity.CRITICAL


def test_evidence_quotes_the_place_in_the_original_text() -> None:
    """details.places gives the mention with offsets into the original field."""
    [match] = fired(ruleset(novelty()), SEED)
    [place] = match.evidence.details["places"]
    assert (place["id"], place["kind"], place["country"], place["field"]) == (
        "UA-12", "region", "UA", "title"
    )  # fmt: skip
    assert SEED[place["start"] : place["end"]] == "Dnipropetrovsk region"
    assert match.evidence.details["novelty"]["context_terms"] == ["advanc*"]
    assert [t.text for t in match.evidence.terms] == ["advancing"]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (SEED, novelty(baseline=[*BASELINE, "UA-12"])),  # the region is known
        (SEED, novelty(baseline=[*BASELINE, "Dnipropetrovsk Oblast"])),  # by name
        ("Dnipro hosts a jazz festival", novelty(baseline=["Ukraine"])),  # no context
        ("Dnipro hosts a jazz festival. Troops advanced on Sunday.", novelty(baseline=[])),
        ("Russian missiles struck Dnipro overnight", novelty()),  # a baseline city
        ("Russian drones struck Moldova's capital Chisinau", novelty(countries=["UA", "RU"])),
        ("Russian drones struck Moldova's capital", novelty(baseline=["Moldova"])),
        ("Troops advanced on Kostiantynivka in the east", novelty()),  # a city of UA-14
        ("Troops, it was said on Sunday after a long meeting, reached Pavlohrad",
         novelty(context={"terms": CONTEXT, "within": 4})),  # too far for 4 words
    ],
)  # fmt: skip
def test_does_not_fire_on_known_or_out_of_context_places(text: str, rule: dict[str, Any]) -> None:
    """Baseline places, places without context and other countries are not novel."""
    assert fired(ruleset(rule), text) == []


@pytest.mark.parametrize(
    ("seen", "fires"),
    [
        (("UA-12", NOW - 10 * DAY, True), False),  # seen in context within the window
        (("UA-12", NOW - 91 * DAY, True), True),  # seen, but before the window
        (("UA-12", NOW - 10 * DAY, False), True),  # mentioned, never in context
        (("UA-14", NOW - 10 * DAY, True), True),  # another region
    ],
)
def test_history_within_the_window_makes_a_place_known(
    seen: tuple[str, datetime, bool], fires: bool
) -> None:
    """A place seen in context within ``window`` before now is not new; after it, it is again."""
    assert bool(fired(ruleset(novelty()), SEED, history(seen))) is fires


def test_each_rule_reads_the_history_of_its_own_context() -> None:
    """A strike seen near a region hides it from a strike rule, not from an advance rule;
    a rule with the same context (in another order and case) shares the strike's history."""
    strike = novelty(id="strike", context={"terms": ["strik*", "drone*"], "within": 5})
    advance = novelty(id="advance", context={"terms": ["advanc*", "troops"], "within": 5})
    same = novelty(id="same", context={"terms": ["Drone*", "strik*"], "within": 5})
    rules = ruleset(strike, advance, same)
    h = MemoryHistory()
    past = rules.assess(item("Drones struck Pavlohrad overnight", published=NOW - DAY), now=NOW)
    h.add(past.mentions, item_id="past", source="f")
    now_strike = [m.rule_id for m in fired(rules, "Drones struck Pavlohrad again", h)]
    now_advance = [m.rule_id for m in fired(rules, "Troops advance on Pavlohrad", h)]
    assert (now_strike, now_advance) == ([], ["advance"])
    h.add(rules.assess(item("Troops advance on Pavlohrad"), now=NOW).mentions, item_id="x",
          source="g")  # fmt: skip
    assert fired(rules, "Troops advanced into Pavlohrad", h) == []


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("Troops advanced into Pavlohrad, officials said", True),
        ("Putin, visiting Pavlohrad, said troops would advance", False),  # an aside
        ("Troops shelled Sumy; Pavlohrad is calm", False),  # a semicolon
        ("Troops advanced (far from Pavlohrad) overnight", False),  # parentheses
        ("Troops advanced overnight - Pavlohrad is calm", False),  # a dash between spaces
        ("Troops advanced overnight — Pavlohrad is calm", False),  # an em dash
        ("Troops advanced overnight -- Pavlohrad is calm", False),  # a run of dashes
        ("Troops advanced on well-defended Pavlohrad", True),  # a hyphen in a word
        ("Troops advanced overnight -Pavlohrad", True),  # a dash not between spaces
        ("Drones struck Sumy, Kharkiv and Pavlohrad overnight", True),  # a list of places
        ("Drones struck Sumy, and Pavlohrad overnight", True),
        ("Pavlohrad: troops advance", True),  # a headline colon
        ("Troops advanced. Pavlohrad is calm", False),  # a sentence end
    ],
)
def test_a_word_window_stops_at_clause_punctuation(text: str, fires: bool) -> None:
    """``within: N`` counts words of the place's clause: commas (except between listed
    places), semicolons, parentheses, spaced dashes and sentence ends stop it."""
    rules = ruleset(novelty(context={"terms": CONTEXT, "within": 6}))
    found = [p["id"] for m in fired(rules, text) for p in m.evidence.details["places"]]
    assert ("gn:697889" in found) is fires  # Pavlohrad


def test_a_country_seen_in_history_is_known() -> None:
    """A country seen in context makes its new regions "new region of a known country"."""
    rules = ruleset(novelty(baseline=[]))
    h = history(("MD", NOW - DAY, True))
    [match] = fired(rules, "Drones struck Cahul in the south overnight", h)
    assert match.evidence.details["novelty"]["reason"] == "new region of a known country"
    [match] = fired(rules, "Russian drones struck Moldova's capital Chisinau")
    assert match.evidence.details["novelty"]["reason"] == "new country"


@pytest.mark.parametrize(
    ("level", "text", "place"),
    [
        ("city", "Russian missiles struck Pavlohrad overnight", "gn:697889"),
        ("country", "Russian drones struck Moldova's capital Chisinau", "MD"),
        ("region", "Shelling of Pavlohrad and Dnipro continued", "UA-12"),
    ],
)
def test_level_decides_what_counts_as_a_place(level: str, text: str, place: str) -> None:
    """At level city each city counts; at region, cities roll up; at country, everything does."""
    rules = ruleset(novelty(level=level, baseline=["Ukraine", "Russia"]))
    [match] = fired(rules, text)
    assert match.evidence.details["novelty"]["place"]["id"] == place


def test_without_history_the_baseline_alone_decides() -> None:
    """history=None judges against the baseline only (the rule still fires)."""
    assert fired(ruleset(novelty()), SEED, None)
    assert not fired(ruleset(novelty(baseline=[*BASELINE, "UA-12"])), SEED, None)


def test_assess_returns_mentions_rolled_up_with_context() -> None:
    """Each place is a mention with its region and country, in context or not; in context,
    also under the context's own key."""
    rules = ruleset(novelty())
    jazz = rules.assess(item("Dnipro hosts a jazz festival"), now=NOW).mentions
    assert {(m.key, m.in_context) for m in jazz} == {
        ("place:gn:709930", False), ("place:UA-12", False), ("place:UA", False)
    }  # fmt: skip
    strike = rules.assess(item("Russian missiles struck Pavlohrad overnight"), now=NOW)
    ids = ("gn:697889", "UA-12", "UA")
    assert {m.key for m in strike.mentions if m.in_context} == {
        *(place_key(i) for i in ids), *(context_key(CONTEXT_ID, i) for i in ids)
    }  # fmt: skip
    assert {m.at for m in strike.mentions} == {NOW}


def test_mentions_are_never_later_than_now() -> None:
    """A mention is at the item's publication time, or at ``now`` if that is earlier."""
    rules = ruleset(novelty())
    old = rules.assess(item(SEED, published=NOW - DAY), now=NOW).mentions
    future = rules.assess(item(SEED, published=NOW + DAY), now=NOW).mentions
    assert {m.at for m in old} == {NOW - DAY}
    assert {m.at for m in future} == {NOW}


def test_novelty_and_escalation_score_compose_with_requires() -> None:
    """A novelty rule that requires a score rule at warning or higher fires only with both."""
    score = {
        "kind": "score",
        "id": "escalation",
        "bands": {"info": 1, "warning": 3},
        "categories": {"war": {"terms": {"advanc*": 1, "offensive": 2, "troops": 1}}},
    }
    rules = ruleset(score, novelty(requires=["escalation"], requires_min_severity="warning"))
    weak = [m.rule_id for m in fired(rules, SEED)]  # advanc* alone: score 1, info
    strong = [m.rule_id for m in fired(rules, f"{SEED} Troops began an offensive there.")]
    assert weak == ["escalation"]
    assert strong == ["escalation", "new-region"]
    [verdict] = [v for v in rules.explain(item(SEED), now=NOW) if v.rule_id == "new-region"]
    assert verdict.reason == "required rules did not fire at warning or higher: escalation"


def test_every_match_lists_the_items_places() -> None:
    """Rules of other kinds carry the item's places in their evidence too."""
    rules = ruleset({"kind": "terms", "id": "t", "any": ["jazz"]})
    [match] = fired(rules, "Dnipro hosts a jazz festival")
    assert [p["id"] for p in match.evidence.details["places"]] == ["gn:709930"]


def test_explain_says_why_a_place_is_not_new() -> None:
    """The reason names the known place and why it is known."""
    rules = ruleset(novelty())
    h = history(("UA-12", NOW - DAY, True))
    [verdict] = rules.explain(item(SEED), history=h, now=NOW)
    assert "UA-12 is known (seen in context within 90d)" in verdict.reason
    assert "UA is known (in the baseline)" in verdict.reason


def test_unknown_baseline_name_is_a_rule_error() -> None:
    """A baseline name the gazetteer does not know names the rule and the name."""
    with pytest.raises(RuleError, match=r"new-region.*'Atlantis'|'Atlantis'.*new-region"):
        ruleset(novelty(baseline=["UA-14", "Atlantis"]))


@pytest.mark.parametrize(
    "bad",
    [{"level": "district"}, {"countries": ["Ukraine"]}, {"window": "0d"},
     {"context": {"terms": []}}],
)  # fmt: skip
def test_bad_novelty_config_is_rejected(bad: dict[str, Any]) -> None:
    """Levels, country codes, window and context terms are validated."""
    with pytest.raises(ValidationError):
        _RULES.validate_python([novelty(**bad)])
