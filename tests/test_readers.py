"""Feed readers: worker processes read feeds as this process would, and fail safe.

The pipeline's own tests (test_pipeline.py) run every poll both in this process and
through a worker; these tests cover what only workers have: errors crossing the process
boundary intact, a worker dying mid-read, per-host limits held across workers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from monitor import app, cli, readers
from monitor.app import App
from monitor.clock import Clock, FixedClock, SystemClock
from monitor.config.loader import load_config
from monitor.config.models import AppConfig, HttpConfig
from monitor.exceptions import FetchError, ParseError, StorageError
from monitor.fetch import Fetcher, HttpSettings
from monitor.gazetteer import Gazetteer, pack_mentions
from monitor.parse import ParsedFeed
from monitor.readers import LocalReader, ProcessReader, Read, ReadRequest, worker_count
from monitor.rules.engine import find_places
from monitor.types import FetchResult, Item
from tests import feedserver as fs
from tests.configs import write_config
from tests.processes import monitor, wait_for

NOW = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)
ORESHNIK = {
    "guid": "o",
    "title": "Russia fires Oreshnik missile at Dnipro",
    "link": "http://example.test/o",
    "pubDate": format_datetime(NOW, usegmt=True),
}
HTTP = HttpConfig.model_validate({"timeout": {"connect": 2, "read": 5, "total": 10}})


def request(url: str, **kw: object) -> ReadRequest:
    return ReadRequest("f", url, NOW, **kw)  # type: ignore[arg-type]


OpenReader = Callable[..., ProcessReader]


@pytest.fixture
async def open_reader() -> AsyncIterator[OpenReader]:
    """``open_reader(workers=1, http=HTTP)``: worker processes, stopped after the test."""
    opened: list[ProcessReader] = []

    def open_(workers: int = 1, http: HttpConfig = HTTP) -> ProcessReader:
        opened.append(ProcessReader(http, workers, log_level="info"))
        return opened[-1]

    yield open_
    for reader in opened:
        await reader.aclose()


@pytest.fixture
def workers(open_reader: OpenReader) -> ProcessReader:
    return open_reader(2)


@pytest.fixture
async def local() -> AsyncIterator[LocalReader]:
    reader = LocalReader(Fetcher(HTTP, FixedClock(NOW)))
    yield reader
    await reader.aclose()


async def test_a_worker_reads_what_this_process_reads(
    feed_server: fs.FeedServer, workers: ProcessReader, local: LocalReader
) -> None:
    """Parsed items, validators, a permanent move and a 304 are the same either way."""
    feed_server.add_feed("/rss", fs.rss([{"guid": "1", "title": "Drones hit Odesa"}]))
    feed_server.set_route("/old", fs.Redirect("/rss", status=301))
    url = feed_server.url("/old")
    ours, theirs = await workers.read(request(url)), await local.read(request(url))
    assert _timeless(ours) == _timeless(theirs)
    assert ours.result.body == b"" and ours.body_bytes == len(theirs.result.body or b"") > 0
    assert ours.parsed is not None and [i.title for i in ours.parsed.items] == ["Drones hit Odesa"]
    assert ours.result.permanent_url == feed_server.url("/rss")
    again = await workers.read(request(url, etag=ours.result.etag, body_hash=ours.body_hash))
    assert again.result.body is None and again.parsed is None


async def test_a_worker_finds_the_places_a_first_poll_asks_for(
    feed_server: fs.FeedServer, workers: ProcessReader, local: LocalReader
) -> None:
    """Asked to, a worker sends each item's places as the rules would find them, by the
    item's text (two items may share an id, not a text); unasked, or in this process, none."""
    feed_server.add_feed("/rss", fs.rss([
        {"guid": "1", "title": "Drones hit Odesa", "description": "Kharkiv and Sumy too."},
        {"guid": "1", "title": "Drones hit Lviv"},
        {"guid": "2", "title": "Drones hit Odesa", "description": "Kharkiv and Sumy too."},
    ]))  # fmt: skip
    url = feed_server.url("/rss")
    read = await workers.read(request(url, find_places=True))
    assert read.parsed is not None and read.places is not None
    gazetteer = Gazetteer.load()
    odesa, lviv, again = read.parsed.items
    assert odesa.content_hash == again.content_hash != lviv.content_hash
    assert read.places == {
        item.content_hash: tuple(map(pack_mentions, find_places(gazetteer, item)))
        for item in (odesa, lviv)
    }
    assert [p[0] for p in read.places[odesa.content_hash][1]] == ["gn:706483", "gn:692194"]
    assert (await workers.read(request(url))).places is None
    assert (await local.read(request(url, find_places=True))).places is None


