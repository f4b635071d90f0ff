"""A programmable HTTP feed server on 127.0.0.1 for tests and benchmarks.

Real sockets, real HTTP/1.1 with keep-alive (stdlib ``ThreadingHTTPServer`` in a
background thread, port 0), so the fetcher is exercised end to end::

    with FeedServer() as server:                      # or the ``feed_server`` fixture
        server.add_feed("/rss", rss([{"title": "Strike"}]), etag=True)
        server.set_route("/old", Redirect("/rss", status=301))
        server.set_route("/gone", Status(410))
        url = server.url("/old")
        ...
        assert server.count("/rss", status=304) == 1

Routes are *behaviours*: small objects with a ``respond(handler)`` method.
The ones here cover what hostile or broken feed servers do:

===================  ======================================================
``Feed``             a feed with ETag / Last-Modified; 304 on a match
``Body``             any fixed response (HTML page, empty 200, odd charsets)
``Redirect``         301/302/303/307/308 to a path or URL (loops welcome)
``Status``           a bare status with headers (404, 410, 429, 500, 503)
``Slow``             headers at once, then the body trickled byte by byte
``Delay``            wait, then behave like another behaviour
``Oversize``         a big body, with or without Content-Length
``GzipBomb``         a small gzip body that inflates to more than 50 MB
``CloseMidBody``     announce N bytes, send fewer, close the connection
===================  ======================================================

plus factories for the charset cases: :func:`html_page`, :func:`empty_ok`,
:func:`invalid_utf8_feed`, :func:`cp1251_feed_declared_utf8`.

Every request is recorded (:attr:`FeedServer.requests`) with its path,
lower-cased headers and the status answered, and the server counts how many
requests were in flight at once (:meth:`FeedServer.max_in_flight`).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import socket
import sys
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Protocol
from xml.sax.saxutils import escape

__all__ = [
    "Body",
    "CloseMidBody",
    "Delay",
    "Feed",
    "FeedServer",
    "GzipBomb",
    "Oversize",
    "RecordedRequest",
    "Redirect",
    "Slow",
    "Status",
    "atom",
    "cp1251_feed_declared_utf8",
    "empty_ok",
    "html_page",
    "invalid_utf8_feed",
    "rss",
]

RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


# --- feed builders ---------------------------------------------------------------


def rss(items: list[dict[str, str]], title: str = "Test feed", link: str = "") -> bytes:
    """A small valid RSS 2.0 document.

    Each item is a dict of guid, title, link, description and pubDate (any subset).
    """
    entries = "".join(
        "<item>" + "".join(_rss_element(k, v) for k, v in item.items()) + "</item>\n"
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>\n'
        f"<title>{escape(title)}</title><link>{escape(link or 'http://example.test/')}</link>"
        f"<description>{escape(title)}</description>\n{entries}</channel></rss>\n"
    ).encode()


def _rss_element(key: str, value: str) -> str:
    attrs = ' isPermaLink="false"' if key == "guid" else ""
    return f"<{key}{attrs}>{escape(value)}</{key}>"


def atom(items: list[dict[str, str]], title: str = "Test feed", feed_id: str = "") -> bytes:
    """A small valid Atom 1.0 document from the same item dicts as :func:`rss`.

    ``guid`` becomes ``<id>``, ``link`` ``<link href>``, ``description``
    ``<summary>`` and ``pubDate`` (any RFC 822 date) ``<updated>``.
    """
    updated = "2025-06-08T12:00:00Z"
    entries = []
    for n, item in enumerate(items):
        when = item.get("pubDate")
        stamp = parsedate_to_datetime(when).astimezone(UTC).isoformat() if when else updated
        link = item.get("link", "")
        entries.append(
            "<entry>"
            f"<id>{escape(item.get('guid') or link or f'urn:test:{n}')}</id>"
            f"<title>{escape(item.get('title', ''))}</title>"
            + (f'<link href="{escape(link)}"/>' if link else "")
            + f"<updated>{stamp}</updated>"
            f"<summary>{escape(item.get('description', ''))}</summary>"
            "</entry>\n"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f"<id>{escape(feed_id or 'urn:test:feed')}</id><title>{escape(title)}</title>"
        f"<updated>{updated}</updated>\n{''.join(entries)}</feed>\n"
    ).encode()


# --- behaviours ------------------------------------------------------------------


class Behaviour(Protocol):
    def respond(self, handler: _Handler) -> None: ...


@dataclass
class Feed:
    """A feed served with validators; answers 304 to a matching conditional GET.

    ``etag``: True derives one from the body, a string is sent as is, None
    sends none. ``last_modified``: an HTTP-date string or a datetime. With
    ``compress``, the body is gzipped for clients that accept gzip.
    """

    body: bytes
    content_type: str = RSS_TYPE
    etag: bool | str | None = True
    last_modified: str | datetime | None = None
    compress: bool = False

    def _etag(self) -> str | None:
        if self.etag is True:
            return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'
        return self.etag or None

    def _last_modified(self) -> str | None:
        if isinstance(self.last_modified, datetime):
            return format_datetime(self.last_modified.astimezone(UTC), usegmt=True)
        return self.last_modified

    def respond(self, handler: _Handler) -> None:
        etag, modified = self._etag(), self._last_modified()
        validators = {k: v for k, v in (("ETag", etag), ("Last-Modified", modified)) if v}
        if _not_modified(handler, etag, modified):
            handler.reply(304, validators, b"")
            return
        headers = {"Content-Type": self.content_type, **validators}
        body = self.body
        if self.compress and "gzip" in handler.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        handler.reply(200, headers, body)


@dataclass
class Body:
    """A fixed response: any status, headers and bytes."""

    body: bytes
    content_type: str = RSS_TYPE
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    def respond(self, handler: _Handler) -> None:
        handler.reply(self.status, {"Content-Type": self.content_type, **self.headers}, self.body)


@dataclass
class Redirect:
    """A redirect to ``location``: a path on this server or an absolute URL."""

    location: str
    status: int = 301

    def respond(self, handler: _Handler) -> None:
        handler.reply(self.status, {"Location": self.location}, b"")


@dataclass
class Status:
    """A bare status with optional headers, e.g. ``Status(429, {"Retry-After": "120"})``.

    A ``Date`` header given here replaces the server's own, so tests can pin
    the clock a Retry-After date is measured against.
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def respond(self, handler: _Handler) -> None:
        handler.reply(self.status, {"Content-Type": "text/plain", **self.headers}, self.body)


