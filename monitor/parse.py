"""Feed bytes -> ``ParsedFeed`` of normalised ``Item``s.

Pure: bytes, headers and ``now`` in, values out; no network, disk or clock.
(The one exception is py3langid's model, read from the installed package the
first time a language has to be guessed, then cached for the process.)

    body + headers ─▶ JSON Feed? ─yes─▶ json.loads ───────────────┐
                          │no                                      ▼
                          ├──▶ fastparse (feedparser-rs) ─▶ FastEntry ─▶ Item (id, canonical url,
                          │    declined?                                 plain text, UTC date,
                          └──▶ feedparser(BytesIO) ─────▶ entries ──▶  language, content hash)

monitor.fastparse takes only plain, well-formed feeds it can hand over as
feedparser would have parsed them (tests/test_fastparse.py checks Items are
identical); everything else goes to feedparser as before. Its entries come
as FastEntry records rather than feedparser's dicts: _fast_item reads the
same values _entry_item would, without a dict built per entry to get there.

feedparser gets a ``BytesIO`` and the response headers, never a URL or a
string (it would fetch or open those), with HTML sanitising and relative-URI
rewriting off: we reduce HTML to text ourselves, which is faster and leaves no
markup at all. A malformed feed that still yields entries is a warning; one
that yields none is a ``ParseError`` saying what the server sent instead.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import re
import xml.sax
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Protocol

from monitor.exceptions import ParseError
from monitor.fastparse import FastEntry, FastFeed, parse_fast
from monitor.html import fold_whitespace, html_to_text, looks_like_html, truncate
from monitor.types import Item
from monitor.urls import canonical_web_url

__all__ = ["SUMMARY_LIMIT", "TITLE_LIMIT", "ParsedFeed", "detect_language", "parse_feed"]

SUMMARY_LIMIT = 4_000
TITLE_LIMIT = 1_000
# A date further ahead than this is a broken clock or a typo; we use ``now`` instead.
FUTURE_TOLERANCE = timedelta(days=1)
# Below this many letters a language guess is noise.
MIN_LETTERS_TO_DETECT = 20
MIN_DETECT_CONFIDENCE = 0.3
_DETECT_CHARS = 250

_LANG_TAG = re.compile(r"\s*([A-Za-z]{2,3})(?:[-_]|\s*$)")
# Codes feeds use that are not (or no longer) ISO 639-1: 'ua' is Ukraine, not a language.
_LANG_FIXES = {"ua": "uk", "iw": "he", "in": "id", "ji": "yi", "jw": "jv"}
_HTML_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed: its title, declared language, items, and a warning if it was malformed."""

    title: str
    language: str | None
    items: tuple[Item, ...]
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class _Context:
    feed_id: str
    url: str
    now: datetime
    tags: tuple[str, ...]
    language: str | None  # from the config, wins over anything declared
    feed_language: str | None  # declared by the feed


class _Identifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...


def parse_feed(
    body: bytes,
    headers: Mapping[str, str],
    *,
    feed_id: str,
    url: str,
    now: datetime,
    tags: tuple[str, ...] = (),
    language: str | None = None,
) -> ParsedFeed:
    """Parse one response body (RSS 0.9x/1.0/2.0, Atom 0.3/1.0 or JSON Feed 1.x).

    ``headers`` are the HTTP response headers (any case; content-type carries
    the charset). ``url`` is the feed's URL: relative links resolve against it
    and errors name it. ``now`` stands in for missing or absurd dates.
    Raises ``ParseError`` when the body holds no entries and is not a valid feed.
    """
    if not body.strip():
        raise ParseError(url, "empty response body")
    lowered = {key.lower(): value for key, value in headers.items()}
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    ctx = _Context(feed_id, url, now.astimezone(UTC), tags, _primary_language(language), None)
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return _parse_json_feed(body, lowered, ctx)
    return _parse_xml_feed(body, lowered, ctx)


