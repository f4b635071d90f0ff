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

Pure: no I/O, no clock, no module state. Offsets in evidence are into the item's original
title or summary (after NFC composition, which news text already is).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Protocol

from monitor.rules.lexicon import break_words
from monitor.rules.numbers import Quantity, quantity_before
from monitor.text import Normalized, normalize
from monitor.types import Evidence, Item, Match, Severity, TermHit

FIELDS: tuple[str, ...] = ("title", "summary")
SNIPPET_CHARS = 160
MAX_EVIDENCE_HITS = 12  # hits quoted in a match's evidence
MAX_HITS_PER_TERM = 3  # of which any one term

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
    """Everything rules read about one item, computed once per item."""

    item: Item
    fields: tuple[FieldText, ...]
    hits: dict[int, list[Hit]]
    tags: frozenset[str]
    language: str | None
    fired: dict[str, Match] = field(default_factory=dict)
    _quantities: dict[tuple[int, int, int], Quantity | None] = field(default_factory=dict)
    _quotes: dict[Hit, tuple[int, int, str]] = field(default_factory=dict)
    _snippets: dict[Hit, str] = field(default_factory=dict)

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

    def check(self, scan: Scan) -> Match | str:
        """Scope, ``requires``, ``none`` guard, then the matcher."""
        if self.languages and scan.language not in self.languages:
            return f"language {scan.language or 'unknown'} is not one of {sorted(self.languages)}"
        if self.feed_tags and not self.feed_tags & scan.tags:
            return f"item has none of the feed tags {sorted(self.feed_tags)}"
        missing = [r for r in self.requires if r not in scan.fired]
        if missing:
            return f"required rules did not fire: {', '.join(missing)}"
        for term_id, term in self.none:
            found = scan.hits_in(term_id, self.fields)
            if found:
                hit = scan.term_hit(term, found[0])
                return f"excluded by {term!r} ({hit.text!r} in {hit.field})"
        result = self.matcher.check(scan, self.fields)
        if isinstance(result, str):
            return result
        return Match(self.id, result.severity or self.severity, result.evidence)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one rule fired on an item, and why or why not."""

    rule_id: str
    match: Match | None
    reason: str = ""

    @property
    def fired(self) -> bool:
        return self.match is not None


class RuleSet:
    """Compiled rules in dependency order, sharing one automaton."""

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        automaton: Automaton | None,
        *,
        disabled: Sequence[str] = (),
    ) -> None:
        self.rules = tuple(rules)
        self.rule_ids = tuple(r.id for r in self.rules)
        self.disabled = tuple(disabled)
        self._automaton = automaton
        by_term: dict[int, list[int]] = {}
        always: list[int] = []
        for index, rule in enumerate(self.rules):
            if not rule.matcher.triggers:
                always.append(index)
            for term_id in rule.matcher.triggers:
                by_term.setdefault(term_id, []).append(index)
        self._by_term = {t: tuple(ix) for t, ix in by_term.items()}
        self._always = frozenset(always)

    def scan(self, item: Item, *, feed_tags: Sequence[str] = ()) -> Scan:
        """Normalise the item's fields and find every term in one automaton pass each."""
        fields = []
        hits: dict[int, list[Hit]] = {}
        for index, name in enumerate(FIELDS):
            norm = normalize(item.title if index == 0 else item.summary)
            broken = f" {break_words(norm.text)} "
            fields.append(FieldText(name, norm, broken))
            if self._automaton is not None:
                _find(self._automaton, broken, index, hits)
        tags = frozenset(t.casefold() for t in (*item.tags, *feed_tags))
        return Scan(item, tuple(fields), hits, tags, _language(item.language))

    def evaluate(self, item: Item, *, feed_tags: Sequence[str] = ()) -> list[Match]:
        """Every rule that fires on the item, in dependency (then configuration) order."""
        scan = self.scan(item, feed_tags=feed_tags)
        candidates = set(self._always)
        by_term = self._by_term
        for term_id in scan.hits:
            candidates.update(by_term.get(term_id, ()))
        for index in sorted(candidates):
            rule = self.rules[index]
            result = rule.check(scan)
            if not isinstance(result, str):
                scan.fired[rule.id] = result
        return list(scan.fired.values())

    def explain(self, item: Item, *, feed_tags: Sequence[str] = ()) -> list[Verdict]:
        """A verdict for every rule, fired or not, with the reason; for ``monitor test``."""
        scan = self.scan(item, feed_tags=feed_tags)
        verdicts = [Verdict(rule_id, None, "disabled") for rule_id in self.disabled]
        for rule in self.rules:
            result = rule.check(scan)
            if isinstance(result, str):
                verdicts.append(Verdict(rule.id, None, result))
            else:
                scan.fired[rule.id] = result
                verdicts.append(Verdict(rule.id, result))
        return verdicts


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


def json_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 3)


def breakdown(values: Mapping[str, float]) -> dict[str, int | float]:
    return {k: json_number(v) for k, v in values.items()}
