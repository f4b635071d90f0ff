"""feedparser-rs as an accelerator for plain, well-formed feeds; feedparser decides the rest.

feedparser is the reference parser; feedparser-rs (Rust) is ten times faster
but differs from it on many odd feeds: other encodings, ``xml:base``,
duplicate elements, lenient dates, media and Dublin Core aliases, XHTML
content. A difference would change an item's id or text, and a changed id
re-alerts a story. So the fast path takes a feed only when all of this holds,
and returns None (parse with feedparser) otherwise::

    headers + body ─▶ UTF-8, no DOCTYPE, XML media type, no Content-Language
        ─▶ shape: every element in an allow-list for its parent, known
           namespaces, no xml:base, xml:lang only on the root, no duplicate
           title/link/summary/date in an entry, at most one date kind
        ─▶ feedparser_rs: not bozo, RSS 2.0 / RSS 1.0 / Atom 1.0, as many
           entries as the shape counted
        ─▶ values: no C1 controls (feedparser maps them to cp1252), RSS titles
           plain text by feedparser's own test, dates strictly RFC 822 or 3339
        ─▶ FastEntry records: each text with the MIME type feedparser would give
           it, the date as feedparser's published_parsed would make it; parse
           turns them into Items (no feedparser-shaped dicts in between)

tests/test_fastparse.py holds the two paths to identical Items over the golden
feeds and the feedparser and Feed Validator corpora.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

import feedparser_rs

__all__ = ["FastEntry", "FastFeed", "parse_fast"]

# Bounds for the Rust parser; parse_feed's caller caps the body at http.max_bytes anyway.
_LIMITS = feedparser_rs.ParserLimits(
    max_feed_size_bytes=64 << 20,
    max_entries=5_000,
    max_links_per_feed=100,
    max_links_per_entry=50,
    max_authors=20,
    max_contributors=20,
    max_tags=100,
    max_content_blocks=10,
    max_enclosures=20,
)

_NAMESPACES = {
    "": "rss",  # RSS 0.9x/2.0 have none
    "http://purl.org/rss/1.0/": "rss1",
    "http://www.w3.org/2005/Atom": "atom",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://search.yahoo.com/mrss/": "media",
    "http://purl.org/rss/1.0/modules/syndication/": "sy",
    "http://purl.org/rss/1.0/modules/slash/": "slash",
    "http://wellformedweb.org/CommentAPI/": "wfw",
}


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ATOM_PERSON = _names("atom:name atom:email atom:uri")
# Which children each element may have; an element not listed here may have none.
_CHILDREN: dict[str, frozenset[str]] = {
    "rss:rss": _names("rss:channel"),
    "rss:channel": _names(
        "rss:title rss:link rss:description rss:language rss:copyright rss:managingEditor"
        " rss:webMaster rss:pubDate rss:lastBuildDate rss:category rss:generator rss:docs"
        " rss:ttl rss:image rss:item atom:link sy:updatePeriod sy:updateFrequency sy:updateBase"
    ),
    "rss:image": _names("rss:url rss:title rss:link rss:width rss:height"),
    "rss:item": _names(
        "rss:title rss:link rss:description rss:guid rss:pubDate rss:author rss:category"
        " rss:comments rss:enclosure content:encoded dc:creator dc:subject dc:date"
        " slash:comments wfw:commentRss media:content media:thumbnail"
    ),
    "rdf:RDF": _names("rss1:channel rss1:item rss1:image"),
    "rss1:channel": _names("rss1:title rss1:link rss1:description rss1:items rss1:image"),
    "rss1:items": _names("rdf:Seq"),
    "rdf:Seq": _names("rdf:li"),
    "rss1:image": _names("rss1:url rss1:title rss1:link"),
    "rss1:item": _names(
        "rss1:title rss1:link rss1:description content:encoded dc:creator dc:subject dc:date"
    ),
    "atom:feed": _names(
        "atom:title atom:subtitle atom:id atom:link atom:updated atom:author atom:contributor"
        " atom:category atom:generator atom:icon atom:logo atom:rights atom:entry"
    ),
    "atom:author": _ATOM_PERSON,
    "atom:contributor": _ATOM_PERSON,
    "atom:entry": _names(
        "atom:id atom:title atom:link atom:updated atom:published atom:summary atom:content"
        " atom:author atom:contributor atom:category atom:rights"
    ),
}
_ROOTS = {"rss:rss": "rss20", "rdf:RDF": "rss10", "atom:feed": "atom10"}
_ENTRIES = _names("rss:item rss1:item atom:entry")
# Elements whose children are checked for duplicates and attributes.
_CONTAINERS = _ENTRIES | _names("rss:channel rss1:channel atom:feed")
# At most one of each per feed or entry: feedparser and feedparser-rs pick different ones.
_ONCE = _names(
    "rss:title rss:link rss:description rss:guid rss:pubDate dc:date content:encoded"
    " rss1:title rss1:link rss1:description"
    " atom:id atom:title atom:subtitle atom:summary atom:content atom:published atom:updated"
)
_DATES = _names("rss:pubDate dc:date")
_SUMMARIES = _names("rss:description rss1:description atom:summary")
_EMPTY = _names("rss:enclosure media:content media:thumbnail atom:link")
_ATOM_TEXT = _names("atom:title atom:subtitle atom:summary atom:content")
_RSS_TEXT = _names("rss:title rss:description rss1:title rss1:description content:encoded")
# Elements _check_child has more to check for than "at most one of each" (and _RSS_TEXT
# with attributes).
_CHECKED = _DATES | _ATOM_TEXT | {"atom:link"}
_HTML_LINK_TYPES = (b"text/html", b"application/xhtml+xml")
_MIME_TYPES = {"text": "text/plain", "html": "text/html"}
_NO_ATTRIBUTES: dict[bytes, bytes] = {}

# Markup, in one linear pass: CDATA and comments skipped whole (unclosed ones fall through
# to "<!", a decline), processing instructions skipped, any other "<!" declines (DOCTYPE,
# ENTITY); then a leaf, <name attrs>text</name>, as one token (most elements of a feed
# are leaves, and one token instead of two halves the Python work per element); then
# start, end and empty-element tags. A tag stops at the next "<", and so does a leaf's
# text, so no input makes a match scan far. (The "<" shared by every branch lets the
# engine skip to the next "<" fast; the leaf's name is possessive: <ab></a> is no leaf.)
_TOKEN = re.compile(
    rb"<(?:!\[CDATA\[.*?\]\]>|!--.*?-->|\?|(!)"
    rb"|([A-Za-z_][\w.:-]*+)([^<>]*+)(?<!/)>([^<]*+)</\2\s*>"
    rb"|(/?)([A-Za-z_][\w.:-]*)([^<>]*?)(/?)>)",
    re.DOTALL,
)
_ATTR = re.compile(rb"""([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_XML_ENCODING = re.compile(rb"^<\?xml[^>]*encoding\s*=\s*[\"']([^\"']+)", re.IGNORECASE)
_XML_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/xml",
        "text/xml",
    }
)
_C1 = re.compile("[\x80-\x9f]")
# feedparser calls RSS "plain" text HTML only if it has a close tag or an entity reference.
_MAYBE_HTML = re.compile(r"</\w+>|&#?\w+;")
_MONTH_NAMES = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec"
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES.split(), 1)}
_RFC822 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
    r"(\d{2}):(\d{2}):(\d{2}) (GMT|UT|Z|[ECMPA][SD]T|[+-]\d{4})"  # zones both parsers know
)
# The zone names of _RFC822, as email.utils.parsedate_to_datetime reads them.
_ZONES = {
    name: timezone(timedelta(hours=hours))
    for name, hours in (
        ("GMT", 0), ("UT", 0), ("Z", 0), ("EST", -5), ("EDT", -4), ("CST", -6), ("CDT", -5),
        ("MST", -7), ("MDT", -6), ("PST", -8), ("PDT", -7), ("AST", -4), ("ADT", -3),
    )
}  # fmt: skip
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")


