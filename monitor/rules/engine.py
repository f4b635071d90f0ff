"""Evaluating compiled rules on an item: one automaton pass, then cheap per-hit work.

    Item ──normalize──▶ title, summary ──one Aho-Corasick pass──▶ Scan (hits per term id)
         ──candidate rules (those with a hit, in dependency order)──▶ matchers ──▶ [Match]

The :class:`~monitor.rules.scan.Scan` of an item is computed once and shared by every
rule: the normalised fields, every term hit with offsets, and (lazily, only if a rule
asks) word and sentence indexes and quantities read before nouns. A rule is a
:class:`CompiledRule`: a scope (fields, feed tags, languages, ``requires``, ``none``
guard) plus a kind-specific :class:`~monitor.rules.matchers.Matcher` (built in
:mod:`monitor.rules.compile`). A matcher names the term ids that can make it fire
(``triggers``); only rules with a triggered term are evaluated, so a thousand rules cost
nothing on an item that mentions none of their terms.

Places: the scan also finds the item's places with the gazetteer (its own automaton, run
over the same word-broken text) and every match's evidence lists them under
``details["places"]``: the places the match is about for novelty and burst rules, the
item's first few places for the other kinds. :meth:`RuleSet.assess` also returns the
item's :class:`~monitor.types.Mention` s for the history that novelty and burst rules
read (:mod:`monitor.rules.history`): each place rolled up to its region and country
(``place:`` keys, in context if any novelty context holds near it), again under each
novelty context that holds near it (``ctx:<context id>:place:`` keys), and the terms
burst rules track.

Pure: no I/O, no clock, no module state. ``now`` and the history are parameters; the
history is only read. Offsets in evidence are into the item's original title or summary
(after NFC composition, which news text already is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from typing import Protocol

from monitor.gazetteer import Gazetteer, Place, PlaceMention
from monitor.rules.evidence import FIELDS
from monitor.rules.history import History, context_key, place_key
from monitor.rules.matchers import Matcher
from monitor.rules.scan import (
    MEMO_SIZE,
    Automaton,
    ContextIndex,
    ContextTerms,
    FieldText,
    Hit,
    Scan,
    find_terms,
)
from monitor.text import break_words, normalize
from monitor.types import Evidence, Item, Match, Mention, Severity, tuple_maker

__all__ = [
    "Assessment",
    "CompiledRule",
    "ItemPlaces",
    "Prefilter",
    "RuleSet",
    "Verdict",
    "find_places",
]

ItemPlaces = tuple[tuple[PlaceMention, ...], ...]  # per field, in FIELDS order


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
    _none_first: dict[int, int] = field(init=False, repr=False, compare=False)  # id -> position

    def __post_init__(self) -> None:
        first: dict[int, int] = {}
        for position, (term_id, _) in enumerate(self.none):
            first.setdefault(term_id, position)
        object.__setattr__(self, "_none_first", first)

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
        if self.none:
            excluded = self._excluded(scan)
            if excluded:
                return excluded
        result = self.matcher.check(scan, self.fields)
        if isinstance(result, str):
            return result
        evidence = result.evidence
        if "places" not in evidence.details:
            places = scan.item_places(self.fields)
            evidence = Evidence(evidence.terms, {**evidence.details, "places": places})
        return Match(self.id, result.severity or self.severity, evidence)

    def _excluded(self, scan: Scan) -> str:
        """Why a guard term excludes the item ("" if none does): the first in ``none``
        order that occurs in the rule's fields; only the guard terms the item has are read."""
        first = self._none_first
        if first.keys().isdisjoint(scan.hits.keys()):  # the common case
            return ""
        for position in sorted(first[term_id] for term_id in first.keys() & scan.hits.keys()):
            term_id, term = self.none[position]
            found = scan.hits_in(term_id, self.fields)
            if found:
                hit = scan.term_hit(term, found[0])
                return f"excluded by {term!r} ({hit.text!r} in {hit.field})"
        return ""

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

    ``contexts`` are the novelty rules' conflict contexts, each with the countries its
    rule watches (empty: every country): a place mention is recorded under each context
    that holds near it (if the place is in one of its countries), and its plain key in
    context when any context holds. ``term_keys`` are the (term id, history key)
    pairs that burst rules track. ``prefilters`` narrow groups of rules down, per item, to those
    that can fire (a superset), before each is checked.
    """

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        automaton: Automaton | None,
        *,
        disabled: Sequence[str] = (),
        gazetteer: Gazetteer | None = None,
        contexts: Sequence[tuple[ContextTerms, frozenset[str]]] = (),
        term_keys: Sequence[tuple[int, str]] = (),
        prefilters: Sequence[Prefilter] = (),
    ) -> None:
        self.rules = tuple(rules)
        self.rule_ids = tuple(r.id for r in self.rules)
        self.disabled = tuple(disabled)
        self.gazetteer = gazetteer
        self._automaton = automaton
        # Contexts by window: per place, the context terms near it are found once per
        # window, and a context holds where one of its terms is near. A context's places
        # are recorded only in the countries its rules watch (empty: all).
        self._contexts = ContextIndex(context for context, _ in contexts)
        watched: dict[str, frozenset[str] | None] = {}  # context key -> countries, None: all
        for context, countries in contexts:
            so_far = watched.get(context.key, frozenset())
            watched[context.key] = None if so_far is None or not countries else so_far | countries
        # Context key -> the countries it is recorded in and its history key prefix.
        self._record = {key: (watched[key], context_key(key, "")) for key in watched}
        self._prefixes: dict[tuple[int, str], tuple[str, ...]] = {}  # see _recorded
        self._ctx_keys: dict[tuple[int, str, tuple[str, ...]], dict[str, bool]] = {}
        self._term_keys = tuple(dict.fromkeys(term_keys))
        self._term_key_ids = frozenset(term_id for term_id, _ in self._term_keys)
        # The ids each place is recorded under and their keys (see _recorded_as).
        self._place_keys = {
            place.id: _recorded_as(place)
            for place in (gazetteer.places() if gazetteer is not None else ())
        }
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
        places: ItemPlaces | None = None,
    ) -> Scan:
        """Normalise the item's fields; find every term and every place, one pass each.

        ``places``: the item's places, found beforehand by :func:`find_places` with this
        rule set's gazetteer (a reader worker does, on another core).
        """
        fields = []
        found = []
        hits: dict[int, list[Hit]] = {}
        gazetteer = self.gazetteer
        for index, (name, text) in enumerate(zip(FIELDS, field_texts(item), strict=True)):
            norm = normalize(text)
            broken = f" {break_words(norm.text)} "
            fields.append(FieldText(name, norm, broken))
            if self._automaton is not None:
                find_terms(self._automaton, broken, index, hits)
            if places is None:
                found.append(tuple(gazetteer.find(norm, broken)) if gazetteer is not None else ())
        tags = frozenset(t.casefold() for t in (*item.tags, *feed_tags))
        return Scan(
            item,
            tuple(fields),
            hits,
            tags,
            _language(item.language),
            places=tuple(found) if places is None else places,
            gazetteer=gazetteer,
            now=item.published if now is None else now,
            history=history,
            contexts=self._contexts,
        )

    def assess(
        self,
        item: Item,
        *,
        feed_tags: Sequence[str] = (),
        history: History | None = None,
        now: datetime | None = None,
        places: ItemPlaces | None = None,
    ) -> Assessment:
        """The rules that fire on the item and the mentions it contributes to history.

        ``now`` defaults to the item's publication time. Without ``history`` a burst
        rule never fires and a novelty rule judges against its baseline alone.
        ``places``: see :meth:`scan`.
        """
        scan = self.scan(item, feed_tags=feed_tags, history=history, now=now, places=places)
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
        """The item's history keys: each place with its region and country (``place:``),
        again under each context that holds near it (``ctx:``), and tracked terms.

        A key mentioned several times is one mention, in context if any of its places was.
        """
        every = frozenset(range(len(scan.fields)))
        keys: dict[str, bool] = {}
        for index, mention in scan.place_mentions(every):
            place = mention.place
            ids, place_keys = self._keys_of(place)
            holding = scan.holding(index, mention.start, mention.end)
            if holding:
                keys.update(self._in_context(holding, place.country, ids, place_keys))
            else:
                for key in place_keys:
                    keys.setdefault(key, False)
        if not self._term_key_ids.isdisjoint(scan.hits):
            for term_id, key in self._term_keys:
                if term_id in scan.hits:
                    keys.setdefault(key, False)
        return tuple(map(_MENTION, zip(keys, repeat(scan.at), keys.values())))

    def _in_context(
        self, holding: int, country: str, ids: tuple[str, ...], place_keys: tuple[str, ...]
    ) -> dict[str, bool]:
        """The keys of a place of ``country`` recorded under ``ids`` (``place_keys``: their
        ``place:`` keys), with the contexts of ``holding`` near it, all in context: the
        ``ctx:`` keys of each context (see :meth:`_recorded`) with each id, then
        ``place_keys``. Memoised, a pure function: the same places recur with the same
        contexts."""
        memo = (holding, country, ids)
        found = self._ctx_keys.get(memo)
        if found is None:
            prefixes = self._recorded(holding, country)
            found = dict.fromkeys(
                (prefix + place_id for prefix in prefixes for place_id in ids), True
            )
            found.update(dict.fromkeys(place_keys, True))
            if len(self._ctx_keys) >= MEMO_SIZE // 4:  # the largest entries: fewer
                self._ctx_keys.clear()
            self._ctx_keys[memo] = found
        return found

    def _recorded(self, holding: int, country: str) -> tuple[str, ...]:
        """The ``ctx:`` key prefixes of the contexts in ``holding`` (bits of the context
        index) that record places of ``country``; memoised, a pure function of both."""
        memo = (holding, country)
        found = self._prefixes.get(memo)
        if found is None:
            if len(self._prefixes) >= MEMO_SIZE:
                self._prefixes.clear()
            record = self._record
            found = tuple(
                prefix
                for countries, prefix in (record[c.key] for c in self._contexts.holding(holding))
                if countries is None or country in countries
            )
            self._prefixes[memo] = found
        return found

    def _keys_of(self, place: Place) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The ids a place is recorded under (its own, its region's and its country's),
        and their ``place:`` keys."""
        found = self._place_keys.get(place.id)
        if found is None:  # a place of another gazetteer than the rule set's
            found = _recorded_as(place)
        return found


def field_texts(item: Item) -> tuple[str, ...]:
    """The item's text in each of FIELDS, in order."""
    return item.title, item.summary


def find_places(gazetteer: Gazetteer, item: Item) -> ItemPlaces:
    """The places in each of the item's fields, as :meth:`RuleSet.scan` finds them."""
    return tuple(tuple(gazetteer.find(normalize(text))) for text in field_texts(item))


def _recorded_as(place: Place) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ids ``place`` is recorded under: itself, its region and its country; and their
    ``place:`` keys."""
    ids = tuple(dict.fromkeys(i for i in (place.id, place.region, place.country) if i))
    return ids, tuple(map(place_key, ids))


# A conflict item has a few hundred mentions.
_MENTION = tuple_maker(Mention, ("key", "at", "in_context"))


def _language(code: str | None) -> str | None:
    if not code:
        return None
    return code.replace("_", "-").split("-")[0].strip().casefold() or None
