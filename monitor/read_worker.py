"""``python -m monitor.read_worker``: a feed reader process; see :mod:`monitor.readers`.

Its stdin carries a setup frame (the http settings and the log format and level), then
read requests; its stdout carries the replies; its stderr is the daemon's log.
"""

from __future__ import annotations

import asyncio
import sys

from monitor.config.models import HttpConfig
from monitor.fetch import Fetcher
from monitor.observability import configure_logging
from monitor.readers import RequestClock, read_frame, serve


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    http, log_format, log_level = await read_frame(reader)
    assert isinstance(http, HttpConfig)
    configure_logging(log_format, log_level)
    out = sys.stdout.buffer

    def write(frame: bytes) -> None:
        # Blocking on a full pipe is the backpressure we want: the poller reads replies
        # as fast as it can use them.
        out.write(frame)
        out.flush()

    await serve(reader, write, Fetcher(http, RequestClock()))


if __name__ == "__main__":
    asyncio.run(main())