class FastEntry(NamedTuple):
    """One entry as feedparser would give it to parse: values, and each text's MIME type.

    A type is what feedparser's ``*_detail["type"]`` would say, or None where it
    would have no detail. A NamedTuple: one is built per entry of every feed.
    """

    id: str | None
    link: str | None
    title: str | None
    title_type: str | None
    summary: str | None  # a missing summary filled in from the content, as feedparser does
    summary_type: str | None
    content: str | None  # the first content block, the summary when that is empty
    content_type: str | None
    published: datetime | None  # UTC, whole seconds: feedparser's published_parsed


@dataclass(frozen=True, slots=True)
class FastFeed:
    """What parse._parse_xml_feed needs from a feed the fast path took."""

    title: str | None
    title_type: str | None
    language: str | None
    entries: list[FastEntry]


class _Decline(Exception):
    """This feed is for feedparser."""


def parse_fast(body: bytes, headers: Mapping[str, str]) -> FastFeed | None:
    """The feed through feedparser-rs, or None when only feedparser can be trusted with it.

    ``headers`` have lower-case keys. Never raises for a hostile body: anything
    unexpected is a decline.
    """
    try:
        _check_transport(body, headers)
        root, summaries = _check_shape(body)
    except _Decline:
        return None
    try:
        result = feedparser_rs.parse_with_limits(
            body, limits=_LIMITS, sanitize_html=False, resolve_relative_uris=False
        )
    except Exception:  # the Rust parser refusing hostile bytes its own way: feedparser decides
        return None
    try:
        if result.bozo or result.version != _ROOTS[root] or len(result.entries) != len(summaries):
            return None
        plain = root != "atom:feed"
        feed = result.feed
        title, title_type = _text(feed.title), _text_type(feed.title_detail, plain)
        entries = [_entry(e, plain, has) for e, has in zip(result.entries, summaries, strict=True)]
        return FastFeed(title, title_type, feed.language, entries)
    except (_Decline, ValueError, OverflowError, TypeError, AttributeError):  # odd data
        return None


