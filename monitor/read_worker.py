"""``python -m monitor.read_worker``: a feed reader process; see :mod:`monitor.readers`.

Its stdin carries a setup frame (the http settings and the log level), then
read requests; its stdout carries the replies; its stderr is the daemon's log.

The first thing it does is keep its stdout to itself: the replies go to a copy of the
descriptor, and fd 1 becomes stderr, so that whatever a library prints lands in the log
rather than in the middle of a frame.

Start-up is on the poll's critical path (the first reads wait for it), so the worker
imports only what reading takes: not pydantic and the config models (the http settings
come as a plain ``HttpSettings``), not structlog (see ``main``), not httpx's command-line
client (below).
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO


def _private_stdout() -> BinaryIO:
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return channel


if __name__ == "__main__":
    _REPLIES = _private_stdout()  # before importing anything that might print
    # httpx's __init__ imports its command-line client when it can, and with it click,
    # rich and pygments: a third of the worker's imports, for an httpx.main it never
    # calls. httpx falls back to a stub when that import fails; this makes it fail.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import asyncio  # noqa: E402

from monitor.fetch import Fetcher, HttpSettings  # noqa: E402
from monitor.observability import configure_stdlib_logging  # noqa: E402
from monitor.readers import RequestClock, read_frame, serve  # noqa: E402


async def main(replies: BinaryIO) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    _, (http, log_level) = await read_frame(reader)
    assert isinstance(http, HttpSettings)
    # Only libraries (httpx, asyncio) log here, through stdlib logging: the outcome of
    # every read, errors included, goes back to the poller, which logs it. So structlog
    # is not set up, nor imported (with rich, which it imports, a fifth of the worker's
    # start-up), and the log format does not concern a worker.
    configure_stdlib_logging(log_level)

    def write(frame: bytes) -> None:
        # Blocking on a full pipe is the backpressure we want: the poller reads replies
        # as fast as it can use them.
        replies.write(frame)
        replies.flush()

    await serve(reader, write, Fetcher(http, RequestClock()))


if __name__ == "__main__":
    asyncio.run(main(_REPLIES))
