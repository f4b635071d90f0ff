"""Polling benchmark: media-monitor's `once` against a naive feedparser loop.

A local HTTP server (a separate process, listening on 16 loopback addresses so
that per-host limits behave as they would across many publishers) serves N
feeds of 30 items each, with ETags: wire-style world news of about 600 characters,
15% of it conflict stories (the "news" mix of bench/match.py). We run, each as its
own child process so CPU time and peak RSS are measured per run:

1. media-monitor `monitor once` — first poll (every feed new) — twice, each on its own
   database and with the default settings (``http.workers: auto``): with no rules (what
   polling costs: fetch, parse, dedupe, the places history keeps, the store) and with
   the shipped rules (config/rules.yaml: the product as it runs);
2. the naive loop — `feedparser.parse(url)` for every feed, sequentially;
3. 10% of the feeds gain a new item;
4. both media-monitor runs again — second poll (conditional GETs);
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

from match import news_items  # bench/ is this script's directory, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
HOSTS = [f"127.0.0.{i}" for i in range(1, 17)]


def make_item(rng: random.Random, feed: int, n: int, when: datetime) -> str:
    """A wire-style item (see bench/match.py: world news, 15% conflict stories); feeds
    draw from the same stories and places, so some items alike across feeds cluster."""
    [news] = news_items(1, rng)
    link = f"https://news{feed % 50}.example/story/{feed}-{n}?utm_source=rss"
    return (
        f"<item><title>{escape(news.title)}</title><link>{escape(link)}</link>"
        f'<guid isPermaLink="false">feed{feed}-item{n}</guid>'
        f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>"
        f"<description>{escape('<p>' + news.summary + '</p>')}</description></item>\n"
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


def write_config(path: Path, urls: list[str], *, rules: bool) -> None:
    """The default settings; only the feeds, the store and the sink differ. With
    ``rules``, the shipped rules (config/rules.yaml); without, none: the cost of polling
    itself (fetch, parse, dedupe, places for history, store)."""
    feeds = "\n".join(f"  - {{id: f{i}, url: '{u}'}}" for i, u in enumerate(urls))
    include = f"include: ['{ROOT / 'config' / 'rules.yaml'}']\n" if rules else ""
    path.write_text(
        include + f"storage: {{path: '{path.with_suffix('.db')}'}}\n"
        "sinks: [{name: console, type: console}]\n"
        "routes: [{sinks: [console]}]\n"
        "logging: {format: json, level: info}\n"
        "http: {global_limit: 64, per_host_limit: 4}\n"
        f"feeds:\n{feeds}\n"
    )


def report(naive: Run, *ours: Run) -> None:
    for run in (*ours, naive):
        print(
            f"  {run.name:<26} wall {run.wall:6.2f} s  cpu {run.cpu:6.2f} s  "
            f"peak RSS {run.rss_mb:6.1f} MB  requests {run.requests:5d}  "
            f"304s {run.not_modified:5d}  items parsed {run.items:6d}"
        )
    for run in ours:
        wall, cpu = naive.wall / run.wall, naive.cpu / run.cpu
        print(f"  naive / {run.name:<26} wall {wall:5.1f}x  cpu {cpu:5.1f}x")


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
        commands = {}
        for name, rules in (("once, polling (no rules)", False), ("once, shipped rules", True)):
            config = Path(tmp) / f"{'rules' if rules else 'polling'}.yaml"
            write_config(config, urls, rules=rules)
            once = ["-m", "monitor", "once", "-c", str(config), "--at", "2025-06-08T12:30:00"]
            commands[name] = (config.stem, once)
        naive = [sys.executable, "-c", NAIVE, *urls]
        env_note = f"{args.feeds} feeds x {args.items} items, {os.cpu_count()} cores"
        print(f"media-monitor poll benchmark: {env_note}")

        def poll(which: str) -> None:
            runs = []
            for name, (stem, once) in commands.items():
                profile = []
                if args.profile:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    profile = ["-m", "cProfile", "-o", str(args.profile / f"{stem}-{which}.prof")]
                run, log = measure(name, [sys.executable, *profile, *once], control)
                run.items = parsed_items(log)
                runs.append(run)
            naive_run, out = measure("naive feedparser loop", naive, control)
            naive_run.items = int(out.split()[0])
            report(naive_run, *runs)

        print("first poll (every feed new):")
        poll("first")
        fetch(f"{control}/_mutate?share={args.changed}")
        print(f"second poll ({args.changed:.0%} of feeds changed):")
        poll("second")
    server.terminate()


if __name__ == "__main__":
    main()
