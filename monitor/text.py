"""Text normalisation for matching: one canonical form, with offsets back to the original.

Pure: strings in, values out. Every matcher (rules, gazetteer) works on
``Normalized.text`` and maps its hits back with ``Normalized.span``, so the
evidence an analyst sees quotes the original text.
"""

from __future__ import annotations

import re
import string
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache

# Quotes, apostrophes and dashes that news text uses interchangeably.
_FOLD = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u02bc": "'", "\u0060": "'", "\u00b4": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
        "\u2212": "-", "\u00ad": "",
        "\u0451": "\u0435",  # ё -> е: Russian writes both for the same word
    }
)  # fmt: skip

_WORD = re.compile(r"\w+(?:['-]\w+)*")
# A sentence ends after [.!?…] (and closing quotes) before whitespace and a capital or digit,
# or at a blank line. The first branch takes the mark itself, rather than looking behind
# for it at every position, so the regex engine can skip to candidate characters.
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s+(?=[\"'(\[]?[A-ZА-ЯІЇЄҐ0-9])|\n\s*\n")
_SENTENCE_MARKS = ".!?…\n"  # where a sentence end can begin


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalised text plus, for each of its characters, the index it came from.

    ``origin`` is None when every character maps to itself (the common case:
    no character expanded or vanished), which saves building a table per text.
    """

    original: str
    text: str
    origin: tuple[int, ...] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a ``[start, end)`` span of ``text`` back to a span of ``original``."""
        if self.origin is None:
            return start, end
        if start >= end:
            pos = self.origin[start] if start < len(self.origin) else len(self.original)
            return pos, pos
        return self.origin[start], self.origin[end - 1] + 1

    def quote(self, start: int, end: int) -> str:
        s, e = self.span(start, end)
        return self.original[s:e]

    def position(self, original_index: int) -> int:
        """The index in ``text`` of the first character that came from ``original_index`` on."""
        if self.origin is None:
            return min(original_index, len(self.text))
        return bisect_left(self.origin, original_index)

    def sentences(self, breaks: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
        """Sentence spans in ``text`` coordinates, split on the original's capitals
        (``breaks``: :func:`sentence_breaks` of the original, if the caller has it)."""
        spans = sentences(self.original, breaks)
        if self.origin is None:  # the same coordinates
            return spans
        return [(self.position(s), self.position(e)) for s, e in spans]


# Every character that is not a letter or digit is a word break. Built once, read only.
# A bytes table: ASCII text is translated as bytes, a table lookup per byte in C, where
# str.translate looks each character up in a mapping.
_ASCII_BREAKS = bytes(c if chr(c).isalnum() else ord(" ") for c in range(256))
_BREAKS = re.compile(r"[^\w ]|_")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ASCII_BYTES = bytes(range(128))
_ASCII_FOLD = {ord(c): c.lower() for c in string.ascii_uppercase} | {ord("`"): "'"}


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch).casefold().translate(_FOLD)


def _fold_match(m: re.Match[str]) -> str:
    return _fold_char(m.group())


def normalize(text: str) -> Normalized:
    """NFKC, case-folded, quotes/dashes unified, ё->е; offsets kept per character.

    Characters are folded one by one (after NFC, which only composes marks) so
    each output character can be traced to its source. ASCII, the bulk of most
    text, is only lowered; only non-ASCII goes through Unicode.
    """
    text = unicodedata.normalize("NFC", text)
    if text.isascii():
        return Normalized(text, _fold_ascii(text))
    folds = {ch: _fold_char(ch) for ch in _non_ascii(text)}
    folded = _fold_non_ascii(text, folds)
    if all(f == f.lower() for f in folds.values()):
        folded = _fold_ascii(folded)  # lower() leaves the folded characters as they are
    else:
        folded = folded.translate(_ASCII_FOLD)
    if all(len(f) == 1 for f in folds.values()):
        return Normalized(text, folded)
    # Offsets: ASCII characters map one to one, a folded one to each character it became.
    origin: list[int] = []
    done = 0
    for m in _NON_ASCII.finditer(text):
        at = m.start()
        size = len(folds[m.group()])
        if size != 1:
            origin.extend(range(done, at))
            origin.extend([at] * size)
            done = at + 1
    origin.extend(range(done, len(text)))
    return Normalized(text, folded, tuple(origin))


def _non_ascii(text: str) -> set[str]:
    """The distinct non-ASCII characters of ``text``.

    Its UTF-8 without the ASCII bytes is the UTF-8 of those characters alone (no byte of
    a multi-byte sequence is ASCII): two C loops, where a regular expression over the
    text took several times longer. ``surrogatepass`` lets lone surrogates through.
    """
    rest = text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES)
    return set(rest.decode("utf-8", "surrogatepass"))


