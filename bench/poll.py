"""Polling benchmark: media-monitor's `once` against a naive feedparser loop.

A local HTTP server (a separate process, listening on 16 loopback addresses so
that per-host limits behave as they would across many publishers) serves N
feeds of 30 items each, with ETags. We run, each as its own child process so
CPU time and peak RSS are measured per run:

1. media-monitor `monitor once` — first poll (every feed new);
2. the naive loop — `feedparser.parse(url)` for every feed, sequentially;
3. 10% of the feeds gain a new item;
4. media-monitor `once` again — second poll (conditional GETs);
5. the naive loop again (it has no conditional GET, so it re-parses all).

Prints wall time, CPU time, peak RSS, requests, 304s and items parsed for each,
and the naive/ours ratios. Usage: python bench/poll.py [--feeds 1000] [--items 30]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

HOSTS = [f"127.0.0.{i}" for i in range(1, 17)]
TEXT = (
    "Russian forces shelled the city overnight as officials reported damage to energy "
    "infrastructure and residential buildings while air defence units intercepted drones "
    "launched from the south the regional governor said evacuation continued in villages "
    "near the front line and talks on a ceasefire stalled again in the capital"
)
WORDS = TEXT.split()


def make_item(rng: random.Random, feed: int, n: int, when: datetime) -> str:
    title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(7, 12))).capitalize()
    summary = " ".join(rng.choice(WORDS) for _ in range(95))
    link = f"https://news{feed % 50}.example/story/{feed}-{n}?utm_source=rss"
    return (
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f'<guid isPermaLink="false">feed{feed}-item{n}</guid>'
        f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>"
        f"<description>{escape('<p>' + summary + '</p>')}</description></item>\n"
    )


def make_feed(feed: int, items: int, version: int) -> bytes:
    rng = random.Random(feed * 1000 + version)
    base = datetime(2025, 6, 8, 12, tzinfo=UTC)
    body = "".join(
        make_item(rng, feed, n, base - timedelta(minutes=10 * (n - version)))
        for n in range(version, version + items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Feed {feed}</title><link>https://news{feed % 50}.example/</link>"
        f"<description>Bench feed</description><language>en</language>\n{body}</channel></rss>\n"
    ).encode()


# --- the feed server ----------------------------------------------------------------------


@dataclass
class Served:
    body: bytes
    etag: str


def serve(port_queue: multiprocessing.Queue, feeds: int, items: int) -> None:  # type: ignore[type-arg]
    """A minimal keep-alive HTTP/1.1 server; fast enough not to be what is measured."""
    served = {f"/feed/{i}": Served(b"", "") for i in range(feeds)}
    stats = {"requests": 0, "not_modified": 0}

    def publish(i: int, version: int) -> None:
        body = make_feed(i, items, version)
        served[f"/feed/{i}"] = Served(body, '"' + hashlib.sha1(body).hexdigest()[:16] + '"')

    for i in range(feeds):
        publish(i, 0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                status, body, extra = route(path, headers)
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
                    + body
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def route(path: str, headers: dict[str, str]) -> tuple[str, bytes, str]:
        if path.startswith("/_mutate"):
            share = float(path.partition("=")[2])
            changed = random.Random(42).sample(range(feeds), int(feeds * share))
            for i in changed:
                publish(i, 1)
            return "200 OK", str(len(changed)).encode(), ""
        if path == "/_stats":
            body = json.dumps(stats).encode()
            stats.update(requests=0, not_modified=0)
            return "200 OK", body, ""
        feed = served.get(path)
        if feed is None:
            return "404 Not Found", b"", ""
        stats["requests"] += 1
        if headers.get("if-none-match") == feed.etag:
            stats["not_modified"] += 1
            return "304 Not Modified", b"", f"ETag: {feed.etag}\r\n"
        return "200 OK", feed.body, f"Content-Type: application/rss+xml\r\nETag: {feed.etag}\r\n"

    async def main() -> None:
        # One port on every host: take a free one on the first, then bind them all to it.
        probe = socket.socket()
        probe.bind((HOSTS[0], 0))
        port = probe.getsockname()[1]
        probe.close()
        server = await asyncio.start_server(handle, HOSTS, port, backlog=1024)
        port_queue.put(port)
        await server.serve_forever()

    asyncio.run(main())


# --- the contenders -------------------------------------------------------------------------

NAIVE = """
import sys, feedparser
urls = sys.argv[1:]
items = 0
for url in urls:
    items += len(feedparser.parse(url).entries)
