"""Reading quantities in normalised text: "479 drones", "more than 1,000", "сотні дронів".

Pure functions over text already passed through :func:`monitor.text.normalize` (so
lower-case, and with no-break and thin spaces folded to plain spaces). Offsets are in that
text; the engine maps them back to the original.

What counts as a number:

* digits, with ``,`` or a space as thousands separator ("1,000", "1 000") and ``.`` or
  ``,`` as decimal point ("1.2", "1,5"); a separator followed by exactly three digits is a
  thousands separator ("2.500" is 2500);
* English number words ("four hundred and seventy-nine", "a dozen", "two thousand") and
  multipliers after digits ("1.2 thousand", "3k", "1,5 тисячі", "2 тысячи");
* vague amounts, read as a lower bound: dozens = 24, tens/десятки = 20, hundreds/сотні/сотни
  = 200, thousands/тисячі/тысячи = 2000 ("hundreds of thousands" = 200,000).

:func:`quantity_before` reads the number in front of a noun, across up to ``max_gap``
adjective-like words ("479 Shahed-type attack drones") but never across punctuation or a
function word ("300 people attacked by drones" reads nothing). A singular English noun
followed by another word after a plural number is a modifier, not the counted thing:
"400 drone hobbyists" reads nothing (a hyphen, as in "a 479-drone attack", says otherwise).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from monitor.types import tuple_maker

_TOKEN = re.compile(
    r"(?P<num>\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?(?!\d)|\d+(?:[.,]\d+)?)"
    r"|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)*)"
    r"|(?P<hyphen>-)"
    r"|(?P<punct>[^\w\s])"
)
_US_GROUPS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_EU_GROUPS = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
UNITS: dict[str, float] = {
    **{word: float(i) for i, word in enumerate(_ONES)},
    **{word: 10.0 * i for i, word in enumerate(_TENS, 2)},
    "сто": 100.0,
    "півтори": 1.5,
    "полтора": 1.5,
    "полторы": 1.5,
}
HUNDREDS = frozenset({"hundred"})
MULTIPLIERS: dict[str, float] = {
    "dozen": 12.0,
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "billion": 1e9,
    "тысяча": 1e3,
    "тисяча": 1e3,
    "мільйон": 1e6,
    "миллион": 1e6,
}
# Vague amounts (read alone, a lower bound) that are multipliers after a number ("2 тисячі").
VAGUE: dict[str, tuple[float, float]] = {
    "dozens": (24.0, 12.0),
    "tens": (20.0, 10.0),
    "hundreds": (200.0, 100.0),
    "thousands": (2000.0, 1e3),
    "millions": (2e6, 1e6),
    "десятки": (20.0, 10.0),
    "десятков": (20.0, 10.0),
    "десятків": (20.0, 10.0),
    "сотни": (200.0, 100.0),
    "сотні": (200.0, 100.0),
    "сотен": (200.0, 100.0),
    "сотень": (200.0, 100.0),
    "тысячи": (2000.0, 1e3),
    "тысяч": (2000.0, 1e3),
    "тисячі": (2000.0, 1e3),
    "тисяч": (2000.0, 1e3),
}
ARTICLES = frozenset({"a", "an"})
FEW = frozenset({"several", "few"})
_NUMBER_WORDS = frozenset(UNITS) | HUNDREDS | frozenset(MULTIPLIERS) | frozenset(VAGUE)
_SCALES = HUNDREDS | frozenset(MULTIPLIERS) | frozenset(VAGUE)

QUALIFIERS: tuple[str, ...] = (
    "more than", "over", "nearly", "almost", "around", "about", "approximately", "roughly",
    "some", "up to", "at least", "as many as", "fewer than", "less than", "under", "record",
    "понад", "більше", "более", "больше", "свыше", "около", "близько", "майже", "почти",
    "приблизно", "примерно", "щонайменше", "не менее", "не менше", "до", "рекордні",
    "рекордные",
)  # fmt: skip
_QUALIFIER_WORDS = {tuple(q.split()): q for q in QUALIFIERS}
_NUMBER_WORDS_MAX = 10  # words read before the adjectives: a number in words and a qualifier
# A cheap test that a window may hold a number at all, before tokenizing it.
_NUMBERISH = re.compile(
    r"\d|\b(?:" + "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True)) + r")\b"
)

# Words that end the adjective run between a number and its noun.
STOP_WORDS = frozenset(
    {
        "and", "or", "but", "of", "by", "with", "from", "to", "in", "on", "at", "for", "the",
        "a", "an", "that", "which", "who", "whom", "were", "was", "are", "is", "be", "been",
        "have", "has", "had", "as", "than", "per", "into", "onto", "over", "under", "after",
        "before", "since", "during", "against", "while", "when", "where", "its", "their", "his",
        "her", "this", "these", "those", "it", "they", "he", "she", "we", "not", "no", "nor",
        "if", "then",
        "і", "й", "та", "и", "а", "або", "или", "в", "у", "на", "з", "із", "зі", "с", "со", "по",
        "від", "от", "до", "для", "за", "що", "что", "це", "это", "які", "которые", "не", "ні",
        "ни",
    }
)  # fmt: skip
# After a singular noun, these do not make it a modifier ("200 aircraft were lost").
_CLAUSE_WORDS = STOP_WORDS | {"are", "will", "would", "could", "may", "have", "had"}

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
}
_THRESHOLD = re.compile(r"^\s*(>=|<=|==|!=|>|<|=)\s*(-?\d+(?:\.\d+)?)\s*$")


class Token(NamedTuple):
    kind: str  # "num" | "word" | "hyphen" | "punct"
    text: str
    start: int
    end: int


# Quantities tokenize a window per noun.
_token = tuple_maker(Token, ("kind", "text", "start", "end"))


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number read in front of a noun; offsets are into the normalised text."""

    value: float
    start: int
    end: int
    text: str
    qualifier: str = ""
    vague: bool = False


