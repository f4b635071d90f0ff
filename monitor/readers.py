"""Reading a feed: fetch it, and parse it when its body changed; in this process or in workers.

::

    ReadRequest -> fetch (conditional GET) -> 304: Read(result)
                                           -> same body hash: Read(result, hash)
                                           -> parse -> Read(result, hash, parsed)

Fetching and parsing are the CPU-heavy, stateless part of a poll: HTTP client work and
XML parsing, about two thirds of a first poll. ``http.workers`` moves them into worker
processes so that they run on other cores, while this process keeps everything
stateful (history, rules, stories, the store) exactly as with one process.

A worker is ``python -m monitor.read_worker``, talking over its stdin and stdout in
length-prefixed pickles (our own child, so pickle is safe). A feed's host always goes
to the same worker, so ``http.per_host_limit`` holds across workers; ``global_limit``
is shared out between them. A worker that dies fails its reads in flight with a
transient ``FetchError`` (the feeds retry on their next poll) and is started again on
the next read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import pickle
import struct
import sys
import zlib
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import count
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from monitor.clock import Clock
from monitor.exceptions import FetchError
from monitor.fetch import Fetcher as HttpFetcher
from monitor.fetch import HttpSettings
from monitor.parse import ParsedFeed, parse_feed
from monitor.types import FetchResult

if TYPE_CHECKING:
    from monitor.config.models import AppConfig, HttpConfig
    from monitor.gazetteer import PackedMention

_HEADER = struct.Struct("!QI")  # call id, size of the pickle that follows
# Far above any reply (a body is capped by http.max_bytes, 10 MiB by default): a bigger
# size means the stream is out of step.
MAX_FRAME = 1 << 30
# Below this many feeds, ``workers: auto`` reads in this process: starting a worker
# costs about as much CPU as reading a hundred feeds.
AUTO_MIN_FEEDS = 200
REPLY_MARGIN = 30.0  # seconds past the longest a read may take before it is given up
AUTO_MAX_WORKERS = 4


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One feed to read, with what the poller knows of it."""

    feed_id: str
    url: str
    now: datetime
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None  # of the last body parsed; the same body is not parsed again
    tags: tuple[str, ...] = ()
    language: str | None = None
    # The feed's whole backlog is new (its first poll): a worker finds the items' places
    # too (``Read.places``), which is most of the poller's work per item, off its core.
    # Later polls bring a few new items among many known ones; the poller finds theirs.
    find_places: bool = False


PackedPlaces = tuple[tuple["PackedMention", ...], ...]  # an item's, per field


@dataclass(frozen=True, slots=True)
class Read:
    """What reading a feed gave: the fetch result, the body's hash (None on a 304) and
    the parsed feed (None on a 304 or when the body hash is unchanged).

    ``result.body`` is None on a 304; a worker sends it back empty (the poller needs
    only its size, ``body_bytes``).
    """

    result: FetchResult
    body_hash: str | None = None
    parsed: ParsedFeed | None = None
    body_bytes: int = 0
    # By the item's content_hash (places depend on its title and summary alone, and items
    # of a feed may share an id but not a text); see ReadRequest.find_places.
    places: dict[str, PackedPlaces] | None = None

    def without_body(self) -> Read:
        if not self.result.body:
            return self
        return replace(self, result=replace(self.result, body=b""))


class Fetcher(Protocol):
    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class FeedReader(Protocol):
    async def read(self, request: ReadRequest) -> Read: ...

    async def aclose(self) -> None: ...


async def read_feed(fetcher: Fetcher, request: ReadRequest) -> Read:
    """Fetch conditionally; parse only a body that changed. Raises FetchError, ParseError."""
    result = await fetcher.fetch(
        request.url, etag=request.etag, last_modified=request.last_modified
    )
    if result.body is None:
        return Read(result)
    body_hash = hashlib.sha256(result.body).hexdigest()
    size = len(result.body)
    if body_hash == request.body_hash:
        return Read(result, body_hash, body_bytes=size)
    parsed = parse_feed(
        result.body,
        result.headers,
        feed_id=request.feed_id,
        url=result.url,
        now=request.now,
        tags=request.tags,
        language=request.language,
    )
    return Read(result, body_hash, parsed, body_bytes=size)


def with_places(read: Read) -> Read:
    """``read`` with each parsed item's places (see ``ReadRequest.find_places``), by the
    shipped gazetteer. Without them if that fails: the poller finds them itself."""
    if read.parsed is None:
        return read
    try:
        return replace(read, places=_places(read.parsed))
    except Exception:  # e.g. the gazetteer's data unreadable: logged, the read still counts
        logging.getLogger("monitor.read_worker").exception("places_not_found")
        return read


def _places(parsed: ParsedFeed) -> dict[str, PackedPlaces]:
    from monitor.gazetteer import Gazetteer, pack_mentions  # only workers, only first polls
    from monitor.rules.engine import find_places

    gazetteer = Gazetteer.load()
    found: dict[str, PackedPlaces] = {}
    for item in parsed.items:
        if item.content_hash not in found:
            found[item.content_hash] = tuple(map(pack_mentions, find_places(gazetteer, item)))
    return found