# --- XML feeds, through feedparser -------------------------------------------------


def _parse_xml_feed(body: bytes, headers: dict[str, str], ctx: _Context) -> ParsedFeed:
    fast = parse_fast(body, headers)
    if fast is not None:
        return _fast_feed_items(ctx, fast)
    # Imported here: about 40 ms of start-up that a poll whose feeds all take the
    # fast path (see monitor.fastparse) never needs.
    import feedparser

    # Content-Location would become the base of guids with isPermaLink unset, so a
    # server changing it would change every item id; we resolve links ourselves.
    fp_headers = {key: value for key, value in headers.items() if key != "content-location"}
    try:
        result = feedparser.parse(
            io.BytesIO(body),
            response_headers=fp_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # a feedparser bug on hostile bytes must not stop the daemon
        raise ParseError(ctx.url, f"feedparser failed on this body: {_describe(exc)}") from exc
    entries = _get(result, "entries") or []
    bozo = _get(result, "bozo_exception") if _get(result, "bozo") else None
    if not entries and (not _get(result, "version") or not _benign(bozo)):
        raise ParseError(ctx.url, _not_a_feed(body, headers, bozo))
    return _feed_items(ctx, _get(result, "feed") or {}, entries, bozo)


def _feed_items(
    ctx: _Context, feed: Mapping[str, Any], entries: list[Any], bozo: object
) -> ParsedFeed:
    """Items from feedparser's feed and entries."""
    ctx = _with_feed_language(ctx, _get(feed, "language"))
    items = _non_empty(_entry_item(ctx, entry) for entry in entries)
    title = _detail_text(_get(feed, "title"), _get(feed, "title_detail"), TITLE_LIMIT)
    return _parsed_feed(ctx, title, items, len(entries), bozo)


def _fast_feed_items(ctx: _Context, fast: FastFeed) -> ParsedFeed:
    """Items from the fast path's feed: what _feed_items makes of feedparser's."""
    ctx = _with_feed_language(ctx, fast.language)
    items = _non_empty(_fast_item(ctx, entry) for entry in fast.entries)
    title = _typed_text(fast.title, fast.title_type, TITLE_LIMIT)
    return _parsed_feed(ctx, title, items, len(fast.entries), None)


def _with_feed_language(ctx: _Context, declared: object) -> _Context:
    feed_language = _primary_language(declared)
    return _Context(ctx.feed_id, ctx.url, ctx.now, ctx.tags, ctx.language, feed_language)


def _parsed_feed(
    ctx: _Context, title: str, items: tuple[Item, ...], entries: int, bozo: object
) -> ParsedFeed:
    warnings = [_describe(bozo)] if bozo is not None else []
    if len(items) < entries:
        warnings.append(f"skipped empty entries: {entries - len(items)}")
    return ParsedFeed(title, ctx.feed_language, items, "; ".join(warnings) or None)


def _get(obj: object, key: str) -> Any:
    """A stored value, bypassing FeedParserDict's aliases and their DeprecationWarnings."""
    return dict.get(obj, key) if isinstance(obj, dict) else None


def _benign(bozo: object) -> bool:
    """True for bozo reasons that say nothing about the feed's content being unreadable."""
    if bozo is None:
        return True
    import feedparser  # local: see _parse_xml_feed

    return isinstance(bozo, feedparser.CharacterEncodingOverride | feedparser.NonXMLContentType)


def _not_a_feed(body: bytes, headers: Mapping[str, str], bozo: object) -> str:
    mime = headers.get("content-type", "").split(";")[0].strip().lower()
    if mime in ("text/html", "application/xhtml+xml") or _HTML_START.match(body[:2048].lower()):
        return f"not a feed: the server sent an HTML page ({mime or 'no content-type'})"
    if bozo is not None and not _benign(bozo):
        return f"not a feed: {_describe(bozo)}"
    return "not a feed: the document is not RSS, Atom, RDF or JSON Feed"


def _describe(exc: object) -> str:
    """One line for a log or the feed's health table."""
    if isinstance(exc, xml.sax.SAXParseException):
        where = f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
        text = f"malformed XML at {where}: {exc.getMessage()}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return truncate(fold_whitespace(text), 300)


def _entry_item(ctx: _Context, entry: Mapping[str, Any]) -> Item:
    title = _detail_text(_get(entry, "title"), _get(entry, "title_detail"), TITLE_LIMIT)
    summary = _detail_text(_get(entry, "summary"), _get(entry, "summary_detail"), SUMMARY_LIMIT)
    content = _get(entry, "content") or [{}]
    if not summary:
        summary = _detail_text(_get(content[0], "value"), content[0], SUMMARY_LIMIT)
    declared = None
    for detail in (_get(entry, "summary_detail"), _get(entry, "title_detail"), content[0]):
        if detail and _get(detail, "language"):
            declared = _primary_language(_get(detail, "language"))
            break
    return _build_item(
        ctx,
        guid=_get(entry, "id"),
        link=_get(entry, "link"),
        title=title,
        summary=summary,
        published=_struct_date(entry),
        declared_language=declared,
    )


def _fast_item(ctx: _Context, entry: FastEntry) -> Item:
    """_entry_item for a fast path entry (whose texts never declare a language)."""
    title = _typed_text(entry.title, entry.title_type, TITLE_LIMIT)
    summary = _typed_text(entry.summary, entry.summary_type, SUMMARY_LIMIT)
    if not summary:
        summary = _typed_text(entry.content, entry.content_type, SUMMARY_LIMIT)
    return _build_item(
        ctx,
        guid=entry.id,
        link=entry.link,
        title=title,
        summary=summary,
        published=entry.published,
        declared_language=None,
    )


def _detail_text(value: object, detail: object, limit: int) -> str:
    return _typed_text(value, _get(detail, "type"), limit)


def _typed_text(value: object, mime: object, limit: int) -> str:
    """Plain text of a feed text whose *_detail type is ``mime``."""
    if not isinstance(value, str) or not value:
        return ""
    # Atom type="text" (and base64 bodies) are plain by declaration, yet publishers put
    # HTML there; like feedparser does for RSS, we treat text with known tags as HTML.
    if mime == "text/plain" and not looks_like_html(value):
        return truncate(fold_whitespace(value), limit)
    return html_to_text(value, limit)


def _struct_date(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = _get(entry, key)
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, ValueError, OSError, TypeError):
                continue
    return None


# --- JSON Feed ---------------------------------------------------------------------


def _parse_json_feed(body: bytes, headers: Mapping[str, str], ctx: _Context) -> ParsedFeed:
    charset = _CHARSET.search(headers.get("content-type", ""))
    try:
        text = body.decode(charset.group(1) if charset else "utf-8-sig", errors="replace")
    except LookupError:
        text = body.decode("utf-8-sig", errors="replace")
    try:
        doc = json.loads(text.lstrip("\ufeff"))
    except (ValueError, RecursionError) as exc:
        raise ParseError(ctx.url, f"not a feed: invalid JSON ({exc})") from exc
    if not isinstance(doc, dict) or "jsonfeed.org/version/" not in str(doc.get("version")):
        raise ParseError(ctx.url, "not a feed: JSON without a jsonfeed.org version")
    raw_items = doc.get("items")
    if not isinstance(raw_items, list):
        raise ParseError(ctx.url, "not a feed: JSON Feed without an 'items' list")
    feed_language = _primary_language(_json_str(doc.get("language")))
    ctx = _Context(ctx.feed_id, ctx.url, ctx.now, ctx.tags, ctx.language, feed_language)
    items = _non_empty(_json_item(ctx, raw) for raw in raw_items if isinstance(raw, dict))
    skipped = len(raw_items) - len(items)
    warning = f"skipped empty or non-object items: {skipped}" if skipped else None
    title = truncate(fold_whitespace(_json_str(doc.get("title"))), TITLE_LIMIT)
    return ParsedFeed(title, feed_language, items, warning)


def _json_item(ctx: _Context, raw: Mapping[str, Any]) -> Item:
    summary = fold_whitespace(_json_str(raw.get("summary")) or _json_str(raw.get("content_text")))
    if summary:
        summary = truncate(summary, SUMMARY_LIMIT)
    else:
        summary = html_to_text(_json_str(raw.get("content_html")), SUMMARY_LIMIT)
    return _build_item(
        ctx,
        guid=_json_str(raw.get("id")),
        link=_json_str(raw.get("url")) or _json_str(raw.get("external_url")),
        title=truncate(fold_whitespace(_json_str(raw.get("title"))), TITLE_LIMIT),
        summary=summary,
        published=_iso_date(raw.get("date_published")) or _iso_date(raw.get("date_modified")),
        declared_language=_primary_language(_json_str(raw.get("language"))),
    )


def _json_str(value: object) -> str:
    """A JSON scalar as text; lone surrogates (legal in JSON escapes) become '?'."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return ""
    text = value if isinstance(value, str) else str(value)
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def _iso_date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


# --- shared normalisation ----------------------------------------------------------


def _build_item(
    ctx: _Context,
    *,
    guid: object,
    link: object,
    title: str,
    summary: str,
    published: datetime | None,
    declared_language: str | None,
) -> Item:
    guid_text = guid.strip() if isinstance(guid, str) else ""
    url = _item_url(link, ctx.url)
    if guid_text:
        key = f"{ctx.feed_id}\0guid\0{guid_text}"
    elif url:
        key = f"url\0{url}"
    else:
        key = f"hash\0{title}\0{summary}"
    missing = published is None or published > ctx.now + FUTURE_TOLERANCE
    language = ctx.language or declared_language or ctx.feed_language
    return Item(
        id=_sha1(key)[:32],
        feed_id=ctx.feed_id,
        title=title,
        summary=summary,
        url=url,
        published=ctx.now if missing or published is None else published,
        published_missing=missing,
        guid=guid_text or None,
        tags=ctx.tags,
        language=language or detect_language(f"{title}\n{summary}"),
        content_hash=_sha1(f"{title}\n{summary}"),
    )


def _non_empty(items: Iterable[Item]) -> tuple[Item, ...]:
    """Drop entries with no text, link or guid: a broken tail, nothing to alert on."""
    return tuple(item for item in items if item.title or item.summary or item.url or item.guid)


def _item_url(link: object, base: str) -> str | None:
    """The canonical http(s) link, or None (no link, or javascript:, mailto: and the like)."""
    if not isinstance(link, str) or not link.strip():
        return None
    return canonical_web_url(link, base)


def _sha1(text: str) -> str:
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _primary_language(tag: object) -> str | None:
    """'en-US' -> 'en', 'uk_UA' -> 'uk', 'ua' -> 'uk'; None for anything else."""
    if not isinstance(tag, str):
        return None
    match = _LANG_TAG.match(tag)
    if match is None:
        return None
    code = match.group(1).lower()
    return None if code in ("und", "mul", "zxx") else _LANG_FIXES.get(code, code)


def detect_language(text: str) -> str | None:
    """ISO 639-1 guess with py3langid, or None for short or ambiguous text."""
    sample = text[:_DETECT_CHARS]
    if sum(map(str.isalpha, sample)) < MIN_LETTERS_TO_DETECT:
        return None
    code, confidence = _identifier().classify(sample)
    return code if confidence >= MIN_DETECT_CONFIDENCE else None


@cache
def _identifier() -> _Identifier:
    """Load the model once per process (about 0.6 s), only when a guess is needed."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier: _Identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return identifier