def tokenize(text: str, offset: int = 0) -> list[Token]:
    """Numbers (with separators), words, hyphens and punctuation, with offsets."""
    return [
        _token((m.lastgroup or "punct", m.group(), m.start() + offset, m.end() + offset))
        for m in _TOKEN.finditer(text)
    ]


def digits_value(text: str) -> float:
    """``"1,000"``/``"1 000"``/``"2.500"`` -> thousands; ``"1.2"``/``"1,5"`` -> decimals."""
    text = text.replace(" ", "")
    if _US_GROUPS.fullmatch(text):
        return float(text.replace(",", ""))
    if _EU_GROUPS.fullmatch(text):
        return float(text.replace(".", "").replace(",", "."))
    return float(text.replace(",", "."))


def parse_number(text: str) -> float | None:
    """The value of a whole string that is a number ("1,200", "1.2 thousand", "hundreds")."""
    toks = [t for t in tokenize(text.casefold()) if t.kind != "hyphen"]
    if not toks or not all(t.kind == "num" or t.text in _NUMBER_WORDS | {"and"} for t in toks):
        return None
    return _evaluate(toks)


def parse_threshold(text: str) -> tuple[str, float] | None:
    """``">= 400"`` -> (">=", 400.0); None if it is not ``OP NUMBER``."""
    m = _THRESHOLD.match(text)
    return (m.group(1), float(m.group(2))) if m else None


def compare(value: float, op: str, limit: float) -> bool:
    return _OPS[op](value, limit)


def quantity_before(
    text: str, noun_start: int, noun_end: int, *, max_gap: int = 3, window: int = 80
) -> Quantity | None:
    """The number counting the noun at ``[noun_start, noun_end)``, if one stands before it."""
    near = _words_back(text, noun_start, max_gap + 2)
    if not _NUMBERISH.search(text, near, noun_start):
        return None  # the common case, decided without tokenizing
    # _words_back(text, noun_start, max_gap + _NUMBER_WORDS_MAX), from where it got to
    lo = max(noun_start - window, _words_back(text, near, _NUMBER_WORDS_MAX - 2))
    toks = tokenize(text[lo:noun_start], lo)
    i = _skip_adjectives(toks, max_gap)
    if i is None:
        return None
    run, first = _number_run(toks, i)
    joined = toks[i + 1].kind == "hyphen" if i + 1 < len(toks) else False
    value = _evaluate(run)
    if value > 1 and not joined and _is_modifier(text, noun_start, noun_end):
        return None
    vague = run[-1].text in VAGUE and run[0].kind != "num"
    return Quantity(
        value=value,
        start=run[0].start,
        end=run[-1].end,
        text=text[run[0].start : run[-1].end],
        qualifier=_qualifier(toks, first),
        vague=vague,
    )


