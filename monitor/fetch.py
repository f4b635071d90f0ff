"""Fetch feeds: one small httpx client per host, conditional GET, our own redirect handling.

::

    fetch(url, etag, last_modified)
      file:// or a path -> read in a thread, Last-Modified from mtime
      http(s)           -> per-host slot -> global slot -> GET (stream)
                           -> 301/302/303/307/308: follow, at most http.max_redirects hops
                           -> 304: not modified
                           -> 2xx: body, capped at http.max_bytes (decoded) while streaming
                           -> anything else: FetchError

Every failure is a ``FetchError`` whose message says what happened in words;
the httpx exception rides along as its ``__cause__``. Programming errors
(using a closed fetcher, say) propagate unwrapped.

Redirects are followed here rather than by httpx so that we can tell a
permanent move (only 301/308 in the chain) from a temporary one, refuse
redirects to other schemes (``file://``), and detect loops.

Each host gets its own ``httpx.AsyncClient`` with a pool of
``http.per_host_limit`` connections, created on first use. One shared pool of
``http.global_limit`` connections would do, but httpcore scans every pooled
connection for every queued request, which made the pool the biggest cost of
polling a thousand feeds. All clients share one TLS context and one set of
settings. Hosts with nothing in flight keep their idle connections only while
they are among the most recently used, so the number of idle sockets stays
bounded however many publishers the config lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.util
import mimetypes
import socket
import ssl
import sys
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx

from monitor import __version__
from monitor.clock import Clock
from monitor.exceptions import FetchError
from monitor.types import FetchResult

if TYPE_CHECKING:
    from monitor.config.models import HttpConfig

DEFAULT_USER_AGENT = (
    f"media-monitor/{__version__} (+https://github.com/media-monitor/media-monitor)"
)
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, */*;q=0.8"
)
# Only what _Decoder below can inflate with a bounded output.
ACCEPT_ENCODING = "gzip, deflate"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT_REDIRECTS = frozenset({301, 308})
_DRAIN_LIMIT = 64 * 1024  # read this much of a redirect/error body so the connection is reused

# httpcore tries `import sniffio` on every request. Without sniffio installed each try
# searches sys.path afresh, thousands of times a poll; recording the absence once makes
# the failed import instant. (Installing sniffio would do as well.)
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """What a Fetcher uses of the ``http`` section, in plain values (seconds as floats).

    A reader worker is sent these rather than the ``HttpConfig``: unpickling that would
    import pydantic and every config model, half of the worker's start-up.
    """

    user_agent: str
    connect: float  # http.timeout.connect
    read: float  # http.timeout.read
    total: float  # http.timeout.total
    max_bytes: int
    max_redirects: int
    per_host_limit: int
    global_limit: int

    @classmethod
    def of(cls, http: HttpConfig | HttpSettings) -> HttpSettings:
        """The settings of ``http`` (settings as they are)."""
        if isinstance(http, HttpSettings):
            return http
        t = http.timeout
        return cls(
            user_agent=http.user_agent,
            connect=t.connect.total_seconds(),
            read=t.read.total_seconds(),
            total=t.total.total_seconds(),
            max_bytes=http.max_bytes,
            max_redirects=http.max_redirects,
            per_host_limit=http.per_host_limit,
            global_limit=http.global_limit,
        )


@dataclass(slots=True)
class _Host:
    """One host's request slots and client; ``active`` counts requests queued or in flight."""

    slot: asyncio.Semaphore
    client: httpx.AsyncClient
    active: int = 0


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes | None