@dataclass
class Slow:
    """Sends headers at once, then ``body`` ``chunk`` bytes every ``interval`` seconds."""

    body: bytes = b"<rss>" + b" " * 200 + b"</rss>"
    interval: float = 0.5
    chunk: int = 1
    content_type: str = RSS_TYPE

    def respond(self, handler: _Handler) -> None:
        handler.start(200, {"Content-Type": self.content_type, "Content-Length": len(self.body)})
        for i in range(0, len(self.body), self.chunk):
            if handler.server.wait(self.interval):
                break
            handler.send(self.body[i : i + self.chunk])
        handler.close_connection = True


@dataclass
class Delay:
    """Waits ``seconds`` before behaving like ``then`` (a slow server, for concurrency tests)."""

    seconds: float
    then: Behaviour = field(default_factory=lambda: Body(rss([])))

    def respond(self, handler: _Handler) -> None:
        handler.server.wait(self.seconds)
        self.then.respond(handler)


@dataclass
class Oversize:
    """``size`` bytes of filler, announced by Content-Length or sent chunked without it."""

    size: int
    content_length: bool = True

    def respond(self, handler: _Handler) -> None:
        block = b"<!-- " + b"x" * (64 * 1024 - 9) + b" -->"
        headers: dict[str, object] = {"Content-Type": RSS_TYPE}
        if self.content_length:
            headers["Content-Length"] = self.size
        else:
            headers["Transfer-Encoding"] = "chunked"
        handler.start(200, headers)
        left = self.size
        while left > 0 and not handler.server.stopping.is_set():
            part = block[: min(left, len(block))]
            handler.send(part if self.content_length else _chunk(part))
            left -= len(part)
        if not self.content_length:
            handler.send(b"0\r\n\r\n")


