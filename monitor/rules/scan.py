"""What rules read about one item, computed once and shared by every rule: the :class:`Scan`.

A scan holds the normalised fields, every term hit with offsets (one Aho-Corasick pass
over each field's word-broken text), the places the gazetteer found, and lazily built,
cached answers that several rules ask for: sentence indexes, quantities read before
nouns, quotes and snippets, the closest context term to a place, history lookups.
:class:`ContextTerms` is a compiled "terms near a place" condition (novelty rules and the
in-context flags of history mentions) that answers from the scan's hits.

Context windows: ``within: sentence`` is the place's sentence. ``within: N`` is N words
either side of the place, and it stops at clause punctuation, so that a context term of
another clause is not "near" (``Putin, visiting Khabarovsk, says the offensive in
Ukraine…`` does not put Khabarovsk in an offensive). Clause punctuation is a sentence
end, a semicolon, a parenthesis or bracket, a dash standing between spaces, and a comma
-- except a comma between two places, which lists them (``drones struck Kharkiv, Sumy
and Poltava``: every place of the list is near ``struck``). Colons do not count
(headlines write ``Poltava: troops advance``).

Pure: no I/O, no clock. ``now`` and the (read-only) history are given to the scan.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Protocol

from monitor.gazetteer import Gazetteer, Place, PlaceMention
from monitor.rules.evidence import FIELDS, MAX_EVIDENCE_PLACES, place_dict, snippet
from monitor.rules.history import History
from monitor.rules.numbers import Quantity, quantity_before
from monitor.text import Normalized, positions, sentence_breaks
from monitor.types import Item, Match, TermHit

LEVELS = ("city", "region", "country")
_RANK = {level: rank for rank, level in enumerate(LEVELS)}

Hit = tuple[int, int, int]  # (field index, start, end) in normalised text
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
    _breaks: list[tuple[int, int]] | None = None  # sentence_breaks of the original text
    _sentence_ends: list[int] | None = None  # where they start

    def words_between(self, start: int, end: int) -> int:
        """How many words lie in ``[start, end)`` of the normalised text (0 if empty);
        a word cut by the span counts."""
        if end <= start:
            return 0
        return len(self.broken[start + 1 : end + 1].split())

    def sentence_ends_in(self, start: int, end: int) -> bool:
        """Whether a sentence end (:func:`monitor.text.sentence_breaks`) starts in
        ``[start, end)`` of the original text, by bisect."""
        ends = self.sentence_end_starts()
        i = bisect_left(ends, start)
        return i < len(ends) and ends[i] < end

    def sentence_end_starts(self) -> list[int]:
        """Where the sentence ends of the original text start (cached)."""
        ends = self._sentence_ends
        if ends is None:
            ends = self._sentence_ends = [s for s, _ in self.sentence_breaks()]
        return ends

    def sentence_index(self, pos: int) -> int:
        return bisect_right(self.sentence_starts(), pos) - 1

    def sentence_starts(self) -> list[int]:
        if self._sentences is None:
            self._sentences = [s for s, _ in self.norm.sentences(self.sentence_breaks())]
        return self._sentences

    def sentence_breaks(self) -> list[tuple[int, int]]:
        """:func:`monitor.text.sentence_breaks` of the original text (cached)."""
        if self._breaks is None:
            self._breaks = sentence_breaks(self.norm.original)
        return self._breaks


# One field's hits of some terms: starts and (term id, start, end) by start; ends and the
# same by end.
SortedHits = tuple[list[int], list[tuple[int, int, int]], list[int], list[tuple[int, int, int]]]


def sorted_hits(scan: Scan, term_ids: Iterable[int], index: int) -> SortedHits:
    """The hits of ``term_ids`` in field ``index``, sorted for :meth:`Scan.terms_near`."""
    hits = [(t, h[1], h[2]) for t in term_ids for h in scan.hits.get(t, ()) if h[0] == index]
    by_start = sorted(hits, key=itemgetter(1))
    by_end = sorted(hits, key=itemgetter(2))
    return [h[1] for h in by_start], by_start, [h[2] for h in by_end], by_end


# A context window (None: sentence) with its terms' masks (ContextIndex.groups), the
# terms that occur in the item, and per field their sorted hits.
_ContextGroup = tuple[int | None, dict[int, int], set[int], dict[int, SortedHits]]
MEMO_SIZE = 4096  # entries a memo of a pure function holds before it starts afresh


class ContextIndex:
    """The rule set's novelty contexts, grouped by window, with each context a bit.

    Bit ``i`` of a mask stands for ``contexts[i]`` (by window, then in the order given;
    one per key). Per window, ``masks`` maps each context term to the bits of the contexts
    that name it, so the contexts holding near a span are the OR of its near terms' masks:
    a few dict lookups where testing every context would cost one set operation each.
    """

    def __init__(self, contexts: Iterable[ContextTerms]) -> None:
        by_within: dict[int | None, dict[str, ContextTerms]] = {}
        for context in contexts:
            by_within.setdefault(context.within, {}).setdefault(context.key, context)
        self.contexts = tuple(c for found in by_within.values() for c in found.values())
        self.bits = {c.key: 1 << i for i, c in enumerate(self.contexts)}
        groups: list[tuple[int | None, dict[int, int]]] = []
        for within, found in by_within.items():
            masks: dict[int, int] = {}
            for context in found.values():
                for term_id in context.ids:
                    masks[term_id] = masks.get(term_id, 0) | self.bits[context.key]
            groups.append((within, masks))
        self.groups = tuple(groups)
        # A memo of a pure function of a mask (items near the same terms share it).
        self._holding: dict[int, tuple[ContextTerms, ...]] = {}

    def holding(self, mask: int) -> tuple[ContextTerms, ...]:
        """The contexts of ``mask``, in bit order."""
        found = self._holding.get(mask)
        if found is None:
            if len(self._holding) >= MEMO_SIZE:
                self._holding.clear()
            bits = reversed(bin(mask))  # lowest bit first
            found = tuple(c for c, bit in zip(self.contexts, bits, strict=False) if bit == "1")
            self._holding[mask] = found
        return found


# (gap, closest hit of the place's clause, gap, closest hit of its sentence); None: no hit
Closest = tuple[int, Hit | None, int, Hit | None]
# Clause marks: ``[;()[\]]``, a comma, or a run of dashes standing between whitespace
# (found with monitor.text.positions, the dash runs' surroundings tested in Python).
_CLAUSE_MARKS = ",;()[]-"
_LIST_JOINERS = ("and ", "or ", "& ")


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
    contexts: ContextIndex | None = None
    fired: dict[str, Match] = field(default_factory=dict)
    _holding: dict[tuple[int, int, int], int] = field(default_factory=dict)
    _breaks: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict)
    _groups: list[_ContextGroup] | None = None
    _quantities: dict[tuple[int, int, int], Quantity | None] = field(default_factory=dict)
    _quotes: dict[Hit, tuple[int, int, str]] = field(default_factory=dict)
    _term_hits: dict[tuple[str, Hit], TermHit] = field(default_factory=dict)
    _snippets: dict[Hit, str] = field(default_factory=dict)
    _present: dict[int, set[int]] = field(default_factory=dict)
    _near: dict[tuple[int, int, int], tuple[tuple[str, Hit], ...]] = field(default_factory=dict)
    _place_lists: dict[frozenset[int], tuple[tuple[int, PlaceMention], ...]] = field(
        default_factory=dict
    )
    _seen: dict[tuple[str, timedelta, bool], bool] = field(default_factory=dict)
    _item_places: dict[frozenset[int], tuple[dict[str, Any], ...]] = field(default_factory=dict)
    _closest: dict[tuple[int, int, int], Closest | None] = field(default_factory=dict)
    _clause_ends: dict[tuple[int, int], int] = field(default_factory=dict)
    _clause_starts: dict[tuple[int, int], int] = field(default_factory=dict)
    _place_edges: dict[int, tuple[set[int], set[int]]] = field(default_factory=dict)
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
        """A term's hit closest to ``[start, end)`` of field ``index`` in words within the
        same clause, and its closest hit in the same sentence (either None if there is
        none); None if the field has no hit of the term at all.

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
            same_sentence = ft.sentence_index(hit[1]) == sentence
            if hit[1] >= end:
                same_clause = same_sentence and self.one_clause(index, end, hit[1])
            else:
                same_clause = same_sentence and self.one_clause(index, hit[2], start)
            clause_gap, clause_hit, sentence_gap, sentence_hit = best or (0, None, 0, None)
            if same_clause and (clause_hit is None or gap < clause_gap):
                clause_gap, clause_hit = gap, hit
            if same_sentence and (sentence_hit is None or gap < sentence_gap):
                sentence_gap, sentence_hit = gap, hit
            best = (clause_gap, clause_hit, sentence_gap, sentence_hit)
        self._closest[memo] = best
        return best

    def one_clause(self, index: int, start: int, end: int) -> bool:
        """Whether ``[start, end)`` of field ``index`` lies in one clause: no clause
        punctuation (list commas excepted) and no sentence end in it (see the module
        docstring). The field's marks and sentence ends are found once; a span costs bisects."""
        starts, needs = self._clause_breaks(index)
        i = bisect_left(starts, start)
        if i < len(starts) and needs[i] < end:
            return False
        ft = self.fields[index]
        s, e = ft.norm.span(start, end)
        return not ft.sentence_ends_in(s, e)

    def clause_end(self, index: int, start: int) -> int:
        """How far the clause of ``start`` reaches: ``one_clause(index, start, end)`` holds
        for ``end`` up to it, and for no ``end`` past it but ``start`` itself (both
        punctuation and sentence ends only accumulate as a span grows). Cached: each
        context window asks it of the same places."""
        memo = (index, start)
        reach = self._clause_ends.get(memo)
        if reach is None:
            reach = self._clause_ends[memo] = self._clause_end(index, start)
        return reach

    def _clause_end(self, index: int, start: int) -> int:
        marks, needs = self._clause_breaks(index)
        ft = self.fields[index]
        norm = ft.norm
        i = bisect_left(marks, start)
        reach = needs[i] if i < len(marks) else len(norm.text)
        if start < len(norm.text):
            ends = ft.sentence_end_starts()
            j = bisect_left(ends, start if norm.origin is None else norm.origin[start])
            if j < len(ends):
                reach = min(reach, norm.position(ends[j]))
        return reach

    def clause_start(self, index: int, end: int) -> int:
        """Where the clause of ``end`` starts: ``one_clause(index, start, end)`` holds for
        ``start`` down to it, and for no ``start`` before it but ``end`` itself (cached)."""
        memo = (index, end)
        reach = self._clause_starts.get(memo)
        if reach is None:
            reach = self._clause_starts[memo] = self._clause_start(index, end)
        return reach

    def _clause_start(self, index: int, end: int) -> int:
        marks, needs = self._clause_breaks(index)
        k = bisect_left(needs, end)  # the marks that end before ``end``
        reach = marks[k - 1] + 1 if k else 0
        if end > 0:
            ft = self.fields[index]
            origin = ft.norm.origin
            ends = ft.sentence_end_starts()
            j = bisect_left(ends, end if origin is None else origin[end - 1] + 1)
            if j:
                last = ends[j - 1]
                reach = max(reach, last + 1 if origin is None else bisect_right(origin, last))
        return reach

    def _clause_breaks(self, index: int) -> tuple[list[int], list[int]]:
        """Where the field's clause marks (list commas excepted) start, ascending, and the
        last character each needs in a span to count there: itself, or for a dash the
        space after it (which must be within the span too)."""
        found = self._breaks.get(index)
        if found is None:
            text = self.fields[index].norm.text
            place_ends = self._place_edges_of(index)[0]
            starts: list[int] = []
            needs: list[int] = []
            for at in positions(text, _CLAUSE_MARKS):
                mark = text[at]
                if mark == "-":  # a run between whitespace: "Kyiv - Odesa", not "Kyiv-based"
                    if at and text[at - 1] == "-":
                        continue  # the run's first dash decided
                    after = at + 1
                    while text.startswith("-", after):
                        after += 1
                    if not (at and text[at - 1].isspace() and text[after : after + 1].isspace()):
                        continue
                    needs.append(after)
                elif mark == "," and at in place_ends and self._list_comma(index, at):
                    continue
                else:
                    needs.append(at)
                starts.append(at)
            found = self._breaks[index] = (starts, needs)
        return found

    def _list_comma(self, index: int, at: int) -> bool:
        """Whether the comma at ``at`` lists places: a place before it, one after it
        (after "and"/"or" if there is one): ``Kharkiv, Sumy and Poltava``."""
        ends, starts = self._place_edges_of(index)
        if at not in ends:
            return False
        text = self.fields[index].norm.text
        after = at + 1
        while text.startswith(" ", after):
            after += 1
        for joiner in _LIST_JOINERS:
            if text.startswith(joiner, after):
                after += len(joiner)
                break
        return after in starts

    def holding(self, index: int, start: int, end: int) -> int:
        """The contexts (bits of ``contexts``, the rule set's novelty contexts) that hold
        near ``[start, end)`` of field ``index`` (cached): per window, the context terms
        near the span are found once, and a context holds if one of its terms is."""
        memo = (index, start, end)
        mask = self._holding.get(memo)
        if mask is not None:
            return mask
        mask = 0
        for within, masks, present, by_field in self._context_groups():
            hits_here = by_field.get(index)
            if hits_here is None:
                hits_here = by_field[index] = sorted_hits(self, present, index)
            if hits_here[0]:
                for term_id in self.terms_near(index, start, end, within, hits_here):
                    mask |= masks[term_id]
        self._holding[memo] = mask
        return mask

    def _context_groups(self) -> list[_ContextGroup]:
        """The context windows whose terms occur in the item (cached), each with those
        terms and, filled per field as asked, their sorted hits."""
        groups = self._groups
        if groups is None:
            groups = self._groups = []
            if self.contexts is not None:
                hits = self.hits.keys()
                for within, masks in self.contexts.groups:
                    present = masks.keys() & hits
                    if present:
                        groups.append((within, masks, present, {}))
        return groups

    def _place_edges_of(self, index: int) -> tuple[set[int], set[int]]:
        """Where the field's place mentions end, and where they start (cached)."""
        edges = self._place_edges.get(index)
        if edges is None:
            places = self.places[index] if index < len(self.places) else ()
            edges = self._place_edges[index] = ({m.end for m in places}, {m.start for m in places})
        return edges

    def terms_near(
        self, index: int, start: int, end: int, within: int | None, hits: SortedHits
    ) -> set[int]:
        """The term ids of ``hits`` (one field's hits, see :func:`sorted_hits`) near
        ``[start, end)``: within ``within`` words of its clause, or (None) in its sentence.
        Hits overlapping the span do not count. Hits are sorted, so only the few next to
        the span are measured."""
        starts, by_start, ends, by_end = hits
        ft = self.fields[index]
        found: set[int] = set()
        if within is None:  # the hits that start in the span's sentence
            sentence_starts = ft.sentence_starts()
            sentence = bisect_right(sentence_starts, start) - 1
            first = 0 if sentence < 0 else bisect_left(starts, sentence_starts[sentence])
            last = len(starts)
            if sentence + 1 < len(sentence_starts):
                last = bisect_left(starts, sentence_starts[sentence + 1], first)
            for i in range(first, last):
                hit = by_start[i]
                if hit[1] >= end or hit[2] <= start:
                    found.add(hit[0])
            return found
        # Out of the clause (see one_clause) or too far: this hit and all beyond it.
        after = bisect_left(starts, end)
        if after < len(starts):
            reach = max(end, self.clause_end(index, end))
            for i in range(after, len(starts)):  # hits after the span
                hit = by_start[i]
                if hit[1] > reach or ft.words_between(end, hit[1]) > within:
                    break
                found.add(hit[0])
        before = bisect_right(ends, start)
        if before:
            reach = min(start, self.clause_start(index, start))
            for i in range(before - 1, -1, -1):  # hits before it
                hit = by_end[i]
                if hit[2] < reach or ft.words_between(hit[2], start) > within:
                    break
                found.add(hit[0])
        return found

    def seen(self, key: str, window: timedelta, *, in_context: bool) -> bool:
        """Whether the history has ``key`` within ``window`` before ``now`` (False without
        a history or ``now``); asked once per item (rules share the answer)."""
        memo = (key, window, in_context)
        found = self._seen.get(memo)
        if found is None:
            history, now = self.history, self.now
            if history is None or now is None:
                return False
            found = history.seen(key, now - window, now, in_context=in_context)
            self._seen[memo] = found
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
    """Terms that must occur near a place: within ``within`` words of its clause, or (None)
    in its sentence.

    ``key`` is the context's stable id (:func:`monitor.rules.history.context_id`): the
    history records a place under it when this context holds near the place. Compared by
    identity: the compiler makes one object per distinct context, so the scan's caches
    (keyed by ``id``) serve every rule that shares it.
    """

    terms: tuple[tuple[int, str], ...]
    within: int | None
    key: str = ""
    ids: frozenset[int] = field(init=False, repr=False)
    _names: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", dict(reversed(self.terms)))  # first name wins
        object.__setattr__(self, "ids", frozenset(self._names))

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
            hit = near_hit(scan, term_id, index, start, end, self.within)
            if hit is not None:
                found.append((hit[0], names[term_id], hit[1]))
        found.sort(key=_BY_GAP)
        result = scan._near[key] = tuple((term, hit) for _, term, hit in found)
        return result


def near_hit(
    scan: Scan, term_id: int, index: int, start: int, end: int, within: int | None
) -> tuple[int, Hit] | None:
    """(words between, hit) of the term's closest hit near ``[start, end)`` of field
    ``index``: within ``within`` words of the same clause, or (None) in the same sentence."""
    closest = scan.closest(term_id, index, start, end)
    if closest is None:
        return None
    gap, hit, sentence_gap, sentence_hit = closest
    if within is None:
        return None if sentence_hit is None else (sentence_gap, sentence_hit)
    return None if hit is None or gap > within else (gap, hit)
