"""``python -m monitor.read_worker``: a feed reader process; see :mod:`monitor.readers`.

Its stdin carries a setup frame (the http settings and the log format and level), then
read requests; its stdout carries the replies; its stderr is the daemon's log.

The first thing it does is keep its stdout to itself: the replies go to a copy of the
descriptor, and fd 1 becomes stderr, so that whatever a library prints lands in the log
rather than in the middle of a frame.
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

import asyncio  # noqa: E402

from monitor.config.models import HttpConfig  # noqa: E402
from monitor.fetch import Fetcher  # noqa: E402
from monitor.observability import configure_logging  # noqa: E402
from monitor.readers import RequestClock, read_frame, serve  # noqa: E402


async def main(replies: BinaryIO) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    _, (http, log_format, log_level) = await read_frame(reader)
    assert isinstance(http, HttpConfig)
    configure_logging(log_format, log_level)

    def write(frame: bytes) -> None:
        # Blocking on a full pipe is the backpressure we want: the poller reads replies
        # as fast as it can use them.
        replies.write(frame)
        replies.flush()

    await serve(reader, write, Fetcher(http, RequestClock()))


if __name__ == "__main__":
    asyncio.run(main(_REPLIES))
