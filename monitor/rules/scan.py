"""What rules read about one item, computed once and shared by every rule: the :class:`Scan`.

A scan holds the normalised fields, every term hit with offsets (one Aho-Corasick pass
over each field's word-broken text), the places the gazetteer found, and lazily built,
cached answers that several rules ask for: sentence indexes, quantities read before
nouns, quotes and snippets, the closest context term to a place, history lookups.
:class:`ContextTerms` is a compiled "terms near a place" condition (novelty rules and the
in-context flag of history mentions) that answers from the scan's hits.

Pure: no I/O, no clock. ``now`` and the (read-only) history are given to the scan.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol

from monitor.gazetteer import Gazetteer, Place, PlaceMention
from monitor.rules.evidence import FIELDS, MAX_EVIDENCE_PLACES, place_dict, snippet
from monitor.rules.history import History
from monitor.rules.numbers import Quantity, quantity_before
from monitor.text import Normalized
from monitor.types import Item, Match, TermHit

LEVELS = ("city", "region", "country")
_RANK = {level: rank for rank, level in enumerate(LEVELS)}

Hit = tuple[int, int, int]  # (field index, start, end) in normalised text
_NONSPACE = re.compile(r"\S+")
_BY_GAP = itemgetter(0)


class Automaton(Protocol):
    """The part of ``ahocorasick.Automaton`` the engine uses."""

    def iter(self, text: str) -> Iterable[tuple[int, tuple[int, bool, tuple[int, ...]]]]: ...


def find_terms(automaton: Automaton, broken: str, index: int, hits: dict[int, list[Hit]]) -> None:
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


Closest = tuple[int, Hit, int, Hit | None]  # (gap, hit, gap in the sentence, hit there)


@dataclass(slots=True)
class Scan:
    """Everything rules read about one item, computed once per item.

    ``places`` holds each field's place mentions; ``now`` and ``history`` are what
    novelty and burst rules judge against (``history`` None: no history to read).
    The underscored dicts are per-item caches, filled only when a rule asks.
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
    _term_hits: dict[tuple[str, Hit], TermHit] = field(default_factory=dict)
    _snippets: dict[Hit, str] = field(default_factory=dict)
    _present: dict[int, set[int]] = field(default_factory=dict)
    _by_sentence: dict[tuple[int, int], dict[int, list[Hit]]] = field(default_factory=dict)
    _edges: dict[tuple[int, int], tuple[list[int], list[int]]] = field(default_factory=dict)
    _near: dict[tuple[int, int, int], tuple[tuple[str, Hit], ...]] = field(default_factory=dict)
    _place_lists: dict[frozenset[int], tuple[tuple[int, PlaceMention], ...]] = field(
        default_factory=dict
    )
    _seen: dict[tuple[str, datetime, datetime], bool] = field(default_factory=dict)
    _item_places: dict[frozenset[int], tuple[dict[str, Any], ...]] = field(default_factory=dict)
    _closest: dict[tuple[int, int, int], Closest | None] = field(default_factory=dict)
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

    def closest(self, term_id: int, index: int, start: int, end: int) -> Closest | None:
        """A term's hit closest to ``[start, end)`` of field ``index`` in words, and its
        closest hit in the same sentence (None if none is); None if the field has no hit.

        Hits overlapping the span (the place's own words) do not count. Cached: every
        context that names the term shares the answer.
        """
        memo = (term_id, index, start)
        if memo in self._closest:
            return self._closest[memo]
        best: Closest | None = None
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
        """A hit as evidence: offsets and text of the original field (cached; immutable)."""
        memo = (term, hit)
        found = self._term_hits.get(memo)
        if found is None:
            quote = self._quotes.get(hit)
            if quote is None:
                norm = self.fields[hit[0]].norm
                start, end = norm.span(hit[1], hit[2])
                quote = self._quotes[hit] = (start, end, norm.original[start:end])
            found = self._term_hits[memo] = TermHit(term, FIELDS[hit[0]], *quote)
        return found

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
    scan's caches (keyed by ``id``) serve every rule that shares it.
    """

    terms: tuple[tuple[int, str], ...]
    within: int | None
    _names: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", dict(reversed(self.terms)))  # first name wins

    def present(self, scan: Scan) -> set[int]:
        """The context's term ids that occur in the item at all (cached per scan)."""
        found = scan._present.get(id(self))
        if found is None:
            found = scan._present[id(self)] = self._names.keys() & scan.hits.keys()
        return found

    def near(self, scan: Scan, index: int, start: int, end: int) -> tuple[tuple[str, Hit], ...]:
        """The closest hit of each context term near ``[start, end)`` of field ``index``,
        closest first; empty if the context does not hold there."""
        key = (id(self), index, start)
        cached = scan._near.get(key)
        if cached is not None:
            return cached
        found: list[tuple[int, str, Hit]] = []
        names = self._names
        for term_id in self.present(scan):
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
        found.sort(key=_BY_GAP)
        result = scan._near[key] = tuple((term, hit) for _, term, hit in found)
        return result

    def holds(self, scan: Scan, index: int, start: int, end: int) -> bool:
        """Whether some context term is near ``[start, end)``: ``near`` without ranking.

        Within words: the words between grow with the distance, so only the nearest hit
        after the place and the nearest before it need measuring (found by bisection in
        the field's context hits, sorted once per item). In the sentence case, a hit of the
        place's sentence that is not the place's own words: the field's context hits are
        grouped by sentence once per item.
        """
        if not self.present(scan):
            return False
        if self.within is not None:
            return self._within(scan, index, start, end, self.within)
        by_sentence = self._by_sentence(scan, index)
        if not by_sentence:
            return False
        same = by_sentence.get(scan.fields[index].sentence_index(start), ())
        return any(hit[1] >= end or start >= hit[2] for hit in same)

    def _within(self, scan: Scan, index: int, start: int, end: int, within: int) -> bool:
        starts, ends = self._hit_edges(scan, index)
        ft = scan.fields[index]
        after = bisect_left(starts, end)  # the first hit starting at or after the place's end
        if after < len(starts) and ft.words_between(end, starts[after]) <= within:
            return True
        before = bisect_right(ends, start) - 1  # the last hit ending at or before its start
        return before >= 0 and ft.words_between(ends[before], start) <= within

    def _hit_edges(self, scan: Scan, index: int) -> tuple[list[int], list[int]]:
        """The starts and the ends of the context's hits in field ``index``, each sorted."""
        memo = (id(self), index)
        found = scan._edges.get(memo)
        if found is None:
            hits = [h for t in self.present(scan) for h in scan.hits[t] if h[0] == index]
            found = scan._edges[memo] = (sorted(h[1] for h in hits), sorted(h[2] for h in hits))
        return found

    def _by_sentence(self, scan: Scan, index: int) -> dict[int, list[Hit]]:
        """The context's hits in field ``index`` by sentence (cached per scan)."""
        memo = (id(self), index)
        found = scan._by_sentence.get(memo)
        if found is None:
            found = scan._by_sentence[memo] = {}
            ft = scan.fields[index]
            for term_id in self.present(scan):
                for hit in scan.hits[term_id]:
                    if hit[0] == index:
                        found.setdefault(ft.sentence_index(hit[1]), []).append(hit)
        return found

    def union(self, other: ContextTerms) -> ContextTerms:
        """One context that holds wherever either holds (both must have the same ``within``)."""
        return ContextTerms(tuple(dict.fromkeys(self.terms + other.terms)), self.within)
