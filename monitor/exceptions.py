"""The whole MonitorError tree.

Every error carries the thing it is about; ``str()`` reads
``message: identity: CauseType: cause`` so a log line or a CLI message can be
acted on without a traceback.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error media-monitor raises on purpose."""

    identity: str = ""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        parts = [self.message]
        if self.identity:
            parts.append(self.identity)
        cause = _cause_text(self)
        if cause:
            parts.append(cause)
        return ": ".join(parts)

    def __reduce__(self) -> tuple[object, ...]:
        # Feed reader processes send errors to the poller pickled. Exception's own
        # pickling calls __init__(*args), which our keyword-only fields break, and drops
        # the cause, which __str__ shows: rebuild from the attributes, cause as text.
        state = {**self.__dict__, "_cause": _cause_text(self)}
        return _rebuild, (type(self), self.args, state)


def _cause_text(error: MonitorError) -> str:
    cause = error.__cause__
    if cause is None:
        return str(error.__dict__.get("_cause", ""))
    return f"{type(cause).__name__}: {cause}"


def _rebuild(
    cls: type[MonitorError], args: tuple[object, ...], state: dict[str, object]
) -> MonitorError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigIssue:
    """One problem in a configuration file, located as precisely as we can."""

    __slots__ = ("column", "file", "hint", "key_path", "line", "message")

    def __init__(
        self,
        file: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        key_path: str = "",
        hint: str = "",
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.key_path = key_path
        self.message = message
        self.hint = hint

    def location(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        text = self.location()
        if self.key_path:
            text += f": {self.key_path}"
        text += f": {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def __repr__(self) -> str:
        return f"ConfigIssue({self!s})"


class ConfigError(MonitorError):
    """The configuration cannot be used; ``issues`` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues) or "invalid configuration")

    def __str__(self) -> str:
        return self.message


class FetchError(MonitorError):
    """A feed could not be fetched.

    ``transient`` errors (timeouts, refused connections, 5xx, 429) are retried
    with backoff; permanent ones (4xx, bad content) too, but log as errors.
    ``gone`` means the server said 410 and the feed should be disabled.
    """

    def __init__(
        self,
        feed_url: str,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        retry_after: float | None = None,
        gone: bool = False,
    ) -> None:
        super().__init__(message)
        self.feed_url = feed_url
        self.identity = feed_url
        self.transient = transient
        self.status = status
        self.retry_after = retry_after
        self.gone = gone


class ParseError(MonitorError):
    """A response body is not a feed we can read any entry from."""

    def __init__(self, feed_url: str, message: str) -> None:
        super().__init__(message)
        self.feed_url = feed_url
        self.identity = feed_url


class StorageError(MonitorError):
    """The store is unreachable, locked, read-only or of an unknown version."""

    def __init__(self, message: str, *, database: str = "") -> None:
        super().__init__(message)
        self.identity = database


class RuleError(MonitorError):
    """A rule cannot be compiled; names the rule."""

    def __init__(self, rule_id: str, message: str) -> None:
        super().__init__(message)
        self.rule_id = rule_id
        self.identity = f"rule {rule_id!r}"


class SinkError(MonitorError):
    """A sink did not accept an alert. Never carries the sink's secret URL."""

    def __init__(
        self,
        sink_name: str,
        message: str,
        *,
        transient: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.sink_name = sink_name
        self.identity = f"sink {sink_name!r}"
        self.transient = transient
        self.retry_after = retry_after


class ServerError(MonitorError):
    """The daemon's HTTP server (health, metrics) cannot listen; names the address."""

    def __init__(self, address: str, message: str) -> None:
        super().__init__(message)
        self.address = address
        self.identity = address
