"""Matchers that judge places and terms against history: novelty and burst.

Both read the scan's places (found by the gazetteer in the same pass as the terms), the
scan's ``now`` and its :class:`~monitor.rules.history.History`; neither does I/O itself.

**Novelty** fires when the item mentions, with conflict context near it, a place that
is neither known from the baseline nor seen in context within ``window`` before ``now``.

* Level: a place counts at the rule's ``level``: a city rolls up to its region (level
  region; to its country when the table knows no region for it) or to its country
  (level country); a place coarser than the level counts as itself, so a bare country
  ("Moldova") is a place at every level.
* Baseline: a baseline place covers mentions of itself and of everything that rolls up
  to it at the rule's level (UA-14 covers Pokrovsk at level region). It never covers
  places inside it that count on their own: the baseline ``Ukraine`` does not cover the
  region UA-12, and the baseline city ``Dnipro`` covers mentions of Dnipro, not the rest
  of UA-12. A country with any baseline place in it is known: its own name is covered,
  and its new regions are "new region of a known country".
* History: a place seen within ``window`` with the rule's own context near it is not
  new (the ``ctx:<context id>:place:`` keys; a rule without context reads every mention,
  ``place:``). Rules with the same context share that history, rules with other contexts
  do not: a drone strike on Poltava does not hide a later ground advance into it from a
  ground-advance rule, while an earlier advance does. Cities are recorded rolled up to
  their region and country, so an advance reported at Pavlohrad makes UA-12 seen. A
  country is "known" (``new region of a known country``) when the baseline has a place
  in it or the rule's context was seen near it within ``window``. Without history
  (``None``) the baseline alone decides.

**Burst** fires when, counting this item, a key (a place at ``level``, or a tracked
term) has ``min_sources`` distinct sources within ``window`` before ``now`` and its
mentions in the window are at least ``factor`` times the baseline rate: the mentions of
``baseline_window`` before the window, scaled to the window's length, with an empty
baseline counted as one mention (a floor, so that a key never mentioned before bursts
on ``min_sources`` mentions once the factor is met). It fires only on the item that
makes the source count reach exactly ``min_sources`` (the crossing), not on the later
items of the same burst. Without history it never fires, and it stays silent until the
history covers a baseline: until its oldest mention (of any key,
:meth:`~monitor.rules.history.History.earliest`) is at least ``window`` +
``baseline_window`` before ``now``. Otherwise a cold start would make every busy place
burst for the first ``baseline_window`` (its baseline is empty, so the floor decides).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.gazetteer import Place, PlaceMention
from monitor.rules.evidence import json_number, place_dict, term_evidence
from monitor.rules.history import History, context_key, place_key
from monitor.rules.matchers import Fired
from monitor.rules.scan import MEMO_SIZE, ContextIndex, ContextTerms, Hit, Scan
from monitor.types import Evidence

_DAY = 86400.0
_ONE_DAY = timedelta(days=1)


# A history novelty rules read: (key prefix or key, window, in context only, the rules).
_History = tuple[str, timedelta, bool, frozenset[int]]
# The rules a place may be new to, and the histories they read (keys for the place).
_Open = tuple[frozenset[int], tuple[_History, ...]]


@dataclass(frozen=True, slots=True)
class _Novel:
    index: int
    mention: PlaceMention
    key: Place
    context: tuple[tuple[str, Hit], ...]


@dataclass(frozen=True, slots=True)
class NoveltyMatcher:
    """A place, in context, that is not in the baseline and not in recent history."""

    level: str
    countries: frozenset[str]
    context: ContextTerms | None
    baseline: frozenset[str]  # place ids
    known_countries: frozenset[str]  # the countries of the baseline's places
    window: timedelta
    kind: str = "novelty"

    @property
    def triggers(self) -> frozenset[int]:
        if self.context is None:
            return frozenset()
        return frozenset(t for t, _ in self.context.terms)

    def check(self, scan: Scan, fields: frozenset[int]) -> Fired | str:
        places = scan.keyed_places(fields, self.level)
        if not places:
            return "no place mentioned"
        novel: dict[str, _Novel] = {}
        known: dict[str, str] = {}  # key id -> why it is not new
        outside = 0
        for index, mention, key in places:
            place = mention.place
            if self.countries and place.country not in self.countries:
                continue
            if key.id in novel or key.id in known:
                continue
            why = self._known(scan, place, key)
            if why:
                known[key.id] = why
                continue
            near: tuple[tuple[str, Hit], ...] = ()
            if self.context is not None:
                near = self.context.near(scan, index, mention.start, mention.end)
                if not near:
                    outside += 1
                    continue
            novel[key.id] = _Novel(index, mention, key, near)
        if not novel:
            return self._silent(known, outside)
        return Fired(self._evidence(scan, list(novel.values())))

    def _known(self, scan: Scan, place: Place, key: Place) -> str:
        """Why the place is not new at this level ("" if it is)."""
        if key.id in self.baseline or place.id in self.baseline:
            return "in the baseline"
        if key.kind == "country" and key.id in self.known_countries:
            return "a country of the baseline"
        if self._seen(scan, key.id):
            return f"seen in context within {self._days():g}d"
        return ""

    def history_key(self, place_id: str) -> str:
        """The key under which this rule finds a place seen (in context) in history: a
        prefix and the place id (NoveltyIndex relies on that)."""
        if self.context is None:
            return place_key(place_id)
        return context_key(self.context.key, place_id)

    def _seen(self, scan: Scan, place_id: str) -> bool:
        """Whether the place was seen, with this rule's context near, within ``window``."""
        key = self.history_key(place_id)
        return scan.seen(key, self.window, in_context=self.context is not None)

    def _silent(self, known: dict[str, str], outside: int) -> str:
        parts = [f"{k} is known ({why})" for k, why in known.items()]
        if outside:
            parts.append(f"{outside} mention(s) of new places without context terms near")
        return "; ".join(parts) or "no place in scope (countries)"

    def _country_known(self, scan: Scan, country: str) -> bool:
        return country in self.known_countries or self._seen(scan, country)

    def _evidence(self, scan: Scan, novel: list[_Novel]) -> Evidence:
        first = novel[0]
        key = first.key
        country_known = key.kind != "country" and self._country_known(scan, key.country)
        reason = f"new {key.kind} of a known country" if country_known else "new country"
        details = {
            "place": place_dict(key),
            "reason": reason,
            "country_known": country_known,
            "context_terms": list(dict.fromkeys(term for term, _ in first.context)),
            "window_days": json_number(self._days()),
        }
        start, end = first.mention.start, first.mention.end
        if first.context:
            _, (_, s, e) = first.context[0]
            start, end = min(start, s), max(end, e)
        return term_evidence(
            scan,
            first.context[:3],
            self.kind,
            novelty=details,
            places=[scan.place_evidence(n.index, n.mention) for n in novel],
            snippet=scan.snippet(first.index, start, end),
        )

    def _days(self) -> float:
        return self.window.total_seconds() / _DAY


