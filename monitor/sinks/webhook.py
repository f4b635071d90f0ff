"""Generic JSON webhook sink: POSTs the documented alert JSON, signed.

Each request carries::

    Content-Type: application/json
    Idempotency-Key: <alert_id>              the same on every retry of one alert
    X-Monitor-Timestamp: <unix seconds>      when this attempt was signed
    X-Monitor-Signature: sha256=<hex>        only when the sink has a secret

where ``<hex>`` is HMAC-SHA256, keyed with the secret, of the ASCII timestamp, a
dot, and the exact body bytes: ``f"{timestamp}.".encode() + body``. A receiver
recomputes it over the raw body, compares in constant time and rejects stale
timestamps (say older than five minutes) to stop replays. The README, section
"Sinks", has a verification example.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from monitor.clock import Clock, SystemClock
from monitor.config.models import WebhookSinkConfig
from monitor.sinks.http import HttpPoster
from monitor.sinks.render import alert_to_dict
from monitor.types import Alert

SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, f"{timestamp}." + body)."""
    digest = hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def encode(alert: Alert) -> bytes:
    """The alert JSON as sent: UTF-8, compact, keys in documented order."""
    return json.dumps(alert_to_dict(alert), ensure_ascii=False, separators=(",", ":")).encode()


class WebhookSink:
    """POSTs each alert to one URL."""

    def __init__(self, config: WebhookSinkConfig, *, clock: Clock | None = None) -> None:
        self.name = config.name
        self.config = config
        self._clock = clock or SystemClock()
        self._secret = config.secret.get_secret_value().encode() if config.secret else None
        self._poster = HttpPoster(
            config.name,
            config.url,
            timeout=config.timeout.total_seconds(),
            receiver="the webhook receiver",
            secrets=[s for s in (config.secret, *config.header_secrets()) if s is not None],
            clock=self._clock,
        )

    def request(self, alert: Alert) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one attempt, signed now."""
        body = encode(alert)
        timestamp = int(self._clock.now().timestamp())
        headers = {
            **{k: v.get_secret_value() for k, v in self.config.headers.items()},
            "Content-Type": "application/json",
            "Idempotency-Key": alert.alert_id,
            TIMESTAMP_HEADER: str(timestamp),
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        return body, headers

    async def deliver(self, alert: Alert) -> str:
        """Send; return the receiver's answer ('200 OK: ...')."""
        body, headers = self.request(alert)
        return await self._poster.post(body, headers)

    async def send(self, alert: Alert) -> None:
        await self.deliver(alert)

    async def close(self) -> None:
        await self._poster.close()
