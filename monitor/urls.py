"""URL canonicalisation: one spelling per link, so one story gets one id.

Pure: strings in, strings out, no I/O. ``canonical_url`` lower-cases the scheme
and host, drops default ports and the fragment, removes tracking parameters
(``TRACKING_PARAMS`` and ``TRACKING_PREFIXES``), keeps every other parameter in
its original order and normalises percent-encoding lightly: escapes get
upper-case hex, escaped unreserved characters are decoded, and spaces or
non-ASCII characters are percent-encoded as UTF-8.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit, urlunsplit

__all__ = [
    "TRACKING_PARAMS",
    "TRACKING_PREFIXES",
    "canonical_url",
    "canonical_web_url",
    "is_web_url",
]

# Query parameters that identify a campaign, a click or a referrer, never the
# page. Compared lower-cased, after percent-decoding the key.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        # ad-click ids: Facebook, Google, DoubleClick, Microsoft, Yandex, Instagram, Yahoo
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "igshid", "ncid",
        # Mailchimp, HubSpot, Marketo, Vero, Olytics
        "mc_cid", "mc_eid", "_hsenc", "_hsmi", "hsctatracking", "mkt_tok", "vero_id",
        "oly_enc_id", "oly_anon_id",
        # Google Analytics cross-domain linker
        "_ga", "_gl",
        # Twitter share referrers
        "ref_src", "ref_url",
        # publishers' campaign codes: Adobe, Microsoft/MSN, BBC/AT Internet, NYT, Guardian,
        # Webtrends, Alibaba, generic RSS markers
        "cmpid", "s_cid", "ocid", "at_medium", "at_campaign", "at_link_id", "at_link_type",
        "at_link_origin", "at_ptr_name", "at_format", "at_bbc_team", "at_custom1",
        "at_custom2", "at_custom3", "at_custom4", "xtor", "taid", "ito", "rss", "smid",
        "smtyp", "cmp", "wt.mc_id", "spm", "sr_share", "__twitter_impression",
    }
)  # fmt: skip

# Whole families: Google (utm_), Matomo/Piwik (pk_, mtm_), HubSpot ads (hsa_).
TRACKING_PREFIXES: tuple[str, ...] = ("utm_", "pk_", "mtm_", "hsa_")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Everything RFC 3986 allows unescaped in a path, plus '%' so existing escapes survive.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def _fix_escape(m: re.Match[str]) -> str:
    char = chr(int(m.group(1), 16))
    return char if char in _UNRESERVED else "%" + m.group(1).upper()


def _normalise_escapes(part: str, safe: str) -> str:
    """Decode escaped unreserved characters, upper-case the rest, escape what must be."""
    if "%" in part:
        part = _ESCAPE.sub(_fix_escape, part)
    if part.isascii() and " " not in part and '"' not in part:
        return part
    return quote(part, safe=safe)


def _is_tracking(pair: str) -> bool:
    key = unquote(pair.partition("=")[0]).strip().lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def _netloc(scheme: str, netloc: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    host, port = hostport, ""
    if hostport.startswith("["):  # IPv6 literal: [::1]:8080
        end = hostport.find("]")
        if end != -1:
            host, port = hostport[: end + 1], hostport[end + 1 :].removeprefix(":")
    elif ":" in hostport:
        host, _, port = hostport.rpartition(":")
    host = host.lower().rstrip(".")
    if port.isdigit() and int(port) == _DEFAULT_PORTS.get(scheme):
        port = ""
    return f"{userinfo}{at}{host}{':' + port if port else ''}"


def canonical_url(url: str, base: str | None = None) -> str:
    """The canonical spelling of ``url``, resolved against ``base`` when relative.

    A URL that cannot be split (a bad IPv6 literal, say) comes back stripped
    but otherwise unchanged. A ``#!`` fragment is kept: such "hashbang" pages
    route on it, and dropping it would merge different stories into one.
    """
    url = url.strip()
    try:
        if base:
            url = urljoin(base.strip(), url)
        parts = urlsplit(url)
    except ValueError:
        return url
    return _canonical(parts)[0]


def _canonical(parts: SplitResult) -> tuple[str, str]:
    """The canonical URL from ``parts``, and its netloc."""
    scheme = parts.scheme.lower()
    netloc = _netloc(scheme, parts.netloc)
    path = _normalise_escapes(parts.path, _PATH_SAFE)
    if not path and netloc and scheme in _DEFAULT_PORTS:
        path = "/"
    query = "&".join(
        _normalise_escapes(pair, _QUERY_SAFE)
        for pair in parts.query.split("&")
        if pair and not _is_tracking(pair)
    )
    fragment = parts.fragment if parts.fragment.startswith("!") else ""
    return urlunsplit((scheme, netloc, path, query, fragment)), netloc


def canonical_web_url(link: str, base: str) -> str | None:
    """``canonical_url(urljoin(base, link))`` if that is a web URL (``is_web_url``), else None;
    also None when either cannot be split.

    An absolute http(s) link, the usual case, is split once instead of four times:
    urljoin returns such a link as it is or re-joined from its parts, which
    canonicalises the same, except for ``;`` parameters (urlparse's, not urlsplit's).
    """
    link = link.strip()
    if not link:
        return None
    # Whitespace (which canonical_url would strip from urljoin's result) also takes the
    # long way; isprintable() is False for all of it but the ASCII space.
    simple = link.isprintable() and " " not in link and ";" not in link
    if simple and link.startswith(("http://", "https://")) and _splits(base):
        try:
            parts = urlsplit(link)
        except ValueError:
            return None  # urljoin would have raised the same
        if parts.netloc:
            url, netloc = _canonical(parts)
            if netloc and url.isascii() and "[" not in netloc:
                return url  # splitting it again would find this netloc, and refuse nothing
            return url if is_web_url(url) else None
    try:
        url = canonical_url(urljoin(base, link))
    except ValueError:
        return None
    return url if is_web_url(url) else None


@lru_cache(maxsize=256)
def _splits(base: str) -> bool:
    try:
        urlsplit(base)
    except ValueError:
        return False
    return True


def is_web_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host: the only links we hand to analysts."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
