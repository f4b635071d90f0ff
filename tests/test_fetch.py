"""Fetcher against a real HTTP server on 127.0.0.1 (and MockTransport for pure unit checks)."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

import monitor
from monitor.clock import FixedClock, SystemClock
from monitor.config.models import HttpConfig, TimeoutConfig
from monitor.exceptions import FetchError
from monitor.fetch import ACCEPT, DEFAULT_USER_AGENT, Fetcher, HttpSettings, retry_after_seconds
from tests.feedserver import (
    Body,
    CloseMidBody,
    Delay,
    FeedServer,
    GzipBomb,
    Oversize,
    Redirect,
    Slow,
    Status,
    cp1251_feed_declared_utf8,
    empty_ok,
    gzip_bomb,
    html_page,
    invalid_utf8_feed,
    rss,
)

FEED = rss([{"guid": "1", "title": "Drone raid", "pubDate": "Sun, 08 Jun 2025 10:00:00 GMT"}])
MiB = 1 << 20

MakeFetcher = Callable[..., Fetcher]


@pytest.fixture
async def make_fetcher() -> AsyncIterator[MakeFetcher]:
    """Builds fetchers with short timeouts (override any HttpConfig field) and closes them."""
    made: list[Fetcher] = []

    def make(*, clock: Any = None, transport: Any = None, **overrides: Any) -> Fetcher:
        timeout = {"connect": 1, "read": 1, "total": 5, **overrides.pop("timeout", {})}
        config = HttpConfig(timeout=TimeoutConfig(**timeout), **overrides)
        fetcher = Fetcher(config, clock or SystemClock(), transport=transport)
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        await fetcher.aclose()


@pytest.fixture
def fetcher(make_fetcher: MakeFetcher) -> Fetcher:
    return make_fetcher()


async def fetch_error(fetcher: Fetcher, url: str, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(url, **kwargs)
    return info.value


# --- plain and conditional GET -----------------------------------------------------


async def test_ok_returns_body_headers_and_validators(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    """A 200 returns the body, lower-cased headers, the validators and the elapsed time."""
    url = feed_server.add_feed("/rss", FEED, last_modified="Sun, 08 Jun 2025 12:00:00 GMT")
    result = await fetcher.fetch(url)
    assert (result.status, result.body, result.url) == (200, FEED, url)
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert result.etag and result.etag.startswith('"')
    assert result.last_modified == "Sun, 08 Jun 2025 12:00:00 GMT"
    assert result.permanent_url is None and not result.not_modified
    assert result.elapsed_ms > 0


async def test_etag_gives_304(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """Sending the stored ETag as If-None-Match gets a 304 with no body."""
    url = feed_server.add_feed("/rss", FEED)
    first = await fetcher.fetch(url)
    second = await fetcher.fetch(url, etag=first.etag)
    assert second.status == 304 and second.body is None and second.not_modified
    assert second.etag == first.etag
    assert feed_server.requests[-1].headers["if-none-match"] == first.etag
    assert feed_server.count("/rss", status=304) == 1


async def test_last_modified_gives_304(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """Sending the stored Last-Modified as If-Modified-Since gets a 304."""
    stamp = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)
    url = feed_server.add_feed("/rss", FEED, etag=None, last_modified=stamp)
    first = await fetcher.fetch(url)
    assert first.etag is None
    second = await fetcher.fetch(url, last_modified=first.last_modified)
    assert second.status == 304 and second.last_modified == "Sun, 08 Jun 2025 12:00:00 GMT"
    assert feed_server.requests[-1].headers["if-modified-since"] == first.last_modified


async def test_304_keeps_old_validators(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A 304 without validators keeps the ETag and Last-Modified the caller sent."""
    url = feed_server.set_route("/bare", Status(304))
    result = await fetcher.fetch(url, etag='"v1"', last_modified="Sat, 07 Jun 2025 00:00:00 GMT")
    assert (result.etag, result.last_modified) == ('"v1"', "Sat, 07 Jun 2025 00:00:00 GMT")