class NoveltyIndex:
    """Which novelty rules may fire on an item, found with set operations per place.

    With many novelty rules, most are triggered by common context words on every
    conflict item, and most of a conflict item's places are known. Per place mention,
    the index starts from the rules whose ``countries`` admit it and removes those whose
    baseline covers it, those whose context does not hold near it and those that have seen
    it in history (within their window, under their context): what is left
    (usually nothing) is then checked rule by rule. Fields and context are left to the
    check, so the answer is a superset of the rules that fire.
    """

    def __init__(self, rules: Sequence[tuple[int, NoveltyMatcher]]) -> None:
        self.rules = frozenset(index for index, _ in rules)
        anywhere: dict[str, set[int]] = {}  # level -> the rules without countries
        by_country: dict[str, dict[str, set[int]]] = {}  # level -> country -> rules
        self._covering: dict[str, set[int]] = {}
        self._covering_country: dict[str, set[int]] = {}
        # Rules that read the same history (the same window and context), and per rule
        # its group and its context's key (None: no context).
        by_history: dict[tuple[timedelta, str | None], tuple[NoveltyMatcher, set[int]]] = {}
        contexts: dict[int, str | None] = {}
        for index, m in rules:
            anywhere.setdefault(m.level, set())
            by_country.setdefault(m.level, {})
            if not m.countries:
                anywhere[m.level].add(index)
            for country in m.countries:
                by_country[m.level].setdefault(country, set()).add(index)
            for place_id in m.baseline:
                self._covering.setdefault(place_id, set()).add(index)
            for country in m.known_countries:
                self._covering_country.setdefault(country, set()).add(index)
            context = None if m.context is None else m.context.key
            by_history.setdefault((m.window, context), (m, set()))[1].add(index)
            contexts[index] = context
        # Per level: the rules that admit a country's places, and those that admit any.
        self._admitting = {
            level: (
                {c: frozenset(found | anywhere[level]) for c, found in by_country[level].items()},
                frozenset(anywhere[level]),
            )
            for level in anywhere
        }
        # Per history: the key prefix (a place id completes it), window, whether only
        # mentions in context count, and the rules that read it.
        self._histories: tuple[_History, ...] = tuple(
            (m.history_key(""), m.window, m.context is not None, frozenset(sharing))
            for m, sharing in by_history.values()
        )
        numbers = {group: n for n, group in enumerate(by_history)}
        self._history_of = {index: numbers[(m.window, contexts[index])] for index, m in rules}
        self._contexts = contexts
        # Rules allowed by the contexts holding near a place (bits of a scan's context
        # index): memoised per mask, for the index the bits were read from.
        self._bits_of: ContextIndex | None = None
        self._allowed: dict[int, frozenset[int]] = {}
        self._uncovered_memo: dict[tuple[str, ...], frozenset[int]] = {}
        self._open_memo: dict[tuple[str | int, ...], _Open] = {}

    def candidates(self, scan: Scan) -> frozenset[int]:
        found: set[int] = set()
        every = frozenset(range(len(scan.fields)))
        asking = scan.history is not None and scan.now is not None
        if scan.contexts is not self._bits_of:  # another rule set's contexts: start afresh
            self._bits_of, self._allowed, self._open_memo = scan.contexts, {}, {}
        for level in self._admitting:
            done: set[tuple[str, int]] = set()  # a place again, as near context: no new rule
            for index, mention, key in scan.keyed_places(every, level):
                place = mention.place
                # (The mentions of the item need every place's contexts anyway.)
                holding = scan.holding(index, mention.start, mention.end)
                if (place.id, holding) in done:
                    continue
                done.add((place.id, holding))
                rules, histories = self._open(scan, level, place, key, holding)
                left = set(rules)
                left -= found
                if left and asking:
                    # Through the scan's memo: a place recurs at another level (a country
                    # is its own key at every level), and a rule left here asks again.
                    for history_key, window, in_context, sharing in histories:
                        if not left.isdisjoint(sharing) and scan.seen(
                            history_key, window, in_context=in_context
                        ):
                            left -= sharing
                found |= left
        return frozenset(found)

    def _open(self, scan: Scan, level: str, place: Place, key: Place, holding: int) -> _Open:
        """The rules for which the place (``key`` at ``level``, with the contexts of
        ``holding`` near it) is new unless history has seen it, and the histories they
        read, each with its key for the place; memoised, a pure function of the four."""
        memo = (level, place.id, place.country, key.id, key.kind, holding)
        found = self._open_memo.get(memo)
        if found is None:
            rules = self._uncovered(level, place, key) & self._allowed_near(scan, holding)
            groups = sorted({self._history_of[r] for r in rules})
            histories = tuple(
                (prefix + key.id, window, in_context, sharing)
                for prefix, window, in_context, sharing in (self._histories[g] for g in groups)
            )
            if len(self._open_memo) >= MEMO_SIZE:
                self._open_memo.clear()
            found = self._open_memo[memo] = (rules, histories)
        return found

    def _uncovered(self, level: str, place: Place, key: Place) -> frozenset[int]:
        """The rules at ``level`` that admit the place's country and whose baseline does
        not cover it (``key``: the place at ``level``); memoised, a pure function."""
        memo = (level, place.id, place.country, key.id, key.kind)
        found = self._uncovered_memo.get(memo)
        if found is None:
            by_country, anywhere = self._admitting[level]
            empty: frozenset[int] = frozenset()
            rules = by_country.get(place.country, anywhere)
            rules -= self._covering.get(key.id, empty)
            rules -= self._covering.get(place.id, empty)
            if key.kind == "country":
                rules -= self._covering_country.get(key.id, empty)
            if len(self._uncovered_memo) >= MEMO_SIZE:
                self._uncovered_memo.clear()
            found = self._uncovered_memo[memo] = rules
        return found

    def _allowed_near(self, scan: Scan, holding: int) -> frozenset[int]:
        """The rules without a context and those whose context is among ``holding`` (bits
        of the scan's :class:`~monitor.rules.scan.ContextIndex`)."""
        allowed = self._allowed.get(holding)
        if allowed is None:
            bits = {} if scan.contexts is None else scan.contexts.bits
            allowed = frozenset(
                r for r, key in self._contexts.items() if key is None or bits.get(key, 0) & holding
            )
            if len(self._allowed) >= MEMO_SIZE:
                self._allowed.clear()
            self._allowed[holding] = allowed
        return allowed


