"""Serve one fresh RSS item that the container test's rule fires on, until stopped.

Run from the repository root: ``python -m tests.container.serve_feed``. Prints the
feed's URL on the first line of stdout, then one line per request answered
(``GET /feed 200``), and serves until SIGTERM or SIGINT.
Standard library only (through tests.feedserver), so any Python 3.11+ runs it.
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from email.utils import format_datetime

from tests import feedserver as fs


def main() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    item = {
        "guid": "urn:container-test:oreshnik",
        "title": "Russia fires Oreshnik missile at Dnipro",
        "link": "http://example.test/news/oreshnik-dnipro",
        "description": "A container test item.",
        "pubDate": format_datetime(datetime.now(UTC), usegmt=True),
    }
    with fs.FeedServer() as server:
        print(server.add_feed("/feed", fs.rss([item], title="Container test feed")), flush=True)
        seen = 0
        while not stop.wait(0.1):
            for request in server.requests[seen:]:
                if request.status is None:
                    break  # answer not started yet; report it next round
                print(request.method, request.path, request.status, flush=True)
                seen += 1


if __name__ == "__main__":
    main()