def _fold_non_ascii(text: str, folds: dict[str, str]) -> str:
    """``text`` with every non-ASCII character replaced by its fold (``folds``).

    One ``str.replace`` per character that changes (a handful: quotes, dashes, capitals)
    rather than a Python call per non-ASCII character, which in Cyrillic text is every
    letter. Unless a fold holds a character that is folded itself: replacing one after
    another would then fold it twice.
    """
    changed = {ch: f for ch, f in folds.items() if f != ch}
    if any(c in changed for f in changed.values() for c in f):
        return _NON_ASCII.sub(_fold_match, text)
    for ch, f in changed.items():
        text = text.replace(ch, f)
    return text


def _fold_ascii(text: str) -> str:
    """``text.translate(_ASCII_FOLD)`` where that changes only ASCII characters: the
    translation runs per character in Python's generic path, lower() does not."""
    lowered = text.lower()
    return lowered.replace("`", "'") if "`" in lowered else lowered


def fold(text: str) -> str:
    """The normalised form alone, for terms and aliases (no offsets needed)."""
    return normalize(text).text


def break_words(text: str) -> str:
    """``text`` (already normalised) with every non-letter, non-digit as a space; same length.

    Matchers look for `` word `` keys in ``" " + break_words(text) + " "``, so every hit
    lies on word boundaries and its offsets are those of ``text`` plus one.
    """
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_BREAKS).decode("ascii")
    return _BREAKS.sub(" ", text)


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int


def tokens(text: str) -> list[Token]:
    """Word tokens with offsets; apostrophes and hyphens inside a word stay in it."""
    return [Token(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def sentence_breaks(text: str) -> list[tuple[int, int]]:
    """Every span where a sentence end matches, by start; they may overlap (a blank line
    in the spaces after a full stop). :func:`sentences` splits at those that do not
    overlap an earlier one. Whether one starts in ``[s, e)``, asked of many spans of one
    text, is this list and a bisect each (``FieldText.sentence_ends_in``)."""
    found: list[tuple[int, int]] = []
    for at in positions(text, _SENTENCE_MARKS):  # a match can begin only at a mark
        m = _SENTENCE_END.match(text, at)
        if m is not None:
            found.append(m.span())
    return found


def positions(text: str, chars: str) -> list[int]:
    """Where any of ``chars`` occurs in ``text``, ascending.

    ``str.find`` per character, a C scan each: for a few kinds of rare characters that is
    a fraction of what a regular expression's character class costs, which the engine
    tests at every position of the text.
    """
    found: list[int] = []
    for ch in chars:
        at = text.find(ch)
        while at != -1:
            found.append(at)
            at = text.find(ch, at + 1)
    found.sort()
    return found


def sentences(text: str, breaks: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """Sentence spans ``[start, end)``; a light splitter good enough for proximity windows.

    ``breaks`` is :func:`sentence_breaks` of ``text`` if the caller has it already.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for at, after in sentence_breaks(text) if breaks is None else breaks:
        if at < start:  # inside the previous break (as _SENTENCE_END.finditer skips it)
            continue
        end = at if text[at] == "\n" else at + 1  # after the mark
        if end > start:
            spans.append((start, end))
        start = after
    if start < len(text):
        spans.append((start, len(text)))
    return spans
