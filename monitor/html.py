"""HTML to plain text for titles and summaries.

Pure and regex-based: a feed summary is a fragment, not a document, and a
handful of precompiled substitutions is several times faster than an HTML
parser per item. Scripts, styles and comments are dropped with their content,
block elements become a space, other tags vanish (``Ky<b>iv</b>`` stays one
word), entities are decoded with ``html.unescape``, whitespace and control
characters are folded to single spaces.

Feeds that escape their HTML twice (``&lt;p&gt;`` inside an HTML summary)
are common; after decoding, well-known tags are stripped once more so the
analyst does not read ``<p>`` in an alert.
"""

from __future__ import annotations

import html
import re

__all__ = ["fold_whitespace", "html_to_text", "looks_like_html", "truncate"]

# Longer raw input is cut before stripping: no summary needs more, and it
# bounds the regex work a hostile feed can ask for.
MAX_RAW_CHARS = 200_000

_BLOCK = (
    "address|article|aside|blockquote|br|caption|dd|details|div|dl|dt|fieldset|figcaption|"
    "figure|footer|form|h[1-6]|header|hr|img|li|main|nav|ol|p|pre|section|summary|table|"
    "tbody|td|tfoot|th|thead|tr|ul|iframe|video|audio|source|picture"
)
_INLINE = "a|abbr|b|big|cite|code|em|font|i|ins|del|kbd|mark|q|s|small|span|strike|strong|sub|sup|u"
_ATTRS = r"""(?:[^>"']|"[^"]*"|'[^']*')*"""

_DROP = re.compile(
    r"<!--.*?(?:-->|\Z)"  # comments, unclosed ones to the end
    r"|<(script|style|noscript|template|head|title)\b" + _ATTRS + r">.*?(?:</\1\s*>|\Z)",
    re.IGNORECASE | re.DOTALL,
)
_BLOCK_TAG = re.compile(r"</?(?:" + _BLOCK + r")\b" + _ATTRS + ">", re.IGNORECASE)
_ANY_TAG = re.compile(
    r"</?[A-Za-z][^\s/>]*" + _ATTRS + ">"  # elements
    r"|<!\[CDATA\[|\]\]>|<![A-Za-z][^>]*>|<\?[^>]*>"  # CDATA markers, doctype, PIs
    r"|</?[A-Za-z][^<>]*\Z",  # a tag cut off at the end
    re.DOTALL,
)
# The same without "]]>", for text that has none: every alternative then starts with "<",
# which the regex engine scans for several times faster.
_ANY_TAG_FROM_LT = re.compile(_ANY_TAG.pattern.replace(r"|\]\]>", "", 1), re.DOTALL)
_INLINE_TAG = re.compile(r"</?(?:" + _INLINE + r")\b[^<>]*>", re.IGNORECASE)
_KNOWN_TAG = re.compile(r"</?(?:" + _BLOCK + "|" + _INLINE + r"|script|style)\b[^<>]*>", re.I)
_SPACE = re.compile(r"[\s\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]+")
# What _SPACE matches beyond whitespace (str.isspace, which is also what \s means).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")


def fold_whitespace(text: str) -> str:
    """Runs of whitespace and control characters become one space; ends trimmed."""
    # Without control characters, str.split() finds the same runs (it splits on
    # str.isspace) several times faster; printable text has none and is quick to tell.
    if text.isprintable():
        # Its only whitespace is " " (the one printable character str.isspace accepts),
        # so text without a double space is folded once trimmed: no need to split it.
        trimmed = text.strip(" ")
        return trimmed if "  " not in trimmed else " ".join(trimmed.split())
    if _CONTROL.search(text) is None:
        return " ".join(text.split())
    return _SPACE.sub(" ", text).strip()


def looks_like_html(text: str) -> bool:
    """True when "plain" text carries well-known HTML tags, as mislabelled feeds' text does.

    ``5 < 7`` or ``the <blink> tag`` stay plain; ``<b>bold</b>`` does not.
    """
    return "<" in text and _KNOWN_TAG.search(text) is not None


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters on a word boundary, marking the cut with '…'."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


def html_to_text(fragment: str, limit: int | None = None) -> str:
    """Plain text of an HTML fragment, optionally truncated to ``limit`` characters."""
    if "<" in fragment or "&" in fragment:
        text = fragment[:MAX_RAW_CHARS]
        if "<" in text:
            text = _DROP.sub(" ", text)
            text = _BLOCK_TAG.sub(" ", text)
            text = (_ANY_TAG if "]]>" in text else _ANY_TAG_FROM_LT).sub("", text)
        if "&" in text:
            text = html.unescape(text)
            if "<" in text:  # escaped twice by the feed: strip and decode once more
                text = _DROP.sub(" ", text)
                text = _BLOCK_TAG.sub(" ", text)
                text = _INLINE_TAG.sub("", text)
                if "&" in text:
                    text = html.unescape(text)
    else:
        text = fragment
    text = fold_whitespace(text)
    return truncate(text, limit) if limit is not None else text
