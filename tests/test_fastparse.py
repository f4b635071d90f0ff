"""The feedparser-rs fast path: identical Items to feedparser's wherever it accepts a feed.

A changed item id would re-alert a story, so parity is checked on every golden
feed and every file of the feedparser and Feed Validator corpora (the same
files, located the same way, as tests/test_corpora.py; they skip without the
corpora). The fast path must also decline what it cannot match, and decline
hostile input rather than fail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import monitor.parse
from monitor.exceptions import ParseError
from monitor.fastparse import parse_fast
from monitor.parse import ParsedFeed, parse_feed
from tests.test_corpora import PARAMS, _headers

FEEDS = Path(__file__).parent / "data" / "feeds"
NOW = datetime(2025, 6, 9, 12, 0, tzinfo=UTC)
XML = {"content-type": "application/rss+xml; charset=utf-8"}


def _parse(body: bytes, headers: dict[str, str]) -> ParsedFeed | str:
    try:
        return parse_feed(
            body, headers, feed_id="f", url="http://corpus.example.com/feed", now=NOW, tags=("t",)
        )
    except ParseError as e:
        return str(e)


def _assert_parity(body: bytes, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> bool:
    """Parse with and without the fast path; True if the fast path took the feed."""
    if parse_fast(body, {k.lower(): v for k, v in headers.items()}) is None:
        return False
    fast = _parse(body, headers)
    with monkeypatch.context() as m:
        m.setattr(monitor.parse, "parse_fast", lambda body, headers: None)
        reference = _parse(body, headers)
    assert fast == reference
    return True


def rss(items: str, *, head: str = "", ns: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"{ns}><channel>'
        f"<title>Wire</title><link>https://wire.example/</link><language>en</language>{head}"
        f"{items}</channel></rss>"
    ).encode()


ITEM = (
    "<item><title>Drone strike on Kharkiv</title><link>https://wire.example/1?utm_source=rss</link>"
    "<description>&lt;p&gt;Air defence &lt;b&gt;intercepted&lt;/b&gt; 12 drones.&lt;/p&gt;"
    "</description>"
    '<guid isPermaLink="false">w-1</guid><pubDate>Sun, 08 Jun 2025 06:05:00 GMT</pubDate></item>'
)


@pytest.mark.parametrize("path", sorted(FEEDS.glob("*.xml")), ids=lambda p: p.name)
def test_golden_feeds_parse_identically(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _assert_parity(path.read_bytes(), {}, monkeypatch)


def test_typical_feeds_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain RSS 2.0 in UTF-8, with the usual modules, is what the fast path is for."""
    modules = (
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:media="http://search.yahoo.com/mrss/"'
        ' xmlns:atom="http://www.w3.org/2005/Atom"'
    )
    rich = ITEM.replace(
        "</item>",
        "<dc:creator>Desk</dc:creator><category>War</category>"
        '<media:content url="https://wire.example/1.jpg" medium="image"/>'
        "<content:encoded><![CDATA[<p>Full <em>text</em> &amp; more</p>]]></content:encoded>"
        "</item>",
    )
    self_link = '<atom:link rel="self" href="https://wire.example/rss"/>'
    golden = [
        "rss20.xml",
        "cdata.xml",
        "html_markup.xml",
        "tracking_params.xml",
        "ukrainian_uk.xml",
    ]
    bodies = [rss(ITEM), rss(rich + ITEM.replace("w-1", "w-2"), head=self_link, ns=modules)]
    bodies += [(FEEDS / name).read_bytes() for name in golden]
    for body in bodies:
        assert _assert_parity(body, XML, monkeypatch), body[:300]
        assert _assert_parity(body, {}, monkeypatch)


