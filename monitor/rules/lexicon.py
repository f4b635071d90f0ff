"""Term syntax and English inflection: a rule's term -> the keys the automaton looks for.

Pure and table-driven. A term is a word or a phrase as a rule writes it:

* ``strike`` - a Latin word; with ``inflect`` (the default) it also matches its regular
  forms (-s/-es, -ed, -ing, -er/-ers, with e-dropping, y->i and doubled final consonants)
  and the irregular ones in ``IRREGULAR`` (struck, flew, shot, ...). In a phrase only the
  last word is inflected: ``ballistic missile`` matches "ballistic missiles".
* ``advanc*`` - a prefix: any word starting with ``advanc``. ``*`` is allowed only at the
  end of a term. This is also how Cyrillic case endings are matched: write the stem,
  ``дрон*`` matches дрони, дронів, дронами. Cyrillic terms without ``*`` match exactly.
* Matching is on the normalised text (:func:`monitor.text.fold`: case-folded, quotes and
  dashes unified, ё->е) with every character that is not a letter or digit read as a word
  break, so ``counter-offensive`` and ``counter offensive`` are the same term, and a term
  never matches inside a longer word ("war" does not match "toward").

Generated forms that are not words ("missiled") are harmless: they never occur. Forms that
are words with another meaning are not generated (``NOT_INFLECTIONS``: "striker"); set
``inflect: false`` on a rule to match the exact forms only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.text import break_words, fold

_LATIN_WORD = re.compile(r"^[a-z]+(?:-[a-z]+)*$")
_VOWELS = frozenset("aeiou")
MIN_KEY_CHARS = 3

# base -> forms that the regular rules do not produce (they are added to the regular ones).
IRREGULAR: dict[str, tuple[str, ...]] = {
    "strike": ("struck", "stricken"),
    "fly": ("flew", "flown"),
    "shoot": ("shot",),
    "hit": ("hits", "hitting"),
    "fight": ("fought",),
    "take": ("took", "taken"),
    "win": ("won",),
    "lose": ("lost",),
    "break": ("broke", "broken"),
    "bring": ("brought",),
    "fall": ("fell", "fallen"),
    "hold": ("held",),
    "lead": ("led",),
    "send": ("sent",),
    "blow": ("blew", "blown"),
    "begin": ("began", "begun"),
    "withdraw": ("withdrew", "withdrawn"),
    "overrun": ("overran",),
    "run": ("ran",),
    "drive": ("drove", "driven"),
    "seek": ("sought",),
    "sink": ("sank", "sunk"),
    "shake": ("shook", "shaken"),
    "freeze": ("froze", "frozen"),
    "rise": ("rose", "risen"),
    "go": ("went", "gone"),
    "say": ("said",),
    "threaten": ("threatened",),
    "man": ("men",),
    "woman": ("women",),
    "child": ("children",),
    "casualty": ("casualties",),
}

# Regular forms that are words with a different everyday meaning: never generated.
NOT_INFLECTIONS = frozenset({"striker", "strikers"})


@dataclass(frozen=True, slots=True)
class TermSpec:
    """A parsed term: its normalised words, whether the last one is a prefix, its keys."""

    term: str
    words: tuple[str, ...]
    prefix: bool
    forms: tuple[str, ...]  # normalised phrases (words joined by one space), base form first


class TermSyntaxError(ValueError):
    """A term cannot be used; the message says why and what to write instead."""


def parse_term(term: str, *, inflect: bool = True) -> TermSpec:
    """Parse a rule's term into its normalised forms; raises TermSyntaxError."""
    raw = term.strip()
    prefix = raw.endswith("*")
    body = raw[:-1] if prefix else raw
    if "*" in body:
        raise TermSyntaxError(f"term {term!r}: '*' is allowed only at the end of a term")
    words = tuple(break_words(fold(body)).split())
    if not words:
        raise TermSyntaxError(f"term {term!r} has no letters or digits")
    phrase = " ".join(words)
    if len(phrase) < MIN_KEY_CHARS:
        raise TermSyntaxError(f"term {term!r} is too short; write at least {MIN_KEY_CHARS} letters")
    forms = [phrase]
    if inflect and not prefix:
        head = " ".join(words[:-1])
        for form in inflections(words[-1]):
            full = f"{head} {form}" if head else form
            if full not in forms:
                forms.append(full)
    return TermSpec(term=raw, words=words, prefix=prefix, forms=tuple(forms))


def inflections(word: str) -> list[str]:
    """Regular and irregular English forms of a Latin word; other words only themselves."""
    if len(word) < MIN_KEY_CHARS or not _LATIN_WORD.match(word):
        return [word]
    forms = [word, *_plural(word), *_suffixed(word, "ed"), *_suffixed(word, "ing")]
    agents = _suffixed(word, "er")
    forms += agents + [a + "s" for a in agents]
    forms += IRREGULAR.get(word, ())
    seen: dict[str, None] = {}
    for form in forms:
        if form not in NOT_INFLECTIONS:
            seen.setdefault(form)
    return list(seen)


def _plural(word: str) -> list[str]:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return [word + "es"]
    if word.endswith("y") and word[-2] not in _VOWELS:
        return [word[:-1] + "ies"]
    if word.endswith("o"):
        return [word + "s", word + "es"]
    return [word + "s"]


def _suffixed(word: str, suffix: str) -> list[str]:
    """``word`` + a vowel-initial suffix (-ed, -ing, -er) with English spelling changes."""
    if word.endswith("ie") and suffix == "ing":
        return [word[:-2] + "ying"]
    if word.endswith("e"):
        return [word[:-1] + suffix]
    if word.endswith("y") and word[-2] not in _VOWELS and suffix != "ing":
        return [word[:-1] + "i" + suffix]
    forms = [word + suffix]
    if _ends_cvc(word):
        # "plan" -> "planned"; for "target" the doubled form is simply never seen.
        forms.append(word + word[-1] + suffix)
    return forms


def _ends_cvc(word: str) -> bool:
    a, b, c = word[-3], word[-2], word[-1]
    return a not in _VOWELS and b in _VOWELS and c not in _VOWELS and c not in "wxy"
