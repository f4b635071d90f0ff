"""The pure noise-control decisions: signatures, similarity, story plans, cooldowns, gates,
routing with default and health routes, digests and source-health transitions."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor import decide, suppress
from monitor.config.models import AppConfig, RouteConfig
from monitor.config.rule_models import CooldownConfig
from monitor.types import (
    Alert,
    Evidence,
    HealthCondition,
    Item,
    Match,
    Severity,
    TermHit,
)

NOW = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)

STORY = [
    "Russia launches record 479 drones at Ukraine overnight",
    "Ukraine says Russia fired a record 479 drones",
    "Record 479 Russian drones target Ukraine in overnight attack",
    "Russia fires record number of drones, 479, at Ukraine - Kyiv",
    "Kyiv: Russia hit Ukraine with a record 479 drones and 20 missiles overnight",
]
OTHERS = [
    "Russian forces advance into Dnipropetrovsk region for the first time",
    "Ukraine reports record grain harvest",
    "Drones strike oil refinery in Russia's Saratov region",
    "Ukraine",
]


def item(n: int, title: str, *, feed: str = "", summary: str = "") -> Item:
    return Item(
        id=f"i{n}",
        feed_id=feed or f"feed-{n}",
        title=title,
        summary=summary,
        url=f"https://news.example/{n}",
        published=NOW - timedelta(minutes=30),
    )


def match(rule: str = "drones", severity: Severity = Severity.WARNING, **details: Any) -> Match:
    hit = TermHit("drone*", "title", 0, 6, "drones")
    return Match(rule, severity, Evidence((hit,), {"kind": "terms", **details}))


def routes(*specs: dict[str, Any]) -> tuple[RouteConfig, ...]:
    return tuple(RouteConfig.model_validate(s) for s in specs)


def book(*route_specs: dict[str, Any], **policy: Any) -> suppress.StoryBook:
    given = route_specs or ({"sinks": ["desk"]},)
    return suppress.StoryBook(suppress.Policy(routes=routes(*given), **policy))


# -- signatures and similarity ------------------------------------------------------


@pytest.mark.parametrize("other", STORY[1:])
def test_reports_of_one_story_are_alike(other: str) -> None:
    """Differently worded headlines of the record-drone story score at or above 70."""
    a, b = suppress.signature(STORY[0]), suppress.signature(other)
    assert suppress.similarity(a, b) >= 70 or any(
        suppress.similarity(suppress.signature(s), b) >= 70 for s in STORY[1:] if s != other
    )


@pytest.mark.parametrize("other", OTHERS)
def test_unrelated_headlines_are_not_alike(other: str) -> None:
    """Headlines of other stories, even sharing words, score below 70 against every report."""
    sig = suppress.signature(other)
    assert all(suppress.similarity(sig, suppress.signature(s)) < 70 for s in STORY)


def test_signature_normalises_case_stop_words_and_plurals() -> None:
    """Case, stop words, punctuation, curly quotes and plural s do not change a signature."""
    assert suppress.signature("The DRONES hit Kyiv’s power grid") == suppress.signature(
        "drone hit kyiv's power grids"
    )


def test_a_short_title_borrows_the_summary() -> None:
    """A title with few content words is completed with the summary's first sentence."""
    assert suppress.signature("Overnight", "Russia launched 728 drones. More later.") == (
        "728 drone launched overnight russia"
    )


def test_a_one_word_title_is_not_a_subset_of_every_story() -> None:
    """Fewer than three shared tokens never cluster, however high token_set_ratio is."""
    assert suppress.similarity("ukraine", suppress.signature(STORY[0])) == 0


# -- routing ------------------------------------------------------------------------


def alert(rule: str = "drones", severity: Severity = Severity.WARNING, **details: Any) -> Alert:
    return Alert("a1", rule, severity, NOW, item(1, STORY[0]), Evidence((), details))


def test_default_route_is_used_only_when_no_other_matches() -> None:
    """A default route takes only what no other news route took."""
    rs = routes(
        {"sinks": ["pager"], "min_severity": "critical"},
        {"sinks": ["desk"], "default": True},
        {"sinks": ["ops"], "health": True},
    )
    assert decide.route(alert(severity=Severity.CRITICAL), (), rs) == ("pager",)
    assert decide.route(alert(severity=Severity.INFO), (), rs) == ("desk",)


