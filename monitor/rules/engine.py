"""Evaluating compiled rules on an item: one automaton pass, then cheap per-hit work.

    Item ──normalize──▶ title, summary ──one Aho-Corasick pass──▶ Scan (hits per term id)
         ──candidate rules (those with a hit, in dependency order)──▶ matchers ──▶ [Match]

The :class:`Scan` of an item is computed once and shared by every rule: the normalised
fields, every term hit with offsets, and (lazily, only if a rule asks) word and sentence
indexes and quantities read before nouns. A rule is a :class:`CompiledRule`: a scope
(fields, feed tags, languages, ``requires``, ``none`` guard) plus a kind-specific
:class:`Matcher` (built in :mod:`monitor.rules.compile`). A matcher names the term ids that
can make it fire (``triggers``); only rules with a triggered term are evaluated, so a
thousand rules cost nothing on an item that mentions none of their terms.

Places: the scan also finds the item's places with the gazetteer (its own automaton, run
over the same word-broken text) and every match's evidence lists them under
``details["places"]``: the places the match is about for novelty and burst rules, the
item's first few places for the other kinds. :meth:`RuleSet.assess` also returns the
item's :class:`~monitor.types.Mention` s (each place rolled up to its region and country,
in context or not; the terms burst rules track) for the history that novelty and burst
rules read (:mod:`monitor.rules.history`).

Pure: no I/O, no clock, no module state. ``now`` and the history are parameters; the
history is only read. Offsets in evidence are into the item's original title or summary
(after NFC composition, which news text already is).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol

from monitor.gazetteer import Gazetteer, Place, PlaceMention
from monitor.rules.history import History
from monitor.rules.numbers import Quantity, quantity_before
from monitor.text import Normalized, break_words, normalize
from monitor.types import Evidence, Item, Match, Mention, Severity, TermHit

FIELDS: tuple[str, ...] = ("title", "summary")
SNIPPET_CHARS = 160
MAX_EVIDENCE_HITS = 12  # hits quoted in a match's evidence
MAX_HITS_PER_TERM = 3  # of which any one term
MAX_EVIDENCE_PLACES = 5  # places listed in the evidence of a rule that is not about places
LEVELS = ("city", "region", "country")
_RANK = {level: rank for rank, level in enumerate(LEVELS)}

Hit = tuple[int, int, int]  # (field index, start, end) in normalised text
_NONSPACE = re.compile(r"\S+")


class Automaton(Protocol):
    """The part of ``ahocorasick.Automaton`` the engine uses."""

    def iter(self, text: str) -> Iterable[tuple[int, tuple[int, bool, tuple[int, ...]]]]: ...


@dataclass(slots=True)
class FieldText:
    """One normalised field of an item, with a lazily built sentence index."""

    name: str
    norm: Normalized
    broken: str  # " " + text with every non-letter/digit as a space + " "
    _sentences: list[int] | None = None

    def words_between(self, start: int, end: int) -> int:
        """How many words lie in ``[start, end)`` of the normalised text (0 if empty)."""
        if end <= start:
            return 0
        return len(_NONSPACE.findall(self.broken, start + 1, end + 1))

    def sentence_index(self, pos: int) -> int:
        if self._sentences is None:
            self._sentences = [s for s, _ in self.norm.sentences()]
        return bisect_right(self._sentences, pos) - 1


@dataclass(slots=True)
class Scan:
    """Everything rules read about one item, computed once per item.

    ``places`` holds each field's place mentions; ``now`` and ``history`` are what
    novelty and burst rules judge against (``history`` None: no history to read).
    """

    item: Item
    fields: tuple[FieldText, ...]
    hits: dict[int, list[Hit]]
    tags: frozenset[str]
    language: str | None
    places: tuple[tuple[PlaceMention, ...], ...] = ()
    gazetteer: Gazetteer | None = None
    now: datetime | None = None
    history: History | None = None
    fired: dict[str, Match] = field(default_factory=dict)
    _quantities: dict[tuple[int, int, int], Quantity | None] = field(default_factory=dict)
    _quotes: dict[Hit, tuple[int, int, str]] = field(default_factory=dict)
    _snippets: dict[Hit, str] = field(default_factory=dict)
    _near: dict[tuple[int, int, int], tuple[tuple[str, Hit], ...]] = field(default_factory=dict)
    _place_lists: dict[frozenset[int], tuple[tuple[int, PlaceMention], ...]] = field(
        default_factory=dict
    )
    _seen: dict[tuple[str, datetime, datetime], bool] = field(default_factory=dict)
    _item_places: dict[frozenset[int], tuple[dict[str, Any], ...]] = field(default_factory=dict)
    _closest: dict[tuple[int, int, int], tuple[int, Hit, int, Hit | None] | None] = field(
        default_factory=dict
    )
    _keyed: dict[tuple[frozenset[int], str], tuple[tuple[int, PlaceMention, Place], ...]] = field(
        default_factory=dict
    )

    @property
    def at(self) -> datetime:
        """When the item's mentions happened: its publication, never later than ``now``."""
        published = self.item.published
        return published if self.now is None or published <= self.now else self.now

    def place_mentions(self, fields: frozenset[int]) -> tuple[tuple[int, PlaceMention], ...]:
        """(field index, mention) for the places in ``fields``, title first (cached)."""
        found = self._place_lists.get(fields)
        if found is None:
            found = self._place_lists[fields] = tuple(
                (index, mention)
                for index, mentions in enumerate(self.places)
                if index in fields
                for mention in mentions
            )
        return found

    def keyed_places(
        self, fields: frozenset[int], level: str
    ) -> tuple[tuple[int, PlaceMention, Place], ...]:
        """(field index, mention, the place it counts as at ``level``), cached per level."""
        memo = (fields, level)
        found = self._keyed.get(memo)
        if found is None:
            found = self._keyed[memo] = tuple(
                (index, mention, self.rollup(mention.place, level))
                for index, mention in self.place_mentions(fields)
            )
        return found

    def rollup(self, place: Place, level: str) -> Place:
        """The place counted at ``level``: a city's region or country; coarser stays itself."""
        if _RANK[place.kind] >= _RANK[level] or self.gazetteer is None:
            return place
        target = place.region if level == "region" and place.region else place.country
        try:
            return self.gazetteer.get(target)
        except KeyError:  # a region the table lacks: count the place itself
            return place

    def closest(
        self, term_id: int, index: int, start: int, end: int
    ) -> tuple[int, Hit, int, Hit | None] | None:
        """A term's hit closest to ``[start, end)`` of field ``index`` in words, and its
        closest hit in the same sentence (None if none is); None if the field has no hit.

        Hits overlapping the span (the place's own words) do not count. Cached: every
        context that names the term shares the answer.
        """
        memo = (term_id, index, start)
        if memo in self._closest:
            return self._closest[memo]
        best: tuple[int, Hit, int, Hit | None] | None = None
        ft = self.fields[index]
        sentence = -2
        for hit in self.hits.get(term_id, ()):
            if hit[0] != index or (hit[1] < end and start < hit[2]):
                continue
            if hit[1] >= end:
                gap = ft.words_between(end, hit[1])
            else:
                gap = ft.words_between(hit[2], start)
            if sentence == -2:
                sentence = ft.sentence_index(start)
            same = ft.sentence_index(hit[1]) == sentence
            if best is None:
                best = (gap, hit, gap, hit) if same else (gap, hit, 0, None)
                continue
            near_gap, near_hit, sentence_gap, sentence_hit = best
            if gap < near_gap:
                near_gap, near_hit = gap, hit
            if same and (sentence_hit is None or gap < sentence_gap):
                sentence_gap, sentence_hit = gap, hit
            best = (near_gap, near_hit, sentence_gap, sentence_hit)
        self._closest[memo] = best
        return best

    def seen(self, history: History, key: str, since: datetime, until: datetime) -> bool:
        """``history.seen`` in context, asked once per item (rules share the answer)."""
        memo = (key, since, until)
        found = self._seen.get(memo)
        if found is None:
            found = self._seen[memo] = history.seen(key, since, until)
        return found

    def place_evidence(self, index: int, mention: PlaceMention) -> dict[str, Any]:
        """A place mention as evidence: the place, the alias, offsets into the original field."""
        norm = self.fields[index].norm
        start, end = norm.span(mention.start, mention.end)
        return {
            **place_dict(mention.place),
            "alias": mention.alias,
            "field": FIELDS[index],
            "start": start,
            "end": end,
            "text": norm.original[start:end],
        }

    def item_places(self, fields: frozenset[int]) -> list[dict[str, Any]]:
        """The first few distinct places of ``fields``, for a match's evidence.

        Built once per item and fields; matches get their own list of the same
        (read-only) dicts.
        """
        found = self._item_places.get(fields)
        if found is None:
            out: dict[str, dict[str, Any]] = {}
            for index, mention in self.place_mentions(fields):
                if mention.place.id not in out:
                    out[mention.place.id] = self.place_evidence(index, mention)
                    if len(out) == MAX_EVIDENCE_PLACES:
                        break
            found = self._item_places[fields] = tuple(out.values())
        return list(found)

    def hits_in(self, term_id: int, fields: frozenset[int]) -> list[Hit]:
        found = self.hits.get(term_id)
        if not found:
            return []
        if len(fields) == len(self.fields):
            return found
        return [h for h in found if h[0] in fields]

    def quantity(self, hit: Hit, max_gap: int) -> Quantity | None:
        """The number read before the noun at ``hit`` (cached per hit)."""
        key = (hit[0], hit[1], max_gap)
        if key not in self._quantities:
            text = self.fields[hit[0]].norm.text
            self._quantities[key] = quantity_before(text, hit[1], hit[2], max_gap=max_gap)
        return self._quantities[key]

    def term_hit(self, term: str, hit: Hit) -> TermHit:
        """A hit as evidence: offsets and text of the original field."""
        quote = self._quotes.get(hit)
        if quote is None:
            norm = self.fields[hit[0]].norm
            start, end = norm.span(hit[1], hit[2])
            quote = self._quotes[hit] = (start, end, norm.original[start:end])
        return TermHit(term, FIELDS[hit[0]], *quote)

    def snippet(self, field_index: int, start: int, end: int) -> str:
        """The snippet around ``[start, end)`` of a field (cached: rules share hits)."""
        key = (field_index, start, end)
        text = self._snippets.get(key)
        if text is None:
            text = self._snippets[key] = snippet(self.fields[field_index].norm, start, end)
        return text