def test_places_that_cannot_be_found_leave_the_read_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If finding places fails in a worker, the read goes back without them (the poller
    finds them itself) rather than as an error that would fail the feed's poll."""

    def broken(parsed: object) -> None:
        raise OSError("places.json unreadable")

    monkeypatch.setattr(readers, "_places", broken)
    result = FetchResult("http://x.test/", 200, b"", {})
    read = Read(result, parsed=ParsedFeed(title="", language=None, items=()))
    assert readers.with_places(read) == read


async def test_errors_cross_the_process_boundary_intact(
    feed_server: fs.FeedServer, workers: ProcessReader
) -> None:
    """A 410, a 429 whose Retry-After date is read against the request's clock, and a
    page that is no feed: the poller gets the same errors, with their fields."""
    feed_server.set_route("/gone", fs.Status(410))
    later = format_datetime(NOW + timedelta(minutes=10), usegmt=True)
    date = format_datetime(NOW, usegmt=True)
    feed_server.set_route("/busy", fs.Status(429, {"Retry-After": later, "Date": date}))
    feed_server.set_route("/page", fs.html_page())
    with pytest.raises(FetchError) as gone:
        await workers.read(request(feed_server.url("/gone")))
    assert gone.value.gone and gone.value.status == 410 and not gone.value.transient
    with pytest.raises(FetchError) as busy:
        await workers.read(request(feed_server.url("/busy")))
    assert busy.value.transient and busy.value.retry_after == 600
    with pytest.raises(ParseError, match="/page"):
        await workers.read(request(feed_server.url("/page")))


async def test_a_dead_worker_fails_its_reads_then_is_replaced(
    feed_server: fs.FeedServer,
    open_reader: OpenReader,
) -> None:
    """Reads in flight when a worker dies fail as transient fetch errors (retried next
    poll); the next read starts a new worker."""
    reader = open_reader(1)
    feed_server.add_feed("/rss", fs.rss([{"guid": "1", "title": "Report"}]))
    await reader.read(request(feed_server.url("/rss")))  # the worker is up
    feed_server.set_route("/slow", fs.Delay(5))
    pending = asyncio.create_task(reader.read(request(feed_server.url("/slow"))))
    await _wait_until(lambda: feed_server.count("/slow") == 1)
    os.kill(_pid(reader), signal.SIGKILL)
    with pytest.raises(FetchError, match="feed reader process exited") as died:
        await pending
    assert died.value.transient
    read = await reader.read(request(feed_server.url("/rss")))
    assert read.parsed is not None and len(read.parsed.items) == 1


async def test_per_host_limit_holds_across_workers(
    feed_server: fs.FeedServer, open_reader: OpenReader
) -> None:
    """One host's feeds all go to one worker, so per_host_limit bounds them together."""
    http = HTTP.model_copy(update={"per_host_limit": 2})
    reader = open_reader(3, http)
    for n in range(8):
        feed_server.set_route(f"/slow{n}", fs.Delay(0.3, fs.Body(fs.rss([]))))
    urls = [feed_server.url(f"/slow{n}") for n in range(8)]
    await asyncio.gather(*(reader.read(request(u)) for u in urls))
    assert feed_server.max_in_flight() == 2


def test_auto_workers_only_for_many_feeds_and_spare_cores() -> None:
    assert worker_count("auto", feeds=15, cpus=8) == 0
    assert worker_count("auto", feeds=1000, cpus=1) == 0
    assert worker_count("auto", feeds=1000, cpus=2) == 1
    assert worker_count("auto", feeds=1000, cpus=64) == 4
    assert worker_count(3, feeds=1, cpus=1) == 3