class Fetcher:
    """Fetches feeds over HTTP(S) or from disk; share one per process.

    Concurrency is bounded twice: ``http.per_host_limit`` requests per host
    and ``http.global_limit`` in all. ``FetchResult.elapsed_ms`` is the time
    spent on the network for all hops, not the time queued for a slot.
    """

    def __init__(
        self,
        config: HttpConfig | HttpSettings,
        clock: Clock,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = settings = HttpSettings.of(config)
        self._clock = clock
        # An injected transport (tests) serves every host and is closed once, by aclose().
        self._transport = transport
        self._shared = _Borrowed(transport) if transport is not None else None
        self._headers = {
            "User-Agent": settings.user_agent or DEFAULT_USER_AGENT,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        # The config has no write or pool timeout: a request line is small, so
        # writing gets the read timeout; the semaphores below keep the pool from
        # running dry, so waiting for it gets the connect timeout.
        self._timeout = httpx.Timeout(
            connect=settings.connect, read=settings.read, write=settings.read, pool=settings.connect
        )
        self._limits = httpx.Limits(
            max_connections=settings.per_host_limit,
            max_keepalive_connections=settings.per_host_limit,
        )
        self._tls: ssl.SSLContext | None = None  # made with the first client, then shared
        self._global = asyncio.Semaphore(settings.global_limit)
        self._hosts: dict[str, _Host] = {}
        # Hosts with nothing in flight, least recently used first; beyond this many
        # their clients are closed, so idle connections stay within http.global_limit.
        self._idle: OrderedDict[str, _Host] = OrderedDict()
        self._max_idle_hosts = max(1, settings.global_limit // settings.per_host_limit)
        self._closed = False

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        hosts, self._hosts = list(self._hosts.values()), {}
        self._idle.clear()
        for host in hosts:
            await host.client.aclose()
        if self._transport is not None:
            await self._transport.aclose()

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET ``url`` conditionally; ``body`` is None when it has not changed.

        Raises FetchError for anything but a 2xx or 304 at the end of the
        redirect chain.
        """
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("http", "https"):
            return await self._fetch_http(url, etag, last_modified)
        if scheme == "file" or scheme == "" or len(scheme) == 1:  # 1: a Windows drive letter
            return await self._fetch_file(url, last_modified)
        raise FetchError(
            url,
            f"unsupported URL scheme {scheme!r}; use http(s)://, file:// or a path",
            transient=False,
        )

    # --- HTTP ---------------------------------------------------------------

    async def _fetch_http(
        self, url: str, etag: str | None, last_modified: str | None
    ) -> FetchResult:
        try:
            current = httpx.URL(url)
        except httpx.InvalidURL as e:
            raise FetchError(url, "invalid URL", transient=False) from e
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        chain = [str(current)]
        permanent = True
        spent = 0.0  # seconds on the network, counted against http.timeout.total
        while True:
            reply, took = await self._exchange(url, current, headers, spent)
            spent += took
            if reply.status in _REDIRECTS and "location" in reply.headers:
                current = self._next_hop(url, current, reply.headers["location"], chain)
                permanent = permanent and reply.status in _PERMANENT_REDIRECTS
                continue
            moved = str(current) if permanent and len(chain) > 1 else None
            return self._result(url, str(current), reply, etag, last_modified, moved, spent)

    async def _exchange(
        self, url: str, target: httpx.URL, headers: dict[str, str], spent: float
    ) -> tuple[_Reply, float]:
        """One request/response under both concurrency limits and the remaining deadline."""
        total = self._config.total
        async with self._host(target.host) as host, host.slot, self._global:
            start = time.perf_counter()
            try:
                async with asyncio.timeout(max(total - spent, 0.0)) as deadline:
                    reply = await self._send(host.client, url, target, headers)
            except TimeoutError as e:
                if not deadline.expired():
                    raise
                raise FetchError(
                    url,
                    f"timed out after {_secs(total)}: the whole request, body included, "
                    "took longer than http.timeout.total",
                    transient=True,
                ) from e
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as e:
                raise FetchError(url, f"invalid URL {str(target)!r}", transient=False) from e
            except httpx.TransportError as e:
                raise FetchError(url, self._describe(e), transient=True) from e
            return reply, time.perf_counter() - start

    @contextlib.asynccontextmanager
    async def _host(self, name: str) -> AsyncIterator[_Host]:
        """The host's slots and client, kept open while any request to it is queued or running."""
        if self._closed:
            raise RuntimeError("this Fetcher has been closed")
        host = self._hosts.get(name) or self._open_host(name)
        self._idle.pop(name, None)
        host.active += 1
        try:
            yield host
        finally:
            host.active -= 1
            if host.active == 0 and self._hosts.get(name) is host:
                self._idle[name] = host
                if len(self._idle) > self._max_idle_hosts:
                    oldest, stale = self._idle.popitem(last=False)
                    del self._hosts[oldest]
                    await stale.client.aclose()

    def _open_host(self, name: str) -> _Host:
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        client = httpx.AsyncClient(
            headers=self._headers,
            timeout=self._timeout,
            limits=self._limits,
            verify=self._tls,
            follow_redirects=False,
            http1=True,
            http2=False,
            transport=self._shared,
        )
        host = self._hosts[name] = _Host(asyncio.Semaphore(self._config.per_host_limit), client)
        return host

    async def _send(
        self, client: httpx.AsyncClient, url: str, target: httpx.URL, headers: dict[str, str]
    ) -> _Reply:
        request = client.build_request("GET", target, headers=headers)
        response = await client.send(request, stream=True)
        try:
            body = None
            if 200 <= response.status_code < 300:
                body = await self._read_body(url, response)
            else:  # a 304 too: until its empty body is read, httpcore will not reuse the connection
                await _drain(response)
        finally:
            await response.aclose()
        plain = dict(response.headers.items())  # lower-cased keys, repeats comma-joined
        return _Reply(response.status_code, response.reason_phrase, plain, body)

    async def _read_body(self, url: str, response: httpx.Response) -> bytes:
        """The decoded body, refused as soon as it (or its wire size) passes the cap."""
        cap = self._config.max_bytes
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            raise _too_large(url, cap, f"Content-Length says {int(length)} bytes")
        if response.is_stream_consumed:  # built from bytes, e.g. by httpx.MockTransport
            if len(response.content) > cap:
                raise _too_large(url, cap, f"the body has {len(response.content)} bytes")
            return response.content
        decoder = _Decoder.for_encoding(url, response.headers.get("content-encoding", ""))
        parts: list[bytes] = []
        size = wire = 0
        async with contextlib.aclosing(_raw(response)) as chunks:
            async for chunk in chunks:
                wire += len(chunk)
                if wire > cap:
                    raise _too_large(url, cap, f"more than {cap} bytes arrived")
                data = decoder.decode(chunk, cap - size)
                size += len(data)
                if size > cap:
                    raise _too_large(url, cap, f"the {decoder.name} body inflates past it")
                parts.append(data)
        return b"".join(parts)

    def _next_hop(self, url: str, current: httpx.URL, location: str, chain: list[str]) -> httpx.URL:
        try:
            target = current.join(location).copy_with(fragment=None)
        except httpx.InvalidURL as e:
            raise FetchError(
                url, f"redirect to an invalid URL {location!r}", transient=False
            ) from e
        if target.scheme not in ("http", "https"):
            raise FetchError(
                url, f"refusing to follow a redirect to {str(target)!r}", transient=False
            )
        route = " -> ".join([*chain, str(target)])
        if str(target) in chain:
            raise FetchError(url, f"redirect loop: {route}", transient=False)
        if len(chain) > self._config.max_redirects:
            raise FetchError(
                url,
                f"too many redirects: more than {self._config.max_redirects} "
                f"(http.max_redirects): {route}",
                transient=False,
            )
        chain.append(str(target))
        return target

    def _result(
        self,
        url: str,
        final: str,
        reply: _Reply,
        etag: str | None,
        last_modified: str | None,
        moved: str | None,
        spent: float,
    ) -> FetchResult:
        if reply.body is None and reply.status != 304:
            raise self._status_error(url, final, reply)
        h, unchanged = reply.headers, reply.status == 304
        return FetchResult(
            url=final,
            status=reply.status,
            body=reply.body,
            headers=h,
            # A 304 may omit the validators; the ones we sent still hold.
            etag=h.get("etag") or (etag if unchanged else None),
            last_modified=h.get("last-modified") or (last_modified if unchanged else None),
            permanent_url=moved,
            elapsed_ms=spent * 1000,
        )

    def _status_error(self, url: str, final: str, reply: _Reply) -> FetchError:
        status, what = reply.status, f"HTTP {reply.status} {reply.reason}".rstrip()
        if final != url:
            what += f" from {final}"
        if status == 410:
            return FetchError(
                url,
                f"{what}: the server says the feed is gone for good; it will be disabled",
                transient=False,
                status=status,
                gone=True,
            )
        if status in (429, 503):
            wait = retry_after_seconds(
                reply.headers.get("retry-after"), reply.headers.get("date"), self._clock.now()
            )
            hint = f"; it asks us to retry after {wait:g}s" if wait is not None else ""
            why = "too many requests" if status == 429 else "the server is unavailable"
            return FetchError(
                url, f"{what}: {why}{hint}", transient=True, status=status, retry_after=wait
            )
        if status >= 500:
            return FetchError(url, f"{what}: server error", transient=True, status=status)
        if status in _REDIRECTS:
            return FetchError(
                url, f"{what} without a Location header", transient=False, status=status
            )
        hint = {
            401: "the feed needs credentials",
            403: "the server refuses to serve it to us",
            404: "no feed at this URL",
        }.get(status, "the server rejected the request")
        return FetchError(url, f"{what}: {hint}", transient=False, status=status)

    def _describe(self, exc: httpx.TransportError) -> str:
        """What went wrong, in words, for a transport-level failure."""
        t = self._config
        if isinstance(exc, httpx.ConnectTimeout):
            return f"timed out connecting after {_secs(t.connect)}"
        if isinstance(exc, httpx.ReadTimeout):
            return f"timed out reading the response after {_secs(t.read)}"
        if isinstance(exc, httpx.WriteTimeout):
            return f"timed out sending the request after {_secs(t.read)}"
        if isinstance(exc, httpx.PoolTimeout):
            return f"timed out waiting for a free connection after {_secs(t.connect)}"
        if isinstance(exc, httpx.ConnectError):
            return _describe_connect(exc)
        if isinstance(exc, httpx.RemoteProtocolError):
            text = str(exc)
            if "without sending a response" in text:
                return "the server closed the connection without sending a response"
            if "complete message body" in text:
                detail = text.partition(": ")[2]
                return "the server closed the connection before the whole body arrived" + (
                    f" ({detail})" if detail else ""
                )
            return f"the server sent an invalid HTTP response ({text})"
        if isinstance(exc, httpx.ReadError):
            return "the connection broke while reading the response"
        if isinstance(exc, httpx.WriteError):
            return "the connection broke while sending the request"
        if isinstance(exc, httpx.ProxyError):
            return f"the proxy failed ({exc})"
        return f"the request failed ({type(exc).__name__}: {exc})"

    # --- files ---------------------------------------------------------------

    async def _fetch_file(self, url: str, last_modified: str | None) -> FetchResult:
        parts = urlsplit(url)
        if parts.scheme.lower() == "file":
            if parts.netloc not in ("", "localhost"):
                raise FetchError(url, "file:// URLs must name a local file", transient=False)
            path = Path(url2pathname(parts.path))
        else:
            path = Path(url)
        start = time.perf_counter()
        result = await asyncio.to_thread(
            _read_file, url, path, self._config.max_bytes, last_modified
        )
        return replace(result, elapsed_ms=(time.perf_counter() - start) * 1000)


class _Borrowed(httpx.AsyncBaseTransport):
    """A transport lent to a host's client: that client closing does not close it."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        pass


def retry_after_seconds(value: str | None, date: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date.

    A date is taken relative to the response's Date header (the server's
    clock), else ``now``; a date in the past means 0. Unreadable -> None.
    """
    if not value:
        return None
    value = value.strip()
    with contextlib.suppress(ValueError):
        return float(max(int(value), 0))
    when = _http_date(value)
    if when is None:
        return None
    reference = _http_date(date) or now
    return max((when - reference).total_seconds(), 0.0)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Decoder:
    """Incremental Content-Encoding decoding that never inflates more than allowed.

    httpx's own decoders inflate a whole network chunk at once, so one small
    compressed chunk can become hundreds of megabytes; here every call is
    bounded by the room left under the cap.
    """

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        wbits = {"gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}.get(name)
        self._zlib = zlib.decompressobj(wbits) if wbits else None
        self._first = True

    @classmethod
    def for_encoding(cls, url: str, header: str) -> _Decoder:
        codings = [c.strip().lower() for c in header.split(",")]
        codings = [{"x-gzip": "gzip"}.get(c, c) for c in codings if c and c != "identity"]
        if not codings:
            return cls(url, "identity")
        if len(codings) == 1 and codings[0] in ("gzip", "deflate"):
            return cls(url, codings[0])
        raise FetchError(
            url,
            f"unsupported Content-Encoding {header!r}; we asked for {ACCEPT_ENCODING}",
            transient=False,
        )

    def decode(self, data: bytes, room: int) -> bytes:
        """``data`` decoded; longer than ``room`` (``room`` >= 0) only if it overflows."""
        if self._zlib is None:
            return data
        first, self._first = self._first, False
        try:
            # max_length=0 would mean "unlimited", hence room + 1.
            return self._zlib.decompress(data, room + 1)
        except zlib.error as e:
            if first and self.name == "deflate":
                # Some servers send raw deflate without the zlib header; httpx copes too.
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                self.name = "raw deflate"
                return self.decode(data, room)
            raise FetchError(
                self.url, f"could not decode the {self.name} body ({e})", transient=False
            ) from e


def _raw(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The wire bytes; ``aiter_raw`` is an async generator, typed only as an iterator."""
    return cast(AsyncGenerator[bytes, None], response.aiter_raw())


async def _drain(response: httpx.Response) -> None:
    """Read a little of an unwanted body so the connection can go back to the pool."""
    size = 0
    if response.is_stream_consumed:
        return
    with contextlib.suppress(httpx.HTTPError):
        async with contextlib.aclosing(_raw(response)) as chunks:
            async for chunk in chunks:
                size += len(chunk)
                if size > _DRAIN_LIMIT:
                    return


def _read_file(url: str, path: Path, cap: int, last_modified: str | None) -> FetchResult:
    """Blocking file read for ``asyncio.to_thread``; 304 when the mtime is unchanged."""
    try:
        stat = path.stat()
        mtime = formatdate(stat.st_mtime, usegmt=True)
        if last_modified == mtime:
            return FetchResult(url, 304, None, {"last-modified": mtime}, last_modified=mtime)
        if stat.st_size > cap:
            raise _too_large(url, cap, f"{path} is {stat.st_size} bytes")
        with path.open("rb") as f:
            body = f.read(cap + 1)
    except FileNotFoundError as e:
        raise FetchError(url, f"no such file: {path}", transient=False) from e
    except IsADirectoryError as e:
        raise FetchError(url, f"{path} is a directory, not a feed file", transient=False) from e
    except PermissionError as e:
        raise FetchError(url, f"no permission to read {path}", transient=False) from e
    except OSError as e:
        raise FetchError(url, f"could not read {path}", transient=True) from e
    if len(body) > cap:
        raise _too_large(url, cap, f"{path} grew past it while being read")
    headers = {"content-length": str(len(body)), "last-modified": mtime}
    # A file has no Content-Type; without one feedparser flags every local feed.
    guessed, _ = mimetypes.guess_type(path.name)
    headers["content-type"] = guessed or "application/xml"
    return FetchResult(url, 200, body, headers, last_modified=mtime)


def _describe_connect(exc: httpx.ConnectError) -> str:
    cause = _root_os_error(exc)
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, socket.gaierror):
        return "could not resolve the host name"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed ({cause.verify_message})"
    if isinstance(cause, ssl.SSLError):
        return f"TLS handshake failed ({cause.reason or cause})"
    if cause is not None and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "network or host unreachable"
    if "Name or service not known" in str(exc) or "nodename nor servname" in str(exc):
        return "could not resolve the host name"
    return f"could not connect ({exc})"


def _root_os_error(exc: BaseException) -> OSError | None:
    """The innermost OSError with a meaning (errno or type) in a chain of wrapped errors."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    found: OSError | None = None
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and (e.errno is not None or type(e) is not OSError):
            found = e
        stack.extend([e.__cause__, e.__context__, *getattr(e, "exceptions", ())])
    return found


def _too_large(url: str, cap: int, why: str) -> FetchError:
    return FetchError(
        url, f"response larger than the {_size(cap)} cap (http.max_bytes): {why}", transient=False
    )


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def _secs(seconds: float) -> str:
    return f"{seconds:g}s"
