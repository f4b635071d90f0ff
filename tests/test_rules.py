"""The rule engine: each kind fires on its positives, stays silent on its negatives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter

from monitor.config.rule_models import RuleConfig
from monitor.exceptions import RuleError
from monitor.rules.compile import compile_rules
from monitor.rules.engine import RuleSet
from monitor.types import Item, Match, Severity

_RULES = TypeAdapter(list[RuleConfig])
WHEN = datetime(2025, 6, 8, tzinfo=UTC)


def ruleset(*rules: dict[str, Any]) -> RuleSet:
    """Compile rules given as YAML-like dicts."""
    return compile_rules(_RULES.validate_python(list(rules)))


def item(
    title: str,
    summary: str = "",
    *,
    tags: tuple[str, ...] = (),
    language: str | None = None,
) -> Item:
    return Item(
        id="i",
        feed_id="f",
        title=title,
        summary=summary,
        url=None,
        published=WHEN,
        tags=tags,
        language=language,
    )


def fired(rules: RuleSet, title: str, summary: str = "", **kw: Any) -> list[str]:
    feed_tags = kw.pop("feed_tags", ())
    return [m.rule_id for m in rules.evaluate(item(title, summary, **kw), feed_tags=feed_tags)]


def one(rules: RuleSet, title: str, summary: str = "") -> Match:
    matches = rules.evaluate(item(title, summary))
    assert len(matches) == 1, matches
    return matches[0]


def terms(**kw: Any) -> RuleSet:
    return ruleset({"kind": "terms", "id": "r", **kw})


# --- terms ---------------------------------------------------------------------------------

OFFENSIVE = terms(any=["offensive"], none=["football", "match", "league"])
ADVANCE = terms(any=["advanc*"])
STRIKE = terms(any=["strike"])
ADVANCE_INFLECTED = terms(any=["advance"])
REALITIES = terms(any=["new realities on the ground"])


@pytest.mark.parametrize(
    ("rules", "text", "fires"),
    [
        (OFFENSIVE, "Russia opens a new offensive in Dnipropetrovsk region", True),
        (OFFENSIVE, "Liverpool's offensive play wins the league", False),
        (OFFENSIVE, "An offensive masterclass in the Champions League match", False),
        (ADVANCE, "Russian forces advancing into Dnipropetrovsk", True),
        (ADVANCE, "The advance serves as a warning", True),
        (ADVANCE, "Troops advanced overnight", True),
        (ADVANCE, "A clear disadvantage for the defenders", False),
        (STRIKE, "Russian strikes on Kharkiv", True),
        (STRIKE, "Missile struck an apartment block", True),
        (STRIKE, "A striking escalation", True),
        (STRIKE, "The striker scored twice", False),
        (STRIKE, "Strikethrough text", False),
        (ADVANCE_INFLECTED, "Russian troops advancing", True),
        (ADVANCE_INFLECTED, "Russian troops advanced", True),
        (ADVANCE_INFLECTED, "Russian advances", True),
        (ADVANCE_INFLECTED, "Advancement of the talks", False),
        (terms(any=["strike"], inflect=False), "Russian strikes on Kharkiv", False),
        (terms(any=["seize"]), "Forces seized the village", True),
        (terms(any=["capture"]), "Troops captured Zorya", True),
        (terms(any=["launch"]), "Russia launches drones", True),
        (terms(any=["fly"]), "Drones flew over the border", True),
        (terms(any=["shoot"]), "Air defence shot down 40 drones", True),
        (terms(any=["ballistic missile"]), "Two ballistic missiles hit Dnipro", True),
        (terms(any=["war"]), "Moving toward a software warning", False),
        (REALITIES, 'will receive "new realities on the ground."', True),
        (REALITIES, "new realities in the ground", False),
        (terms(any=["counter-offensive"]), "a counter offensive began", True),
        (terms(any=["counter-offensive"]), "the Counter–Offensive began", True),
        (terms(any=["kyiv's"]), "Kyiv’s forces", True),
        (terms(all=["drone*", "kyiv"]), "Drones over Kyiv", True),
        (terms(all=["drone*", "kyiv"]), "Drones over Lviv", False),
        (terms(any=["drone*", "missile*", "oreshnik"], at_least=2), "Drones and missiles", True),
        (terms(any=["drone*", "missile*", "oreshnik"], at_least=2), "Drones and drones", False),
        (terms(any=["дрон*"]), "Росія випустила 479 дронів", True),
        (terms(any=["дрон*"]), "атака дронами на Київ", True),
        (terms(any=["дрон*"]), "андрон", False),
        (terms(any=["київ"]), "удар по Київ", True),
        (terms(any=["київ"]), "удар по Києву", False),
        (terms(any=["київ", "києв*"]), "удар по Києву", True),
        (terms(any=["ракет*"]), "Запуск РАКЕТ", True),
        (terms(any=["ёлка"]), "Елка", True),
    ],
)  # fmt: skip
def test_terms(rules: RuleSet, text: str, fires: bool) -> None:
    """A terms rule fires on its terms (wildcards, inflections, phrases) and not on guards."""
    assert bool(fired(rules, text)) is fires


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("adv*ance", "'*' is allowed only at the end"),
        ("a*", "too short"),
        ("--", "no letters or digits"),
    ],
)
def test_bad_term_names_rule_and_term(term: str, message: str) -> None:
    """A term that cannot be used is a RuleError naming the rule and the term."""
    with pytest.raises(RuleError) as info:
        ruleset({"kind": "terms", "id": "bad-term", "any": ["okay", term]})
    assert info.value.rule_id == "bad-term"
    assert message in str(info.value)
    assert repr(term) in str(info.value)
    assert "rule 'bad-term'" in str(info.value)


def test_terms_shared_between_rules() -> None:
    """Rules sharing a term each fire, and each reports the term as it wrote it."""
    rules = ruleset(
        {"kind": "terms", "id": "a", "any": ["Drone*"]},
        {"kind": "terms", "id": "b", "any": ["drone*"], "none": ["show"]},
        {"kind": "terms", "id": "c", "all": ["drone*", "kyiv"]},
    )
    matches = rules.evaluate(item("Drones over Kyiv"))
    assert [m.rule_id for m in matches] == ["a", "b", "c"]
    assert matches[0].evidence.terms[0].term == "Drone*"
    assert fired(rules, "A drone show over Kyiv") == ["a", "c"]


# --- near ----------------------------------------------------------------------------------

GAP_10 = "Drones one two three four five six seven eight nine ten Kyiv"


@pytest.mark.parametrize(
    ("within", "text", "fires"),
    [
        (5, "Drones attacked Kyiv overnight", True),
        (5, GAP_10, False),
        (20, GAP_10, True),
        (10, GAP_10, True),
        (9, GAP_10, False),
        (0, "Kyiv drones", True),
        (0, "Kyiv hit by drones", False),
        ("sentence", "Drones were launched at night. Air raid alert in Kyiv.", False),
        ("sentence", "Drones were launched at night towards Kyiv. Alerts sounded.", True),
    ],
)
def test_near(within: int | str, text: str, fires: bool) -> None:
    """A near rule fires when a term of each group is within N words or the same sentence."""
    rules = ruleset({"kind": "near", "id": "n", "terms": [["drone*"], ["kyiv"]], "within": within})
    assert bool(fired(rules, text)) is fires


def test_near_evidence_and_three_groups() -> None:
    """Near evidence lists the terms found, the words between them and a snippet."""
    rules = ruleset(
        {
            "kind": "near",
            "id": "n",
            "terms": [["offensive", "advance"], ["dnipropetrovsk*"], ["first time"]],
            "within": 8,
        }
    )
    text = "Russia says it is advancing into Dnipropetrovsk region for the first time"
    match = one(rules, text)
    assert [h.text for h in match.evidence.terms] == ["advancing", "Dnipropetrovsk", "first time"]
    near = match.evidence.details["near"]
    assert near["pair"] == ["advance", "dnipropetrovsk*", "first time"]
    assert near["words_between"] == 5  # into Dnipropetrovsk region for the
    assert match.evidence.details["snippet"] == text
    assert fired(rules, "Dnipropetrovsk: an advance") == []


def test_near_same_field_only() -> None:
    """Near terms must be in the same field."""
    rules = ruleset({"kind": "near", "id": "n", "terms": [["drone*"], ["kyiv"]], "within": 50})
    assert fired(rules, "Drones", "Kyiv") == []


# --- regex ---------------------------------------------------------------------------------

COUNT = r"(?P<count>\d[\d, ]*\d|\d) (?:\w+ ){0,2}drones"
WORDS = r"launched (?P<count>[a-z -]+?) drones"


@pytest.mark.parametrize(
    ("pattern", "thresholds", "text", "fires"),
    [
        (COUNT, {"count": ">= 400"}, "Russia launched 479 drones", True),
        (COUNT, {"count": ">= 400"}, "Russia launched 1,200 attack drones", True),
        (COUNT, {"count": ">= 400"}, "Russia launched 300 drones", False),
        (COUNT, {"count": "< 400"}, "Russia launched 300 drones", True),
        (WORDS, {"count": ">= 400"}, "Russia launched four hundred and seventy-nine drones", True),
        (WORDS, {"count": ">= 400"}, "Russia launched many drones", False),
        (r"oreshnik", {}, "An Oreshnik missile", True),
        (r"realities on the ground", {}, "“realities on the ground”", True),
    ],
)
def test_regex(pattern: str, thresholds: dict[str, str], text: str, fires: bool) -> None:
    """A regex rule fires when its pattern matches and its named numbers pass the thresholds."""
    rules = ruleset({"kind": "regex", "id": "x", "pattern": pattern, "thresholds": thresholds})
    assert bool(fired(rules, text)) is fires


def test_regex_evidence_numbers() -> None:
    """Regex evidence quotes the match and the numbers read from named groups."""
    rules = ruleset(
        {"kind": "regex", "id": "x", "pattern": COUNT, "thresholds": {"count": ">= 400"}}
    )
    match = one(rules, "Overnight: 1,200 Shahed drones")
    assert match.evidence.terms[0].text == "1,200 Shahed drones"
    (number,) = match.evidence.details["numbers"]
    assert number == {
        "group": "count", "value": 1200, "text": "1,200", "start": 11, "end": 16, "field": "title"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"pattern": "(?P<count>\\d+"}, "missing ), unterminated subpattern"),
        ({"pattern": "\\d+ drones", "thresholds": {"count": ">= 1"}}, "not a named group"),
    ],
)
def test_regex_errors_name_the_rule(rule: dict[str, Any], message: str) -> None:
    """A bad pattern or a threshold on a missing group is a RuleError naming the rule."""
    with pytest.raises(RuleError) as info:
        ruleset({"kind": "regex", "id": "record-raid", **rule})
    assert info.value.rule_id == "record-raid"
    assert message in str(info.value)


# --- quantity ------------------------------------------------------------------------------

RAIDS = ruleset(
    {
        "kind": "quantity",
        "id": "q",
        "nouns": ["drone*", "shahed*", "missile*", "ballistic missile*", "дрон*", "беспилотник*"],
        "min": 400,
    }
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Russia launched 479 drones overnight", 479),
        ("nearly 500 Shahed drones", 500),
        ("Russia fired hundreds of missiles", None),  # 200 < 400
        ("Russia fired thousands of missiles", 2000),
        ("more than 1,000 drones", 1000),
        ("around 100 drones", None),
        ("over 1 000 drones", 1000),
        ("a record 728 drones and decoys", 728),
        ("four hundred and seventy-nine drones", 479),
        ("479 дронів", 479),
        ("более 400 беспилотников", 400),
        ("понад 400 дронів", 400),
        ("479 Shahed-type attack drones", 479),
        ("400 drone hobbyists gathered", None),
        ("300 people attacked by drones", None),
        ("In 2025, drones", None),
    ],
)
def test_quantity(text: str, value: int | None) -> None:
    """A quantity rule fires when a number counting one of its nouns reaches ``min``."""
    matches = RAIDS.evaluate(item(text))
    if value is None:
        assert matches == []
    else:
        (match,) = matches
        assert [n["value"] for n in match.evidence.details["numbers"]] == [value]


def test_quantity_evidence_offsets() -> None:
    """Quantity evidence gives the number and its noun as the original text has them."""
    title = "Ukraine’s air force: a record 728 drones and decoys"
    (match,) = RAIDS.evaluate(item(title))
    (number,) = match.evidence.details["numbers"]
    assert number["text"] == "728" == title[number["start"] : number["end"]]
    assert number["noun"] == "drones"
    assert number["qualifier"] == "record"
    assert match.evidence.terms[0].text == "drones"


def test_quantity_max_and_none_guard() -> None:
    """``max`` bounds the number, and a ``none`` guard keeps drone shows out."""
    rules = ruleset(
        {"kind": "quantity", "id": "q", "nouns": ["drone*"], "min": 100, "max": 1000,
         "none": ["drone show*", "light show*"]},
    )  # fmt: skip
    assert fired(rules, "479 drones") == ["q"]
    assert fired(rules, "5,000 drones") == []
    assert fired(rules, "A drone show with 500 drones lit up Shanghai") == []


# --- score ---------------------------------------------------------------------------------

SCORE = ruleset(
    {
        "kind": "score",
        "id": "s",
        "categories": {
            "weapons": {"weight": 1.0, "cap": 3.0,
                        "terms": {"oreshnik": 3, "ballistic missile*": 2}},
            "scale": {"terms": {"record": 1, "massive": 1}},
            "territorial": {"weight": 2.0, "terms": {"for the first time": 1, "advanc*": 1}},
        },
        "bands": {"info": 2, "warning": 4, "critical": 7},
    }
)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "severity", "score", "parts"),
    [
        ("Weather is fine", None, None, None),
        ("A record heat wave", None, None, None),
        ("Record and massive", Severity.INFO, 2, {"scale": 2}),
        ("Oreshnik and ballistic missiles", Severity.INFO, 3, {"weapons": 3}),
        ("Oreshnik, record raid, massive", Severity.WARNING, 5, {"weapons": 3, "scale": 2}),
        (
            "Oreshnik and ballistic missiles, massive record raid, advancing for the first time",
            Severity.CRITICAL,
            9,
            {"weapons": 3, "scale": 2, "territorial": 4},
        ),
        ("advancing, advance, advanced", Severity.INFO, 2, {"territorial": 2}),
    ],
)
def test_score(
    text: str, severity: Severity | None, score: float | None, parts: dict[str, float] | None
) -> None:
    """The score sums capped, weighted categories (a term once) and picks the highest band."""
    matches = SCORE.evaluate(item(text))
    if severity is None:
        assert matches == []
        return
    (match,) = matches
    assert match.severity is severity
    assert match.evidence.details["score"] == score
    assert match.evidence.details["breakdown"] == parts


# --- requires, order, errors ---------------------------------------------------------------


def test_requires() -> None:
    """A rule with ``requires`` fires only when its required rules fire too, in any order."""
    rules = ruleset(
        {"kind": "terms", "id": "escalation", "any": ["offensive"], "requires": ["region"]},
        {"kind": "terms", "id": "region", "any": ["dnipropetrovsk"]},
    )
    assert rules.rule_ids == ("region", "escalation")
    assert fired(rules, "Offensive in Dnipropetrovsk") == ["region", "escalation"]
    assert fired(rules, "Offensive in Donetsk") == []
    assert fired(rules, "Dnipropetrovsk") == ["region"]


@pytest.mark.parametrize(
    ("rules", "rule_id", "message"),
    [
        (
            [("a", ["b"]), ("b", ["c"]), ("c", ["a"])],
            "a",
            "`requires` makes a cycle: a -> b -> c -> a",
        ),
        ([("a", ["a"])], "a", "cycle: a -> a"),
        ([("a", ["x"])], "a", "requires 'x', which is not defined"),
        ([("a", []), ("a", [])], "a", "duplicate rule id"),
    ],
)
def test_requires_errors(rules: list[tuple[str, list[str]]], rule_id: str, message: str) -> None:
    """Cycles, unknown ids and duplicates in ``requires`` are RuleErrors naming the rules."""
    with pytest.raises(RuleError) as info:
        ruleset(*({"kind": "terms", "id": i, "any": ["x" * 3], "requires": r} for i, r in rules))
    assert info.value.rule_id == rule_id
    assert message in str(info.value)


def test_disabled_rules() -> None:
    """Disabled rules never fire, and a rule may not require one."""
    rules = ruleset(
        {"kind": "terms", "id": "on", "any": ["drone*"]},
        {"kind": "terms", "id": "off", "any": ["drone*"], "enabled": False},
    )
    assert rules.rule_ids == ("on",)
    assert fired(rules, "drones") == ["on"]
    with pytest.raises(RuleError, match="disabled"):
        ruleset(
            {"kind": "terms", "id": "a", "any": ["drone*"], "requires": ["b"]},
            {"kind": "terms", "id": "b", "any": ["drone*"], "enabled": False},
        )


def test_no_rules() -> None:
    """An empty rule set fires nothing."""
    assert compile_rules([]).evaluate(item("drones")) == []


# --- evidence ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "term", "text"),
    [
        ("Kyiv’s air defence shot down 40 drones", "kyiv's", "Kyiv’s"),
        ("“Oreshnik” strike", "oreshnik", "Oreshnik"),
        ("ﬁghters scrambled", "fighter*", "ﬁghters"),  # NFKC: one char becomes two
        ("Ёлка и ракеты", "ракет*", "ракеты"),
        ("Counter—offensive", "counter-offensive", "Counter—offensive"),
        ("КИЇВ атакували", "київ", "КИЇВ"),
    ],
)
def test_evidence_offsets_round_trip(title: str, term: str, text: str) -> None:
    """Evidence offsets index the original text, whatever normalisation did to it."""
    rules = terms(any=[term])
    hit = one(rules, title).evidence.terms[0]
    assert hit.text == text
    assert title[hit.start : hit.end] == text
    assert hit.field == "title"
    assert hit.term == term


def test_snippet_is_a_window_around_the_hit() -> None:
    """The snippet quotes about 160 characters of the original around the first hit."""
    summary = ("Filler words here. " * 20) + "Russia used the Oreshnik missile. " + ("More. " * 40)
    match = one(terms(any=["oreshnik"]), "", summary)
    snippet = match.evidence.details["snippet"]
    assert "Oreshnik" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert 100 <= len(snippet) <= 170
    assert match.evidence.details["kind"] == "terms"
    assert match.evidence.to_dict()["terms"][0]["field"] == "summary"


# --- scope ---------------------------------------------------------------------------------


def test_fields_scope() -> None:
    """A rule reads only its fields, guards included."""
    rules = terms(any=["drone*"], none=["show"], fields=["title"])
    assert fired(rules, "Drones", "") == ["r"]
    assert fired(rules, "Nothing", "Drones") == []
    assert fired(rules, "Drones", "a show") == ["r"]


@pytest.mark.parametrize(
    ("tags", "feed_tags", "fires"),
    [
        (("ukraine",), (), True),
        ((), ("Ukraine",), True),
        (("sport",), ("tech",), False),
        ((), (), False),
    ],
)
def test_feed_tag_scope(tags: tuple[str, ...], feed_tags: tuple[str, ...], fires: bool) -> None:
    """A rule with feed_tags reads items whose own or feed's tags include one of them."""
    rules = terms(any=["drone*"], feed_tags=["ukraine", "russia"])
    assert bool(fired(rules, "drones", tags=tags, feed_tags=feed_tags)) is fires


