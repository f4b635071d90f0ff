"""The daemon's small HTTP server: ``/healthz``, ``/readyz`` and ``/metrics``.

    GET /healthz  200 {"status": "ok"}               the process and its event loop answer
    GET /readyz   200 / 503 {"ready": ..., "checks": {...}, "failed": [...]}
    GET /metrics  Prometheus text format (monitor.metrics)

It runs on the daemon's own event loop (``asyncio.start_server``), not in a
thread: a loop blocked by a runaway parse then fails the health check too, which
is what a supervisor should hear, and the readiness checks read the daemon's
state without locks. HTTP/1.1 with ``Connection: close``, GET and HEAD only: it
is meant for Prometheus, ``monitor health`` and curl, not for browsers.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from http import HTTPStatus

import structlog

from monitor.exceptions import ServerError
from monitor.metrics import CONTENT_TYPE

log = structlog.get_logger("monitor")

OK = "ok"
READ_TIMEOUT = 5.0  # a client that sends no request line in this long is dropped
MAX_HEADER_LINES = 100
MAX_LINE = 8192
SHOWN = 5  # feed ids named in a readiness message

# name -> "ok" or what is wrong, e.g. {"store": "ok", "polls": "waiting for ..."}
Checks = Mapping[str, str]
# Where to ask a daemon that listens on every interface.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - not bound


class HealthServer:
    """Serves the three endpoints from two callbacks; ``port`` is the bound one after start."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        readiness: Callable[[], Checks],
        metrics: Callable[[], bytes],
    ) -> None:
        self.host = host
        self.port = port
        self._readiness = readiness
        self._metrics = metrics
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._handle, self.host, self.port, limit=MAX_LINE
            )
        except OSError as e:
            address = f"{self.host}:{self.port}"
            raise ServerError(
                address,
                f"cannot listen for /healthz, /readyz and /metrics ({e.strerror or e}); "
                "set server.port (or MONITOR_SERVER__PORT) to a free port, "
                "or server.enabled: false",
            ) from e
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("serving", host=self.host, port=self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT)
            if request is not None:
                method, path = request
                status, content_type, body = self._respond(method, path)
                await _write(writer, status, content_type, body, head=method == "HEAD")
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # a client that went away or spoke nonsense; nothing to answer
        except Exception:  # a bug in a callback: loud, but the daemon keeps serving
            log.critical("server_bug", exc_info=True)
            await _write(writer, HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain", b"internal error")
        finally:
            writer.close()

    def _respond(self, method: str, path: str) -> tuple[HTTPStatus, str, bytes]:
        if method not in ("GET", "HEAD"):
            return HTTPStatus.METHOD_NOT_ALLOWED, "text/plain", b"GET or HEAD only\n"
        if path == "/healthz":
            return HTTPStatus.OK, "application/json", _json({"status": "ok"})
        if path == "/readyz":
            checks = dict(self._readiness())
            failed = [name for name, state in checks.items() if state != OK]
            status = HTTPStatus.SERVICE_UNAVAILABLE if failed else HTTPStatus.OK
            return (
                status,
                "application/json",
                _json({"ready": not failed, "checks": checks, "failed": failed}),
            )
        if path == "/metrics":
            return HTTPStatus.OK, CONTENT_TYPE, self._metrics()
        return HTTPStatus.NOT_FOUND, "text/plain", b"not found: try /healthz, /readyz, /metrics\n"


def polls_check(
    now: datetime,
    grace: Mapping[str, timedelta],
    *,
    polled: Collection[str],
    due: Mapping[str, datetime | None],
) -> str:
    """The readiness of polling: OK when every feed (``grace``: id -> how late its poll may
    be) was ``polled`` since start and none is overdue, past its ``due`` time, by more
    than its grace; so a poll cycle finished, and recently.

    The daemon counts a feed whose first poll waits on a stored backoff as polled, and
    gives each feed its interval plus a request's time as grace.
    """
    waiting = [feed for feed in grace if feed not in polled]
    if waiting:
        return f"waiting for the first poll of {len(waiting)} feed(s): {_some(waiting)}"
    overdue = [feed for feed, late in grace.items() if (at := due.get(feed)) and now - at > late]
    if overdue:
        return f"{len(overdue)} feed(s) overdue by more than their interval: {_some(overdue)}"
    return OK


def _some(ids: list[str]) -> str:
    more = len(ids) - SHOWN
    return ", ".join(ids[:SHOWN]) + (f" and {more} more" if more > 0 else "")


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """(method, path without query) from the request line; the headers are read and dropped."""
    line = await reader.readline()
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    for _ in range(MAX_HEADER_LINES):
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
    return parts[0].upper(), parts[1].split("?", 1)[0]


async def _write(
    writer: asyncio.StreamWriter,
    status: HTTPStatus,
    content_type: str,
    body: bytes,
    *,
    head: bool = False,
) -> None:
    lines = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(lines.encode("latin-1") + (b"" if head else body))
    await writer.drain()


def _json(data: object) -> bytes:
    return json.dumps(data, sort_keys=True).encode() + b"\n"


def ask_ready(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """GET /readyz of a daemon (``monitor health``): (ready, one line saying why).

    http.client rather than urllib or httpx: no proxy variables apply to a loopback
    check, and it imports in milliseconds.
    """
    target = _LOOPBACK.get(host, host)
    url = f"http://{f'[{target}]' if ':' in target else target}:{port}/readyz"
    conn = http.client.HTTPConnection(target, port, timeout=timeout)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        body = response.read(64 * 1024)
    except (OSError, http.client.HTTPException) as e:
        return False, f"not ready: cannot ask {url}: {e or type(e).__name__}"
    finally:
        conn.close()
    if response.status == HTTPStatus.OK:
        return True, f"ready: {url}"
    try:
        answer = json.loads(body)
        checks = answer["checks"]
        reasons = "; ".join(f"{name}: {checks[name]}" for name in answer["failed"])
    except (ValueError, KeyError, TypeError):
        reasons = ""
    return False, f"not ready: {reasons or f'HTTP {response.status} from {url}'}"