@dataclass(frozen=True, slots=True, eq=False)
class ContextTerms:
    """Terms that must occur near a place: within ``within`` words, or (None) one sentence.

    Compared by identity: the compiler makes one object per distinct context, so the
    scan's cache (keyed by ``id``) serves every rule that shares it.
    """

    terms: tuple[tuple[int, str], ...]
    within: int | None
    _names: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", dict(reversed(self.terms)))  # first name wins

    def near(self, scan: Scan, index: int, start: int, end: int) -> tuple[tuple[str, Hit], ...]:
        """The closest hit of each context term near ``[start, end)`` of field ``index``,
        closest first; empty if the context does not hold there."""
        key = (id(self), index, start)
        cached = scan._near.get(key)
        if cached is not None:
            return cached
        found: list[tuple[int, str, Hit]] = []
        names = self._names
        for term_id in names.keys() & scan.hits.keys():
            term = names[term_id]
            closest = scan.closest(term_id, index, start, end)
            if closest is None:
                continue
            gap, hit, sentence_gap, sentence_hit = closest
            if self.within is None:
                if sentence_hit is not None:
                    found.append((sentence_gap, term, sentence_hit))
            elif gap <= self.within:
                found.append((gap, term, hit))
        found.sort(key=itemgetter(0))
        result = scan._near[key] = tuple((term, hit) for _, term, hit in found)
        return result

    def holds(self, scan: Scan, index: int, start: int, end: int) -> bool:
        """Whether some context term is near ``[start, end)``: ``near`` without ranking."""
        names = self._names
        if self.within is not None or (id(self), index, start) in scan._near:
            return bool(self.near(scan, index, start, end))
        ft = scan.fields[index]
        sentence = -2
        for term_id in names.keys() & scan.hits.keys():
            for hit in scan.hits[term_id]:
                if hit[0] != index or (hit[1] < end and start < hit[2]):
                    continue
                if sentence == -2:
                    sentence = ft.sentence_index(start)
                if ft.sentence_index(hit[1]) == sentence:
                    return True
        return False

    def union(self, other: ContextTerms) -> ContextTerms:
        """One context that holds wherever either holds (both must have the same ``within``)."""
        return ContextTerms(tuple(dict.fromkeys(self.terms + other.terms)), self.within)