@pytest.mark.parametrize(
    ("language", "fires"),
    [("en", True), ("en-GB", True), ("EN_us", True), ("uk", False), (None, False)],
)
def test_language_scope(language: str | None, fires: bool) -> None:
    """A rule with languages reads items in those languages (any region), not unknown ones."""
    rules = terms(any=["drone*"], languages=["en"])
    assert bool(fired(rules, "drones", language=language)) is fires


# --- explain -------------------------------------------------------------------------------


def test_explain_gives_a_reason_for_every_rule() -> None:
    """explain() says for every rule whether it fired and, if not, why."""
    rules = ruleset(
        {"kind": "terms", "id": "off", "any": ["x" * 3], "enabled": False},
        {"kind": "terms", "id": "sport", "any": ["offensive"], "none": ["league"]},
        {"kind": "quantity", "id": "raid", "nouns": ["drone*"], "min": 400},
        {"kind": "terms", "id": "drones", "any": ["drone*"]},
        {"kind": "terms", "id": "both", "any": ["drone*"], "requires": ["raid"]},
    )
    verdicts = {v.rule_id: v for v in rules.explain(item("League offensive, 300 drones"))}
    assert verdicts["off"].reason == "disabled"
    assert verdicts["sport"].reason == "excluded by 'league' ('League' in title)"
    assert verdicts["raid"].reason == "numbers read (300) are out of range"
    assert verdicts["drones"].fired
    assert verdicts["both"].reason == "required rules did not fire: raid"