def test_health_alerts_go_to_health_routes_only() -> None:
    """A health:* alert reaches the health routes and no news route; news never reaches ops."""
    rs = routes({"sinks": ["desk"]}, {"sinks": ["ops"], "health": True})
    assert decide.route(alert("health:feed-failing"), (), rs) == ("ops",)
    assert decide.route(alert(), (), rs) == ("desk",)


def test_a_merged_alert_is_routed_by_any_of_its_rules() -> None:
    """A route for one rule takes a merged alert that lists it in evidence.rules."""
    rs = routes({"sinks": ["ukraine"], "rules": ["new-region"]})
    assert decide.route(alert(rules=["drones", "new-region"]), (), rs) == ("ukraine",)
    assert decide.route(alert(), (), rs) == ()


def test_health_route_config_is_checked() -> None:
    """A health route that is also default, or filters rules, is refused."""
    with pytest.raises(ValueError, match="health"):
        RouteConfig.model_validate({"sinks": ["ops"], "health": True, "default": True})
    with pytest.raises(ValueError, match="health route"):
        RouteConfig.model_validate({"sinks": ["ops"], "health": True, "rules": ["x"]})


# -- story plans ----------------------------------------------------------------------


def test_first_report_alerts_and_later_ones_only_corroborate() -> None:
    """The first report alerts; four more from other feeds join its story, no new alert."""
    b = book()
    plans = [
        b.plan(item(i, t), [match()], feed_tags=(), feed_title=f"F{i}", now=NOW)
        for i, t in enumerate(STORY)
    ]
    assert [len(p.alerts) for p in plans] == [1, 0, 0, 0, 0]
    story = plans[-1].story
    assert story is not None and len(story.feeds) == 5
    assert story.first_alert_id == plans[0].alerts[0].alert.alert_id


def test_a_non_matching_report_joins_but_does_not_start_a_story() -> None:
    """Without matches an item only corroborates an open story; alone it plans nothing."""
    b = book()
    assert b.plan(item(9, OTHERS[1]), [], feed_tags=(), feed_title="", now=NOW) == suppress.Plan()
    b.plan(item(0, STORY[0]), [match()], feed_tags=(), feed_title="", now=NOW)
    joined = b.plan(item(1, STORY[1]), [], feed_tags=(), feed_title="", now=NOW)
    assert joined.story is not None and len(joined.story.feeds) == 2 and not joined.alerts


def test_stories_close_after_the_window() -> None:
    """A report after the story window starts a new story and alerts again."""
    b = book(window=timedelta(hours=24))
    b.plan(item(0, STORY[0]), [match()], feed_tags=(), feed_title="", now=NOW)
    later = b.plan(
        item(1, STORY[1]), [match()], feed_tags=(), feed_title="", now=NOW + timedelta(hours=25)
    )
    assert len(later.alerts) == 1


def test_a_kept_book_forgets_closed_stories() -> None:
    """A book kept between polls drops the stories the window has closed, index and all."""
    b = book(window=timedelta(hours=24))
    b.plan(item(0, STORY[0]), [match()], feed_tags=(), feed_title="", now=NOW)
    b.plan(item(1, OTHERS[0]), [match()], feed_tags=(), feed_title="", now=NOW + timedelta(hours=2))
    b.forget(NOW + timedelta(hours=1))
    assert [s.sources[0].item_id for s in b.stories.values()] == ["i1"]
    assert b.candidates(suppress.signature(STORY[1]), NOW) == []


def test_a_kept_book_indexes_as_a_book_read_afresh() -> None:
    """A story's older reports leave the index as newer ones join, as in a book read from
    the store, so a kept book and a fresh one pick the same candidates."""
    b = book()
    for n in range(suppress.MATCHED_REPORTS + 8):
        title = f"{STORY[n % len(STORY)]} update{n}"
        b.plan(item(n, title), [match()], feed_tags=(), feed_title="", now=NOW)
    fresh = suppress.StoryBook(b.policy, b.stories.values())
    assert b._index == fresh._index