@dataclass(frozen=True, slots=True)
class BurstMatcher:
    """A place or term whose distinct sources reach ``min_sources`` at a high rate."""

    keys: str  # "places" | "terms"
    terms: tuple[tuple[int, str, str], ...]  # (term id, term, history key)
    level: str
    countries: frozenset[str]
    min_sources: int
    window: timedelta
    factor: float
    baseline_window: timedelta
    kind: str = "burst"

    @property
    def triggers(self) -> frozenset[int]:
        return frozenset(t for t, _, _ in self.terms)

    def check(self, scan: Scan, fields: frozenset[int]) -> Fired | str:
        history, now = scan.history, scan.now
        if history is None or now is None:
            return "no history to count sources in"
        if scan.at <= now - self.window:
            return "the item is older than the window"
        short = self._too_short(history, now)
        if short:
            return short
        reasons: list[str] = []
        for key, about in self._keys(scan, fields).items():
            burst = self._judge(history, key, now, scan.item.feed_id)
            if isinstance(burst, str):
                reasons.append(f"{key}: {burst}")
                continue
            if isinstance(about, tuple):  # a place mention
                index, mention = about
                evidence = term_evidence(
                    scan,
                    (),
                    self.kind,
                    burst=burst,
                    places=[scan.place_evidence(index, mention)],
                    snippet=scan.snippet(index, mention.start, mention.end),
                )
                return Fired(evidence)
            found = [(about, h) for h in scan.hits_in(self._term_id(key), fields)[:3]]
            return Fired(term_evidence(scan, found, self.kind, burst=burst))
        return "; ".join(reasons) or f"no {self.keys} to count"

    def _too_short(self, history: History, now: datetime) -> str:
        """Why the history cannot hold a baseline yet ("" if it can): its oldest mention
        must be ``window`` + ``baseline_window`` before ``now``."""
        earliest = history.earliest()
        if earliest is not None and earliest <= now - self.window - self.baseline_window:
            return ""
        held = 0.0 if earliest is None else max(0.0, (now - self.window - earliest) / _ONE_DAY)
        return (
            f"history too short for a baseline: {held:.3g} days of "
            f"{self.baseline_window / _ONE_DAY:g}"
        )

    def _keys(self, scan: Scan, fields: frozenset[int]) -> dict[str, Any]:
        """History key -> the place mention (index, mention) or the term it is about."""
        keys: dict[str, Any] = {}
        if self.keys == "terms":
            for term_id, term, key in self.terms:
                if scan.hits_in(term_id, fields):
                    keys.setdefault(key, term)
            return keys
        for index, mention in scan.place_mentions(fields):
            if self.countries and mention.place.country not in self.countries:
                continue
            keys.setdefault(place_key(scan.rollup(mention.place, self.level).id), (index, mention))
        return keys

    def _term_id(self, key: str) -> int:
        return next(t for t, _, k in self.terms if k == key)

    def _judge(
        self, history: History, key: str, now: datetime, source: str
    ) -> dict[str, Any] | str:
        """The burst's numbers if this item (from ``source``) makes ``key`` cross; else why not."""
        since = now - self.window
        if history.sources(key, since, now, source=source):
            return "this source already counted in the window"
        sources = history.sources(key, since, now) + 1
        if sources != self.min_sources:
            return f"{sources} sources in the window; fires on reaching {self.min_sources}"
        in_window = history.count(key, since, now) + 1
        before = history.count(key, since - self.baseline_window, since)
        rate = max(before, 1) * (self.window / self.baseline_window)
        if in_window < self.factor * rate:
            return (
                f"{in_window} mentions in the window, below {self.factor:g} x the baseline "
                f"rate ({rate:.3g} per window)"
            )
        return {
            "key": key,
            "sources": sources,
            "mentions_in_window": in_window,
            "baseline_rate_per_window": json_number(rate),
            "factor": json_number(self.factor),
        }
