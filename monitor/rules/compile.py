"""RuleConfig -> RuleSet: every term of every rule in one automaton, one matcher per rule.

Everything that can be done once is done here: terms are parsed, inflected and interned
(a term shared by many rules is found once per item), regular expressions are compiled,
``requires`` is resolved into an evaluation order, and every problem is a
:class:`~monitor.exceptions.RuleError` naming the rule and the bad term or pattern.

A rule kind is a config model (``monitor.config.rule_models``) plus a matcher class here
with ``kind``, ``triggers`` and ``check(scan, fields)``; ``_BUILDERS`` maps one to the other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick

from monitor.config.rule_models import (
    BurstRuleConfig,
    NearRuleConfig,
    NoveltyRuleConfig,
    PlaceContext,
    QuantityRuleConfig,
    RegexRuleConfig,
    RuleBase,
    RuleConfig,
    ScoreRuleConfig,
    TermsRuleConfig,
)
from monitor.exceptions import RuleError
from monitor.gazetteer import Gazetteer, Place
from monitor.rules.engine import (
    FIELDS,
    MAX_HITS_PER_TERM,
    CompiledRule,
    ContextTerms,
    Fired,
    Hit,
    Matcher,
    RuleSet,
    Scan,
    breakdown,
    json_number,
    term_evidence,
)
from monitor.rules.lexicon import TermSyntaxError, parse_term
from monitor.rules.numbers import compare, parse_number, parse_threshold
from monitor.rules.places import BurstMatcher, NoveltyIndex, NoveltyMatcher
from monitor.text import fold
from monitor.types import Severity

TermRef = tuple[int, str]  # (term id, the term as the rule wrote it)
ContextKey = tuple[tuple[TermRef, ...], int | None]


class TermTable:
    """Every distinct term of every rule, with an id; builds the one automaton."""

    def __init__(self) -> None:
        self._ids: dict[tuple[tuple[str, ...], bool], int] = {}
        self._keys: dict[str, set[int]] = {}

    def add(self, term: str, *, inflect: bool) -> int:
        """The id of ``term``; raises TermSyntaxError if it cannot be used."""
        spec = parse_term(term, inflect=inflect)
        identity = (spec.forms, spec.prefix)
        if identity not in self._ids:
            term_id = len(self._ids)
            self._ids[identity] = term_id
            for form in spec.forms:
                key = f" {form}" if spec.prefix else f" {form} "
                self._keys.setdefault(key, set()).add(term_id)
        return self._ids[identity]

    def __len__(self) -> int:
        return len(self._ids)

    def automaton(self) -> ahocorasick.Automaton | None:
        if not self._keys:
            return None
        automaton = ahocorasick.Automaton()
        for key, term_ids in self._keys.items():
            automaton.add_word(key, (len(key), not key.endswith(" "), tuple(sorted(term_ids))))
        automaton.make_automaton()
        return automaton


class _Compiler:
    """Compiles one rule's terms, naming the rule in every error."""

    def __init__(
        self,
        table: TermTable,
        rule: RuleBase,
        gazetteer: Gazetteer,
        contexts: dict[ContextKey, ContextTerms] | None = None,
    ) -> None:
        self.table = table
        self.rule = rule
        self.gazetteer = gazetteer
        self.contexts = {} if contexts is None else contexts

    def context(self, context: PlaceContext | None) -> ContextTerms | None:
        """The compiled context, one object per distinct context (scans cache by it)."""
        if context is None:
            return None
        terms = self.terms(context.terms, "context.terms")
        within = None if context.within == "sentence" else context.within
        key = (tuple(sorted(set(terms))), within)
        found = self.contexts.get(key)
        if found is None:
            found = self.contexts[key] = ContextTerms(terms, within)
        return found

    def place(self, name: str, what: str) -> Place:
        """A place by id (UA-12, UA, gn:709930) or by name (the gazetteer's best reading)."""
        text = name.strip()
        for place_id in (text, text.upper()):
            try:
                return self.gazetteer.get(place_id)
            except KeyError:
                pass
        found = self.gazetteer.lookup(text)
        if not found:
            raise RuleError(
                self.rule.id,
                f"unknown place {name!r} in `{what}`; use a place id (UA-12, UA) or a name "
                "the gazetteer knows",
            )
        return found[0]

    def term(self, term: str, what: str) -> TermRef:
        try:
            return self.table.add(term, inflect=self.rule.inflect), term.strip()
        except TermSyntaxError as e:
            raise RuleError(self.rule.id, f"bad term in `{what}`: {e}") from None

    def terms(self, terms: Sequence[str], what: str) -> tuple[TermRef, ...]:
        return tuple(self.term(t, what) for t in terms)