def test_errors_pickle_with_their_fields_and_cause() -> None:
    try:
        try:
            raise ConnectionResetError("peer reset")
        except ConnectionResetError as cause:
            raise FetchError("http://x/", "connection lost", transient=True) from cause
    except FetchError as e:
        copy = pickle.loads(pickle.dumps(e))
    assert str(copy) == "connection lost: http://x/: ConnectionResetError: peer reset"
    assert copy.transient and copy.feed_url == "http://x/"


def _timeless(read: Read) -> Read:
    """The read without what differs between two requests (timings, the Date header) and
    without the body a worker does not send back (its size stays)."""
    headers = {k: v for k, v in read.result.headers.items() if k != "date"}
    read = read.without_body()
    return replace(read, result=replace(read.result, elapsed_ms=0.0, headers=headers))


def _pid(reader: ProcessReader) -> int:
    process = reader._workers[0]._process
    assert process is not None
    return process.pid


async def _wait_until(condition: object, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_start_spawns_the_workers_the_reads_then_use(
    feed_server: fs.FeedServer, open_reader: OpenReader
) -> None:
    reader = open_reader(2)
    await reader.start()
    pids = [w._process.pid for w in reader._workers if w._process is not None]
    assert len(pids) == 2
    feed_server.add_feed("/rss", fs.rss([{"guid": "1", "title": "Report"}]))
    read = await reader.read(request(feed_server.url("/rss")))
    assert read.parsed is not None
    assert [w._process.pid for w in reader._workers if w._process is not None] == pids


def test_a_start_up_that_fails_leaves_no_worker_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI starts the workers before it builds the rest; if that fails, it stops them
    and exits 3 as before."""
    config = load_config(write_config(tmp_path, [], extra={"http": {"workers": 1}}), env={})
    built: list[LocalReader | ProcessReader] = []
    real_build_reader = readers.build_reader

    def build_reader(config: AppConfig, clock: Clock) -> LocalReader | ProcessReader:
        built.append(real_build_reader(config, clock))
        return built[-1]

    def build_app(*args: object, **kwargs: object) -> App:
        raise StorageError("cannot open the database")

    monkeypatch.setattr(readers, "build_reader", build_reader)
    monkeypatch.setattr(app, "build_app", build_app)
    with pytest.raises(SystemExit) as exited:
        cli._with_app(config, SystemClock(), _never_called)
    assert exited.value.code == 3
    assert isinstance(built[0], ProcessReader)
    process = built[0]._workers[0]._process
    assert process is not None and process.returncode is not None


async def _never_called(_: App) -> None:
    raise AssertionError("the app was built")


def test_a_worker_imports_only_what_reading_takes() -> None:
    """A worker's start-up delays the first reads: it does without pydantic and the
    config models, structlog, and httpx's command-line client (click, rich, pygments)."""
    setup = pickle.dumps((HttpSettings.of(HTTP), "info"))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "monitor.read_worker"],
        input=readers._HEADER.pack(0, len(setup)) + setup,  # then no requests: it exits
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stderr.decode().splitlines()
    imported = {line.rpartition("|")[2].strip() for line in lines if line.startswith("import time")}
    assert {"monitor.fetch", "monitor.parse", "httpx"} <= imported
    # A package is listed before any of its modules.
    assert not imported & {"pydantic", "structlog", "rich", "click", "pygments", "monitor.config"}


def test_once_and_run_with_workers_alert_and_leave_no_process_behind(
    tmp_path: Path, feed_server: fs.FeedServer
) -> None:
    """``once`` and the daemon read through workers end to end; SIGTERM stops the
    workers with the daemon."""
    url = feed_server.add_feed("/feed", fs.rss([ORESHNIK]))
    config = write_config(tmp_path, [{"id": "f", "url": url}], extra={"http": {"workers": 2}})
    at = (NOW + timedelta(minutes=5)).isoformat()
    once = monitor("once", "-c", str(config), "--at", at)
    done = subprocess.run(once, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [a["rule"] for a in alerts] == ["new-weapon"]

    proc = subprocess.Popen(monitor("run", "-c", str(config)), stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: feed_server.count("/feed") >= 2)  # the daemon polled via a worker
        children = _children(proc.pid)
        assert children, "no worker process"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children))
    finally:
        proc.kill()
        proc.wait()


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