def _check_transport(body: bytes, headers: Mapping[str, str]) -> None:
    if "content-language" in headers:  # feedparser makes it every text's language
        raise _Decline
    if headers and "content-type" not in headers:
        raise _Decline  # feedparser warns: NonXMLContentType
    mime, _, params = headers.get("content-type", "").partition(";")
    mime = mime.strip().lower()
    if mime and mime not in _XML_TYPES:
        raise _Decline
    charset = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", params, re.IGNORECASE)
    if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
        raise _Decline
    declared = _XML_ENCODING.match(body.removeprefix(b"\xef\xbb\xbf"))
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise _Decline
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Decline from None
    if mime.startswith("text/") and not charset and not body.isascii():
        raise _Decline  # RFC 3023 says us-ascii; feedparser overrides with a warning


def _check_shape(body: bytes) -> tuple[str, list[bool]]:
    """The root element and, per entry, whether it has a summary element.

    Raises _Decline unless every element is one we know both parsers agree on.
    This loop runs once per element of every feed, hence the inlined checks.
    """
    prefixes: dict[bytes, str] = {}
    names: dict[bytes, str] = {}  # raw tag -> canonical name; prefixes are never re-bound
    attributes: dict[bytes, dict[bytes, bytes]] = {}  # see _attributes
    stack: list[tuple[str, dict[str, int] | None]] = []
    summaries: list[bool] = []
    root = ""
    for token in _TOKEN.finditer(body):
        bang, leaf, leaf_attrs, text, close, name, attrs, self_closing = token.groups()
        if leaf is not None:  # <x>text</x>: checked as <x/>, and for text where none may be
            name, attrs, self_closing = leaf, leaf_attrs, b"/"
        elif name is None:
            if bang:
                raise _Decline  # DOCTYPE or ENTITY
            continue
        elif close:
            if not stack or names.get(name) != stack[-1][0]:
                raise _Decline  # an end tag that does not close the open element
            stack.pop()
            continue
        if b"=" not in attrs:
            parsed = _NO_ATTRIBUTES
        else:
            parsed = attributes.get(attrs) or _attributes(attrs, prefixes, attributes, root=root)
        element = names.get(name) or names.setdefault(name, _canonical(name, prefixes))
        if root:
            parent, seen = stack[-1] if stack else ("", None)
            if element not in _CHILDREN.get(parent, ()):
                raise _Decline
            if seen is not None:
                if element in _CHECKED or (parsed and element in _RSS_TEXT):
                    _check_child(element, parsed, seen)
                else:  # _check_child's only checks for an element like this, inlined
                    count = seen[element] = seen.get(element, 0) + 1
                    if count > 1 and element in _ONCE:
                        raise _Decline
            if element in _ENTRIES:
                summaries.append(False)
            elif element in _SUMMARIES and parent in _ENTRIES:
                summaries[-1] = True
        else:
            if element not in _ROOTS or (b"xml:lang" in parsed and element != "atom:feed"):
                raise _Decline  # feedparser takes a root xml:lang as the RSS feed's language
            root = element
        if element in _EMPTY:
            # Empty: <x/>, or <x> </x> as a leaf. (An <x> that is no leaf holds markup or
            # ends in an odd end tag; neither is worth telling apart from the rest.)
            if not self_closing or (text and text.strip()):
                raise _Decline
        elif not self_closing:
            stack.append((element, {} if element in _CONTAINERS else None))
    if stack or not root:
        raise _Decline
    return root, summaries