@dataclass(frozen=True, slots=True)
class TermsMatcher:
    """any (at least ``at_least`` distinct) and all of the terms."""

    any: tuple[TermRef, ...]
    all: tuple[TermRef, ...]
    at_least: int
    kind: str = "terms"

    @property
    def triggers(self) -> frozenset[int]:
        return frozenset(t for t, _ in self.any + self.all)

    def check(self, scan: Scan, fields: frozenset[int]) -> Fired | str:
        found: list[tuple[str, Hit]] = []
        distinct = 0
        for term_id, term in self.any:
            if term_id not in scan.hits:
                continue
            hits = scan.hits_in(term_id, fields)
            if hits:
                distinct += 1
                found += [(term, h) for h in hits[:MAX_HITS_PER_TERM]]
        if self.any and distinct < self.at_least:
            return f"{distinct} of the `any` terms occur; {self.at_least} needed"
        for term_id, term in self.all:
            hits = scan.hits_in(term_id, fields)
            if not hits:
                return f"`all` term {term!r} does not occur"
            found += [(term, h) for h in hits[:MAX_HITS_PER_TERM]]
        return Fired(term_evidence(scan, found, self.kind))


@dataclass(frozen=True, slots=True)
class NearMatcher:
    """A term of each group within ``within`` words of each other (None: same sentence)."""

    groups: tuple[tuple[TermRef, ...], ...]
    within: int | None
    kind: str = "near"

    @property
    def triggers(self) -> frozenset[int]:
        # Any one group's terms: the rarest would be best, but the first is simplest.
        return frozenset(t for t, _ in self.groups[0])

    def check(self, scan: Scan, fields: frozenset[int]) -> Fired | str:
        best: tuple[int, tuple[tuple[str, Hit], ...]] | None = None
        for index in sorted(fields):
            found = self._closest(scan, fields, index)
            if found is not None and (best is None or found[0] < best[0]):
                best = found
        if best is None:
            window = "sentence" if self.within is None else f"{self.within} words"
            return f"no term of every group within {window}"
        distance, combo = best
        near: dict[str, Any] = {
            "within": "sentence" if self.within is None else self.within,
            "words_between": distance,
            "pair": [term for term, _ in combo],
        }
        return Fired(term_evidence(scan, combo, self.kind, near=near))

    def _closest(
        self, scan: Scan, fields: frozenset[int], index: int
    ) -> tuple[int, tuple[tuple[str, Hit], ...]] | None:
        """The tightest set of one hit per group in one field: a sweep over hits by position.

        At each hit, the latest hit of every group so far is the tightest window ending
        there; its distance is the words between the earliest end and this start.
        """
        events: list[tuple[int, int, int, str]] = []
        present = scan.hits
        for group_index, group in enumerate(self.groups):
            size = len(events)
            for term_id, term in group:
                if term_id not in present:
                    continue
                events += [(h[1], h[2], group_index, term)
                           for h in scan.hits_in(term_id, fields) if h[0] == index]  # fmt: skip
            if len(events) == size:
                return None  # a group with no hit in this field
        events.sort()
        ft = scan.fields[index]
        latest: dict[int, tuple[str, Hit]] = {}
        sentence = -1
        best: tuple[int, tuple[tuple[str, Hit], ...]] | None = None
        for start, end, group_index, term in events:
            if self.within is None and (here := ft.sentence_index(start)) != sentence:
                latest, sentence = {}, here
            latest[group_index] = (term, (index, start, end))
            if len(latest) < len(self.groups):
                continue
            distance = 0
            if self.within is not None:
                distance = ft.words_between(min(h[2] for _, h in latest.values()), start)
                if distance > self.within:
                    continue
            if best is None or distance < best[0]:
                best = (distance, tuple(latest[g] for g in range(len(self.groups))))
        return best


