"""Seed articles + the escalation lexicon -> the shipped rules file (``monitor derive``).

Pure: seed texts, lexicon data and the gazetteer in, YAML text out; no I/O, no clock.
The same inputs give the same bytes (seeds are read in name order, places sorted by
kind and id, lexicon order kept where it is meaningful, no timestamps).

    seeds/*.txt ──▶ Seed(date, text) ──┬─▶ gazetteer ──▶ places ──▶ novelty baseline
                                       ├─▶ lexicon terms found ──▶ boosted score weights
                                       └─▶ key phrases ──▶ score terms, rhetoric phrases
    monitor/data/lexicon.yaml ─────────┴─▶ rules (score, novelty, near, quantity, terms, burst)
    monitor/data/theatre.yaml ──────────▶ known theatre ──▶ novelty baselines (with the places)

Key phrases. In each sentence of a seed, every hit of a lexicon ``markers`` term (framing
words: "record", "new", "for the first time") is paired with the nearest lexicon term hit
that does not overlap it and has at most ``PHRASE_GAP`` words between the two; the phrase
runs from one to the other and swallows further lexicon hits directly adjacent to it
("significant territorial escalation"). Phrases crossing punctuation or longer than
``PHRASE_MAX_WORDS`` words are dropped. A multi-word marker with no term near it is still a
key phrase ("for the first time") if its sentence has a lexicon hit at all. Each phrase is
kept once, in order of first occurrence, with the category of the lexicon term it is
anchored on. Phrases anchored on a term go into the score rule (that term's category,
weight ``derive_emit.PHRASE_WEIGHT``); rhetoric ones also into the hard-rhetoric phrases rule.

Known theatre. The novelty rules' baselines are the curated theatre as of the seeds'
date (``monitor/data/theatre.yaml``: regions with ground fighting, regions hit by
long-range strikes, the countries already involved) plus the seeds' places, so that a
cold start (empty history) does not call Kharkiv or Odesa new. The ground-war rule
(new-front) leaves out the regions a seed reports as reached for the first time.

First reached. A seed place (a region, or a city standing for its region) is reported as
reached for the first time when, in its sentence, a lexicon ``first_time`` term ends or
starts within ``FIRST_GAP`` words of it and a lexicon ``advance`` term within
``FIRST_SPAN`` words ("advancing into Ukraine's Dnipropetrovsk region for the first
time"). Countries never are: "Ukraine" in that sentence is not new.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any, get_args

from ruamel.yaml import YAML

from monitor.config.rule_models import RuleConfig
from monitor.derive_emit import Emitter
from monitor.gazetteer import Gazetteer, Place, PlaceMention
from monitor.rules.lexicon import parse_term
from monitor.text import Normalized, break_words, normalize

__all__ = [
    "Derived", "KeyPhrase", "Lexicon", "Seed", "Theatre", "analyse", "derive", "known_kinds",
    "lexicon_from_text", "read_seed", "shipped_lexicon", "shipped_theatre", "theatre_from_text",
]  # fmt: skip

PHRASE_GAP = 3
PHRASE_MAX_WORDS = 7
THEATRE_MIN_MENTIONS = 3  # a country is part of the theatre (novelty scope) from this many
QUOTE_CHARS = 70
FIRST_GAP = 3  # words between a place and "for the first time" for the place to be a first
FIRST_SPAN = 8  # words between that place and an advance term in its sentence
_DATE_LINE = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\b")
_LEXICON_KEYS = (
    "categories", "score", "markers", "first_time", "advance", "air_attack", "record_words",
    "record_raid", "named_weapons", "threats", "guards", "novelty_context",
)  # fmt: skip
_CONTEXT_KEYS = ("within", "ground", "strike", "spillover")
_THEATRE_KEYS = ("as_of", "ground", "strike", "countries")
_PUNCT = re.compile(r"[,;:.!?()\[\]\"«»“”]")


@dataclass(frozen=True, slots=True)
class Seed:
    """One seed article: file name, its declared date and its text (without the date)."""

    name: str
    date: date | None
    text: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Hit:
    """A lexicon term found in a seed, in normalised offsets."""

    term: str
    seed: int
    sentence: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class KeyPhrase:
    """A seed phrase anchored on a lexicon term (``category`` "" for a bare marker phrase)."""

    phrase: str
    quote: str
    anchor: str
    category: str
    seed: str


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The escalation lexicon (``monitor/data/lexicon.yaml``), as plain data."""

    data: Mapping[str, Any]
    sha256: str

    @property
    def categories(self) -> Mapping[str, Mapping[str, Any]]:
        return self.data["categories"]  # type: ignore[no-any-return]

    def terms(self, category: str) -> dict[str, float]:
        return {str(k): float(v) for k, v in self.categories[category]["terms"].items()}

    def category_of(self) -> dict[str, str]:
        """term -> its category (the first one it is listed in)."""
        out: dict[str, str] = {}
        for name, cat in self.categories.items():
            for term in cat["terms"]:
                out.setdefault(str(term), name)
        return out

    def strings(self, *path: str) -> list[str]:
        node: Any = self.data
        for key in path:
            node = node[key]
        return [str(t) for t in node]


