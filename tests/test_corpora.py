"""Robustness: parse_feed over the feedparser and W3C Feed Validator test corpora.

About 4,300 odd, broken and hostile-looking feeds written by others. The only
exception parse_feed may raise is ParseError, and every Item it returns must be
well-formed. The corpora live outside the repository (``/work/shared/corpora``
next to the checkout); without them these tests skip. The whole run takes a few
seconds, so every file is used, no sampling.

Files of feedparser's suite that name HTTP headers in their comment
(``Header: Content-type: text/plain``) are parsed with those headers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.exceptions import ParseError
from monitor.parse import SUMMARY_LIMIT, TITLE_LIMIT, parse_feed
from monitor.types import Item
from monitor.urls import canonical_url

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
DIRS = ("feedparser-tests/tests", "feedvalidator-testcases/testcases")
NOW = datetime(2025, 6, 9, 12, 0, tzinfo=UTC)

_HEADER = re.compile(rb"^Header:\s*([A-Za-z-]+):\s*(.*?)\s*$", re.MULTILINE)
# Tags a reader would recognise as markup left behind. Literal text such as
# "the <blink> tag" or "Nice <gorilla>" in a plain-text title is legitimate.
_LEFTOVER_TAG = re.compile(
    r"</?(?:p|div|br|a|b|i|em|strong|span|img|script|style|li|ul|ol|table|td|tr|h[1-6])\b[^<>]*>"
    r"|<!--|<!\[CDATA\[",
    re.IGNORECASE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEX = re.compile(r"[0-9a-f]+")
_LANGUAGE = re.compile(r"[a-z]{2,3}")


def _corpus_files() -> list[Path]:
    return sorted(
        path
        for directory in DIRS
        if (CORPORA / directory).is_dir()
        for path in (CORPORA / directory).rglob("*")
        if path.is_file()
    )


FILES = _corpus_files()
PARAMS = [pytest.param(p, id=str(p.relative_to(CORPORA))) for p in FILES] or [
    pytest.param(None, marks=pytest.mark.skip(reason=f"feed corpora not found under {CORPORA}"))
]


def _headers(body: bytes) -> dict[str, str]:
    found = _HEADER.findall(body[:4096])
    return {name.decode().lower(): value.decode("latin-1") for name, value in found}


def _check_item(item: Item) -> None:
    assert isinstance(item, Item)
    assert item.feed_id == "corpus"
    assert len(item.id) == 32
    assert _HEX.fullmatch(item.id)
    assert _HEX.fullmatch(item.content_hash)
    assert item.published.tzinfo is UTC
    assert item.published <= NOW + timedelta(days=1)
    if item.published_missing:
        assert item.published == NOW
    assert isinstance(item.title, str)
    assert isinstance(item.summary, str)
    assert len(item.title) <= TITLE_LIMIT
    assert len(item.summary) <= SUMMARY_LIMIT
    for text in (item.title, item.summary):
        assert text == text.strip()
        assert "  " not in text
        assert not _CONTROL.search(text), text
        assert not _LEFTOVER_TAG.search(text), text
    assert item.guid is None or (item.guid and item.guid == item.guid.strip())
    if item.url is not None:
        assert item.url.startswith(("http://", "https://"))
        assert canonical_url(item.url) == item.url
    assert item.language is None or _LANGUAGE.fullmatch(item.language)
    assert item.tags == ("corpus",)


@pytest.mark.parametrize("path", PARAMS)
def test_corpus_file_parses_or_raises_parse_error(path: Path) -> None:
    """Any corpus file yields well-formed Items or a ParseError, never another exception."""
    body = path.read_bytes()
    try:
        feed = parse_feed(
            body,
            _headers(body),
            feed_id="corpus",
            url="http://corpus.example.com/feed",
            now=NOW,
            tags=("corpus",),
        )
    except ParseError as exc:
        assert str(exc).startswith(("not a feed", "empty response body"))
        assert "\n" not in str(exc)
        return
    assert isinstance(feed.title, str)
    assert feed.warning is None or "\n" not in feed.warning
    for item in feed.items:
        _check_item(item)