def _attributes(
    raw: bytes, prefixes: dict[bytes, str], known: dict[bytes, dict[bytes, bytes]], *, root: str
) -> dict[bytes, bytes]:
    """The attributes in a tag, remembered in ``known`` when below the root.

    There the same raw text always means the same (prefixes are never re-bound),
    and the same few recur in every entry: <guid isPermaLink="false">.
    """
    found = {m[1]: m[2] if m[2] is not None else m[3] for m in _ATTR.finditer(raw)}
    for key, value in found.items():
        if key == b"xmlns" and root:
            raise _Decline  # a default namespace below the root
        if key == b"xmlns" or key.startswith(b"xmlns:"):
            prefix = key.partition(b":")[2]
            uri = value.decode("utf-8")
            if uri not in _NAMESPACES or prefixes.setdefault(prefix, uri) != uri:
                raise _Decline
        elif key == b"xml:base" or (key in (b"xml:lang", b"lang") and root):
            raise _Decline
    if root:
        known[raw] = found
    return found


def _canonical(name: bytes, prefixes: dict[bytes, str]) -> str:
    prefix, _, local = name.rpartition(b":")
    uri = prefixes.get(prefix)
    if uri is None and prefix:
        raise _Decline
    return f"{_NAMESPACES[uri or '']}:{local.decode('ascii', 'replace')}"


def _check_child(element: str, attrs: Mapping[bytes, bytes], seen: dict[str, int]) -> None:
    """No second title, summary, date or alternate link; Atom text only as text or html."""
    key = element
    if element == "atom:link":
        rel = attrs.get(b"rel", b"alternate")
        if b"href" not in attrs:
            raise _Decline
        if rel == b"alternate" and attrs.get(b"type", b"text/html") not in _HTML_LINK_TYPES:
            raise _Decline
        key = f"atom:link {rel!r}"
    elif element in _DATES:
        key = "date"  # counted together: at most one date of either kind (both are _ONCE)
    if element in _ATOM_TEXT and (
        attrs.get(b"type", b"text") not in (b"text", b"html") or b"src" in attrs
    ):
        raise _Decline
    if element in _RSS_TEXT and attrs:
        raise _Decline  # feedparser honours type= and mode= even in RSS
    count = seen[key] = seen.get(key, 0) + 1
    if count > 1 and (element in _ONCE or key == "atom:link b'alternate'"):
        raise _Decline