@dataclass
class GzipBomb:
    """``Content-Encoding: gzip``, about 64 KB on the wire, ``decoded_size`` bytes inflated.

    Deflate tops out near 1000:1, so 64 MiB of zeros needs ~64 KB; it is built
    once per process and cached.
    """

    decoded_size: int = 64 * 1024 * 1024

    def respond(self, handler: _Handler) -> None:
        body = gzip_bomb(self.decoded_size)
        handler.reply(200, {"Content-Type": RSS_TYPE, "Content-Encoding": "gzip"}, body)


@dataclass
class CloseMidBody:
    """Announces ``len(body)`` bytes, sends the first ``sent`` of them, then closes."""

    body: bytes = b"<rss>" + b" " * 1000 + b"</rss>"
    sent: int = 100

    def respond(self, handler: _Handler) -> None:
        handler.start(200, {"Content-Type": RSS_TYPE, "Content-Length": len(self.body)})
        handler.send(self.body[: self.sent])
        handler.close_connection = True


def html_page() -> Body:
    """An HTML page where a feed was expected."""
    page = b"<!doctype html><html><head><title>News</title></head><body>Hi</body></html>"
    return Body(page, content_type=HTML_TYPE)


def empty_ok() -> Body:
    """200 with an empty body."""
    return Body(b"")


def invalid_utf8_feed() -> Body:
    """A feed declared utf-8 whose item title holds bytes that are not UTF-8."""
    feed = rss([{"guid": "bad-1", "title": "TITLE", "description": "bytes"}])
    return Body(feed.replace(b"TITLE", b"Kyiv \xff\xfe strike \xc3"))


def cp1251_feed_declared_utf8() -> Body:
    """A Russian-language feed encoded in windows-1251 while the header says utf-8."""
    text = rss([{"guid": "ru-1", "title": "Удар по Днепропетровской области"}]).decode()
    return Body(text.encode("cp1251"))


@functools.cache
def gzip_bomb(decoded_size: int = 64 * 1024 * 1024) -> bytes:
    """Gzip of ``decoded_size`` zero bytes, compressed 1 MiB at a time (~0.1 s, once)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(decoded_size >> 20)]
    parts.append(compressor.compress(bytes(decoded_size & ((1 << 20) - 1))))
    parts.append(compressor.flush())
    return b"".join(parts)


# --- the server ------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the server saw it; ``headers`` has lower-cased keys.

    It is recorded on arrival; ``status`` is filled in when the answer starts,
    so it is set by the time the client sees the response.
    """

    method: str
    path: str
    headers: dict[str, str]
    client_port: int = 0  # the same port twice means a kept-alive connection
    status: int | None = None