@dataclass(frozen=True, slots=True)
class Theatre:
    """The known theatre as of ``as_of`` (``monitor/data/theatre.yaml``): id -> note."""

    as_of: date
    ground: Mapping[str, str]  # regions with ground fighting
    strike: Mapping[str, str]  # regions hit by long-range strikes (not in ground)
    not_included: Mapping[str, Mapping[str, str]]  # "ground"/"strike" -> left out, to review
    involved: Mapping[str, str]  # countries already in the war
    watch: Mapping[str, str]  # neighbours the new-country rule watches
    sha256: str


@dataclass(frozen=True, slots=True)
class Derived:
    """What derive found in the seeds, kept for the rules file and for tests."""

    seeds: tuple[Seed, ...]
    found: Mapping[str, str]  # lexicon term -> quote of its first occurrence
    phrases: tuple[KeyPhrase, ...]
    places: Mapping[str, tuple[Place, int, str]]  # id -> (place, mentions, first alias quote)
    theatre: tuple[str, ...]  # countries mentioned at least THEATRE_MIN_MENTIONS times
    firsts: Mapping[str, str]  # region id -> quote: a seed reports it reached for the first time
    known: Theatre | None = None  # the curated theatre the baselines start from


def _sections(text: str, source: str, required: Iterable[str]) -> dict[str, Any]:
    """A data file's top-level mapping; ValueError naming ``source`` when a section is missing."""
    data = YAML(typ="safe", pure=True).load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{source}: the top level must be a mapping")
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"{source}: missing section(s) {', '.join(missing)}")
    return data


def lexicon_from_text(text: str, source: str = "lexicon") -> Lexicon:
    """Parse a lexicon file's text; ValueError naming ``source`` when a section is missing."""
    data = _sections(text, source, _LEXICON_KEYS)
    context = data["novelty_context"]
    lacking = [k for k in _CONTEXT_KEYS if not isinstance(context, dict) or k not in context]
    if lacking:
        raise ValueError(f"{source}: novelty_context lacks {', '.join(lacking)}")
    return Lexicon(data, hashlib.sha256(text.encode()).hexdigest())