@dataclass(frozen=True, slots=True)
class Fired:
    """A matcher's positive answer; ``severity`` None means the rule's own."""

    evidence: Evidence
    severity: Severity | None = None


class Matcher(Protocol):
    """The compiled, kind-specific part of a rule."""

    @property
    def kind(self) -> str:
        """The rule kind, as in the configuration (``terms``, ``near``...)."""
        ...

    @property
    def triggers(self) -> frozenset[int]:
        """Term ids whose hits make the rule worth checking; empty means every item."""
        ...

    def check(self, scan: Scan, fields: frozenset[int]) -> Fired | str:
        """Fired, or a one-line reason why not (shown by ``monitor test``)."""
        ...


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    severity: Severity
    matcher: Matcher
    fields: frozenset[int]
    feed_tags: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    requires: tuple[str, ...] = ()
    none: tuple[tuple[int, str], ...] = ()
    requires_min_severity: Severity | None = None
    _none_ids: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_none_ids", frozenset(t for t, _ in self.none))

    def check(self, scan: Scan) -> Match | str:
        """Scope, ``requires``, ``none`` guard, then the matcher; evidence gets the places."""
        if self.languages and scan.language not in self.languages:
            return f"language {scan.language or 'unknown'} is not one of {sorted(self.languages)}"
        if self.feed_tags and not self.feed_tags & scan.tags:
            return f"item has none of the feed tags {sorted(self.feed_tags)}"
        if self.requires:
            missing = [r for r in self.requires if not self._required_fired(scan, r)]
            if missing:
                at = self.requires_min_severity
                level = f" at {at.label} or higher" if at is not None else ""
                return f"required rules did not fire{level}: {', '.join(missing)}"
        if self.none and not self._none_ids.isdisjoint(scan.hits):
            for term_id, term in self.none:
                found = scan.hits_in(term_id, self.fields)
                if found:
                    hit = scan.term_hit(term, found[0])
                    return f"excluded by {term!r} ({hit.text!r} in {hit.field})"
        result = self.matcher.check(scan, self.fields)
        if isinstance(result, str):
            return result
        evidence = result.evidence
        if "places" not in evidence.details:
            places = scan.item_places(self.fields)
            evidence = Evidence(evidence.terms, {**evidence.details, "places": places})
        return Match(self.id, result.severity or self.severity, evidence)

    def _required_fired(self, scan: Scan, rule_id: str) -> bool:
        match = scan.fired.get(rule_id)
        if match is None:
            return False
        return self.requires_min_severity is None or match.severity >= self.requires_min_severity