@pytest.mark.parametrize("path", PARAMS)
def test_corpus_files_parse_identically(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wherever the fast path accepts a corpus file, its Items equal feedparser's."""
    body = path.read_bytes()
    _assert_parity(body, _headers(body), monkeypatch)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(rss(ITEM), {"content-type": "text/html"}, id="html-content-type"),
        pytest.param(rss(ITEM), {"content-type": "text/xml; charset=koi8-r"}, id="other-charset"),
        pytest.param(rss(ITEM), {"content-length": "10"}, id="no-content-type"),
        pytest.param(rss(ITEM), {**XML, "content-language": "uk"}, id="content-language"),
        pytest.param(rss(ITEM).replace(b"UTF-8", b"windows-1251"), {}, id="declared-encoding"),
        pytest.param(rss(ITEM).replace(b"Kharkiv", b"Kh\xe2rkiv"), {}, id="not-utf-8"),
        pytest.param(rss(ITEM).replace(b"Kharkiv", "Kh\x92rkiv".encode()), {}, id="c1-control"),
        pytest.param(
            rss(ITEM.replace("</item>", "<title>Again</title></item>")), {}, id="two-titles"
        ),
        pytest.param(rss(ITEM.replace("<item>", '<item xml:base="http://x/">')), {}, id="xml-base"),
        pytest.param(rss(ITEM.replace("<title>", '<title xml:lang="uk">')), {}, id="xml-lang"),
        pytest.param(rss(ITEM.replace("<title>", '<title type="html">')), {}, id="typed-rss-title"),
        pytest.param(rss(ITEM.replace("GMT", "Moscow")), {}, id="odd-date"),
        # feedparser reads year 0025 as 25; email.utils as 2025
        pytest.param(rss(ITEM.replace("2025", "0025")), {}, id="year-below-100"),
        pytest.param(
            rss(ITEM.replace("</item>", "<dc:date>2025-06-08T06:05:00Z</dc:date></item>")),
            {},
            id="two-dates",
        ),
        pytest.param(
            rss(ITEM, ns=' xmlns:x="http://example.com/x"').replace(b"</item>", b"<x:y/></item>"),
            {},
            id="unknown-namespace",
        ),
        pytest.param(
            rss(ITEM.replace("</item>", "<source url='http://x/'>Other</source></item>")),
            {},
            id="unknown-element",
        ),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
            + rss(ITEM.replace("Kharkiv", "&b;")).partition(b"?>")[2],
            {},
            id="entities",
        ),
        pytest.param(
            rss(ITEM.replace("<title>Drone", "<titles>Drone")), {}, id="end-tag-of-another-name"
        ),
        pytest.param(
            rss(
                ITEM.replace("</item>", '<enclosure url="https://wire.example/a.mp3">x</enclosure>')
            ),
            {},
            id="text-in-empty-element",
        ),
        pytest.param(b"http://169.254.169.254/latest/meta-data/", {}, id="url-as-body"),
        pytest.param(b"<rss><channel>" * 5000, {}, id="deep-and-unclosed"),
        pytest.param(b"\x00\xff<rss" * 100, {}, id="garbage"),
        pytest.param(b"<html><body>Not a feed</body></html>", {}, id="html"),
    ],
)
def test_declines_what_it_cannot_match(body: bytes, headers: dict[str, str]) -> None:
    assert parse_fast(body, headers) is None


@pytest.mark.parametrize(
    "date",
    [
        "8 Jun 2025 06:05:00 -0000",
        "Sun, 08 Jun 2025 06:05:00 EST",
        "Sun, 08 Jun 2025 06:05:00 PDT",
        "Sun, 08 Jun 2025 06:05:00 +0530",
        "Sun, 08 Jun 2025 23:59:59 -1130",
        "2025-06-08T06:05:00.75+01:00",
        "2025-06-08T06:05:00Z",
    ],
)
def test_dates_parse_identically(date: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strict RFC 822 and RFC 3339 dates, in any zone both parsers know, give feedparser's time."""
    body = rss(ITEM.replace("Sun, 08 Jun 2025 06:05:00 GMT", date))
    assert _assert_parity(body, {}, monkeypatch)


def test_empty_elements_in_either_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """<enclosure .../> and <enclosure ...> </enclosure> are both empty, and both taken."""
    enclosure = '<enclosure url="https://wire.example/a.mp3" length="1" type="audio/mpeg"'
    for empty in (f"{enclosure}/>", f"{enclosure}> </enclosure>"):
        body = rss(ITEM.replace("</item>", f"{empty}</item>"))
        assert _assert_parity(body, {}, monkeypatch), empty


@pytest.mark.timeout(5)
@pytest.mark.parametrize("unit", [b"<a", b"<?", b"<!--", b"<![CDATA[", b"<rss><x y='"])
def test_hostile_markup_is_declined_in_linear_time(unit: bytes) -> None:
    assert parse_fast(b"<rss>" + unit * 200_000, {}) is None


def test_atom_text_constructs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Atom text and html titles and summaries match; xhtml goes to feedparser."""
    entry = (
        "<entry><id>tag:x,2025:1</id>"
        '<title type="html">5 &amp;lt; 7 &lt;b&gt;bold&lt;/b&gt;</title>'
        '<link href="/a/1"/><updated>2025-06-08T11:00:00+02:00</updated>'
        '<content type="text">History of the &lt;blink&gt; tag</content></entry>'
    )
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de"><title>A &amp; B</title>'
        f"{entry}</feed>"
    ).encode()
    assert _assert_parity(atom, {"content-type": "application/atom+xml"}, monkeypatch)
    xhtml = atom.replace(
        b'<content type="text">History of the &lt;blink&gt; tag</content>',
        b'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">x</div></content>',
    )
    assert parse_fast(xhtml, {}) is None
