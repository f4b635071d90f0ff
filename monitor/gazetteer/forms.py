"""Surface forms of place names: Russian/Ukrainian case endings and GOST romanisation.

Used by the build only (``monitor.gazetteer.build``); matching never inflects at run
time. The rules over-generate on purpose: a form no one writes costs one automaton
entry, a form someone writes and we lack costs a missed alert. Every function is pure.
"""

from __future__ import annotations

import re

_RU_UK = re.compile(r"^[а-яёіїєґ'ʼ\- ]+$")
_SIBILANT_OR_VELAR = "гкхжшчщ"
# Ukrainian dative/locative of -а nouns palatalise the velar: Прага → Празі.
_UK_PALATAL = {"г": "з", "к": "ц", "х": "с"}


def is_cyrillic_word(name: str) -> bool:
    """True for a lower-case Russian/Ukrainian spelling we know how to inflect."""
    return bool(_RU_UK.match(name))


def _uk_alternation(stem: str) -> str | None:
    """Харків → Харков-, Київ → Києв-, Бориспіль → Борисполь-: the closed-syllable і/ї."""
    m = re.match(r"^(.*?)(і)([вгл]ь?)$", stem) or re.match(r"^(.*?)(ї)(в)$", stem)
    if not m or len(m.group(1)) < 2:
        return None
    head, vowel, tail = m.groups()
    if vowel == "ї":
        return head + "є" + tail
    return head + ("е" if head[-1] in "чшщж" else "о") + tail


def noun_forms(name: str) -> set[str]:
    """Oblique cases of a one-word (or hyphenated) place noun, Russian and Ukrainian."""
    if " " in name or not is_cyrillic_word(name) or len(name) < 4:
        return set()
    out: set[str] = set()
    last = name[-1]
    if name.endswith(("ия", "ія")):
        base = name[:-2]
        out |= {base + e for e in ("ии", "ию", "ией", "ії", "ію", "ією")}
    elif name.endswith(("ье", "ья")):
        base = name[:-1]
        out |= {base + e for e in ("я", "ю", "ем", "е", "ї")}
    elif last == "я":
        base = name[:-1]
        out |= {base + e for e in ("і", "ю", "ям", "и", "ей", "ею", "е")}
    elif last == "а":
        base = name[:-1]
        soft = base[-1] in _SIBILANT_OR_VELAR
        out |= {base + ("и" if soft else "ы"), base + "е", base + "у", base + "ой"}
        out |= {base + "и", base + "у", base + "ою"}
        out.add(base[:-1] + _UK_PALATAL.get(base[-1], base[-1]) + "і")
    elif last in "ое":
        base = name[:-1]
        out |= {base + e for e in ("а", "у", "ом", "і", "е")}
    elif last in "ыи":
        base = name[:-1]
        out |= {base + e for e in ("ах", "ам", "ами")}
    elif last in "ьй":
        base = name[:-1]
        alt = _uk_alternation(name)
        for b in {base, alt[:-1] if alt and alt.endswith("ь") else alt or base}:
            out |= {b + e for e in ("я", "ю", "ем", "е", "і", "и", "ью")}
    else:
        stems = {name}
        alt = _uk_alternation(name)
        if alt:
            stems = {alt}  # a Ukrainian name: Харків → Харкова, never *Харківа
        for b in stems:
            out |= {b + e for e in ("а", "у", "ом", "е", "і", "ові", "ем")}
    out.discard(name)
    return out


# Adjective endings: feminine (Russian -ая, Ukrainian -а) and masculine (-ий/-ый).
_ADJ_FEM_RU = ("ая", "ой", "ую", "ою")
_ADJ_FEM_UK = ("а", "ої", "ій", "у", "ою")
_ADJ_MASC = ("ий", "ый", "ого", "ому", "им", "ым", "ом", "ім")
_NOUN_FORMS = {
    "область": ("область", "области", "областью", "області", "областю", "обл"),
    "край": ("край", "края", "краю", "краем", "крае", "краї", "краєм"),
    "республика": ("республика", "республики", "республике", "республику", "республикой"),
    "республіка": ("республіка", "республіки", "республіці", "республіку", "республікою"),
}


def adjective_forms(adj: str) -> set[str]:
    """All case forms of a feminine or masculine adjective (Курская, Курська, Краснодарский)."""
    if adj.endswith("ая"):
        return {adj[:-2] + e for e in _ADJ_FEM_RU}
    if adj.endswith(("ий", "ый")):
        return {adj[:-2] + e for e in _ADJ_MASC}
    if adj.endswith("а"):
        return {adj[:-1] + e for e in _ADJ_FEM_UK}
    return {adj}


def region_phrase_forms(phrase: str) -> set[str]:
    """Forms of "<adjective> область" / "<adjective> край" / "республика <name>".

    Gives every adjective form with every noun form (and the plural "областях" so
    "Курской и Белгородской областях" finds both), plus the bare adjective forms.
    """
    words = phrase.split(" ")
    if len(words) == 2 and words[1] in _NOUN_FORMS:
        adjs = adjective_forms(words[0])
        nouns = (*_NOUN_FORMS[words[1]], "областях", "областей", "областям")
        if words[1] != "область":
            nouns = _NOUN_FORMS[words[1]]
        return adjs | {f"{a} {n}" for a in adjs for n in nouns}
    if len(words) == 2 and words[0] in _NOUN_FORMS:
        nouns = _NOUN_FORMS[words[0]]
        return {f"{n} {words[1]}" for n in nouns} | {words[1]} | noun_forms(words[1])
    if len(words) == 2 and words[1] in ("республика", "республіка"):
        adjs = adjective_forms(words[0])
        return {f"{a} {n}" for a in adjs for n in _NOUN_FORMS[words[1]]}
    return {phrase}


# GOST-style romanisation used by pycountry for Russia ("Kurskaya oblast'"), reversed.
_ROMAN = [
    ("shch", "щ"), ("kh", "х"), ("ts", "ц"), ("ch", "ч"), ("sh", "ш"), ("zh", "ж"),
    ("yu", "ю"), ("ya", "я"), ("ye", "е"), ("yo", "ё"), ("'", "ь"), ("a", "а"), ("b", "б"),
    ("v", "в"), ("g", "г"), ("d", "д"), ("e", "е"), ("z", "з"), ("i", "и"), ("k", "к"),
    ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("r", "р"), ("s", "с"),
    ("t", "т"), ("u", "у"), ("f", "ф"), ("h", "х"), ("c", "ц"), ("-", "-"), (" ", " "),
]  # fmt: skip
_VOWELS = "aeiouy"


def cyrillic_from_gost(roman: str) -> str:
    """ "Kurskaya oblast'" → "курская область"; "Altayskiy kray" → "алтайский край"."""
    s = roman.lower()
    out: list[str] = []
    i = 0
    while i < len(s):
        if s[i] == "y" and not s.startswith(("yu", "ya", "ye", "yo"), i):
            # -iy/-yy/-ay/-oy/-ey: й after a vowel, else ы.
            prev = s[i - 1] if i else ""
            out.append("й" if prev in _VOWELS else "ы")
            i += 1
            continue
        for latin, cyr in _ROMAN:
            if s.startswith(latin, i):
                out.append(cyr)
                i += len(latin)
                break
        else:
            out.append(s[i])
            i += 1
    text = "".join(out).replace("ыы", "ый").replace("иы", "ий")
    return text.replace("ьа", "ья")