@dataclass(frozen=True, slots=True)
class RegexMatcher:
    """A regular expression on the normalised text, with numeric thresholds on named groups."""

    pattern: re.Pattern[str]
    thresholds: tuple[tuple[str, str, float], ...]
    kind: str = "regex"

    @property
    def triggers(self) -> frozenset[int]:
        return frozenset()

    def check(self, scan: Scan, fields: frozenset[int]) -> Fired | str:
        for index in sorted(fields):
            norm = scan.fields[index].norm
            for m in self.pattern.finditer(norm.text):
                numbers = self._numbers(m)
                if numbers is None:
                    continue
                hit = (index, m.start(), m.end())
                for number in numbers:
                    start, end = norm.span(m.start(number["group"]), m.end(number["group"]))
                    number.update(start=start, end=end, field=FIELDS[index])
                    number["text"] = norm.original[start:end]
                return Fired(term_evidence(scan, [(self.pattern.pattern, hit)], self.kind,
                                           numbers=numbers))  # fmt: skip
        limits = " and ".join(f"{g} {op} {v:g}" for g, op, v in self.thresholds)
        return "pattern does not match" + (f" with {limits}" if limits else "")

    def _numbers(self, m: re.Match[str]) -> list[dict[str, Any]] | None:
        numbers = []
        for group, op, limit in self.thresholds:
            text = m.group(group)
            value = parse_number(text) if text else None
            if value is None or not compare(value, op, limit):
                return None
            numbers.append({"group": group, "value": json_number(value)})
        return numbers


@dataclass(frozen=True, slots=True)
class QuantityMatcher:
    """A number read before one of the nouns, within [minimum, maximum]."""

    nouns: tuple[TermRef, ...]
    minimum: float | None
    maximum: float | None
    max_gap: int
    kind: str = "quantity"

    @property
    def triggers(self) -> frozenset[int]:
        return frozenset(t for t, _ in self.nouns)

    def check(self, scan: Scan, fields: frozenset[int]) -> Fired | str:
        found: list[tuple[str, Hit]] = []
        numbers: dict[tuple[int, int], dict[str, Any]] = {}
        read: list[float] = []
        for term_id, term in self.nouns:
            for hit in scan.hits_in(term_id, fields):
                q = scan.quantity(hit, self.max_gap)
                if q is None:
                    continue
                read.append(q.value)
                if not self._in_range(q.value) or (hit[0], q.start) in numbers:
                    continue
                found.append((term, hit))
                noun = scan.term_hit(term, hit)
                number = scan.term_hit(term, (hit[0], q.start, q.end))
                numbers[(hit[0], q.start)] = {
                    "value": json_number(q.value), "text": number.text, "noun": noun.text,
                    "start": number.start, "end": number.end, "field": number.field,
                    "qualifier": q.qualifier, "vague": q.vague,
                }  # fmt: skip
        if not numbers:
            if not read:
                return "no number read before the nouns"
            return f"numbers read ({', '.join(f'{v:g}' for v in read)}) are out of range"
        return Fired(term_evidence(scan, found, self.kind, numbers=list(numbers.values())))

    def _in_range(self, value: float) -> bool:
        if self.minimum is not None and value < self.minimum:
            return False
        return self.maximum is None or value <= self.maximum


