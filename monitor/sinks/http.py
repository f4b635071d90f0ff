"""One HTTP POST to a receiver whose URL is a secret, and what its answer means.

Shared by the Slack and webhook sinks. The answer maps to ``SinkError`` the same
way for both: 2xx accepted; 408, 429 (with Retry-After) and 5xx, timeouts and
connection failures transient; any other status permanent. The URL never
appears in an error: errors name the sink, and every text that leaves this
module (server bodies, transport errors) has the sink's secrets masked.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from monitor import __version__
from monitor.clock import Clock, SystemClock
from monitor.exceptions import SinkError
from monitor.fetch import retry_after_seconds

USER_AGENT = f"media-monitor/{__version__} (+https://github.com/media-monitor/media-monitor)"
BODY_SHOWN = 200  # characters of a server's answer quoted in errors and send-test
_BODY_READ = 16 * 1024  # bytes of an answer read at most


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret (of 4+ characters) replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def short(text: str, secrets: Iterable[str] = ()) -> str:
    """One line of at most BODY_SHOWN characters, secrets masked."""
    line = " ".join(mask(text, secrets).split())
    return line if len(line) <= BODY_SHOWN else line[: BODY_SHOWN - 1] + "…"


class HttpPoster:
    """POSTs bytes to one secret URL with its own ``httpx.AsyncClient``.

    The client is created on first use (so building a sink opens nothing) and
    closed by :meth:`close`. ``timeout`` bounds the whole exchange, answer included.
    """

    def __init__(
        self,
        sink_name: str,
        url: SecretStr,
        *,
        timeout: float,
        receiver: str,
        secrets: Iterable[SecretStr] = (),
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sink_name = sink_name
        self.receiver = receiver
        self.timeout = timeout
        self._url = url
        self._secrets = (
            *_url_secrets(url.get_secret_value()),
            *(s.get_secret_value() for s in secrets),
        )
        self._clock = clock or SystemClock()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
                transport=self._transport,
            )
        return self._client

    async def post(self, content: bytes, headers: Mapping[str, str]) -> str:
        """POST; return '200 OK: ok' on a 2xx answer, else raise SinkError."""
        client = self._get_client()
        try:
            async with asyncio.timeout(self.timeout):
                async with client.stream(
                    "POST", self._url.get_secret_value(), content=content, headers=dict(headers)
                ) as response:
                    body = await _read_some(response)
        except (TimeoutError, httpx.TimeoutException):
            raise self._error(
                f"no answer from {self.receiver} within {self.timeout:g}s", transient=True
            ) from None
        except httpx.InvalidURL:
            raise self._error(
                "the URL is not valid (not shown: it is a secret)", transient=False
            ) from None
        except httpx.HTTPError as e:
            # Not chained: an httpx error's text or request can carry the secret URL.
            cause = short(f"{type(e).__name__}: {e}", self._secrets)
            # An untrusted certificate will not fix itself by retrying: permanent.
            untrusted = _caused_by(e, ssl.SSLCertVerificationError)
            raise self._error(
                f"cannot reach {self.receiver}: {cause}", transient=not untrusted
            ) from None
        return self._check(response, body)

    def _check(self, response: httpx.Response, body: bytes) -> str:
        status = response.status_code
        text = short(body.decode("utf-8", "replace"), self._secrets)
        answer = f"{status} {response.reason_phrase}" + (f": {text}" if text else "")
        if 200 <= status < 300:
            return answer
        message = f"{self.receiver} answered {answer}"
        retry_after = None
        if status == 429:
            retry_after = retry_after_seconds(
                response.headers.get("retry-after"), response.headers.get("date"), self._clock.now()
            )
        elif 300 <= status < 400:
            message += " (a redirect; set the sink's URL to where it points)"
        transient = status in (408, 425, 429) or status >= 500
        raise self._error(message, transient=transient, retry_after=retry_after)

    def _error(
        self, message: str, *, transient: bool, retry_after: float | None = None
    ) -> SinkError:
        return SinkError(self.sink_name, message, transient=transient, retry_after=retry_after)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _url_secrets(url: str) -> tuple[str, ...]:
    """The URL and its path and query: a receiver may echo either (Slack's path is the token)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 literal; httpx will refuse it too
        return (url,)
    pieces = (url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path, parts.query)
    return tuple(p for p in pieces if len(p) >= 8)


async def _read_some(response: httpx.Response) -> bytes:
    """At most _BODY_READ bytes of the answer: enough to quote, never a flood."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _BODY_READ:
            break
    return b"".join(chunks)[:_BODY_READ]


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