def test_several_rules_on_one_item_give_one_alert_listing_them() -> None:
    """Three rules firing on one report give one alert: the highest-severity rule, all three."""
    b = book()
    matches = [match("drones"), match("record-raid", Severity.CRITICAL), match("kyiv")]
    plan = b.plan(item(0, STORY[0]), matches, feed_tags=(), feed_title="", now=NOW)
    [entry] = plan.alerts
    assert entry.alert.rule_id == "record-raid" and entry.alert.severity == Severity.CRITICAL
    assert entry.alert.evidence.details["rules"] == ["drones", "record-raid", "kyiv"]
    assert len(entry.alert.evidence.terms) == 1  # the same hit once


def test_min_sources_on_a_route_waits_for_the_kth_feed() -> None:
    """A route with min_sources 3 alerts when the third feed reports, listing all three."""
    b = book({"sinks": ["desk"], "min_sources": 3})
    plans = [
        b.plan(item(i, t), [match()], feed_tags=(), feed_title=f"F{i}", now=NOW)
        for i, t in enumerate(STORY[:4])
    ]
    assert [len(p.alerts) for p in plans] == [0, 0, 1, 0]
    sent = plans[2].alerts[0].alert
    assert sent.item.id == "i2"
    assert [s["feed"] for s in sent.evidence.details["sources"]] == ["feed-0", "feed-1", "feed-2"]


def test_the_same_feed_twice_is_one_source() -> None:
    """Two reports from one feed count once towards min_sources."""
    b = book({"sinks": ["desk"], "min_sources": 2})
    b.plan(item(0, STORY[0], feed="f"), [match()], feed_tags=(), feed_title="", now=NOW)
    again = b.plan(item(1, STORY[1], feed="f"), [match()], feed_tags=(), feed_title="", now=NOW)
    assert not again.alerts


def test_a_feeds_later_report_joins_without_rewriting_the_story() -> None:
    """A feed's second report of a story changes nothing: not a source, nothing to write."""
    b = book()
    first = b.plan(item(0, STORY[0], feed="f"), [match()], feed_tags=(), feed_title="", now=NOW)
    again = b.plan(item(1, STORY[1], feed="f"), [match()], feed_tags=(), feed_title="", now=NOW)
    assert again == suppress.Plan()
    assert first.story is not None
    assert [s.item_id for s in b.stories[first.story.story_id].sources] == ["i0"]


def test_among_many_alike_open_stories_the_closest_is_joined() -> None:
    """Hundreds of open stories share the day's common words; a report still joins the one
    it shares most with, though only the closest few are compared."""
    b = book()
    rng = random.Random(5)
    syllables = ["ka", "lo", "mi", "ren", "tor", "vas", "qui", "zel", "pra", "dun"]
    names = [
        " ".join("".join(rng.sample(syllables, 3)) + str(n) for _ in range(6)) for n in range(300)
    ]
    planned = [
        b.plan(
            item(n, f"Russian drones strike {name}"),
            [match()],
            feed_tags=(),
            feed_title="",
            now=NOW,
        )
        for n, name in enumerate(names)
    ]
    assert len(b.stories) > 10 * suppress.MAX_CANDIDATES
    target = planned[157].story
    report = item(999, f"Overnight Russian drones strike {names[157]}")
    plan = b.plan(report, [match()], feed_tags=(), feed_title="", now=NOW)
    assert target is not None and plan.story is not None and not plan.alerts
    assert plan.story.story_id == target.story_id


def test_min_sources_on_a_rule_gates_every_route() -> None:
    """A rule's min_sources holds its alert back on every route until k feeds report."""
    b = book({"sinks": ["desk"]}, {"sinks": ["pager"]}, gates={"drones": 2})
    first = b.plan(item(0, STORY[0]), [match()], feed_tags=(), feed_title="", now=NOW)
    second = b.plan(item(1, STORY[1]), [], feed_tags=(), feed_title="", now=NOW)
    assert not first.alerts
    [entry] = second.alerts
    assert entry.sinks == ("desk", "pager") and entry.alert.rule_id == "drones"