# --- the seed ------------------------------------------------------------------------------

SEED = (
    "As Russia and Ukraine continue sending record amounts of drones across their border, in "
    "what are now nightly aerial raids, Moscow has significantly stepped up its ground "
    "offensive, over the weekend announcing it has begun advancing into Ukraine’s "
    "Dnipropetrovsk region for the first time in the three-year-plus long war. Around 100 "
    "Russian drones are in the air. Russia used Dnipro as a testing ground for its "
    "“experimental” Oreshnik missile in late 2024."
)


def test_seed_article_fires_escalation_rules() -> None:
    """The seed article fires territorial, weapon and rhetoric rules, but not a raid count."""
    rules = ruleset(
        {"kind": "near", "id": "advance-into-region", "terms": [["advanc*", "offensive"],
         ["region", "oblast"]], "within": 6},
        {"kind": "terms", "id": "new-weapon", "any": ["oreshnik"], "severity": "critical"},
        {"kind": "quantity", "id": "record-raid", "nouns": ["drone*"], "min": 400},
    )  # fmt: skip
    matches = {m.rule_id: m for m in rules.evaluate(item("Russia advances", SEED))}
    assert set(matches) == {"advance-into-region", "new-weapon"}
    assert matches["new-weapon"].severity is Severity.CRITICAL