class LocalReader:
    """Reads feeds in this process, with the given fetcher."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher

    async def start(self) -> None:
        """Nothing to start: see ``ProcessReader.start``."""

    async def read(self, request: ReadRequest) -> Read:
        return await read_feed(self.fetcher, request)

    async def aclose(self) -> None:
        await self.fetcher.aclose()


def build_reader(config: AppConfig, clock: Clock) -> LocalReader | ProcessReader:
    """Feeds are read in worker processes when ``http.workers`` asks for any; they start
    with ``start()`` or, failing that, with the first read."""
    workers = worker_count(config.http.workers, feeds=len(config.feeds), cpus=os.cpu_count())
    if workers == 0:
        return LocalReader(HttpFetcher(config.http, clock))
    return ProcessReader(config.http, workers, log_level=config.logging.level)


def worker_count(setting: int | str, *, feeds: int, cpus: int | None) -> int:
    """How many worker processes ``http.workers`` asks for (0: read in this process).

    ``auto``: none for fewer than AUTO_MIN_FEEDS feeds or on one core; else one per
    core but one (this process has the rest of the poll to do), at most AUTO_MAX_WORKERS.
    """
    if isinstance(setting, int):
        return setting
    cores = cpus or 1
    if feeds < AUTO_MIN_FEEDS or cores < 2:
        return 0
    return min(cores - 1, AUTO_MAX_WORKERS)


class ProcessReader:
    """Reads feeds in ``workers`` worker processes (see the module docstring)."""

    def __init__(self, http: HttpConfig, workers: int, *, log_level: str) -> None:
        if workers < 1:
            raise ValueError("ProcessReader needs at least one worker")
        # Each worker gets its share of the global limit, and never less than one host's.
        share = max(http.per_host_limit, http.global_limit // workers)
        settings = replace(HttpSettings.of(http), global_limit=share)
        setup = pickle.dumps((settings, log_level))
        self._workers = [_Worker(n, setup, settings) for n in range(workers)]

    async def start(self) -> None:
        """Start the workers now rather than at their first reads, so that their start-up
        (a quarter of a second of imports) runs on other cores while the caller gets on
        with its own. A worker that fails to start is tried again by its first read, which
        reports the failure as before."""
        await asyncio.gather(*(w.start() for w in self._workers), return_exceptions=True)

    async def read(self, request: ReadRequest) -> Read:
        host = urlsplit(request.url).hostname or ""
        # crc32, not hash(): the same host must map to the same worker in every run.
        worker = self._workers[zlib.crc32(host.encode()) % len(self._workers)]
        return await worker.call(request, host)

    async def aclose(self) -> None:
        await asyncio.gather(*(w.stop() for w in self._workers))


def _reply_timeout(settings: HttpSettings, queued_for_host: int, queued: int) -> float:
    """How long an answer may take at most: the reads queued before it may each take
    ``total``, so many rounds of them at a time as the worker's limits allow (its
    ``global_limit`` is its share)."""
    rounds = 1 + max(queued_for_host // settings.per_host_limit, queued // settings.global_limit)
    return rounds * settings.total + REPLY_MARGIN


class _Worker:
    """One worker process: requests out on its stdin, replies in from its stdout."""

    def __init__(self, number: int, setup: bytes, settings: HttpSettings) -> None:
        self.number = number
        self._setup = setup
        self._settings = settings
        self._queued: Counter[str] = Counter()  # reads in flight per host
        self._process: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Lock | None = None
        self._replies: asyncio.Task[None] | None = None
        # call id -> (its future, the feed URL, the process asked): a process that dies
        # fails its own calls only, never those of the one that replaced it.
        self._pending: dict[int, tuple[asyncio.Future[Read], str, object]] = {}
        self._ids = count(1)  # 0 is the setup frame

    async def start(self) -> None:
        await self._running()

    async def call(self, request: ReadRequest, host: str) -> Read:
        timeout = _reply_timeout(self._settings, self._queued[host], len(self._pending))
        self._queued[host] += 1
        try:
            return await self._call(request, timeout)
        finally:
            self._queued[host] -= 1
            if not self._queued[host]:
                del self._queued[host]

    async def _call(self, request: ReadRequest, timeout: float) -> Read:
        process = await self._running()
        assert process.stdin is not None
        call_id = next(self._ids)
        future: asyncio.Future[Read] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = (future, request.url, process)
        try:
            process.stdin.write(_frame(call_id, request))
            await process.stdin.drain()
        except (ConnectionError, RuntimeError):
            pass  # the process died: the reply reader fails this call with the rest
        if self._replies is not None and self._replies.done():  # it died before we asked
            self._fail_pending(process, f"exited (code {process.returncode})")
        try:
            # A worker that never answers (stuck) must not stop this feed's polling for
            # good: past the longest its queue and the fetch could take, give up.
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise FetchError(
                request.url,
                f"no answer from the feed reader process in {timeout:g} s; "
                "the feed is read again on its next poll",
                transient=True,
            ) from None
        finally:
            self._pending.pop(call_id, None)

    async def _running(self) -> asyncio.subprocess.Process:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._process is None or self._process.returncode is not None:
                self._process = await _spawn(self._setup)
                self._replies = asyncio.create_task(self._read_replies(self._process))
                _log().debug("read_worker_started", worker=self.number, pid=self._process.pid)
            return self._process

    async def _read_replies(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        why = "exited"
        try:
            while True:
                call_id, payload = await _read_raw_frame(process.stdout)
                waiting = self._pending.get(call_id)
                if waiting is None or waiting[0].done():
                    continue
                try:
                    outcome = pickle.loads(payload)  # noqa: S301 (our own child)
                except Exception as e:  # this reply only: the stream is still in step
                    outcome = FetchError(
                        waiting[1],
                        f"the feed reader's answer could not be read: {e}",
                        transient=True,
                    )
                if isinstance(outcome, BaseException):
                    waiting[0].set_exception(outcome)
                else:
                    waiting[0].set_result(outcome)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except _FrameError as e:  # out of step: nothing more it says can be trusted
            why = f"broke the protocol ({e})"
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        code = await process.wait()
        if any(p is process for _, _, p in self._pending.values()):
            _log().error("read_worker_died", worker=self.number, exit_code=code, reason=why)
        self._fail_pending(process, f"{why} (code {code})")

    def _fail_pending(self, process: object, why: str) -> None:
        for future, url, asked in list(self._pending.values()):
            if asked is process and not future.done():
                future.set_exception(
                    FetchError(
                        url,
                        f"the feed reader process {why} while reading; "
                        "the feed is read again on its next poll",
                        transient=True,
                    )
                )

    async def stop(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        assert process.stdin is not None
        process.stdin.close()  # end of requests: the worker finishes and exits
        try:
            await asyncio.wait_for(process.wait(), timeout=5)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._replies is not None:
            with contextlib.suppress(Exception):
                await self._replies


def _log() -> Any:
    """The poller's logger. structlog is imported here rather than at the top: a worker
    imports this module too, and structlog (with rich, which it imports) would be a
    fifth of the worker's start-up; in the poller it is long loaded."""
    import structlog

    return structlog.get_logger("monitor")