class Prefilter(Protocol):
    """Narrows a group of rules (indexes into ``RuleSet.rules``) down for one item."""

    @property
    def rules(self) -> frozenset[int]:
        """The rules it decides for."""
        ...

    def candidates(self, scan: Scan) -> frozenset[int]:
        """Those of ``rules`` that may fire on the scanned item (a superset is fine)."""
        ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one rule fired on an item, and why or why not."""

    rule_id: str
    match: Match | None
    reason: str = ""

    @property
    def fired(self) -> bool:
        return self.match is not None


@dataclass(frozen=True, slots=True)
class Assessment:
    """The rules that fired on an item, and what the item adds to the history."""

    matches: list[Match]
    mentions: tuple[Mention, ...]


class RuleSet:
    """Compiled rules in dependency order, sharing one automaton (and the gazetteer's).

    ``contexts`` are the novelty rules' conflict contexts (None: a rule without one,
    for which every mention is in context); a place mention is recorded in context when
    any of them holds near it. ``term_keys`` are the (term id, history key) pairs that
    burst rules track. ``prefilters`` narrow groups of rules down, per item, to those
    that can fire (a superset), before each is checked.
    """

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        automaton: Automaton | None,
        *,
        disabled: Sequence[str] = (),
        gazetteer: Gazetteer | None = None,
        contexts: Sequence[ContextTerms | None] = (),
        term_keys: Sequence[tuple[int, str]] = (),
        prefilters: Sequence[Prefilter] = (),
    ) -> None:
        self.rules = tuple(rules)
        self.rule_ids = tuple(r.id for r in self.rules)
        self.disabled = tuple(disabled)
        self.gazetteer = gazetteer
        self._automaton = automaton
        self._every_mention_in_context = None in contexts
        # "Some context holds" is "the union of the contexts with that `within` holds".
        unions: dict[int | None, ContextTerms] = {}
        for context in contexts:
            if context is not None:
                same = unions.get(context.within)
                unions[context.within] = context if same is None else same.union(context)
        self._contexts = tuple(unions.values())
        self._term_keys = tuple(dict.fromkeys(term_keys))
        by_term: dict[int, list[int]] = {}
        always: list[int] = []
        for index, rule in enumerate(self.rules):
            if not rule.matcher.triggers:
                always.append(index)
            for term_id in rule.matcher.triggers:
                by_term.setdefault(term_id, []).append(index)
        self._by_term = {t: tuple(ix) for t, ix in by_term.items()}
        self._always = frozenset(always)
        self._prefilters = tuple(prefilters)

    def scan(
        self,
        item: Item,
        *,
        feed_tags: Sequence[str] = (),
        history: History | None = None,
        now: datetime | None = None,
    ) -> Scan:
        """Normalise the item's fields; find every term and every place, one pass each."""
        fields = []
        places = []
        hits: dict[int, list[Hit]] = {}
        gazetteer = self.gazetteer
        for index, name in enumerate(FIELDS):
            norm = normalize(item.title if index == 0 else item.summary)
            broken = f" {break_words(norm.text)} "
            fields.append(FieldText(name, norm, broken))
            if self._automaton is not None:
                _find(self._automaton, broken, index, hits)
            places.append(tuple(gazetteer.find(norm, broken)) if gazetteer is not None else ())
        tags = frozenset(t.casefold() for t in (*item.tags, *feed_tags))
        return Scan(
            item,
            tuple(fields),
            hits,
            tags,
            _language(item.language),
            places=tuple(places),
            gazetteer=gazetteer,
            now=item.published if now is None else now,
            history=history,
        )

    def assess(
        self,
        item: Item,
        *,
        feed_tags: Sequence[str] = (),
        history: History | None = None,
        now: datetime | None = None,
    ) -> Assessment:
        """The rules that fire on the item and the mentions it contributes to history.

        ``now`` defaults to the item's publication time. Without ``history`` a burst
        rule never fires and a novelty rule judges against its baseline alone.
        """
        scan = self.scan(item, feed_tags=feed_tags, history=history, now=now)
        candidates = set(self._always)
        by_term = self._by_term
        for term_id in scan.hits:
            candidates.update(by_term.get(term_id, ()))
        for prefilter in self._prefilters:
            if not candidates.isdisjoint(prefilter.rules):
                candidates -= prefilter.rules - prefilter.candidates(scan)
        for index in sorted(candidates):
            rule = self.rules[index]
            result = rule.check(scan)
            if not isinstance(result, str):
                scan.fired[rule.id] = result
        return Assessment(list(scan.fired.values()), self.mentions(scan))

    def evaluate(
        self,
        item: Item,
        *,
        feed_tags: Sequence[str] = (),
        history: History | None = None,
        now: datetime | None = None,
    ) -> list[Match]:
        """Every rule that fires on the item, in dependency (then configuration) order."""
        return self.assess(item, feed_tags=feed_tags, history=history, now=now).matches

    def explain(
        self,
        item: Item,
        *,
        feed_tags: Sequence[str] = (),
        history: History | None = None,
        now: datetime | None = None,
    ) -> list[Verdict]:
        """A verdict for every rule, fired or not, with the reason; for ``monitor test``."""
        scan = self.scan(item, feed_tags=feed_tags, history=history, now=now)
        verdicts = [Verdict(rule_id, None, "disabled") for rule_id in self.disabled]
        for rule in self.rules:
            result = rule.check(scan)
            if isinstance(result, str):
                verdicts.append(Verdict(rule.id, None, result))
            else:
                scan.fired[rule.id] = result
                verdicts.append(Verdict(rule.id, result))
        return verdicts

    def mentions(self, scan: Scan) -> tuple[Mention, ...]:
        """The item's history keys: each place with its region and country, and tracked terms.

        A key mentioned several times is one mention, in context if any of its places was.
        """
        every = frozenset(range(len(scan.fields)))
        keys: dict[str, bool] = {}
        for index, mention in scan.place_mentions(every):
            in_context = self._every_mention_in_context or any(
                ctx.holds(scan, index, mention.start, mention.end) for ctx in self._contexts
            )
            place = mention.place
            for place_id in (place.id, place.region, place.country):
                if place_id:
                    key = f"place:{place_id}"
                    keys[key] = keys.get(key, False) or in_context
        for term_id, key in self._term_keys:
            if term_id in scan.hits:
                keys.setdefault(key, False)
        at = scan.at
        return tuple(Mention(key, at, in_context) for key, in_context in keys.items())