@dataclass(frozen=True, slots=True)
class ScoreMatcher:
    """Weighted terms by category, capped, summed; severity by band."""

    categories: tuple[tuple[str, float, float | None, tuple[tuple[int, str, float], ...]], ...]
    bands: tuple[tuple[float, Severity], ...]  # highest first
    kind: str = "score"

    @property
    def triggers(self) -> frozenset[int]:
        return frozenset(t for *_, terms in self.categories for t, _, _ in terms)

    def check(self, scan: Scan, fields: frozenset[int]) -> Fired | str:
        total = 0.0
        parts: dict[str, float] = {}
        found: list[tuple[str, Hit]] = []
        for name, weight, cap, terms in self.categories:
            raw = 0.0
            for term_id, term, term_weight in terms:
                if term_id not in scan.hits:
                    continue
                hits = scan.hits_in(term_id, fields)
                if hits:
                    raw += term_weight
                    found.append((term, hits[0]))
            if raw:
                value = weight * raw if cap is None else min(cap, weight * raw)
                parts[name] = value
                total += value
        for threshold, severity in self.bands:
            if total >= threshold:
                evidence = term_evidence(
                    scan, found, self.kind, score=json_number(total), breakdown=breakdown(parts)
                )
                return Fired(evidence, severity)
        return f"score {total:g} is below the lowest band ({self.bands[-1][0]:g})"


def _terms(rule: TermsRuleConfig, c: _Compiler) -> Matcher:
    at_least = rule.at_least or 1
    return TermsMatcher(c.terms(rule.any, "any"), c.terms(rule.all, "all"), at_least)


def _near(rule: NearRuleConfig, c: _Compiler) -> Matcher:
    groups = tuple(c.terms(g, f"terms[{i}]") for i, g in enumerate(rule.terms))
    return NearMatcher(groups, None if rule.within == "sentence" else rule.within)


def _regex(rule: RegexRuleConfig, c: _Compiler) -> Matcher:
    try:
        pattern = re.compile(rule.pattern, re.IGNORECASE)
    except re.error as e:
        raise RuleError(rule.id, f"bad pattern {rule.pattern!r}: {e}") from None
    thresholds = []
    for group, text in rule.thresholds.items():
        if group not in pattern.groupindex:
            known = ", ".join(pattern.groupindex) or "none"
            raise RuleError(
                rule.id, f"threshold on {group!r}, which is not a named group (groups: {known})"
            )
        parsed = parse_threshold(text)
        if parsed is None:
            raise RuleError(rule.id, f"threshold {text!r} is not like '>= 400'")
        thresholds.append((group, *parsed))
    return RegexMatcher(pattern, tuple(thresholds))


def _quantity(rule: QuantityRuleConfig, c: _Compiler) -> Matcher:
    return QuantityMatcher(c.terms(rule.nouns, "nouns"), rule.min, rule.max, rule.max_gap)


def _score(rule: ScoreRuleConfig, c: _Compiler) -> Matcher:
    categories = []
    for name, cat in rule.categories.items():
        terms = tuple((*c.term(t, f"categories.{name}"), w) for t, w in cat.terms.items())
        categories.append((name, cat.weight, cat.cap, terms))
    bands = sorted(((v, Severity.parse(k)) for k, v in rule.bands.items()), reverse=True)
    return ScoreMatcher(tuple(categories), tuple(bands))


def _novelty(rule: NoveltyRuleConfig, c: _Compiler) -> Matcher:
    baseline = [c.place(name, "baseline") for name in rule.baseline]
    return NoveltyMatcher(
        level=rule.level,
        countries=frozenset(code.upper() for code in rule.countries),
        context=c.context(rule.context),
        baseline=frozenset(p.id for p in baseline),
        known_countries=frozenset(p.country for p in baseline),
        window=rule.window,
    )


def _burst(rule: BurstRuleConfig, c: _Compiler) -> Matcher:
    terms = tuple(
        (term_id, term, "term:" + " ".join(fold(term).split()))
        for term_id, term in c.terms(rule.terms, "terms")
    )
    return BurstMatcher(
        keys=rule.keys,
        terms=terms,
        level=rule.level,
        countries=frozenset(code.upper() for code in rule.countries),
        min_sources=rule.min_sources,
        window=rule.window,
        factor=rule.factor,
        baseline_window=rule.baseline_window,
    )