def test_updates_go_only_to_sinks_that_thread() -> None:
    """A new source of an alerted story gives an e-mail update threaded to the first alert."""
    b = book({"sinks": ["mail", "slack"]}, threading_sinks=frozenset({"mail"}))
    first = b.plan(item(0, STORY[0]), [match()], feed_tags=(), feed_title="A", now=NOW)
    second = b.plan(item(1, STORY[1]), [match()], feed_tags=(), feed_title="B", now=NOW)
    [update] = second.alerts
    assert update.sinks == ("mail",)
    assert update.alert.evidence.details["thread_of"] == first.alerts[0].alert.alert_id
    assert update.alert.evidence.details["reason"] == "also reported by B"
    same_feed = b.plan(item(2, STORY[2], feed="feed-1"), [], feed_tags=(), feed_title="B", now=NOW)
    assert not same_feed.alerts


def test_digest_routes_queue_instead_of_sending() -> None:
    """A digest route gets a digest entry; the alert is recorded with the immediate sinks."""
    b = book({"sinks": ["pager"], "min_severity": "critical"}, {"sinks": ["desk"], "digest": "30m"})
    plan = b.plan(item(0, STORY[0]), [match()], feed_tags=(), feed_title="", now=NOW)
    [entry] = plan.alerts
    assert entry.sinks == ()
    [queued] = plan.digests
    assert queued.sinks == ("desk",) and queued.alert is entry.alert


# -- cooldowns -------------------------------------------------------------------------


def place(pid: str) -> dict[str, str]:
    return {"id": pid, "name": pid}


def cooling_book(key: str) -> suppress.StoryBook:
    return book(cooldowns={"front": CooldownConfig(duration=timedelta(hours=6), key=key)})  # type: ignore[arg-type]


def test_cooldown_by_place_suppresses_the_same_place_only() -> None:
    """Within 6 h a second story on the same place is held back; another place alerts."""
    b = cooling_book("place")
    at = lambda n, t, p: b.plan(  # noqa: E731
        item(n, t), [match("front", places=[place(p)])], feed_tags=(), feed_title="", now=NOW
    )
    first = at(0, "Russian forces advance into Dnipropetrovsk region", "UA-12")
    second = at(1, "Shelling hits village in Dnipropetrovsk", "UA-12")
    third = at(2, "Heavy fighting near Kupiansk in Kharkiv", "UA-63")
    assert [len(p.alerts) for p in (first, second, third)] == [1, 0, 1]
    assert second.suppressed == ("front",)
    assert [(w.rule_id, w.key, w.until) for w in second.cooldowns] == [("front", "UA-12", None)]


def test_cooldown_by_rule_expires() -> None:
    """With key rule any second story waits for the cooldown, then alerts again."""
    b = cooling_book("rule")
    one = b.plan(item(0, OTHERS[0]), [match("front")], feed_tags=(), feed_title="", now=NOW)
    two = b.plan(item(1, OTHERS[2]), [match("front")], feed_tags=(), feed_title="", now=NOW)
    late = NOW + timedelta(hours=7)
    three = b.plan(item(2, OTHERS[1]), [match("front")], feed_tags=(), feed_title="", now=late)
    assert [len(p.alerts) for p in (one, two, three)] == [1, 0, 1]


def test_a_cooldown_does_not_hold_back_its_own_story() -> None:
    """The story that set a cooldown can still reach a gated route later."""
    b = book(
        {"sinks": ["desk"]},
        {"sinks": ["pager"], "min_sources": 2},
        cooldowns={"drones": CooldownConfig(duration=timedelta(hours=6))},
    )
    b.plan(item(0, STORY[0]), [match()], feed_tags=(), feed_title="", now=NOW)
    second = b.plan(item(1, STORY[1]), [match()], feed_tags=(), feed_title="", now=NOW)
    assert [e.sinks for e in second.alerts] == [("pager",)]


# -- digests -----------------------------------------------------------------------------


def test_digest_alert_lists_the_batched_alerts() -> None:
    """A digest carries one line per alert, the highest severity, and a stable id."""
    alerts = [
        Alert(f"a{n}", "low", sev, NOW, item(n, t), Evidence(), "Feed")
        for n, (t, sev) in enumerate([(OTHERS[1], Severity.INFO), (OTHERS[2], Severity.WARNING)])
    ]
    digest = suppress.digest_alert("r", alerts, NOW)
    assert digest.severity == Severity.WARNING and digest.rule_id == "digest"
    assert [e["title"] for e in digest.evidence.details["alerts"]] == [OTHERS[1], OTHERS[2]]
    assert digest.alert_id == suppress.digest_alert("r", alerts, NOW).alert_id
    assert digest.item.title == "Digest: 2 alerts"


