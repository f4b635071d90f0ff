"""Pure noise control: story clustering, cooldowns, min-sources gates, digests, source health.

No I/O and no clock: the pipeline reads the open stories and active cooldowns from the
store, a :class:`StoryBook` plans each claimed item against them (updating itself as the
poll's items go by), and ``Storage.claim`` writes the plans in the item's transaction::

    item + matches | signature | join the most similar open story, or start one
        | routes due (min_sources reached, not yet alerted) | cooldowns hold rules back
        | one alert per story (all rules in evidence.rules) -> immediate sinks / digest queue
        | a later source of an alerted story: "also reported by" update for e-mail threads

Only e-mail threads an update (``details["thread_of"]`` -> In-Reply-To/References). Slack
incoming webhooks cannot edit or thread a posted message, and webhook, file, console and
Apprise receivers have no thread to join, so those sinks get nothing new for a later
source; the story (every source with its link) is in the store, and an alert released
later by a ``min_sources`` gate lists them all in ``details["sources"]``.

Similarity: rapidfuzz's ``token_set_ratio`` on a normalised title signature (case-folded
words, stop words out, a crude plural fold, sorted and de-duplicated). Headlines of one
story share a few telling tokens ("record", "479", "drones", "russia", "ukraine") in
different orders and with different framing words ("says", "launches", "overnight");
token_set_ratio scores the shared set against each side's extras, which is what that
looks like, and it costs microseconds per pair in C++ with a small wheel and no other
dependency. datasketch's MinHash LSH answers "which of a million documents" sub-linearly
but needs numpy and scipy and is noisy on ten-word titles; the open stories of a 24 h
window are hundreds to a few thousand. An inverted index (token -> stories) picks the
candidates; a guard requires three shared tokens, so a one-word title ("Ukraine") is not
a subset of every story. The cost per report is bounded however busy the day: only the
MAX_CANDIDATES stories sharing the most tokens are scored, each against its own signature
and its latest MATCHED_REPORTS reports, and a story keeps one source per feed (a feed's
later updates corroborate nothing new), so a story that a thousand feeds carry costs no
more to join than one that twenty do.

Why one module past the style guide's ~400 lines: clustering, gates, cooldowns, digests
and health transitions are one policy ("what reaches an analyst, when"), share the story
and alert types, and are tested together in ``tests/test_suppress.py``; the I/O lives in
``pipeline``, ``deliver``, ``health_watch`` and ``storage.noise``.

Source health (``health_plan``): each check observes which conditions hold now; a
condition is raised once (after it has held ``after`` long) and cleared once when it no
longer holds; the store remembers pending and raised conditions between checks.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any

from rapidfuzz import fuzz

from monitor.config.models import AppConfig, RouteConfig
from monitor.config.rule_models import BurstRuleConfig, CooldownConfig
from monitor.decide import alert_id, matching_routes, route_holds, sinks_of
from monitor.text import normalize
from monitor.types import (
    Alert,
    Cooldown,
    CooldownWrite,
    DigestEntry,
    Evidence,
    HealthCondition,
    Item,
    Match,
    OutboxEntry,
    Severity,
    Story,
    StorySource,
    TermHit,
)

MIN_SHARED = 3  # tokens two signatures must share to be compared at all
MATCHED_REPORTS = 16  # a story's latest reports a new one is compared with
MAX_CANDIDATES = 24  # open stories compared with a new report, those sharing most tokens
_TITLE_TOKENS = 4  # a title with fewer content tokens borrows the summary's first sentence
_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"[.!?]\s")  # the summary's first sentence ends at its first match
_STOP = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "by", "for", "from",
        "with", "as", "into", "onto", "over", "after", "before", "is", "are", "was", "were", "be",
        "been", "being", "has", "have", "had", "it", "its", "this", "that", "these", "those",
        "there", "their", "says", "say", "said", "saying", "reports", "report", "reported",
        "according", "new", "latest", "live", "update", "updates", "video", "photos", "watch",
        "breaking",
    }
)  # fmt: skip
SUPPRESSED = "suppressed:"


# -- clustering ------------------------------------------------------------


def _tokens(text: str) -> set[str]:
    # Distinct words first: titles repeat words, and this runs for every fresh item.
    words = set(_WORD.findall(normalize(text).text)) - _STOP
    return {
        w[:-1] if len(w) > 4 and w[-1] == "s" and w[-2] != "s" else w  # drones/drone
        for w in words
        if len(w) > 1 or w.isdigit()
    }


def signature(title: str, summary: str = "", regions: Iterable[str] = ()) -> str:
    """A title's content words, normalised, de-duplicated and sorted, space-separated,
    plus one ``@<region id>`` token per region the item's evidence names."""
    tokens = _tokens(title)
    if len(tokens) < _TITLE_TOKENS and summary:
        end = _SENTENCE_END.search(summary)
        tokens |= _tokens(summary if end is None else summary[: end.start() + 1])
    tokens |= {f"{_REGION}{region}" for region in regions}
    return " ".join(sorted(tokens))