print(items)
"""


@dataclass
class Run:
    name: str
    wall: float
    cpu: float
    rss_mb: float
    requests: int
    not_modified: int
    items: int


def measure(name: str, cmd: list[str], control: str) -> tuple[Run, str]:
    """Run ``cmd`` as a child; wall time, and CPU and peak RSS of that child alone (wait4)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"{name} failed ({proc.returncode}):\n{output[-3000:]}")
    stats = json.loads(fetch(control + "/_stats"))
    cpu = usage.ru_utime + usage.ru_stime
    run = Run(name, wall, cpu, usage.ru_maxrss / 1024, stats["requests"], stats["not_modified"], 0)
    return run, output


def fetch(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as r:  # local bench server only
        return r.read().decode()


def parsed_items(log: str) -> int:
    for line in log.splitlines():
        if '"once_done"' in line:
            return int(json.loads(line)["items_parsed"])
    return 0


def write_config(path: Path, urls: list[str]) -> None:
    feeds = "\n".join(f"  - {{id: f{i}, url: '{u}'}}" for i, u in enumerate(urls))
    path.write_text(
        f"storage: {{path: '{path.parent / 'bench.db'}'}}\n"
        "sinks: [{name: console, type: console}]\n"
        "routes: [{sinks: [console]}]\n"
        "logging: {format: json, level: info}\n"
        "http: {global_limit: 64, per_host_limit: 4}\n"
        f"feeds:\n{feeds}\n"
    )


def report(first: Run, naive: Run) -> None:
    for run in (first, naive):
        print(
            f"  {run.name:<22} wall {run.wall:7.2f} s  cpu {run.cpu:7.2f} s  "
            f"peak RSS {run.rss_mb:6.1f} MB  requests {run.requests:5d}  "
            f"304s {run.not_modified:5d}  items parsed {run.items:6d}"
        )
    wall, cpu = naive.wall / first.wall, naive.cpu / first.cpu
    print(f"  ratio naive/ours: wall {wall:5.1f}x  cpu {cpu:5.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--changed", type=float, default=0.10)
    parser.add_argument("--profile", type=Path, help="write cProfile stats of our runs here")
    args = parser.parse_args()

    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    server_args = (queue, args.feeds, args.items)
    server = multiprocessing.Process(target=serve, args=server_args, daemon=True)
    server.start()
    port = queue.get(timeout=120)
    control = f"http://127.0.0.1:{port}"
    urls = [f"http://{HOSTS[i % len(HOSTS)]}:{port}/feed/{i}" for i in range(args.feeds)]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        write_config(config, urls)
        url_file = Path(tmp) / "urls"
        url_file.write_text("\n".join(urls))
        once = ["once", "-c", str(config), "--at", "2025-06-08T12:30:00"]
        ours = [sys.executable, "-m", "monitor", *once]
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            prof = ["-m", "cProfile", "-o"]
            ours = [sys.executable, *prof, str(args.profile / "first.prof"), "-m", "monitor", *once]
        naive = [sys.executable, "-c", NAIVE, *urls]
        env_note = f"{args.feeds} feeds x {args.items} items, {os.cpu_count()} cores"
        print(f"media-monitor poll benchmark: {env_note}")

        first, log = measure("media-monitor once", ours, control)
        first.items = parsed_items(log)
        naive1, out = measure("naive feedparser loop", naive, control)
        naive1.items = int(out.split()[0])
        print("first poll (every feed new):")
        report(first, naive1)

        fetch(f"{control}/_mutate?share={args.changed}")
        if args.profile:
            ours[ours.index(str(args.profile / "first.prof"))] = str(args.profile / "second.prof")
        second, log = measure("media-monitor once", ours, control)
        second.items = parsed_items(log)
        naive2, out = measure("naive feedparser loop", naive, control)
        naive2.items = int(out.split()[0])
        print(f"second poll ({args.changed:.0%} of feeds changed):")
        report(second, naive2)
    server.terminate()


if __name__ == "__main__":
    main()
