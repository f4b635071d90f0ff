"""parse_feed, canonical_url and html_to_text: golden feeds, tables and hostile bodies."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from monitor.exceptions import ParseError
from monitor.html import fold_whitespace, html_to_text, truncate
from monitor.parse import SUMMARY_LIMIT, ParsedFeed, detect_language, parse_feed
from monitor.urls import canonical_url

FEEDS = Path(__file__).parent / "data" / "feeds"
NOW = datetime(2025, 6, 9, 12, 0, tzinfo=UTC)
RSS = {"content-type": "application/rss+xml; charset=utf-8"}
CASES = sorted(p for p in FEEDS.iterdir() if p.suffix in (".xml", ".json"))


def parse(body: bytes, headers: dict[str, str] | None = None, **kwargs: Any) -> ParsedFeed:
    options: dict[str, Any] = {"feed_id": "f1", "url": "https://example.com/feed.xml", "now": NOW}
    options.update(kwargs)
    return parse_feed(body, RSS if headers is None else headers, **options)


def rss(*items: str, channel: str = "<language>en</language>") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"{channel}{''.join(items)}</channel></rss>"
    ).encode()


# --- golden feeds ------------------------------------------------------------------


def _normalised(feed: ParsedFeed) -> dict[str, Any]:
    return {
        "feed": {"title": feed.title, "language": feed.language, "warning": feed.warning},
        "items": [
            {
                "id": i.id,
                "guid": i.guid,
                "url": i.url,
                "title": i.title,
                "summary": i.summary,
                "published": i.published.isoformat(),
                "published_missing": i.published_missing,
                "language": i.language,
            }
            for i in feed.items
        ],
    }


def test_every_golden_feed_has_an_expectation() -> None:
    """Each feed file under tests/data/feeds has its .expected.yaml, and the other way round."""
    feeds = {p.stem for p in CASES}
    expected = {p.name.removesuffix(".expected.yaml") for p in FEEDS.glob("*.expected.yaml")}
    assert feeds == expected
    assert len(CASES) >= 15


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_golden_feed(path: Path) -> None:
    """The feed parses to exactly the normalised items recorded next to it."""
    expected = YAML(typ="safe", pure=True).load(path.with_suffix(".expected.yaml"))
    feed = parse_feed(
        path.read_bytes(), expected["headers"], feed_id="golden", url=expected["url"], now=NOW
    )
    assert _normalised(feed) == {"feed": expected["feed"], "items": expected["items"]}
    for item in feed.items:
        assert item.feed_id == "golden"
        assert item.published.tzinfo is UTC


# --- identity ----------------------------------------------------------------------


ITEM = (
    "<item><title>Strike on Dnipro</title><guid isPermaLink='false'>g-1</guid>"
    "<link>https://example.com/a?utm_source=rss</link><description>Two injured.</description>"
    "</item>"
)


def test_ids_are_stable_across_polls_and_scoped_by_feed_for_guids() -> None:
    """The same guid gives the same id on every poll, and a different id in another feed."""
    first = parse(rss(ITEM)).items[0]
    again = parse(rss(ITEM), now=NOW + timedelta(hours=3)).items[0]
    other_feed = parse(rss(ITEM), feed_id="f2").items[0]
    assert first.id == again.id
    assert first.id != other_feed.id
    assert len(first.id) == 32
    assert int(first.id, 16) >= 0


def test_link_ids_are_shared_across_feeds_and_ignore_tracking() -> None:
    """Without a guid, two feeds linking the same story (tracking aside) give one id."""
    a = rss("<item><title>A</title><link>https://example.com/s?utm_source=a</link></item>")
    b = rss("<item><title>B</title><link>https://EXAMPLE.com/s#top</link></item>")
    assert parse(a).items[0].id == parse(b, feed_id="f2").items[0].id


def test_edit_changes_content_hash_not_id() -> None:
    """An edited summary keeps the item's id but changes its content hash."""
    edited = ITEM.replace("Two injured.", "Three injured.")
    before, after = parse(rss(ITEM)).items[0], parse(rss(edited)).items[0]
    assert before.id == after.id
    assert before.content_hash != after.content_hash
    assert len(before.content_hash) == 40


