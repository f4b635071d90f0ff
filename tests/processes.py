"""Helpers for tests that run the real CLI or daemon as a child process."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def monitor(*args: str) -> list[str]:
    """The command line that runs `monitor ARGS` with this interpreter."""
    return [sys.executable, "-m", "monitor", *args]


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``check`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