def _words_back(text: str, pos: int, count: int) -> int:
    """Start of the ``count``-th space-separated word before ``pos`` (or 0)."""
    for _ in range(count):
        pos = text.rfind(" ", 0, pos - 1) if pos > 1 else -1
        if pos == -1:
            return 0
    return pos


def _skip_adjectives(toks: list[Token], max_gap: int) -> int | None:
    """Index of the last token of the number before the noun, or None."""
    gap = 0
    i = len(toks) - 1
    while i >= 0:
        tok = toks[i]
        if tok.kind == "hyphen":
            i -= 1
            continue
        if tok.kind == "punct":
            return None
        if tok.kind == "num" or tok.text in _NUMBER_WORDS:
            return i
        if tok.text == "of" and i > 0 and toks[i - 1].text in VAGUE:
            return i - 1
        if tok.text in STOP_WORDS or gap >= max_gap:
            return None
        gap += 1
        i -= 1
    return None


def _number_run(toks: list[Token], end: int) -> tuple[list[Token], int]:
    """The tokens of the number ending at ``toks[end]`` and the index of its first token."""
    run = [toks[end]]
    j = end - 1
    while j >= 0 and run[0].kind != "num":
        head, tok = run[0], toks[j]
        if tok.kind == "num" or tok.text in UNITS or tok.text in HUNDREDS:
            run.insert(0, tok)
        elif tok.text in MULTIPLIERS and head.text not in VAGUE:
            run.insert(0, tok)  # "two thousand four hundred", but not "thousand hundreds"
        elif tok.kind == "hyphen" or tok.text == "and":
            if j == 0 or toks[j - 1].text not in _NUMBER_WORDS or head.text in _SCALES:
                break
        elif tok.text == "of" and head.text in VAGUE and j > 0 and toks[j - 1].text in VAGUE:
            run[0:0] = [toks[j - 1], tok]
            j -= 1
        elif (tok.text in ARTICLES or tok.text in FEW) and head.text in _SCALES:
            run.insert(0, tok)
            break
        else:
            break
        j -= 1
    return run, toks.index(run[0], max(j, 0))


def _evaluate(run: list[Token]) -> float:
    """Value of a number's tokens: digits and words with hundreds and multipliers."""
    if len(run) == 1 and run[0].text in VAGUE:
        return VAGUE[run[0].text][0]
    total = 0.0
    current: float | None = None
    for tok in run:
        word = tok.text
        if tok.kind == "num":
            current = (current or 0.0) + digits_value(word)
        elif word in UNITS:
            current = (current or 0.0) + UNITS[word]
        elif word in ARTICLES:
            current = (current or 0.0) + 1.0
        elif word in FEW:
            current = (current or 0.0) + 2.0
        elif word in HUNDREDS:
            current = (current if current is not None else 1.0) * 100.0
        elif word in MULTIPLIERS or word in VAGUE:
            vague_value, mult = VAGUE.get(word, (0.0, MULTIPLIERS.get(word, 1.0)))
            if current is None and total == 0.0:
                current = vague_value  # "hundreds of thousands": the first vague word
                continue
            total += (current if current is not None else 1.0) * mult
            current = None
    return total + (current or 0.0)


def _qualifier(toks: list[Token], first: int) -> str:
    """A hedge or intensifier right before the number ("more than", "nearly", "понад")."""
    for size in (3, 2, 1):
        if first - size < 0:
            continue
        words = tuple(t.text for t in toks[first - size : first])
        if words in _QUALIFIER_WORDS:
            return _QUALIFIER_WORDS[words]
    return ""


def _is_modifier(text: str, noun_start: int, noun_end: int) -> bool:
    """A singular Latin noun followed by a word ("400 drone hobbyists") is not what is counted."""
    word_end = noun_end
    while word_end < len(text) and text[word_end].isalpha():
        word_end += 1
    noun = text[noun_start:word_end]
    if not noun.isascii() or noun.endswith("s"):
        return False
    nxt = tokenize(text[word_end : word_end + 40])
    return bool(nxt) and nxt[0].kind == "word" and nxt[0].text not in _CLAUSE_WORDS