def test_tags_and_config_language_are_applied() -> None:
    """Config tags are copied to every item and the config language beats the feed's."""
    feed = parse(rss(ITEM), tags=("ua", "osint"), language="uk-UA")
    assert feed.items[0].tags == ("ua", "osint")
    assert feed.items[0].language == "uk"
    assert feed.language == "en"


@pytest.mark.parametrize(
    ("declared", "expected"),
    [("en-US", "en"), ("EN_gb", "en"), ("uk-UA", "uk"), ("ua", "uk"), ("ru", "ru"), ("x", None)],
)
def test_declared_language_is_normalised_to_the_primary_subtag(
    declared: str, expected: str | None
) -> None:
    """<language> becomes a lower-case primary subtag; the country code 'ua' means Ukrainian."""
    item = "<item><title>Kyiv</title><guid>k</guid></item>"
    feed = parse(rss(item, channel=f"<language>{declared}</language>"))
    assert feed.language == expected
    assert feed.items[0].language == expected  # 'Kyiv' alone is too short to detect


def test_language_detection_needs_enough_letters() -> None:
    """Detection answers for a sentence and abstains for a word or digits."""
    assert detect_language("Російські війська зайшли на Дніпропетровщину") == "uk"
    assert detect_language("Kyiv") is None
    assert detect_language("2025-06-08 12:00 479 / 20 ...") is None


def test_naive_now_is_taken_as_utc() -> None:
    """A naive ``now`` stands for UTC, so missing dates are still tz-aware."""
    item = parse(rss(ITEM), now=datetime(2025, 6, 9, 12, 0)).items[0]
    assert item.published == NOW
    assert item.published_missing


def test_long_summary_is_cut_on_a_word_boundary() -> None:
    """A huge description is capped near SUMMARY_LIMIT at a space, with an ellipsis."""
    words = " ".join(f"word{i}" for i in range(5_000))
    item = parse(rss(f"<item><guid>g</guid><description>{words}</description></item>")).items[0]
    assert len(item.summary) <= SUMMARY_LIMIT
    assert item.summary.endswith("…")
    assert item.summary[:-1] == words[: len(item.summary) - 1]
    assert words[len(item.summary) - 1] == " "


def test_valid_feed_without_entries_is_empty_not_an_error() -> None:
    """A well-formed feed with no items parses to no items and no warning."""
    feed = parse(rss())
    assert feed == ParsedFeed(title="T", language="en", items=(), warning=None)