@pytest.mark.parametrize(
    ("waited", "every", "due"),
    [(29, 30, False), (30, 30, True), (0, None, True)],
)
def test_digest_due(waited: int, every: int | None, due: bool) -> None:
    """A digest is due once its oldest entry waited the interval; at once with no route."""
    interval = None if every is None else timedelta(minutes=every)
    assert suppress.digest_due(NOW - timedelta(minutes=waited), NOW, interval) is due


# -- source health --------------------------------------------------------------------------


def test_a_condition_is_raised_after_its_time_once_and_cleared_once() -> None:
    """Pending first, raised once it has held long enough, then quiet, cleared when it ends."""
    obs = suppress.Observation("feed-failing", "f", "500", after=timedelta(hours=1))
    first = suppress.health_plan([obs], {}, NOW)
    assert [c.key for c in first.pending] == ["feed-failing:f"] and not first.raised
    stored = {c.key: c for c in first.pending}
    later = NOW + timedelta(hours=1)
    second = suppress.health_plan([obs], stored, later)
    assert [c.raised for c in second.raised] == [True]
    stored = {c.key: c for c in second.raised}
    assert suppress.health_plan([obs], stored, later + timedelta(hours=1)) == suppress.HealthPlan()
    cleared = suppress.health_plan([], stored, later + timedelta(hours=2))
    assert [c.key for c in cleared.cleared] == ["feed-failing:f"]


def test_a_pending_condition_that_ends_is_forgotten_silently() -> None:
    """A condition that never held long enough is dropped without an alert."""
    pending = HealthCondition("feed-failing:f", "feed-failing", "f", NOW)
    plan = suppress.health_plan([], {pending.key: pending}, NOW)
    assert plan.forget == ("feed-failing:f",) and not plan.cleared


def test_silence_is_judged_against_the_usual_gap() -> None:
    """Hourly items: 4 h quiet is normal (minimum 6 h), 7 h is silence; 3 items are too few."""
    times = [NOW - timedelta(hours=h) for h in range(10)]
    args: dict[str, Any] = {"factor": 5, "minimum": timedelta(hours=6), "items": 5}
    assert suppress.silence(times, NOW + timedelta(hours=4), **args) is None
    assert suppress.silence(times, NOW + timedelta(hours=7), **args) == timedelta(hours=7)
    assert suppress.silence(times[:3], NOW + timedelta(hours=70), **args) is None


def test_usual_gap_is_the_median_in_any_order() -> None:
    """The median gap ignores the order items come in and one long pause."""
    times = [NOW - timedelta(hours=h) for h in (0, 1, 2, 3, 30)]
    shuffled = random.Random(3).sample(times, len(times))
    assert suppress.usual_gap(shuffled) == timedelta(hours=1)


def test_health_alerts_name_the_condition() -> None:
    """Raised is a warning health:<kind> alert; cleared is an info one with another id."""
    c = HealthCondition("sink-dying:mail", "sink-dying", "mail", NOW, True, "3 dead")
    raised = suppress.health_alert(c, cleared=False, now=NOW)
    cleared = suppress.health_alert(c, cleared=True, now=NOW)
    assert (raised.rule_id, raised.severity) == ("health:sink-dying", Severity.WARNING)
    assert (cleared.severity, cleared.item.title) == (
        Severity.INFO,
        "Recovered: Sink deliveries dying: mail",
    )
    assert raised.alert_id != cleared.alert_id


def test_policy_from_config_skips_burst_min_sources() -> None:
    """Burst rules' min_sources is their own condition, not a story gate."""
    config = AppConfig.model_validate(
        {
            "rules": [
                {"kind": "terms", "id": "t", "any": ["x"], "min_sources": 2},
                {"kind": "burst", "id": "b", "min_sources": 4},
            ],
            "sinks": [
                {"type": "console", "name": "console"},
                {
                    "type": "email",
                    "name": "mail",
                    "host": "h",
                    "from_addr": "a@b.example",
                    "to": ["c@d.example"],
                },
            ],
        }
    )
    policy = suppress.Policy.from_config(config)
    assert policy.gates == {"t": 2} and policy.threading_sinks == frozenset({"mail"})