_BUILDERS: dict[type[RuleBase], Callable[[Any, _Compiler], Matcher]] = {
    TermsRuleConfig: _terms,
    NearRuleConfig: _near,
    RegexRuleConfig: _regex,
    QuantityRuleConfig: _quantity,
    ScoreRuleConfig: _score,
    NoveltyRuleConfig: _novelty,
    BurstRuleConfig: _burst,
}


def compile_rules(rules: Sequence[RuleConfig], *, gazetteer: Gazetteer | None = None) -> RuleSet:
    """Compile the enabled rules into one RuleSet; raises RuleError naming the rule.

    ``gazetteer`` defaults to the shipped one (``Gazetteer.load()``, loaded once).
    """
    gazetteer = Gazetteer.load() if gazetteer is None else gazetteer
    table = TermTable()
    enabled = [r for r in rules if r.enabled]
    disabled = [r.id for r in rules if not r.enabled]
    compiled = []
    contexts: dict[ContextKey, ContextTerms] = {}
    novelty: list[ContextTerms | None] = []
    term_keys: list[tuple[int, str]] = []
    for rule in _in_dependency_order(enabled, set(disabled)):
        c = _Compiler(table, rule, gazetteer, contexts)
        matcher = _BUILDERS[type(rule)](rule, c)
        if isinstance(matcher, NoveltyMatcher):
            novelty.append(matcher.context)
        elif isinstance(matcher, BurstMatcher):
            term_keys += [(term_id, key) for term_id, _, key in matcher.terms]
        minimum = rule.requires_min_severity
        compiled.append(
            CompiledRule(
                id=rule.id,
                severity=Severity.parse(rule.severity),
                matcher=matcher,
                fields=frozenset(FIELDS.index(f) for f in rule.fields),
                feed_tags=frozenset(t.casefold() for t in rule.feed_tags),
                languages=frozenset(lang.casefold() for lang in rule.languages),
                requires=rule.requires,
                none=c.terms(rule.none, "none"),
                requires_min_severity=None if minimum is None else Severity.parse(minimum),
            )
        )
    novel = [
        (i, r.matcher) for i, r in enumerate(compiled) if isinstance(r.matcher, NoveltyMatcher)
    ]
    return RuleSet(
        compiled,
        table.automaton(),
        disabled=disabled,
        gazetteer=gazetteer,
        contexts=novelty,
        term_keys=term_keys,
        prefilters=[NoveltyIndex(novel)] if novel else [],
    )


def _in_dependency_order(rules: Sequence[RuleBase], disabled: set[str]) -> list[RuleBase]:
    """Rules with each after the rules it ``requires``; configuration order otherwise."""
    by_id: dict[str, RuleBase] = {}
    for rule in rules:
        if rule.id in by_id:
            raise RuleError(rule.id, "duplicate rule id; each must be unique")
        by_id[rule.id] = rule
    for rule in rules:
        for dep in rule.requires:
            if dep in disabled:
                raise RuleError(rule.id, f"requires {dep!r}, which is disabled; disable both")
            if dep not in by_id:
                raise RuleError(rule.id, f"requires {dep!r}, which is not defined")
    ordered: list[RuleBase] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(rule: RuleBase, path: list[str]) -> None:
        if state.get(rule.id) == 2:
            return
        if state.get(rule.id) == 1:
            cycle = [*path[path.index(rule.id) :], rule.id]
            raise RuleError(rule.id, f"`requires` makes a cycle: {' -> '.join(cycle)}")
        state[rule.id] = 1
        for dep in rule.requires:
            visit(by_id[dep], [*path, rule.id])
        state[rule.id] = 2
        ordered.append(rule)

    for rule in rules:
        visit(rule, [])
    return ordered
