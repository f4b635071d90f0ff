"""Alert latency benchmark: publication -> webhook arrival, through the real daemon.

A local feed server (127.0.0.1) publishes items at random times across N
feeds; `monitor run` polls them at a short interval and delivers every alert
to a local webhook receiver, which notes when each one arrives. Prints p50,
p95 and max of

- arrival - publication: what an analyst waits for, dominated by the poll
  interval (an item waits on average half an interval to be seen);
- arrival - the poll that saw it (the alert's ``created_at``): the daemon's own
  cost, parsing, matching, the outbox and the webhook;

and, as the baseline measured in the same run, publication -> the poll that saw
it: the wait a perfect poller on the same schedule would have, so the ratio
shows what the daemon adds on top of the schedule.

Usage: python bench/latency.py [--feeds 20] [--items 60] [--seconds 60] [--interval 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.feedserver import FeedServer, rss  # noqa: E402  (after the path set-up)
from tests.receivers import WebhookReceiver  # noqa: E402

# Distinct stories: a place, an event and an actor each, so that story clustering
# (one alert per story) does not merge them the way it merges real duplicates.
PLACES = ["Odesa", "Kharkiv", "Lviv", "Sumy", "Poltava", "Kherson", "Dnipro", "Chernihiv",
          "Mykolaiv", "Zhytomyr", "Vinnytsia", "Rivne"]  # fmt: skip
EVENTS = ["power outage", "bridge repair", "grain shipment", "school reopening",
          "rail delay", "market fire", "water shortage", "hospital opening", "port closure",
          "flood warning"]  # fmt: skip
ACTORS = ["mayor", "governor", "minister", "council", "operator", "police", "engineers",
          "volunteers"]  # fmt: skip


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Publisher(threading.Thread):
    """Adds items to random feeds at random times; remembers when each was published."""

    def __init__(self, server: FeedServer, feeds: int, items: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.server, self.feeds, self.seconds = server, feeds, seconds
        rng = random.Random(7)
        self.schedule = sorted(
            (rng.uniform(2, seconds), rng.randrange(feeds)) for _ in range(items)
        )
        self.entries: list[list[dict[str, str]]] = [[] for _ in range(feeds)]
        self.published: dict[str, float] = {}  # guid -> unix time
        for f in range(feeds):
            server.add_feed(f"/feed/{f}", rss([]))

    def run(self) -> None:
        start = time.time()
        for n, (at, feed) in enumerate(self.schedule):
            time.sleep(max(0.0, start + at - time.time()))
            guid = f"urn:bench:{n}"
            # A different (place, event) pair per item, up to 120 items: distinct stories.
            place, event = PLACES[n % len(PLACES)], EVENTS[(n // len(PLACES)) % len(EVENTS)]
            words = f"{place} {ACTORS[n % len(ACTORS)]}: {event}"
            now = time.time()
            self.entries[feed].insert(
                0,
                {
                    "guid": guid,
                    "title": f"{words} ({n})",
                    "description": "bench-signal",
                    "link": f"http://example.test/{n}",
                    "pubDate": format_datetime(datetime.fromtimestamp(now, UTC), usegmt=True),
                },
            )
            self.published[guid] = now
            self.server.add_feed(f"/feed/{feed}", rss(self.entries[feed][:30]))


def write_config(tmp: Path, server: FeedServer, hook: str, feeds: int, interval: float) -> Path:
    lines = [
        f"storage: {{path: '{tmp / 'latency.db'}'}}",
        f"sinks: [{{name: hook, type: webhook, url: '{hook}'}}]",
        "routes: [{sinks: [hook]}]",
        "rules: [{kind: terms, id: bench, severity: warning, any: [bench-signal]}]",
        f"scheduler: {{interval: {interval}, jitter: 0.1, delivery_interval: 0.5}}",
        "logging: {format: json, level: warning}",
        "feeds:",
        *(f"  - {{id: f{i}, url: '{server.url(f'/feed/{i}')}'}}" for i in range(feeds)),
    ]
    path = tmp / "latency.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def percentiles(values: list[float]) -> str:
    if not values:
        return "no data"
    q = (
        statistics.quantiles(values, n=20, method="inclusive")
        if len(values) > 1
        else [values[0]] * 19
    )
    return f"p50 {statistics.median(values):6.2f} s  p95 {q[18]:6.2f} s  max {max(values):6.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--interval", type=float, default=5)
    args = parser.parse_args()

    with FeedServer() as server, WebhookReceiver() as rx, tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), server, rx.url(), args.feeds, args.interval)
        arrivals: dict[str, float] = {}
        publisher = Publisher(server, args.feeds, args.items, args.seconds)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-c", str(config)], stderr=subprocess.DEVNULL
        )
        try:
            publisher.start()
            deadline = time.time() + args.seconds + 3 * args.interval + 10
            seen = 0
            while time.time() < deadline and len(arrivals) < args.items:
                for request in rx.requests[seen:]:
                    arrivals[request.json()["alert_id"]] = time.time()
                    seen += 1
                time.sleep(0.05)
        finally:
            daemon.terminate()
            daemon.wait(30)
        payloads = {r.json()["alert_id"]: r.json() for r in rx.requests}

    total, own, ideal = [], [], []
    for alert_id, arrived in arrivals.items():
        alert = payloads[alert_id]
        polled = parse_time(alert["created_at"])
        published = publisher.published[_guid_of(alert)]
        total.append(arrived - published)
        own.append(arrived - polled)
        ideal.append(max(0.0, polled - published))
    print(
        f"media-monitor latency benchmark: {args.feeds} feeds, {args.items} items over "
        f"{args.seconds:.0f} s, poll interval {args.interval:g} s"
    )
    print(f"  alerts received            {len(arrivals)} of {args.items}")
    print(f"  arrival - publication      {percentiles(total)}")
    print(f"  arrival - poll that saw it {percentiles(own)}")
    print(f"  publication - poll (ideal) {percentiles(ideal)}")
    if total and ideal:
        ratio = statistics.median(total) / statistics.median(ideal)
        print(f"  ratio median total/ideal   {ratio:5.2f}x")


def _guid_of(alert: dict[str, object]) -> str:
    """The bench item's guid from its link (http://example.test/N -> urn:bench:N)."""
    item = alert["item"]
    assert isinstance(item, dict)
    return "urn:bench:" + str(item["url"]).rsplit("/", 1)[1]


if __name__ == "__main__":
    main()
