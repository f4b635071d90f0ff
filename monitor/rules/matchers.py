"""The kind-specific part of a rule: terms, near, regex, quantity and score matchers.

A matcher names the term ids that can make it fire (``triggers``) and checks a
:class:`~monitor.rules.scan.Scan` with ``check(scan, fields)``: a :class:`Fired` with the
evidence, or a one-line reason why not. Checks start from the item's hits (a dict of term
id -> hits), so a rule with hundreds of terms costs what the item's few hits cost.
Evidence is built only when the rule fires. Novelty and burst matchers, which read
places and history, are in :mod:`monitor.rules.places`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.rules.evidence import (
    FIELDS,
    MAX_HITS_PER_TERM,
    breakdown,
    json_number,
    term_evidence,
)
from monitor.rules.numbers import compare, parse_number
from monitor.rules.scan import Hit, Scan
from monitor.types import Evidence, Severity

TermRef = tuple[int, str]  # (term id, the term as the rule wrote it)


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
        present = scan.hits
        for term_id, term in self.any:
            if term_id not in present:
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
    _group_ids: tuple[frozenset[int], ...] = field(init=False, repr=False, compare=False)
    # term id -> (group index, term) for each place it has in the groups, in order
    _by_term: dict[int, list[tuple[int, str]]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = tuple(frozenset(t for t, _ in group) for group in self.groups)
        object.__setattr__(self, "_group_ids", ids)
        by_term: dict[int, list[tuple[int, str]]] = {}
        for group_index, group in enumerate(self.groups):
            for term_id, term in group:
                by_term.setdefault(term_id, []).append((group_index, term))
        object.__setattr__(self, "_by_term", by_term)

    @property
    def triggers(self) -> frozenset[int]:
        # Any one group's terms: the rarest would be best, but the first is simplest.
        return self._group_ids[0]

    def check(self, scan: Scan, fields: frozenset[int]) -> Fired | str:
        best: tuple[int, tuple[tuple[str, Hit], ...]] | None = None
        present = scan.hits.keys()
        if all(not ids.isdisjoint(present) for ids in self._group_ids):
            events = self._events(scan, fields)
            for index in sorted(fields):
                found = self._closest(scan, index, events.get(index, []))
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

    def _events(
        self, scan: Scan, fields: frozenset[int]
    ) -> dict[int, list[tuple[int, int, int, str]]]:
        """Per field, (start, end, group index, term) of the groups' hits in ``fields``;
        only the terms the item has are read."""
        events: dict[int, list[tuple[int, int, int, str]]] = {}
        hits = scan.hits
        for term_id in self._by_term.keys() & hits.keys():
            for group_index, term in self._by_term[term_id]:
                for index, start, end in hits[term_id]:
                    if index in fields:
                        events.setdefault(index, []).append((start, end, group_index, term))
        return events

    def _closest(
        self, scan: Scan, index: int, events: list[tuple[int, int, int, str]]
    ) -> tuple[int, tuple[tuple[str, Hit], ...]] | None:
        """The tightest set of one hit per group in one field: a sweep over hits by position.

        At each hit, the latest hit of every group so far is the tightest window ending
        there; its distance is the words between the earliest end and this start.
        """
        if len({group_index for _, _, group_index, _ in events}) < len(self.groups):
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
        present = scan.hits
        for term_id, term in self.nouns:
            if term_id not in present:
                continue
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


ScoreTerm = tuple[int, str, float]  # (term id, term, weight)
ScoreCategory = tuple[str, float, float | None, tuple[ScoreTerm, ...]]  # name, weight, cap, terms


@dataclass(frozen=True, slots=True)
class ScoreMatcher:
    """Weighted terms by category, capped, summed; severity by band.

    ``_by_term`` maps each term id to its places in the categories (category index,
    position, term, weight), so a check looks only at the terms the item has.
    """

    categories: tuple[ScoreCategory, ...]
    bands: tuple[tuple[float, Severity], ...]  # highest first
    kind: str = "score"
    _by_term: dict[int, list[tuple[int, int, str, float]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_term: dict[int, list[tuple[int, int, str, float]]] = {}
        for category, (*_, terms) in enumerate(self.categories):
            for position, (term_id, term, weight) in enumerate(terms):
                by_term.setdefault(term_id, []).append((category, position, term, weight))
        object.__setattr__(self, "_by_term", by_term)

    @property
    def triggers(self) -> frozenset[int]:
        return frozenset(self._by_term)

    def check(self, scan: Scan, fields: frozenset[int]) -> Fired | str:
        scored: list[tuple[int, int, str, float, Hit]] = []
        by_term = self._by_term
        every = len(fields) == len(scan.fields)
        for term_id in by_term.keys() & scan.hits.keys():
            hits = scan.hits[term_id] if every else scan.hits_in(term_id, fields)
            if hits:
                first = hits[0]
                for category, position, term, weight in by_term[term_id]:
                    scored.append((category, position, term, weight, first))
        scored.sort()  # configuration order: the same sums and evidence as a loop over all
        raw: dict[int, float] = {}  # category -> its terms' weights, summed in that order
        for category, _, _, term_weight, _ in scored:
            raw[category] = raw.get(category, 0.0) + term_weight
        total = 0.0
        parts: dict[str, float] = {}
        for category, (name, weight, cap, _) in enumerate(self.categories):
            summed = raw.get(category, 0.0)
            if summed:
                value = weight * summed if cap is None else min(cap, weight * summed)
                parts[name] = value
                total += value
        found = [(term, hit) for _, _, term, _, hit in scored]
        for threshold, severity in self.bands:
            if total >= threshold:
                evidence = term_evidence(
                    scan, found, self.kind, score=json_number(total), breakdown=breakdown(parts)
                )
                return Fired(evidence, severity)
        return f"score {total:g} is below the lowest band ({self.bands[-1][0]:g})"