class FeedServer:
    """The server. Use as a context manager or through the ``feed_server`` fixture."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._httpd = _HTTPServer((host, 0), _Handler)
        self._httpd.app = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._lock = threading.Lock()
        self._routes: dict[str, Behaviour] = {}
        self._requests: list[RecordedRequest] = []
        self._in_flight: dict[str | None, int] = {}
        self._max_in_flight: dict[str | None, int] = {}
        self._started = False

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def start(self) -> FeedServer:
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers, close open connections, join threads."""
        self._httpd.stopping.set()
        if self._started:
            self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._started:
            self._thread.join(5)

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # programming

    def add_feed(
        self,
        path: str,
        body: bytes,
        content_type: str = RSS_TYPE,
        *,
        etag: bool | str | None = True,
        last_modified: str | datetime | None = None,
        compress: bool = False,
    ) -> str:
        """Serve a :class:`Feed` at ``path`` (replacing what was there); returns its URL."""
        self.set_route(path, Feed(body, content_type, etag, last_modified, compress))
        return self.url(path)

    def set_route(self, path: str, behaviour: Behaviour) -> str:
        """Answer requests for ``path`` (query string included, if any) with ``behaviour``."""
        with self._lock:
            self._routes[path] = behaviour
        return self.url(path)

    def route(self, path: str) -> Behaviour | None:
        with self._lock:
            found = self._routes.get(path)
            return found if found is not None else self._routes.get(path.partition("?")[0])

    # inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def count(self, path: str | None = None, *, status: int | None = None) -> int:
        """How many requests (for ``path``, answered with ``status``) arrived."""
        return sum(
            1
            for r in self.requests
            if (path is None or r.path == path) and (status is None or r.status == status)
        )

    def max_in_flight(self, path: str | None = None) -> int:
        """The most requests (for ``path``, or in all) being handled at the same time."""
        with self._lock:
            return self._max_in_flight.get(path, 0)

    def reset(self) -> None:
        """Forget recorded requests and in-flight maxima; routes stay."""
        with self._lock:
            self._requests.clear()
            self._max_in_flight.clear()

    # called by the handler

    def _enter(self, record: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(record)
            for key in (None, record.path):
                self._in_flight[key] = n = self._in_flight.get(key, 0) + 1
                self._max_in_flight[key] = max(self._max_in_flight.get(key, 0), n)

    def _leave(self, path: str) -> None:
        with self._lock:
            for key in (None, path):
                self._in_flight[key] -= 1


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # joined by close_connections(), not by server_close()
    request_queue_size = 256  # the default 5 drops connections under a benchmark's burst
    app: FeedServer

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        super().__init__(address, handler)
        self.stopping = threading.Event()
        self._open: dict[socket.socket, threading.Thread] = {}
        self._open_lock = threading.Lock()

    def wait(self, seconds: float) -> bool:
        """Sleep, unless the server is stopping; True when it is."""
        return self.stopping.wait(seconds)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._open_lock:
            if add:
                self._open[conn] = threading.current_thread()
            else:
                self._open.pop(conn, None)

    def close_connections(self) -> None:
        with self._open_lock:
            open_ = list(self._open.items())
        for conn, _ in open_:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for _, thread in open_:
            thread.join(5)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up mid-response is normal here (timeouts, caps).
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real feed servers
    server: _HTTPServer
    _record: RecordedRequest | None = None
    _in_flight = False

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        app = self.server.app
        headers = {k.lower(): v for k, v in self.headers.items()}
        port = int(self.client_address[1])
        self._record = RecordedRequest(self.command, self.path, headers, port)
        self._in_flight = True
        app._enter(self._record)
        try:
            behaviour = app.route(self.path)
            if behaviour is None:
                self.reply(404, {"Content-Type": "text/plain"}, f"no route {self.path}".encode())
            else:
                behaviour.respond(self)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            self.done()

    def done(self) -> None:
        """No longer in flight; called before a complete reply, so a client never sees it late."""
        if self._in_flight:
            self._in_flight = False
            self.server.app._leave(self.path)

    # response helpers for behaviours

    def start(self, status: int, headers: Mapping[str, object]) -> None:
        """Status line and headers; adds Server and Date unless given."""
        if self._record is not None:
            self._record.status = status
        self.send_response_only(status)
        given = {k.lower() for k in headers}
        if "server" not in given:
            self.send_header("Server", "feedserver")
        if "date" not in given:
            self.send_header("Date", formatdate(time.time(), usegmt=True))
        for key, value in headers.items():
            self.send_header(key, str(value))
        self.end_headers()

    def send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def reply(self, status: int, headers: Mapping[str, object], body: bytes) -> None:
        """A complete response with Content-Length (none for 304)."""
        if status != 304 and not any(k.lower() == "content-length" for k in headers):
            headers = {**headers, "Content-Length": len(body)}
        self.done()
        self.start(status, headers)
        if body and status != 304:
            self.send(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _not_modified(handler: _Handler, etag: str | None, modified: str | None) -> bool:
    """RFC 9110: If-None-Match wins over If-Modified-Since; weak ETag comparison."""
    inm = handler.headers.get("If-None-Match")
    if inm is not None:
        wanted = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return etag is not None and ("*" in wanted or etag.removeprefix("W/") in wanted)
    ims = handler.headers.get("If-Modified-Since")
    if ims is None or modified is None:
        return False
    try:
        return parsedate_to_datetime(modified) <= parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