def test_feedparser_is_never_given_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """A body that is a URL is treated as bytes: no socket is opened, and it is not a feed."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("parse_feed opened a socket")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(ParseError, match="not a feed"):
        parse(b"http://127.0.0.1:9/feed.xml")


def test_json_feed_by_body_without_content_type() -> None:
    """A JSON Feed is recognised by its body even when served as text/plain."""
    body = b'{"version": "https://jsonfeed.org/version/1", "items": [{"id": "1", "title": "x"}]}'
    feed = parse(body, {"content-type": "text/plain"})
    assert [i.guid for i in feed.items] == ["1"]


# --- errors ------------------------------------------------------------------------

HTML_PAGE = b"<!DOCTYPE html><html><head><title>Oops</title></head><body><p>Hi</p></body></html>"


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"", RSS, "empty response body"),
        (b"  \r\n\t ", RSS, "empty response body"),
        (HTML_PAGE, {"content-type": "text/html; charset=utf-8"}, "an HTML page (text/html)"),
        (HTML_PAGE, RSS, "an HTML page (application/rss+xml)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", RSS, "not a feed: malformed XML"),
        (b"<rss version='2.0'><channel><title>x</ti", RSS, "not a feed: malformed XML"),
        (b"<?xml version='1.0'?><catalog><book/></catalog>", RSS, "not RSS, Atom, RDF"),
        (b"{not json", {"content-type": "application/feed+json"}, "invalid JSON"),
        (b'{"version": 1, "items": []}', {}, "without a jsonfeed.org version"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', {}, "without an 'items' list"),
        (b"[" * 100_000, {}, "not a feed"),
    ],
    ids=[
        "empty",
        "whitespace",
        "html-page",
        "html-page-as-rss",
        "binary",
        "truncated-xml",
        "xml-not-a-feed",
        "bad-json",
        "json-not-jsonfeed",
        "jsonfeed-no-items",
        "deep-brackets",
    ],
)
def test_unreadable_bodies_raise_parse_error(
    body: bytes, headers: dict[str, str], message: str
) -> None:
    """Bodies with no entries raise ParseError naming the feed URL and what came instead."""
    with pytest.raises(ParseError, match=r"not a feed|empty") as info:
        parse(body, headers)
    assert message in str(info.value)
    assert info.value.feed_url == "https://example.com/feed.xml"


def test_deeply_nested_json_is_a_parse_error() -> None:
    """JSON nested past the recursion limit is reported, not crashed on."""
    with pytest.raises(ParseError, match="invalid JSON"):
        parse(b"{" + b'"a":[' * 100_000, {"content-type": "application/feed+json"})


def test_invalid_utf8_declared_as_utf8_is_recovered_as_windows_1252() -> None:
    """feedparser re-decodes bytes that are not UTF-8 as windows-1252 and keeps the entries;
    the text is mojibake but the item survives, with a warning naming the override."""
    body = rss("<item><guid>g</guid><title>CafX</title></item>").replace(b"CafX", b"Caf\xe9")
    feed = parse(body)
    assert feed.items[0].title == "Café"
    assert feed.warning is not None
    assert "CharacterEncodingOverride" in feed.warning


@pytest.mark.parametrize(
    ("charset", "title"),
    [
        ("utf-8", "Российские войска вошли в Днепропетровскую область"),  # XML decl wins
        ("no-such-charset", "Российские войска вошли в Днепропетровскую область"),
        # A single-byte charset decodes anything: silent mojibake, no warning possible.
        ("koi8-r", "пНЯЯХИЯЙХЕ БНИЯЙЮ БНЬКХ Б дМЕОПНОЕРПНБЯЙСЧ НАКЮЯРЭ"),
    ],
)
def test_wrong_declared_charset_never_raises(charset: str, title: str) -> None:
    """A wrong Content-Type charset yields items (decoded as well as feedparser can)."""
    body = (FEEDS / "windows1251_ru.xml").read_bytes()
    feed = parse(body, {"content-type": f"application/rss+xml; charset={charset}"})
    assert feed.items[0].title == title


# --- canonical_url -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM", "http://example.com/"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com/a#frag", "https://example.com/a"),
        ("https://example.com/#!/story/1", "https://example.com/#!/story/1"),
        ("https://example.com/a?", "https://example.com/a"),
        ("https://example.com/a?utm_source=x&utm_medium=y", "https://example.com/a"),
        ("https://example.com/a?z=1&utm_source=x&a=2", "https://example.com/a?z=1&a=2"),
        ("https://example.com/a?UTM_Source=x&id=1", "https://example.com/a?id=1"),
        (
            "https://example.com/a?fbclid=1&gclid=2&msclkid=3&yclid=4&dclid=5",
            "https://example.com/a",
        ),
        (
            "https://example.com/a?mc_cid=1&mc_eid=2&igshid=3&_ga=4&ref_src=5",
            "https://example.com/a",
        ),
        ("https://example.com/a?cmpid=1&ocid=2&at_medium=3&at_campaign=4", "https://example.com/a"),
        ("https://example.com/a?taid=1&ito=2&rss=1&id=7", "https://example.com/a?id=7"),
        ("https://example.com/a?pk_campaign=1&mtm_source=2&p=3", "https://example.com/a?p=3"),
        ("https://example.com/a?q=a+b&flag&x=", "https://example.com/a?q=a+b&flag&x="),
        ("https://example.com/%7euser/%41", "https://example.com/~user/A"),
        ("https://example.com/a%2fb?q=%e2%82%ac", "https://example.com/a%2Fb?q=%E2%82%AC"),
        ("https://example.com/caf\u00e9 bar", "https://example.com/caf%C3%A9%20bar"),
        ("https://user:Pass@Example.com/", "https://user:Pass@example.com/"),
        ("http://[::1]:80/x", "http://[::1]/x"),
        ("https://example.com./a", "https://example.com/a"),
        ("  https://example.com/a \n", "https://example.com/a"),
        ("mailto:Desk@Example.com", "mailto:Desk@Example.com"),
        ("http://[bad/x", "http://[bad/x"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    """Scheme and host lower-cased, default ports, fragments and tracking dropped, order kept."""
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("/news/1?utm_source=x", "https://example.com/feed.xml", "https://example.com/news/1"),
        ("../b", "https://example.com/feeds/rss.xml", "https://example.com/b"),
        ("//cdn.example.com/x", "https://example.com/", "https://cdn.example.com/x"),
        ("https://other.org/x", "https://example.com/", "https://other.org/x"),
    ],
)
def test_canonical_url_resolves_relative_links(url: str, base: str, expected: str) -> None:
    """A relative link resolves against the feed URL before canonicalisation."""
    assert canonical_url(url, base) == expected


def test_canonical_url_is_idempotent() -> None:
    """Canonicalising a canonical URL changes nothing."""
    url = "HTTPS://Ex.com:443/%7ea/caf\u00e9?b=1&utm_x=2&a=%2f#f"
    once = canonical_url(url)
    assert canonical_url(once) == once


# --- html_to_text ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("plain text", "plain text"),
        ("  many \n\t spaces\u00a0here  ", "many spaces here"),
        ("<p>One</p><p>Two</p>", "One Two"),
        ("Line<br>break<br/>s", "Line break s"),
        ("Ky<b>iv</b>", "Kyiv"),
        ("<ul><li>a</li><li>b</li></ul>", "a b"),
        ("a <script>var x = '<p>no</p>';</script> b", "a b"),
        ("a <STYLE type='text/css'>p{}</STYLE> b", "a b"),
        ("a <!-- hidden <b>x</b> --> b", "a b"),
        ("a <!-- never closed", "a"),
        ("a <script>unclosed", "a"),
        ('<a href="x" title="a > b">link</a>', "link"),
        ("AT&amp;T &mdash; &#8220;quoted&#8221; &#x41;", "AT&T — “quoted” A"),
        ("Fish &amp; chips &unknown; & more", "Fish & chips &unknown; & more"),
        ("&lt;p&gt;escaped twice&lt;/p&gt;", "escaped twice"),
        ("5 &lt; 7 and 8 &gt; 3", "5 < 7 and 8 > 3"),
        ("<![CDATA[inside]]> after", "inside after"),
        ("<?xml version='1.0'?><!DOCTYPE html><p>x</p>", "x"),
        ("text then a cut-off <a href='http://x", "text then a cut-off"),
        ("zero\u200bwidth\x00control\x07chars", "zero width control chars"),
        ("<img src='x.jpg' alt='photo'>Caption", "Caption"),
        ("", ""),
    ],
)
def test_html_to_text(fragment: str, expected: str) -> None:
    """Markup goes, text stays, entities are decoded, whitespace folds to single spaces."""
    assert html_to_text(fragment) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one two", "one two"),
        (" one two ", "one two"),
        ("  one   two  ", "one two"),
        ("one\ttwo\r\nthree", "one two three"),
        ("one\u00a0\u2028two\u3000", "one two"),
        ("one\x00two\u200b three\x1f", "one two three"),
        ("Київ  сьогодні", "Київ сьогодні"),
        ("   ", ""),
        ("", ""),
    ],
)
def test_fold_whitespace(text: str, expected: str) -> None:
    """Any run of whitespace or control characters is one space; the ends are trimmed."""
    assert fold_whitespace(text) == expected


def test_html_to_text_limit_and_truncate() -> None:
    """A limit cuts on a word boundary and marks the cut; short text is untouched."""
    assert html_to_text("<p>" + "word " * 100 + "</p>", limit=52) == "word " * 9 + "word…"
    assert truncate("short", 10) == "short"
    assert len(truncate("x" * 50, 10)) == 10