def theatre_from_text(
    text: str, source: str = "theatre", gazetteer: Gazetteer | None = None
) -> Theatre:
    """Parse a theatre file; ValueError naming ``source`` for a missing section, a bad
    date or (with ``gazetteer``) an id the gazetteer does not know or of the wrong kind."""
    data = _sections(text, source, _THEATRE_KEYS)
    as_of = data["as_of"]
    if not isinstance(as_of, date):
        try:
            as_of = date.fromisoformat(str(as_of))
        except ValueError:
            raise ValueError(
                f"{source}: as_of must be a date (YYYY-MM-DD), not {as_of!r}"
            ) from None

    def notes(node: Any, where: str, kind: str) -> dict[str, str]:
        if node is None:
            return {}
        if not isinstance(node, dict):
            raise ValueError(f"{source}: {where} must be a mapping of place id -> note")
        out = {str(k): str(v) for k, v in node.items()}
        for place_id in out if gazetteer is not None else ():
            try:
                place = gazetteer.get(place_id)  # type: ignore[union-attr]
            except KeyError:
                raise ValueError(
                    f"{source}: {where}: {place_id!r} is not a gazetteer id; look it up with "
                    "Gazetteer.load().lookup(name)"
                ) from None
            if place.kind != kind:
                raise ValueError(f"{source}: {where}: {place_id} is a {place.kind}, not a {kind}")
        return out

    countries = data["countries"] or {}
    left = data.get("not_included") or {}
    ground = notes(data["ground"], "ground", "region")
    strike = notes(data["strike"], "strike", "region")
    twice = sorted(set(ground) & set(strike))
    if twice:
        raise ValueError(f"{source}: {', '.join(twice)} in both ground and strike; keep ground")
    return Theatre(
        as_of=as_of,
        ground=ground,
        strike=strike,
        not_included={
            k: notes(left.get(k), f"not_included.{k}", "region") for k in ("ground", "strike")
        },
        involved=notes(countries.get("involved"), "countries.involved", "country"),
        watch=notes(countries.get("watch"), "countries.watch", "country"),
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


def shipped_theatre(gazetteer: Gazetteer | None = None) -> Theatre:
    """The known theatre shipped in ``monitor/data/theatre.yaml``."""
    ref = resources.files("monitor") / "data" / "theatre.yaml"
    return theatre_from_text(
        ref.read_text(encoding="utf-8"), "monitor/data/theatre.yaml", gazetteer
    )


def shipped_lexicon() -> Lexicon:
    """The lexicon shipped in ``monitor/data/lexicon.yaml``."""
    ref = resources.files("monitor") / "data" / "lexicon.yaml"
    return lexicon_from_text(ref.read_text(encoding="utf-8"), "monitor/data/lexicon.yaml")


def read_seed(name: str, raw: str) -> Seed:
    """A seed file's text: an optional first line ``date YYYY-MM-DD``, then the article."""
    m = _DATE_LINE.match(raw)
    day = date.fromisoformat(m.group(1)) if m else None
    text = raw[m.end() :] if m else raw
    return Seed(name, day, text.strip(), hashlib.sha256(raw.encode()).hexdigest())


def known_kinds() -> frozenset[str]:
    """Rule kinds this media-monitor understands (from the config models' union)."""
    union = get_args(RuleConfig)[0]
    kinds: set[str] = set()
    for model in get_args(union):
        kinds.update(get_args(model.model_fields["kind"].annotation))
    return frozenset(kinds)


def derive(
    seeds: Sequence[Seed],
    lexicon: Lexicon,
    *,
    gazetteer: Gazetteer,
    kinds: frozenset[str] | None = None,
    regenerate: str = "monitor derive seeds/ -o config/rules.yaml",
    local: str | None = "rules.local.yaml",
    theatre: Theatre | None = None,
) -> str:
    """The rules file for ``seeds``: commented YAML, byte-identical for identical inputs.

    ``theatre`` defaults to the shipped known theatre (checked against ``gazetteer``)."""
    derived = analyse(seeds, lexicon, gazetteer, theatre or shipped_theatre(gazetteer))
    emitter = Emitter(derived, lexicon, kinds if kinds is not None else known_kinds())
    return emitter.render(regenerate=regenerate, local=local)


def analyse(
    seeds: Sequence[Seed],
    lexicon: Lexicon,
    gazetteer: Gazetteer,
    theatre: Theatre | None = None,
) -> Derived:
    """Places, lexicon terms, key phrases and first-reached regions of the seeds."""
    ordered = tuple(sorted(seeds, key=lambda s: s.name))
    norms = [normalize(s.text) for s in ordered]
    sentences = [n.sentences() for n in norms]
    category = lexicon.category_of()
    hits = _find(category, norms, sentences)
    markers = _find(dict.fromkeys(lexicon.strings("markers"), ""), norms, sentences)
    found: dict[str, str] = {}
    for hit in hits:
        found.setdefault(hit.term, _quote(norms[hit.seed], hit.start, hit.end))
    phrases = _key_phrases(ordered, norms, hits, markers, category)
    places, countries = _places(ordered, norms, gazetteer)
    firsts = _firsts(lexicon, norms, sentences, gazetteer)
    return Derived(ordered, found, phrases, places, countries, firsts, theatre)


# --- finding terms --------------------------------------------------------------------


def _find(
    terms: Mapping[str, str],
    norms: Sequence[Normalized],
    sentences: Sequence[list[tuple[int, int]]],
) -> list[Hit]:
    """Every hit of every term, longest first where two overlap, in text order."""
    out: list[Hit] = []
    for index, norm in enumerate(norms):
        broken = f" {break_words(norm.text)} "
        raw: list[tuple[int, int, str]] = []
        for term in terms:
            raw += [(s, e, term) for s, e in _term_spans(term, broken)]
        raw.sort(key=lambda h: (h[0] - h[1], h[0], h[2]))  # longest, then leftmost
        kept: list[tuple[int, int, str]] = []
        for s, e, term in raw:
            if not any(s < ke and ks < e for ks, ke, _ in kept):
                kept.append((s, e, term))
        for s, e, term in sorted(kept):
            out.append(Hit(term, index, _sentence_of(sentences[index], s), s, e))
    return out


def _term_spans(term: str, broken: str) -> Iterable[tuple[int, int]]:
    """Spans (in the unpadded text) of ``term``'s forms in `` broken `` text."""
    spec = parse_term(term)
    for form in spec.forms:
        key = f" {form}" if spec.prefix else f" {form} "
        pos = broken.find(key)
        while pos != -1:
            end = broken.find(" ", pos + len(key) - 1) if spec.prefix else pos + len(key) - 1
            yield pos, end - 1
            pos = broken.find(key, pos + 1)


def _sentence_of(spans: Sequence[tuple[int, int]], pos: int) -> int:
    for i, (s, e) in enumerate(spans):
        if s <= pos < e:
            return i
    return len(spans)


def _quote(norm: Normalized, start: int, end: int, width: int = QUOTE_CHARS) -> str:
    """About ``width`` characters of the original around a hit, on one line."""
    s, e = norm.span(start, end)
    a = max(0, s - (width - (e - s)) // 2)
    b = min(len(norm.original), max(e, a + width))
    body = " ".join(norm.original[a:b].split())
    return ("…" if a > 0 else "") + body + ("…" if b < len(norm.original) else "")


# --- key phrases ------------------------------------------------------------------------


def _key_phrases(
    seeds: Sequence[Seed],
    norms: Sequence[Normalized],
    hits: Sequence[Hit],
    markers: Sequence[Hit],
    category: Mapping[str, str],
) -> tuple[KeyPhrase, ...]:
    """Marker + nearby lexicon term phrases, once each, in order of first occurrence."""
    by_sentence: dict[tuple[int, int], list[Hit]] = {}
    for hit in hits:
        by_sentence.setdefault((hit.seed, hit.sentence), []).append(hit)
    out: dict[str, KeyPhrase] = {}
    for marker in markers:
        norm = norms[marker.seed]
        words = _word_starts(norm.text)
        near = by_sentence.get((marker.seed, marker.sentence), [])
        found = _phrase_span(marker, near, words, norm)
        if found is not None:
            start, end, anchor = found
            cat = category[anchor]
        elif len(marker.term.split()) >= 3 and near:
            start, end, anchor, cat = marker.start, marker.end, "", ""
        else:
            continue
        quote = " ".join(norm.quote(start, end).split())
        phrase = " ".join(break_words(norm.text[start:end]).split())
        if phrase not in out:
            out[phrase] = KeyPhrase(phrase, quote, anchor, cat, seeds[marker.seed].name)
    return tuple(out.values())


def _word_starts(text: str) -> list[int]:
    return [m.start() for m in re.finditer(r"\S+", break_words(text))]


def _words(words: Sequence[int], start: int, end: int) -> int:
    """How many words start in ``[start, end)``."""
    return sum(1 for w in words if start <= w < end)


def _phrase_span(
    marker: Hit, near: Sequence[Hit], words: Sequence[int], norm: Normalized
) -> tuple[int, int, str] | None:
    """The phrase from ``marker`` to its nearest lexicon hit, grown over adjacent hits."""
    best: tuple[int, Hit] | None = None
    for hit in near:
        if hit.start < marker.end and marker.start < hit.end:
            continue  # overlaps the marker ("record amounts" over "record")
        a, b = (marker.end, hit.start) if hit.start >= marker.end else (hit.end, marker.start)
        gap = _words(words, a, b)
        ok = gap <= PHRASE_GAP and not _PUNCT.search(norm.text[a:b])
        if ok and (best is None or gap < best[0]):
            best = (gap, hit)
    if best is None:
        return None
    anchor = best[1]
    start, end = min(marker.start, anchor.start), max(marker.end, anchor.end)
    for hit in sorted(near, key=lambda h: h.start):  # swallow directly adjacent hits
        adjacent = hit.start >= end and _words(words, end, hit.start) == 0
        if adjacent and not _PUNCT.search(norm.text[end : hit.start]):
            end = hit.end
    if _words(words, start, end) > PHRASE_MAX_WORDS:
        return None
    return start, end, anchor.term


# --- places -----------------------------------------------------------------------------


def _places(
    seeds: Sequence[Seed], norms: Sequence[Normalized], gazetteer: Gazetteer
) -> tuple[dict[str, tuple[Place, int, str]], tuple[str, ...]]:
    """Every place the seeds mention (cities also add their region), and the theatre."""
    count: Counter[str] = Counter()
    quote: dict[str, str] = {}
    via: dict[str, str] = {}  # a region known only through one of its cities
    countries: Counter[str] = Counter()
    for norm in norms:
        for mention in gazetteer.find(norm):
            place = mention.place
            text = norm.quote(mention.start, mention.end)
            count[place.id] += 1
            quote.setdefault(place.id, text)
            if place.kind == "city" and place.region:
                count[place.region] += 1
                via.setdefault(place.region, f"{text} (city)")
            countries[place.country] += 1
    places: dict[str, tuple[Place, int, str]] = {}
    for place_id in sorted(count):
        try:
            place = gazetteer.get(place_id)
        except KeyError:
            continue  # a city's region the table does not list
        places[place_id] = (place, count[place_id], quote.get(place_id) or via[place_id])
    theatre = tuple(sorted(c for c, n in countries.items() if n >= THEATRE_MIN_MENTIONS))
    return places, theatre


def _firsts(
    lexicon: Lexicon,
    norms: Sequence[Normalized],
    sentences: Sequence[list[tuple[int, int]]],
    gazetteer: Gazetteer,
) -> dict[str, str]:
    """Regions a seed reports as reached for the first time -> a quote saying so."""
    firsts = _find(dict.fromkeys(lexicon.strings("first_time"), ""), norms, sentences)
    advances = _find(dict.fromkeys(lexicon.strings("advance"), ""), norms, sentences)
    out: dict[str, str] = {}
    for index, norm in enumerate(norms):
        words = _word_starts(norm.text)
        for mention in gazetteer.find(norm):
            place = mention.place
            region = place.id if place.kind == "region" else place.region
            if place.kind == "country" or not region or region in out:
                continue
            where = (index, _sentence_of(sentences[index], mention.start))
            first = [h for h in firsts if _near(h, where, mention, words, FIRST_GAP)]
            advance = [h for h in advances if _near(h, where, mention, words, FIRST_SPAN)]
            if first and advance:
                hits = [*first, *advance]
                start = min(mention.start, *(h.start for h in hits))
                end = max(mention.end, *(h.end for h in hits))
                out[region] = " ".join(norm.quote(start, end).split())
    return dict(sorted(out.items()))


def _near(
    hit: Hit, where: tuple[int, int], mention: PlaceMention, words: Sequence[int], most: int
) -> bool:
    """Whether ``hit`` is in the (seed, sentence) ``where`` within ``most`` words of it."""
    if (hit.seed, hit.sentence) != where:
        return False
    if hit.start >= mention.end:
        return _words(words, mention.end, hit.start) <= most
    return _words(words, hit.end, mention.start) <= most
