"""What a match shows an analyst: quoted hits, a snippet, places, numbers as JSON.

Pure helpers shared by the matchers; offsets are into the item's original title or
summary (the scan maps normalised offsets back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from monitor.gazetteer import Place
from monitor.text import Normalized
from monitor.types import Evidence

if TYPE_CHECKING:
    from monitor.rules.scan import Hit, Scan

FIELDS: tuple[str, ...] = ("title", "summary")
SNIPPET_CHARS = 160
MAX_EVIDENCE_HITS = 12  # hits quoted in a match's evidence
MAX_HITS_PER_TERM = 3  # of which any one term
MAX_EVIDENCE_PLACES = 5  # places listed in the evidence of a rule that is not about places

_BY_HIT = itemgetter(1)


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
    ordered = sorted(found, key=_BY_HIT)[:MAX_EVIDENCE_HITS]
    term_hit = scan.term_hit
    terms = tuple([term_hit(term, hit) for term, hit in ordered])
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
