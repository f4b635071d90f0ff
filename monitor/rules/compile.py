"""RuleConfig -> RuleSet: every term of every rule in one automaton, one matcher per rule.

Everything that can be done once is done here: terms are parsed, inflected and interned
(a term shared by many rules is found once per item), regular expressions are compiled,
``requires`` is resolved into an evaluation order, and every problem is a
:class:`~monitor.exceptions.RuleError` naming the rule and the bad term or pattern.

A rule kind is a config model (``monitor.config.rule_models``) plus a matcher class
(:mod:`monitor.rules.matchers`, :mod:`monitor.rules.places`) with ``kind``, ``triggers``
and ``check(scan, fields)``; ``_BUILDERS`` here maps one to the other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
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
from monitor.rules.engine import CompiledRule, RuleSet
from monitor.rules.evidence import FIELDS
from monitor.rules.history import context_id
from monitor.rules.lexicon import TermSyntaxError, parse_term
from monitor.rules.matchers import (
    Matcher,
    NearMatcher,
    QuantityMatcher,
    RegexMatcher,
    ScoreMatcher,
    TermRef,
    TermsMatcher,
)
from monitor.rules.numbers import parse_threshold
from monitor.rules.places import BurstMatcher, NoveltyIndex, NoveltyMatcher
from monitor.rules.scan import ContextTerms
from monitor.text import fold
from monitor.types import Severity


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
        contexts: dict[str, ContextTerms] | None = None,
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
        key = context_id(context.terms, within, inflect=self.rule.inflect)
        found = self.contexts.get(key)
        if found is None:
            found = self.contexts[key] = ContextTerms(terms, within, key)
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
    contexts: dict[str, ContextTerms] = {}
    novelty: list[tuple[ContextTerms, frozenset[str]]] = []
    term_keys: list[tuple[int, str]] = []
    for rule in _in_dependency_order(enabled, set(disabled)):
        c = _Compiler(table, rule, gazetteer, contexts)
        matcher = _BUILDERS[type(rule)](rule, c)
        if isinstance(matcher, NoveltyMatcher):
            if matcher.context is not None:
                novelty.append((matcher.context, matcher.countries))
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