def _entry(entry: Any, plain_titles: bool, has_summary: bool) -> FastEntry:
    # Every text is checked by _text, even the ones parse will not read (a later content
    # block), as feedparser would have mapped their C1 controls to cp1252.
    contents = [(_text(c.value), _mime(c.type)) for c in entry.content]
    content, content_type = contents[0] if contents else (None, None)
    if has_summary:
        summary, summary_type = _text(entry.summary), _text_type(entry.summary_detail, False)
    elif content_type in ("text/plain", "text/html"):
        # Without a summary element feedparser-rs fills one in from the content, with its
        # type; feedparser copies the first content to the summary, without its type.
        summary, summary_type = content, None
    else:
        summary = summary_type = None
    return FastEntry(
        id=_text(entry.id),
        link=_text(entry.link),
        title=_text(entry.title),
        title_type=_text_type(entry.title_detail, plain_titles),
        summary=summary,
        summary_type=summary_type,
        content=content,
        content_type=content_type,
        published=_date(entry.published or entry.updated),
    )


def _text_type(detail: Any, plain: bool) -> str | None:
    """feedparser's *_detail type: RSS titles are text/plain unless they might be HTML."""
    if detail is None:
        return None
    value = _text(detail.value)
    if plain:
        return "text/html" if value and _looks_like_html(value) else "text/plain"
    return _mime(detail.type)


def _looks_like_html(value: str) -> bool:
    """feedparser's own test for RSS text that is HTML although RSS calls it plain."""
    if not _MAYBE_HTML.search(value):
        return False
    # Imported here: feedparser costs 40 ms to import and most titles never get this far.
    from feedparser.mixin import _FeedParserMixin

    return bool(_FeedParserMixin.looks_like_html(value))


def _mime(kind: str | None) -> str | None:
    """Atom's type="text" and "html" as feedparser spells them."""
    return _MIME_TYPES.get(kind or "", kind)


def _text(value: str | None) -> str | None:
    # isascii() is O(1) on a str, and ASCII has no C1 controls: most texts skip the scan.
    if value is not None and not value.isascii() and _C1.search(value):
        raise _Decline
    return value


def _date(raw: str | None) -> datetime | None:
    """The UTC time of a strictly well-formed date; anything else is feedparser's.

    Whole seconds, as feedparser's published_parsed (a time tuple) would give
    parse: that drops fractions, and holds any year from 1 to 9999.
    """
    if not raw:
        return None
    raw = raw.strip()
    try:
        if rfc822 := _RFC822.fullmatch(raw):
            parsed = _rfc822_date(*rfc822.groups())
        elif _RFC3339.fullmatch(raw):
            parsed = datetime.fromisoformat(raw)
        else:
            raise _Decline
        # Converting can overflow too (year 9999 at -12:00), so it is inside the try.
        return parsed.astimezone(UTC).replace(microsecond=0)
    except (TypeError, ValueError, OverflowError):
        raise _Decline from None


def _rfc822_date(
    day: str, month: str, year: str, hour: str, minute: str, second: str, zone: str
) -> datetime:
    """What email.utils.parsedate_to_datetime makes of a date _RFC822 matched, only faster.

    "-0000" (UTC, source unknown) comes out as UTC; an offset of a day or more, or
    an invalid day or time, raises ValueError as parsedate_to_datetime does.
    """
    if int(year) < 100:
        raise _Decline  # parsedate reads "0025" as 2025, feedparser as 25
    tz = _ZONES.get(zone)
    if tz is None:
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        tz = timezone(-offset if zone[0] == "-" else offset)
    return datetime(
        int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=tz
    )