# A worker misbehaving as a library might, injected through sitecustomize.
_SITECUSTOMIZE = """
import os
mode = os.environ.get("MM_TEST_WORKER_FAULT")
if mode:
    import asyncio
    import monitor.readers as readers

    class OddError(Exception):
        def __init__(self, message, *, detail):
            super().__init__(message)
            self.detail = detail

    real = readers.read_feed

    async def faulty(fetcher, request):
        if mode == "print":
            print("a library talking on stdout")
            return await real(fetcher, request)
        if mode == "odd":
            raise OddError("odd", detail=1)
        await asyncio.sleep(3600)  # hang

    readers.read_feed = faulty
"""


@pytest.fixture
def faulty_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    monkeypatch.setenv("PYTHONPATH", str(site))

    def fault(mode: str) -> None:
        monkeypatch.setenv("MM_TEST_WORKER_FAULT", mode)

    return fault


async def test_a_worker_printing_on_stdout_still_answers(
    feed_server: fs.FeedServer, open_reader: OpenReader, faulty_worker: Callable[[str], None]
) -> None:
    faulty_worker("print")
    reader = open_reader(1)
    feed_server.add_feed("/rss", fs.rss([{"guid": "1", "title": "Report"}]))
    for _ in range(2):
        read = await reader.read(request(feed_server.url("/rss")))
        assert read.parsed is not None and len(read.parsed.items) == 1


async def test_an_error_that_cannot_travel_is_sent_as_its_description(
    feed_server: fs.FeedServer, open_reader: OpenReader, faulty_worker: Callable[[str], None]
) -> None:
    faulty_worker("odd")
    reader = open_reader(1)
    with pytest.raises(RuntimeError, match="OddError could not be sent"):
        await reader.read(request(feed_server.url("/rss")))


async def test_a_worker_that_never_answers_fails_the_read_in_time(
    feed_server: fs.FeedServer,
    open_reader: OpenReader,
    faulty_worker: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    faulty_worker("hang")
    monkeypatch.setattr(readers, "REPLY_MARGIN", 0.5)
    http = HttpConfig.model_validate({"timeout": {"connect": 1, "read": 1, "total": 1}})
    reader = open_reader(1, http)
    with pytest.raises(FetchError, match="no answer from the feed reader") as failed:
        await reader.read(request(feed_server.url("/rss")))
    assert failed.value.transient


def test_an_answer_may_take_as_long_as_the_reads_queued_before_it() -> None:
    """A host's reads queue behind its per-host limit: the deadline grows with the queue,
    so a slow publisher's many feeds are not given up while they wait their turn."""
    settings = replace(HttpSettings.of(HTTP), total=60.0, per_host_limit=4, global_limit=64)

    def reply_timeout(queued_for_host: int, queued: int) -> float:
        return readers._reply_timeout(settings, queued_for_host, queued)

    assert reply_timeout(0, 0) == 60 + readers.REPLY_MARGIN
    assert reply_timeout(3, 3) == 60 + readers.REPLY_MARGIN
    assert reply_timeout(10, 10) == 3 * 60 + readers.REPLY_MARGIN
    assert reply_timeout(0, 200) == 4 * 60 + readers.REPLY_MARGIN


def test_an_item_crosses_the_process_boundary_with_every_field() -> None:
    """Items travel as their constructor's arguments (Item.__reduce__): none is lost."""
    item = Item(
        id="a", feed_id="f", title="t", summary="s", url="https://x.test/", published=NOW,
        published_missing=True, guid="g", tags=("ua", "ru"), language="uk", content_hash="h",
    )  # fmt: skip
    assert all(getattr(item, f.name) != f.default for f in dataclasses.fields(Item))
    assert pickle.loads(pickle.dumps(item)) == item
