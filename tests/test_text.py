"""Text normalisation: folding rules and offsets that always lead back to the original."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.text import fold, normalize, positions, sentences, tokens
from monitor.types import Mention, tuple_maker


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Kyiv’s", "kyiv's"),
        ("“Oreshnik”", '"oreshnik"'),
        ("Zaporizhzhia—Kherson", "zaporizhzhia-kherson"),
        ("ﬁrst", "first"),
        ("Straße", "strasse"),
        ("ЁЛКА", "елка"),
        ("Дніпропетровська", "дніпропетровська"),
        ("soft\u00adhyphen", "softhyphen"),
        ("wait…", "wait..."),
        ("`quoted`", "'quoted'"),
        ("ＦＵＬＬＷＩＤＴＨ", "fullwidth"),
    ],
)
def test_fold(raw: str, folded: str) -> None:
    """Folding applies NFKC, case-folding and the quote/dash/ё unification."""
    assert fold(raw) == folded


# Characters whose folds interact: capitals, ё, quotes and dashes, expansions (ß, ﬁ), a
# soft hyphen that vanishes, fullwidth and compatibility forms, combining marks.
_FOLDING = "aZ `'\"-.,ЁёАБВГҐЄІЇабвгґєії“”‘’«»–—\u00adßẞﬁİıǅÉéŒœ①²ⅣＡ\u212a\u2126\u0301ΣσςΑα"


@given(st.text(max_size=80) | st.text(alphabet=_FOLDING, max_size=80))
def test_a_text_folds_as_its_characters_one_by_one(raw: str) -> None:
    """Folding a whole text (distinct characters replaced at once, ASCII lowered at once)
    gives what folding each of its characters on its own gives."""
    text = unicodedata.normalize("NFC", raw)
    assert normalize(raw).text == "".join(fold(ch) for ch in text)


def test_ascii_text_needs_no_offset_table() -> None:
    """Plain ASCII maps every character to itself without building a table."""
    n = normalize("Russian Forces Advance")
    assert n.origin is None
    assert n.quote(8, 14) == "Forces"


@pytest.mark.parametrize(
    ("raw", "needle", "quoted"),
    [
        ("The ﬁrst Oreshnik strike", "oreshnik", "Oreshnik"),
        ("Wait… Kyiv’s reply", "kyiv's", "Kyiv’s"),
        ("Straße nach Київ", "київ", "Київ"),
    ],
)
def test_spans_map_back_to_the_original(raw: str, needle: str, quoted: str) -> None:
    """A hit found in the folded text quotes the original spelling."""
    n = normalize(raw)
    start = n.text.index(needle)
    assert n.quote(start, start + len(needle)) == quoted


@given(st.text(max_size=80))
def test_offsets_are_monotonic_and_cover_the_original(raw: str) -> None:
    """For any text, each folded character traces to a source character, in order."""
    n = normalize(raw)
    assert n.original == unicodedata.normalize("NFC", raw)
    if n.origin is None:
        assert len(n.text) == len(n.original)
        assert n.quote(0, len(n.text)) == n.original
    else:
        assert len(n.origin) == len(n.text)
        assert list(n.origin) == sorted(n.origin)
        assert all(0 <= i < len(n.original) for i in n.origin)


def test_tokens_keep_inner_apostrophes_and_hyphens() -> None:
    """Tokens keep "kyiv's" and "kyiv-based" whole, with offsets."""
    text = fold("Kyiv’s Kyiv-based forces")
    assert [(t.text, t.start) for t in tokens(text)] == [
        ("kyiv's", 0),
        ("kyiv-based", 7),
        ("forces", 18),
    ]


def test_sentences_split_on_capitals_and_map_to_folded_text() -> None:
    """Sentences split where a capital follows the stop; spans are usable on folded text."""
    raw = "Drones hit Kharkiv. Officials said 3 died! Талкс stalled."
    assert [raw[a:b] for a, b in sentences(raw)] == [
        "Drones hit Kharkiv.",
        "Officials said 3 died!",
        "Талкс stalled.",
    ]
    n = normalize(raw)
    assert [n.text[a:b] for a, b in n.sentences()][1] == "officials said 3 died!"


@given(st.text(alphabet="ab -.!?…\n", max_size=60))
def test_positions_lists_every_occurrence_in_order(text: str) -> None:
    """``positions`` finds each occurrence of each character, ascending."""
    assert positions(text, ".!?…\n-") == [i for i, ch in enumerate(text) if ch in ".!?…\n-"]


def test_tuple_maker_makes_what_the_class_makes_and_refuses_other_fields() -> None:
    """The hot loops' NamedTuple maker builds equal tuples, and refuses a field list that
    is not the class's (a field added later would otherwise go missing)."""
    make = tuple_maker(Mention, ("key", "at", "in_context"))
    when = datetime(2025, 6, 8, tzinfo=UTC)
    made = make(("place:UA", when, True))
    assert made == Mention("place:UA", when, True) and made.in_context is True
    assert type(made) is Mention
    with pytest.raises(TypeError, match="fields"):
        tuple_maker(Mention, ("key", "at"))