async def test_changed_feed_is_downloaded_again(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A stale ETag gets the new body and the new ETag."""
    url = feed_server.add_feed("/rss", FEED)
    old = await fetcher.fetch(url)
    new_body = rss([{"guid": "2", "title": "Record strike"}])
    feed_server.add_feed("/rss", new_body)
    result = await fetcher.fetch(url, etag=old.etag)
    assert result.body == new_body and result.etag != old.etag


async def test_gzip_body_is_decoded(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A gzip-encoded feed comes back decoded, with the Content-Encoding header kept."""
    url = feed_server.add_feed("/rss", FEED, compress=True)
    result = await fetcher.fetch(url)
    assert result.body == FEED and result.headers["content-encoding"] == "gzip"


@pytest.mark.parametrize("compress", [zlib.compress, lambda b: zlib.compress(b)[2:-4]])
async def test_deflate_body_is_decoded(make_fetcher: MakeFetcher, compress: Any) -> None:
    """Deflate bodies decode whether or not the server includes the zlib header."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Encoding": "deflate"}, stream=httpx.ByteStream(compress(FEED))
        )

    fetcher = make_fetcher(transport=httpx.MockTransport(handler))
    assert (await fetcher.fetch("http://feeds.test/rss")).body == FEED


async def test_connection_is_kept_alive(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """Consecutive fetches from one host reuse one connection."""
    url = feed_server.add_feed("/rss", FEED)
    for _ in range(3):
        await fetcher.fetch(url)
    assert len({r.client_port for r in feed_server.requests}) == 1


# --- redirects ---------------------------------------------------------------------


async def test_301_chain_sets_permanent_url(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A chain of 301s ends at the feed and reports its URL as the new permanent one."""
    final = feed_server.add_feed("/new", FEED)
    feed_server.set_route("/mid", Redirect("/new", 301))
    result = await fetcher.fetch(feed_server.set_route("/old", Redirect("/mid", 301)))
    assert result.body == FEED and result.url == final and result.permanent_url == final


async def test_308_sets_permanent_url(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A 308 is a permanent move too, and an absolute Location works."""
    final = feed_server.add_feed("/new", FEED)
    result = await fetcher.fetch(feed_server.set_route("/old", Redirect(final, 308)))
    assert result.permanent_url == final


@pytest.mark.parametrize("temporary", [302, 303, 307])
async def test_temporary_redirect_in_chain_is_not_permanent(
    feed_server: FeedServer, fetcher: Fetcher, temporary: int
) -> None:
    """One temporary redirect anywhere in the chain means the stored URL stays."""
    final = feed_server.add_feed("/new", FEED)
    feed_server.set_route("/mid", Redirect("/new", temporary))
    result = await fetcher.fetch(feed_server.set_route("/old", Redirect("/mid", 301)))
    assert result.url == final and result.permanent_url is None


async def test_redirect_then_304_keeps_permanent_url(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    """A 301 to an unchanged feed still reports the move along with the 304."""
    final = feed_server.add_feed("/new", FEED)
    etag = (await fetcher.fetch(final)).etag
    result = await fetcher.fetch(feed_server.set_route("/old", Redirect("/new")), etag=etag)
    assert result.status == 304 and result.permanent_url == final


async def test_redirect_loop_fails(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A redirect loop is a permanent error that shows the loop."""
    feed_server.set_route("/b", Redirect("/a"))
    error = await fetch_error(fetcher, feed_server.set_route("/a", Redirect("/b")))
    assert not error.transient and "redirect loop" in error.message
    assert error.message.count("/a") == 2


@pytest.mark.parametrize(("hops", "ok"), [(5, True), (6, False)])
async def test_redirect_hop_limit(
    feed_server: FeedServer, fetcher: Fetcher, hops: int, ok: bool
) -> None:
    """Up to http.max_redirects (5) hops are followed; one more is a permanent error."""
    feed_server.add_feed(f"/r{hops}", FEED)
    for n in range(hops):
        feed_server.set_route(f"/r{n}", Redirect(f"/r{n + 1}", 302))
    if ok:
        assert (await fetcher.fetch(feed_server.url("/r0"))).body == FEED
    else:
        error = await fetch_error(fetcher, feed_server.url("/r0"))
        assert not error.transient and "too many redirects: more than 5" in error.message


async def test_redirect_to_file_is_refused(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A server cannot redirect the fetcher onto the local filesystem."""
    error = await fetch_error(fetcher, feed_server.set_route("/x", Redirect("file:///etc/passwd")))
    assert not error.transient and "refusing to follow" in error.message


async def test_redirect_without_location_fails(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A 301 without a Location header is a permanent error."""
    error = await fetch_error(fetcher, feed_server.set_route("/x", Status(301)))
    assert error.status == 301 and "Location" in error.message


# --- status mapping ----------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_client_errors_are_permanent(
    feed_server: FeedServer, fetcher: Fetcher, status: int
) -> None:
    """4xx answers are permanent errors carrying the status."""
    error = await fetch_error(fetcher, feed_server.set_route("/x", Status(status)))
    assert (error.status, error.transient, error.gone) == (status, False, False)
    assert error.message.startswith(f"HTTP {status} ")


async def test_error_after_redirect_names_where(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """An error status at the end of a redirect chain names the URL that answered it."""
    url = feed_server.set_route("/old", Redirect("/missing", 301))
    error = await fetch_error(fetcher, url)
    assert error.status == 404 and error.feed_url == url
    assert f"HTTP 404 Not Found from {feed_server.url('/missing')}" in error.message


async def test_unknown_path_is_404(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A path the server does not know is a permanent 404 error naming the URL."""
    url = feed_server.url("/nothing-here")
    error = await fetch_error(fetcher, url)
    assert error.status == 404 and error.feed_url == url and url in str(error)


async def test_410_means_gone(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """410 is a permanent error flagged gone, saying the feed will be disabled."""
    error = await fetch_error(fetcher, feed_server.set_route("/x", Status(410)))
    assert error.gone and not error.transient and error.status == 410
    assert "gone" in error.message and "disabled" in error.message


async def test_429_retry_after_seconds(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """429 is transient and carries Retry-After given in seconds."""
    url = feed_server.set_route("/x", Status(429, {"Retry-After": "120"}))
    error = await fetch_error(fetcher, url)
    assert error.transient and error.status == 429 and error.retry_after == 120
    assert "120s" in error.message


async def test_429_retry_after_date(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A Retry-After HTTP-date counts from the response's Date header, not our clock."""
    headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT", "Date": formatdate(1445412360)}
    error = await fetch_error(fetcher, feed_server.set_route("/x", Status(429, headers)))
    assert error.retry_after == 120  # Date is 07:26:00 GMT


async def test_503_retry_after_date_uses_clock_without_date(make_fetcher: MakeFetcher) -> None:
    """Without a Date header a Retry-After date counts from the injected clock."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "Sun, 08 Jun 2025 12:05:00 GMT"})

    clock = FixedClock(datetime(2025, 6, 8, 12, 0, tzinfo=UTC))
    fetcher = make_fetcher(clock=clock, transport=httpx.MockTransport(handler))
    error = await fetch_error(fetcher, "http://feeds.test/rss")
    assert error.transient and error.status == 503 and error.retry_after == 300


@pytest.mark.parametrize(
    ("value", "date", "expected"),
    [
        ("0", None, 0.0),
        ("3600", None, 3600.0),
        (" 7 ", None, 7.0),
        ("-5", None, 0.0),
        ("Sun, 08 Jun 2025 12:00:30 GMT", None, 30.0),
        ("Sun, 08 Jun 2025 11:00:00 GMT", None, 0.0),  # in the past: clamp to 0
        ("Sun, 08 Jun 2025 12:00:30 GMT", "Sun, 08 Jun 2025 12:00:20 GMT", 10.0),
        ("Sun, 08 Jun 2025 12:00:30 GMT", "not a date", 30.0),
        ("soon", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_retry_after_parsing(value: str | None, date: str | None, expected: float | None) -> None:
    """Retry-After parses delta-seconds and HTTP-dates, clamps the past to 0, else None."""
    now = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)
    assert retry_after_seconds(value, date, now) == expected


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_server_errors_are_transient(
    feed_server: FeedServer, fetcher: Fetcher, status: int
) -> None:
    """5xx answers are transient errors carrying the status."""
    error = await fetch_error(fetcher, feed_server.set_route("/x", Status(status)))
    assert error.transient and error.status == status and error.retry_after is None


# --- transport failures ------------------------------------------------------------


async def test_connection_refused(fetcher: Fetcher) -> None:
    """A closed port is a transient error that says the connection was refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await fetch_error(fetcher, f"http://127.0.0.1:{port}/rss")
    assert error.transient and error.status is None
    assert error.message == "connection refused"
    assert str(error).startswith(f"connection refused: http://127.0.0.1:{port}/rss: ConnectError")


async def test_slow_body_hits_read_timeout(
    feed_server: FeedServer, make_fetcher: MakeFetcher
) -> None:
    """A body trickling slower than the read timeout is a transient timeout error."""
    fetcher = make_fetcher(timeout={"read": 0.2})
    error = await fetch_error(fetcher, feed_server.set_route("/slow", Slow(interval=0.6)))
    assert error.transient and error.message == "timed out reading the response after 0.2s"


async def test_total_deadline_covers_the_body(
    feed_server: FeedServer, make_fetcher: MakeFetcher
) -> None:
    """A body that keeps trickling within the read timeout is stopped by the total deadline."""
    fetcher = make_fetcher(timeout={"read": 1, "total": 0.4})
    url = feed_server.set_route("/slow", Slow(interval=0.05))
    start = time.perf_counter()
    error = await fetch_error(fetcher, url)
    assert time.perf_counter() - start < 2
    assert error.transient and "http.timeout.total" in error.message


async def test_connection_closed_mid_body(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A connection closed before the announced length arrived is a transient error."""
    error = await fetch_error(fetcher, feed_server.set_route("/cut", CloseMidBody()))
    assert error.transient
    assert error.message.startswith("the server closed the connection before the whole body")


# --- size cap ----------------------------------------------------------------------


async def test_content_length_over_cap_fails_fast(
    feed_server: FeedServer, make_fetcher: MakeFetcher
) -> None:
    """A Content-Length above http.max_bytes fails before the body is read, naming the cap."""
    fetcher = make_fetcher(max_bytes=MiB)
    error = await fetch_error(fetcher, feed_server.set_route("/big", Oversize(200 * MiB)))
    assert not error.transient
    assert "1 MiB cap (http.max_bytes)" in error.message and "Content-Length" in error.message


async def test_oversize_body_without_length_is_cut(
    feed_server: FeedServer, make_fetcher: MakeFetcher
) -> None:
    """A chunked body is stopped once it passes http.max_bytes."""
    fetcher = make_fetcher(max_bytes=MiB)
    url = feed_server.set_route("/big", Oversize(200 * MiB, content_length=False))
    error = await fetch_error(fetcher, url)
    assert "1 MiB cap" in error.message and "more than 1048576 bytes arrived" in error.message


async def test_body_at_cap_is_accepted(feed_server: FeedServer, make_fetcher: MakeFetcher) -> None:
    """A body of exactly http.max_bytes is returned whole."""
    fetcher = make_fetcher(max_bytes=len(FEED))
    assert (await fetcher.fetch(feed_server.add_feed("/rss", FEED))).body == FEED


async def test_gzip_bomb_is_stopped_with_bounded_memory(
    feed_server: FeedServer, make_fetcher: MakeFetcher
) -> None:
    """A small gzip body inflating past the cap is refused without inflating it all."""
    gzip_bomb()  # built and cached before memory is traced
    fetcher = make_fetcher(max_bytes=MiB)
    url = feed_server.set_route("/bomb", GzipBomb())
    tracemalloc.start()
    try:
        error = await fetch_error(fetcher, url)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "1 MiB cap" in error.message and "gzip body inflates" in error.message
    assert peak < 8 * MiB  # the bomb inflates to 64 MiB


async def test_unsupported_encoding_is_refused(make_fetcher: MakeFetcher) -> None:
    """A Content-Encoding we did not ask for is a permanent error, not garbage bytes."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Encoding": "br"}, stream=httpx.ByteStream(b"\x1b\x00")
        )

    fetcher = make_fetcher(transport=httpx.MockTransport(handler))
    error = await fetch_error(fetcher, "http://feeds.test/rss")
    assert not error.transient and "unsupported Content-Encoding 'br'" in error.message


async def test_corrupt_gzip_is_a_permanent_error(make_fetcher: MakeFetcher) -> None:
    """A body that is not the gzip it claims is a permanent error."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip")
        )

    fetcher = make_fetcher(transport=httpx.MockTransport(handler))
    error = await fetch_error(fetcher, "http://feeds.test/rss")
    assert not error.transient and "could not decode the gzip body" in error.message


# --- bodies the parser has to judge ------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "content_type"),
    [
        (html_page(), "text/html; charset=utf-8"),
        (empty_ok(), "application/rss+xml; charset=utf-8"),
        (invalid_utf8_feed(), "application/rss+xml; charset=utf-8"),
        (cp1251_feed_declared_utf8(), "application/rss+xml; charset=utf-8"),
    ],
    ids=["html", "empty", "invalid-utf8", "cp1251-as-utf8"],
)
async def test_odd_bodies_are_returned_untouched(
    feed_server: FeedServer, fetcher: Fetcher, behaviour: Body, content_type: str
) -> None:
    """HTML, empty and mis-encoded bodies come back byte for byte; the parser decides."""
    result = await fetcher.fetch(feed_server.set_route("/odd", behaviour))
    assert result.status == 200 and result.body == behaviour.body
    assert result.headers["content-type"] == content_type


# --- local files ---------------------------------------------------------------------


@pytest.mark.parametrize("as_url", [True, False], ids=["file-url", "plain-path"])
async def test_local_file(tmp_path: Path, fetcher: Fetcher, as_url: bool) -> None:
    """A file:// URL or a path is read with its mtime as Last-Modified, and 304 when unchanged."""
    path = tmp_path / "feed with space.xml"
    path.write_bytes(FEED)
    os.utime(path, (1749384000, 1749384000))
    url = path.as_uri() if as_url else str(path)
    first = await fetcher.fetch(url)
    assert (first.status, first.body) == (200, FEED)
    assert first.last_modified == "Sun, 08 Jun 2025 12:00:00 GMT"
    second = await fetcher.fetch(url, last_modified=first.last_modified)
    assert second.status == 304 and second.body is None


async def test_missing_file_names_the_path(tmp_path: Path, fetcher: Fetcher) -> None:
    """A missing file is a permanent error naming the path."""
    path = tmp_path / "absent.xml"
    error = await fetch_error(fetcher, path.as_uri())
    assert not error.transient and error.message == f"no such file: {path}"


async def test_file_over_cap_is_refused(tmp_path: Path, make_fetcher: MakeFetcher) -> None:
    """The size cap applies to local files too."""
    path = tmp_path / "big.xml"
    path.write_bytes(b"x" * 2048)
    error = await fetch_error(make_fetcher(max_bytes=1024), str(path))
    assert "1 KiB cap (http.max_bytes)" in error.message


async def test_unsupported_scheme(fetcher: Fetcher) -> None:
    """A URL scheme other than http(s), file or a path is a permanent error."""
    error = await fetch_error(fetcher, "ftp://feeds.test/rss")
    assert not error.transient and "unsupported URL scheme 'ftp'" in error.message


# --- headers and concurrency -------------------------------------------------------


async def test_honest_request_headers(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """Requests carry our User-Agent, a feed Accept header and gzip/deflate only."""
    await fetcher.fetch(feed_server.add_feed("/rss", FEED))
    headers = feed_server.requests[0].headers
    assert headers["user-agent"] == DEFAULT_USER_AGENT
    assert f"media-monitor/{monitor.__version__} (+https://" in DEFAULT_USER_AGENT
    assert headers["accept"] == ACCEPT and "application/atom+xml" in ACCEPT
    assert headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in headers and "if-modified-since" not in headers


async def test_configured_user_agent(feed_server: FeedServer, make_fetcher: MakeFetcher) -> None:
    """http.user_agent replaces the default User-Agent."""
    fetcher = make_fetcher(user_agent="acme-desk/2 (ops@acme.test)")
    await fetcher.fetch(feed_server.add_feed("/rss", FEED))
    assert feed_server.requests[0].headers["user-agent"] == "acme-desk/2 (ops@acme.test)"


@pytest.mark.parametrize(
    ("per_host", "global_", "expected"), [(2, 10, 2), (4, 1, 1)], ids=["per-host", "global"]
)
async def test_concurrency_limits(
    feed_server: FeedServer, make_fetcher: MakeFetcher, per_host: int, global_: int, expected: int
) -> None:
    """No more requests are in flight at once than the per-host and global limits allow."""
    fetcher = make_fetcher(per_host_limit=per_host, global_limit=global_)
    url = feed_server.set_route("/slow", Delay(0.1, Body(FEED)))
    results = await asyncio.gather(*(fetcher.fetch(url) for _ in range(5)))
    assert all(r.body == FEED for r in results)
    assert feed_server.max_in_flight("/slow") == expected


async def test_context_manager_closes(feed_server: FeedServer) -> None:
    """The fetcher works as an async context manager and is closed on exit."""
    config = HttpConfig()
    async with Fetcher(config, SystemClock()) as fetcher:
        result = await fetcher.fetch(feed_server.add_feed("/rss", FEED))
    assert result.body == FEED
    with pytest.raises(RuntimeError):
        await fetcher.fetch(feed_server.url("/rss"))


def test_gzip_bomb_helper_is_small_and_huge() -> None:
    """The test server's gzip bomb is under 100 KB compressed and over 50 MB inflated."""
    bomb = gzip_bomb()
    assert len(bomb) < 100_000
    assert len(gzip.decompress(bomb)) > 50 * 1000 * 1000


async def test_many_feeds_share_one_client(
    feed_server: FeedServer, make_fetcher: MakeFetcher
) -> None:
    """Two hundred feeds fetched at once all succeed within the limits over pooled connections."""
    fetcher = make_fetcher(per_host_limit=16, global_limit=16)
    urls = [feed_server.add_feed(f"/f{n}", rss([{"guid": str(n)}])) for n in range(200)]
    results = await asyncio.gather(*(fetcher.fetch(url) for url in urls))
    assert [r.body for r in results] == [rss([{"guid": str(n)}]) for n in range(200)]
    assert feed_server.max_in_flight() <= 16
    assert len({r.client_port for r in feed_server.requests}) <= 16


def test_http_settings_carry_every_http_setting_but_workers() -> None:
    """A reader worker's Fetcher gets HttpSettings, not the HttpConfig: nothing the
    Fetcher uses may be lost on the way (``workers`` is the poller's business)."""
    config = HttpConfig.model_validate(
        {
            "user_agent": "ua",
            "timeout": {"connect": 1, "read": 2.5, "total": "1m"},
            "max_bytes": 1000,
            "max_redirects": 2,
            "per_host_limit": 3,
            "global_limit": 9,
        }
    )
    settings = HttpSettings.of(config)
    assert settings == HttpSettings("ua", 1.0, 2.5, 60.0, 1000, 2, 3, 9)
    assert HttpSettings.of(settings) is settings
    fields = {*HttpConfig.model_fields} - {"workers", "timeout"} | {*TimeoutConfig.model_fields}
    assert fields == set(HttpSettings.__dataclass_fields__)