class _FrameError(Exception):
    """A frame that cannot be one of ours: the stream is out of step."""


async def _spawn(setup: bytes) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.read_worker",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 20,  # buffer size: a reply holds a whole parsed feed
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # Its own session: Ctrl-C or a service manager's SIGTERM goes to the daemon, which
        # drains its polls; the worker ends when its input does.
        start_new_session=True,
    )
    assert process.stdin is not None
    process.stdin.write(_HEADER.pack(0, len(setup)) + setup)
    return process


def _frame(call_id: int, message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(call_id, len(data)) + data


async def _read_raw_frame(stream: asyncio.StreamReader) -> tuple[int, bytes]:
    call_id, size = _HEADER.unpack(await stream.readexactly(_HEADER.size))
    if size > MAX_FRAME:
        raise _FrameError(f"a frame of {size} bytes")
    return call_id, await stream.readexactly(size)


async def read_frame(stream: asyncio.StreamReader) -> tuple[int, Any]:
    """One frame from ``stream``: its call id and its unpickled message."""
    call_id, payload = await _read_raw_frame(stream)
    return call_id, pickle.loads(payload)  # noqa: S301 (our own child or parent)


# --- the worker side ------------------------------------------------------------------------

_request_now: ContextVar[datetime] = ContextVar("request_now")


class RequestClock:
    """The worker's clock: the ``now`` of the request being read (``monitor once --at``
    pins the poller's clock, and Retry-After dates are read against it)."""

    def now(self) -> datetime:
        return _request_now.get()


async def serve(
    reader: asyncio.StreamReader,
    write: Callable[[bytes], None],
    fetcher: Fetcher,
) -> None:
    """Answer requests until the input ends, each as soon as it is read; then close."""
    tasks: set[asyncio.Task[None]] = set()

    async def answer(call_id: int, request: ReadRequest) -> None:
        outcome: object
        _request_now.set(request.now)  # this task's own context
        try:
            read = await read_feed(fetcher, request)
            # Here, on another core, finding places spares the poller; in its own process
            # (LocalReader) it would save nothing.
            outcome = (with_places(read) if request.find_places else read).without_body()
        except Exception as e:  # every error goes back to the poller, which logs it
            outcome = e
        try:
            frame = _frame(call_id, outcome)
            pickle.loads(frame[_HEADER.size :])  # noqa: S301 (our own) -- the poller must read it
        except Exception as e:  # an object that does not survive the trip: say so instead
            frame = _frame(
                call_id, RuntimeError(f"{type(outcome).__name__} could not be sent: {e}")
            )
        write(frame)

    with contextlib.suppress(asyncio.IncompleteReadError):
        while True:
            call_id, request = await read_frame(reader)
            task = asyncio.create_task(answer(call_id, request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    await fetcher.aclose()