def similarity(a: str, b: str, cutoff: float = 0.0) -> float:
    """0-100: how alike two signatures are; 0 when they share fewer than three tokens, or
    when both name regions and none in common: "drones hit Odesa power plant" and
    "drones hit Mykolaiv power plant" read alike but are two stories. Also 0 below
    ``cutoff``, which spares computing a score that would not count."""
    if not a or not b:
        return 0.0
    if a == b:
        return 100.0
    words_a, regions_a, text_a = _parsed(a)
    words_b, regions_b, text_b = _parsed(b)
    if regions_a and regions_b and not regions_a & regions_b:
        return 0.0
    if len(words_a & words_b) < MIN_SHARED:
        return 0.0
    return float(fuzz.token_set_ratio(text_a, text_b, score_cutoff=cutoff))


@lru_cache(maxsize=65536)
def _parsed(sig: str) -> tuple[frozenset[str], frozenset[str], str]:
    """A signature's words, its regions (a veto only, not words) and its words as text;
    cached, as a story's signatures are compared with every report that might join it."""
    tokens = sig.split()
    regions = frozenset(w for w in tokens if w.startswith(_REGION))
    words = sorted({w for w in tokens if not w.startswith(_REGION)})
    return frozenset(words), regions, " ".join(words)


_REGION = "@"


def regions_of(matches: Sequence[Match]) -> set[str]:
    """First-level regions named in the matches' evidence (a city counts as its region;
    countries are left out: nearly every war story names the same two)."""
    found: set[str] = set()
    for match in matches:
        for place in match.evidence.details.get("places") or ():
            if not isinstance(place, Mapping) or place.get("kind") == "country":
                continue
            region = place.get("region") or place.get("id")
            if region:
                found.add(str(region))
    return found


def most_similar(sig: str, stories: Iterable[Story], threshold: float) -> Story | None:
    """The story one of whose reports is most like ``sig``, at ``threshold`` or above."""
    best: Story | None = None
    best_score = threshold
    for story in stories:
        # Below best_score a report cannot change the answer: its score is not computed.
        score = max(similarity(sig, other, best_score) for other in matched_signatures(story))
        if score >= best_score and (best is None or score > best_score):
            best, best_score = story, score
            if score == 100.0:
                break  # no later story can score higher
    return best


def _index_tokens(story: Story) -> set[str]:
    return {token for sig in matched_signatures(story) for token in sig.split()}


def matched_signatures(story: Story) -> set[str]:
    """What a report is compared with: the story's signature and its latest reports'.

    Bounded, so that a story that a thousand feeds report costs no more to join than one
    that twenty do.
    """
    return {story.signature, *(s.signature for s in story.sources[-MATCHED_REPORTS:])}


# -- merging matches into one alert ------------------------------------------


def merge(matches: Sequence[Match]) -> Match:
    """One match standing for several: the highest-severity rule (the first on a tie),
    every term hit once, the top match's details plus ``rules``: every rule id."""
    top = max(matches, key=lambda m: m.severity)  # max keeps the first of equals
    terms: dict[tuple[str, str, int, int], TermHit] = {}
    for m in matches:
        for hit in m.evidence.terms:
            terms.setdefault((hit.term, hit.field, hit.start, hit.end), hit)
    rules = list(dict.fromkeys(m.rule_id for m in matches))
    details = {**top.evidence.details, "rules": rules}
    return Match(top.rule_id, top.severity, Evidence(tuple(terms.values()), details))


def _place_keys(evidence: Evidence) -> tuple[str, ...]:
    places = evidence.details.get("places") or ()
    found = [str(p.get("id")) for p in places if isinstance(p, dict) and p.get("id")]
    return tuple(dict.fromkeys(found)) or ("",)