# -- rendering (pure) -------------------------------------------------------------------------


def rendered_alerts() -> list[Alert]:
    """A digest, a story update and a health alert, as sinks receive them."""
    b = book({"sinks": ["mail"]}, threading_sinks=frozenset({"mail"}))
    b.plan(item(0, STORY[0]), [match()], feed_tags=(), feed_title="A", now=NOW)
    update = b.plan(item(1, STORY[1]), [match()], feed_tags=(), feed_title="B", now=NOW)
    batched = [
        Alert(f"a{n}", "low", Severity.INFO, NOW, item(n, t), Evidence(), f"Feed {n}")
        for n, t in enumerate(OTHERS[:3])
    ]
    condition = HealthCondition("feed-silent:f", "feed-silent", "f", NOW, True, "no item for 9h")
    return [
        suppress.digest_alert("r", batched, NOW),
        update.alerts[0].alert,
        suppress.health_alert(condition, cleared=False, now=NOW),
    ]


@pytest.mark.parametrize("n", range(3), ids=["digest", "update", "health"])
def test_new_alert_kinds_match_the_published_schema(n: int) -> None:
    """Digest, update and health alerts serialise to the documented alert JSON."""
    from monitor.sinks.render import alert_to_dict
    from tests.test_sinks_render import SCHEMA, validate

    payload = json.loads(json.dumps(alert_to_dict(rendered_alerts()[n])))
    assert validate(payload, SCHEMA) == []


def test_a_digest_renders_one_line_per_alert_in_every_sink() -> None:
    """Slack blocks, the Slack fallback, e-mail text and the console list each batched title."""
    from monitor.config.models import EmailSinkConfig, SlackSinkConfig
    from monitor.sinks.email import EmailSink
    from monitor.sinks.render import console_block
    from monitor.sinks.slack import SlackSink

    digest = rendered_alerts()[0]
    slack = SlackSink(
        SlackSinkConfig(type="slack", name="s", webhook_url="https://hooks.example/x")  # type: ignore[arg-type]
    ).payload(digest)
    blocks = json.dumps(slack["blocks"])
    mail = EmailSink(
        EmailSinkConfig(
            type="email", name="m", host="h", from_addr="a@b.example", to=("c@d.example",)
        )
    ).message(digest)
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for title in OTHERS[:3]:
        assert title.replace("'", "") in blocks.replace("'", "").replace("&#39;", "")
        assert title in text and title in console_block(digest)
    assert "3 alerts" in slack["text"]


def test_also_reported_by_leaves_out_the_alerts_own_feed() -> None:
    """render.sources lists the story's other feeds only."""
    from monitor.sinks.render import sources

    update = rendered_alerts()[1]
    assert update.item.feed_id == "feed-1" and sources(update) == ["A"]


def test_alike_reports_about_different_regions_are_different_stories() -> None:
    """Titles that read alike but name different regions never join; the same region does."""
    from monitor.suppress import regions_of, signature, similarity
    from monitor.types import Evidence, Match, Severity

    def places(*entries: tuple[str, str, str]) -> list[Match]:
        details = {"places": [{"id": i, "kind": k, "region": r} for i, k, r in entries]}
        return [Match("r", Severity.WARNING, Evidence(details=details))]

    odesa = places(("gn:698740", "city", "UA-51"), ("UA", "country", ""))
    odesa_region = places(("UA-51", "region", "UA-51"))
    mykolaiv = places(("gn:700569", "city", "UA-48"), ("UA", "country", ""))
    assert regions_of(odesa) == {"UA-51"}
    a = signature("Russian drones hit Odesa power plant overnight", "", regions_of(odesa))
    b = signature("Russian drones hit Mykolaiv power plant overnight", "", regions_of(mykolaiv))
    c = signature("Russian drones hit power plant in Odesa region", "", regions_of(odesa_region))
    assert similarity(a, b) == 0.0
    assert similarity(a, c) >= 70
    plain_a = signature("Russian drones hit Odesa power plant overnight")
    plain_b = signature("Russian drones hit Mykolaiv power plant overnight")
    assert similarity(plain_a, plain_b) >= 70  # without places the titles alone would merge