def _find(automaton: Automaton, broken: str, index: int, hits: dict[int, list[Hit]]) -> None:
    """Record every key the automaton finds in ``broken`` as hits in normalised offsets.

    Keys carry their word breaks (" strike " / " advanc"), so every hit is on word
    boundaries; a prefix key's hit is extended to the end of its word.
    """
    for end, (length, prefix, term_ids) in automaton.iter(broken):
        start = end - length + 1
        stop = broken.find(" ", end + 1) - 1 if prefix else end - 1
        hit = (index, start, stop)
        for term_id in term_ids:
            found = hits.get(term_id)
            if found is None:
                hits[term_id] = [hit]
            else:
                found.append(hit)


def _language(code: str | None) -> str | None:
    if not code:
        return None
    return code.replace("_", "-").split("-")[0].strip().casefold() or None


def snippet(norm: Normalized, start: int, end: int, width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of the original text around ``[start, end)`` (normalised)."""
    s, e = norm.span(start, end)
    text = norm.original
    a = max(0, s - max(0, width - (e - s)) // 2)
    b = min(len(text), a + max(width, e - s))
    a = max(0, min(a, b - width))  # near the end of the text, take more before the hit
    if a > 0:
        space = text.find(" ", a, s)
        a = space + 1 if space != -1 else a
    if b < len(text):
        space = text.rfind(" ", e, b)
        b = space if space != -1 else b
    body = " ".join(text[a:b].split())
    return ("…" if a > 0 else "") + body + ("…" if b < len(text) else "")


def term_evidence(
    scan: Scan, found: Iterable[tuple[str, Hit]], kind: str, **details: Any
) -> Evidence:
    """Evidence from term hits: each hit with original offsets, a snippet around the first."""
    ordered = sorted(found, key=itemgetter(1))[:MAX_EVIDENCE_HITS]
    terms = tuple(scan.term_hit(term, hit) for term, hit in ordered)
    info: dict[str, Any] = {"kind": kind}
    if ordered:
        index, start, end = ordered[0][1]
        for _, hit in ordered:  # widen to the later hits of the same field that fit
            if hit[0] == index and end < hit[2] <= start + SNIPPET_CHARS:
                end = hit[2]
        info["snippet"] = scan.snippet(index, start, end)
    info.update(details)
    return Evidence(terms, info)


def place_dict(place: Place) -> dict[str, Any]:
    """A place as JSON-able evidence."""
    return {
        "id": place.id,
        "name": place.name,
        "kind": place.kind,
        "country": place.country,
        "region": place.region,
    }


def json_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 3)


def breakdown(values: Mapping[str, float]) -> dict[str, int | float]:
    return {k: json_number(v) for k, v in values.items()}