def cooldown_keys(config: CooldownConfig, evidence: Evidence) -> tuple[str, ...]:
    """The keys a rule's alert sets and checks: its places' ids, or "" (the whole rule)."""
    return _place_keys(evidence) if config.key == "place" else ("",)


# -- planning claimed items ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """What the planner needs of the configuration, as plain data."""

    routes: tuple[RouteConfig, ...]
    gates: Mapping[str, int] = field(default_factory=dict)  # rule id -> min_sources
    cooldowns: Mapping[str, CooldownConfig] = field(default_factory=dict)
    threading_sinks: frozenset[str] = frozenset()
    window: timedelta = timedelta(hours=24)
    threshold: float = 70.0

    @classmethod
    def from_config(cls, config: AppConfig) -> Policy:
        """Burst rules keep ``min_sources`` as their own firing condition, not a gate."""
        return cls(
            routes=config.routes,
            gates={
                r.id: r.min_sources
                for r in config.rules
                if r.min_sources > 1 and not isinstance(r, BurstRuleConfig)
            },
            cooldowns={r.id: r.cooldown for r in config.rules if r.cooldown is not None},
            threading_sinks=frozenset(s.name for s in config.sinks if s.type == "email"),
            window=config.scheduler.story_window,
            threshold=float(config.scheduler.story_similarity),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """What claiming one item writes: alerts, digest entries, its story, cooldowns."""

    alerts: tuple[OutboxEntry, ...] = ()
    digests: tuple[DigestEntry, ...] = ()
    story: Story | None = None  # None: no story, or one this item leaves as it was
    story_sources: tuple[StorySource, ...] = ()  # what the story gains: all of a new one
    cooldowns: tuple[CooldownWrite, ...] = ()
    suppressed: tuple[str, ...] = ()  # rule ids a cooldown held back


def story_id(item_id: str) -> str:
    return "s-" + hashlib.sha256(item_id.encode()).hexdigest()[:24]


class StoryBook:
    """The open stories and active cooldowns of one poll; plans each item in turn.

    Pure: it holds values, returns plans and updates itself as if each plan had been
    written (a later item of the same poll joins a story an earlier one started).
    """

    def __init__(
        self,
        policy: Policy,
        stories: Iterable[Story] = (),
        cooldowns: Iterable[Cooldown] = (),
    ) -> None:
        self.policy = policy
        self.stories: dict[str, Story] = {}
        self._index: dict[str, set[str]] = {}  # token -> ids of stories matched on it
        for story in stories:
            self._keep(story)
        self.cooldowns = {(c.rule_id, c.key): c for c in cooldowns}

    def forget(self, before: datetime) -> None:
        """Drop the stories created at or before ``before``: closed, they join nothing
        (a book kept between polls would otherwise grow for ever)."""
        for story in [s for s in self.stories.values() if s.created_at <= before]:
            del self.stories[story.story_id]
            self._unindex(story.story_id, _index_tokens(story))

    def _keep(self, story: Story) -> None:
        """Keep ``story``, indexed by the tokens it is matched on now (a kept book and one
        read afresh must pick the same candidates)."""
        tokens = _index_tokens(story)
        old = self.stories.get(story.story_id)
        if old is not None:
            self._unindex(story.story_id, _index_tokens(old) - tokens)
        self.stories[story.story_id] = story
        for token in tokens:
            self._index.setdefault(token, set()).add(story.story_id)

    def _unindex(self, story_id: str, tokens: set[str]) -> None:
        for token in tokens:
            ids = self._index.get(token)
            if ids is not None:
                ids.discard(story_id)
                if not ids:
                    del self._index[token]

    def candidates(self, sig: str, since: datetime) -> list[Story]:
        """The open stories sharing the most tokens with ``sig`` (at least MIN_SHARED),
        at most MAX_CANDIDATES of them, the newest first among equals.

        The inverted index spares comparing every report with every open story; the cap
        bounds the cost when a busy day's stories all share the war's common words.
        """
        tokens = set(sig.split())
        need = min(MIN_SHARED, len(tokens))
        shared = Counter(sid for token in tokens for sid in self._index.get(token, ()))
        stories = self.stories
        found = [
            (n, stories[sid])
            for sid, n in shared.items()
            if n >= need and sid in stories and stories[sid].created_at > since
        ]
        best = heapq.nsmallest(
            MAX_CANDIDATES,
            found,
            key=lambda f: (-f[0], -f[1].created_at.timestamp(), f[1].story_id),
        )
        return [story for _, story in best]

    def plan(
        self,
        item: Item,
        matches: Sequence[Match],
        *,
        feed_tags: Sequence[str],
        feed_title: str,
        now: datetime,
    ) -> Plan:
        """Plan one fresh item: matches start or join a story; a non-matching item only
        joins one (as corroboration). Returns an empty plan for a lone non-match."""
        if not matches and not self.stories:
            return Plan()  # nothing to corroborate: spare the signature
        sig = signature(item.title, item.summary, regions_of(matches))
        open_stories = self.candidates(sig, now - self.policy.window)
        found = most_similar(sig, open_stories, self.policy.threshold)
        if found is None and not matches:
            return Plan()
        source = StorySource(
            item.id, item.feed_id, item.title, item.url, item.published, feed_title, sig
        )
        story, new_source = self._join(found, source, matches, feed_tags, now)
        pairs = [(rule, Severity.parse(sev)) for rule, sev in story.pairs]
        routes = matching_routes(pairs, story.tags, self.policy.routes)
        done = {key.removeprefix(SUPPRESSED) for key in story.routes}
        feeds = len(story.feeds)
        due = [r for r in routes if r.key not in done and feeds >= self._gate(r, story)]
        alerted = [r for r in routes if r.key in story.routes and r.digest is None]
        added = story.sources if found is None else (source,) if new_source else ()
        plan = Plan(story=story, story_sources=added)
        if due:
            plan = self._alert(plan, story, item, matches, due, feed_title, now)
        if new_source and story.first_alert_id and alerted:
            plan = self._update(plan, item, alerted, feed_title, now)
        if plan.story == found:  # a feed's update that changes nothing: nothing to write
            return replace(plan, story=None, story_sources=())
        if plan.story is not None:
            self._keep(plan.story)
        return plan

    def _join(
        self,
        story: Story | None,
        source: StorySource,
        matches: Sequence[Match],
        feed_tags: Sequence[str],
        now: datetime,
    ) -> tuple[Story, bool]:
        pairs = tuple((m.rule_id, m.severity.label) for m in matches)
        if story is None:
            lead = merge(matches)
            fresh = Story(
                story_id(source.item_id),
                lead.rule_id,
                source.signature,
                now,
                (source,),
                pairs=pairs,
                tags=tuple(feed_tags),
                evidence=lead.evidence,
            )
            return fresh, True
        new_source = source.feed_id not in story.feeds
        all_pairs = tuple(dict.fromkeys((*story.pairs, *pairs)))
        top = max(all_pairs, key=lambda p: Severity.parse(p[1]))
        # A feed's later reports corroborate nothing its first did not: only a new feed
        # is kept as a source, so a story grows with its feeds, not with its updates.
        joined = replace(
            story,
            rule_id=top[0],
            sources=(*story.sources, source) if new_source else story.sources,
            pairs=all_pairs,
            tags=tuple(dict.fromkeys((*story.tags, *feed_tags))),
            evidence=story.evidence or (merge(matches).evidence if matches else None),
        )
        return joined, new_source

    def _gate(self, route: RouteConfig, story: Story) -> int:
        """Distinct feeds needed: the route's min_sources and the loosest of its rules'."""
        rule_gate = min((self.policy.gates.get(rule, 1) for rule, _ in story.pairs), default=1)
        return max(route.min_sources, rule_gate)

    def _alert(
        self,
        plan: Plan,
        story: Story,
        item: Item,
        matches: Sequence[Match],
        due: list[RouteConfig],
        feed_title: str,
        now: datetime,
    ) -> Plan:
        lead = list(matches) or [
            Match(rule, Severity.parse(sev), story.evidence or Evidence())
            for rule, sev in story.pairs
        ]
        kept, writes, held = self._cooldown(lead, story.story_id, now)
        kept_pairs = [(m.rule_id, m.severity) for m in kept]
        sending = [r for r in due if kept and route_holds(r, kept_pairs, story.tags)]
        keys = [r.key for r in sending] + [SUPPRESSED + r.key for r in due if r not in sending]
        story = replace(story, routes=(*story.routes, *keys))
        if not sending:
            return replace(plan, story=story, cooldowns=writes, suppressed=held)
        alert = _story_alert(story, item, kept, feed_title, now)
        story = replace(story, first_alert_id=story.first_alert_id or alert.alert_id)
        now_routes = [r for r in sending if r.digest is None]
        digests = tuple(DigestEntry(r.key, r.sinks, alert) for r in sending if r.digest)
        return replace(
            plan,
            alerts=(OutboxEntry(alert, sinks_of(now_routes)),),
            digests=digests,
            story=story,
            cooldowns=writes,
            suppressed=held,
        )

    def _cooldown(
        self, matches: Sequence[Match], story: str, now: datetime
    ) -> tuple[list[Match], tuple[CooldownWrite, ...], tuple[str, ...]]:
        """Split matches into those that may alert and those a cooldown holds back (set by
        another story); the writes start cooldowns for the first and count the second."""
        kept: list[Match] = []
        writes: list[CooldownWrite] = []
        held: list[str] = []
        for m in matches:
            config = self.policy.cooldowns.get(m.rule_id)
            if config is None:
                kept.append(m)
                continue
            keys = cooldown_keys(config, m.evidence)
            if all(self._cooling(m.rule_id, key, story, now) for key in keys):
                held.append(m.rule_id)
                writes.extend(CooldownWrite(m.rule_id, key) for key in keys)
                continue
            kept.append(m)
            for key in keys:
                write = CooldownWrite(m.rule_id, key, now + config.duration, story)
                writes.append(write)
                self.cooldowns[(m.rule_id, key)] = Cooldown(
                    m.rule_id, key, now + config.duration, story
                )
        return kept, tuple(writes), tuple(held)

    def _cooling(self, rule_id: str, key: str, story: str, now: datetime) -> bool:
        active = self.cooldowns.get((rule_id, key))
        return active is not None and active.until > now and active.story_id != story

    def _update(
        self, plan: Plan, item: Item, alerted: list[RouteConfig], feed_title: str, now: datetime
    ) -> Plan:
        """An "also reported by" update for the sinks that thread (e-mail), once per new
        source; sinks that cannot thread get nothing new."""
        story = plan.story
        assert story is not None and story.first_alert_id is not None
        already = {s for entry in plan.alerts for s in entry.sinks}
        sinks = tuple(
            s for s in sinks_of(alerted) if s in self.policy.threading_sinks and s not in already
        )
        if not sinks:
            return plan
        severity = max(Severity.parse(sev) for _, sev in story.pairs)
        details = {
            "kind": "update",
            "thread_of": story.first_alert_id,
            "reason": f"also reported by {feed_title or item.feed_id}",
            **_story_details(story),
        }
        update = Alert(
            alert_id("update:" + story.rule_id, item.id),
            story.rule_id,
            severity,
            now,
            item,
            Evidence((), details),
            feed_title,
        )
        return replace(plan, alerts=(*plan.alerts, OutboxEntry(update, sinks)))


def _story_alert(
    story: Story, item: Item, matches: Sequence[Match], feed_title: str, now: datetime
) -> Alert:
    """The story's alert on ``item``: the matches merged (``rules``: those that may alert),
    with the story's sources."""
    top = merge(matches)
    own = dict(top.evidence.details)
    if "sources" in own:  # a burst rule's count of sources in its window
        own["sources_in_window"] = own.pop("sources")
    details = {**own, **_story_details(story), "rules": own["rules"]}
    evidence = Evidence(top.evidence.terms, details)
    return Alert(
        alert_id(top.rule_id, item.id), top.rule_id, top.severity, now, item, evidence, feed_title
    )


def _story_details(story: Story) -> dict[str, Any]:
    """What an alert says about its story: every rule, the first report of each feed."""
    first: dict[str, StorySource] = {}
    for s in story.sources:
        first.setdefault(s.feed_id, s)
    return {
        "rules": [rule for rule, _ in story.pairs],
        "story": story.story_id,
        "source_count": len(first),
        "sources": [s.to_dict() for s in first.values()],
    }


# -- digests -------------------------------------------------------------------


def digest_due(oldest: datetime, now: datetime, every: timedelta | None) -> bool:
    """A digest goes out once its oldest entry has waited ``every`` (None: at once, the
    route is gone or no longer a digest)."""
    return every is None or now - oldest >= every


def digest_alert(route: str, alerts: Sequence[Alert], now: datetime) -> Alert:
    """One alert listing the batched ones; ``details["alerts"]`` holds one line each."""
    ids = "\0".join(a.alert_id for a in alerts)
    digest_id = "d-" + hashlib.sha256(f"{route}\0{ids}".encode()).hexdigest()[:30]
    severity = max(a.severity for a in alerts)
    n = len(alerts)
    title = f"Digest: {n} alert{'s' if n != 1 else ''}"
    lines = [
        {
            "alert_id": a.alert_id,
            "rule": a.rule_id,
            "severity": a.severity.label,
            "title": a.item.title,
            "url": a.item.url,
            "feed": a.feed_title or a.item.feed_id,
            "published": a.item.published.isoformat().replace("+00:00", "Z"),
        }
        for a in alerts
    ]
    summary = "\n".join(f"[{a.severity.label}] {a.item.title}" for a in alerts)
    item = Item(
        id=digest_id, feed_id="digest", title=title, summary=summary, url=None, published=now
    )
    details = {"kind": "digest", "route": route, "count": n, "alerts": lines}
    return Alert(digest_id, "digest", severity, now, item, Evidence((), details), "digest")


# -- source health --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """A health condition that holds now: since when (None: unknown, count from the first
    check that saw it) and how long it must hold before it is raised."""

    kind: str
    subject: str
    message: str
    since: datetime | None = None
    after: timedelta = timedelta(0)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"


@dataclass(frozen=True, slots=True)
class HealthPlan:
    pending: tuple[HealthCondition, ...] = ()  # seen, not yet raised: remember since
    raised: tuple[HealthCondition, ...] = ()
    cleared: tuple[HealthCondition, ...] = ()  # raised before, holds no longer
    forget: tuple[str, ...] = ()  # pending before, holds no longer: drop silently


def health_plan(
    observed: Iterable[Observation], stored: Mapping[str, HealthCondition], now: datetime
) -> HealthPlan:
    """Raise each condition once (when it has held ``after``), clear it once."""
    pending, raised = [], []
    holding = set()
    for obs in observed:
        holding.add(obs.key)
        known = stored.get(obs.key)
        if known is not None and known.raised:
            continue
        since = obs.since or (known.since if known else now)
        condition = HealthCondition(obs.key, obs.kind, obs.subject, since, message=obs.message)
        if now - since >= obs.after:
            raised.append(replace(condition, raised=True))
        elif known is None:
            pending.append(condition)
    gone = [c for key, c in stored.items() if key not in holding]
    return HealthPlan(
        pending=tuple(pending),
        raised=tuple(raised),
        cleared=tuple(c for c in gone if c.raised),
        forget=tuple(c.key for c in gone if not c.raised),
    )


def usual_gap(times: Sequence[datetime]) -> timedelta | None:
    """The median gap between consecutive item times (None with fewer than two)."""
    ordered = sorted(times)
    gaps = [(b - a).total_seconds() for a, b in pairwise(ordered)]
    return timedelta(seconds=statistics.median(gaps)) if gaps else None


def silence(
    times: Sequence[datetime], now: datetime, *, factor: float, minimum: timedelta, items: int
) -> timedelta | None:
    """How long a feed has been silent beyond its usual rhythm: the silence, if it exceeds
    ``factor`` x the median gap of its recent items (and ``minimum``), else None."""
    if len(times) < items:
        return None
    gap = usual_gap(times)
    quiet = now - max(times)
    if gap is None or quiet <= max(minimum, gap * factor):
        return None
    return quiet


def health_alert(condition: HealthCondition, *, cleared: bool, now: datetime) -> Alert:
    """``health:<kind>``: a warning when raised, an info when cleared."""
    state = "cleared" if cleared else "raised"
    stamp = condition.since.isoformat()
    key = hashlib.sha256(f"{condition.key}\0{stamp}\0{state}".encode()).hexdigest()[:30]
    what = {
        "feed-failing": "Feed failing",
        "feed-silent": "Feed silent",
        "sink-dying": "Sink deliveries dying",
    }.get(condition.kind, condition.kind)
    title = f"{'Recovered: ' if cleared else ''}{what}: {condition.subject}"
    item = Item(
        id=f"h-{key}",
        feed_id=condition.subject,
        title=title,
        summary=condition.message,
        url=None,
        published=now,
    )
    details = {
        "kind": "health",
        "condition": condition.kind,
        "subject": condition.subject,
        "state": state,
        "since": condition.since.isoformat().replace("+00:00", "Z"),
        "reason": condition.message,
    }
    severity = Severity.INFO if cleared else Severity.WARNING
    return Alert(
        f"h-{key}",
        f"health:{condition.kind}",
        severity,
        now,
        item,
        Evidence((), details),
        "media-monitor",
    )
