"""Slack incoming-webhook sink: a Block Kit message with a plain-text fallback.

Layout (top to bottom): a header with the severity and rule; the title linked to
the item, with the start of the summary; feed, published time, rule and severity
as fields; the evidence (matched words in bold, places, numbers, score with its
breakdown, the snippet); "also reported by N sources" when clustering found
some; and a colour bar (an attachment) in the severity's colour.

Slack's limits are kept by construction — header 150 characters, section text
3000, field 2000, at most 10 fields and 50 blocks — cutting text, never the link.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from monitor.clock import Clock
from monitor.config.models import SlackSinkConfig
from monitor.sinks.http import HttpPoster
from monitor.sinks.render import (
    SEVERITY_COLOUR,
    digest_entries,
    matched_words,
    numbers,
    places,
    score,
    sources,
)
from monitor.sinks.templates import MessageTemplate, highlight_slack, load_template, slack_escape
from monitor.types import Alert, Severity

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
CONTEXT_MAX = 3000  # per context element
TEXT_MAX = 3000  # the fallback; Slack cuts messages at 40 000 but notifications far sooner
BLOCKS_MAX = 50
TITLE_MAX = 300  # a title longer than this is not a title
SUMMARY_MAX = 600  # the start of the summary under the title
SOURCES_SHOWN = 10
_GROWTH = 5  # len('&amp;'): the most one character grows when escaped or bolded
SEVERITY_EMOJI = {
    Severity.INFO: ":large_blue_circle:",
    Severity.WARNING: ":warning:",
    Severity.CRITICAL: ":rotating_light:",
}


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, ending in '…' when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def fit(raw: str, render: Callable[[str], str], limit: int) -> str:
    """``render(raw)``, or ``render`` of the longest prefix of ``raw`` that fits with '…'.

    Cutting ``raw`` before rendering never splits an entity or a bold marker.
    Rendering grows a character at most ``_GROWTH`` fold ('&' -> '&amp;').
    """
    text = render(raw)
    if len(text) <= limit:
        return text
    raw = raw[:limit]
    while True:
        text = render(raw.rstrip()) + "…"
        over = len(text) - limit
        if over <= 0 or not raw:
            return text[:limit]
        raw = raw[: len(raw) - max(1, over // _GROWTH)]


def cut_escaped(raw: str, limit: int) -> str:
    """``raw`` Slack-escaped in at most ``limit`` characters, ending in '…' when cut."""
    return fit(raw, slack_escape, limit)


def fallback_text(text: str, url: str | None, limit: int = TEXT_MAX) -> str:
    """The fallback cut to ``limit`` but still carrying the link."""
    if len(text) <= limit:
        return text
    tail = f"\n<{slack_escape(url)}>" if url else ""
    return cut(text, limit - len(tail)) + tail


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _title_section(alert: Alert) -> dict[str, Any]:
    item = alert.item
    title = cut_escaped(item.title.strip() or "(no title)", TITLE_MAX)
    if item.url and len(item.url) < SECTION_MAX - TITLE_MAX - 10:
        head = f"*<{slack_escape(item.url)}|{title}>*"
    else:
        head = f"*{title}*"  # no link, or one too long for any section (never seen in practice)
    summary = "" if digest_entries(alert) else item.summary.strip()  # listed below instead
    room = min(SUMMARY_MAX, SECTION_MAX - len(head) - 1)
    text = head + (f"\n{cut_escaped(summary, room)}" if summary and room > 20 else "")
    return {"type": "section", "text": _mrkdwn(text)}


def _fields(alert: Alert) -> dict[str, Any]:
    item = alert.item
    ts = int(item.published.timestamp())
    iso = item.published.strftime("%Y-%m-%d %H:%M UTC")
    when = f"<!date^{ts}^{{date_short_pretty}} {{time}}|{iso}>"
    if item.published_missing:
        when += " (no date in feed; first seen)"
    fields = [
        ("Feed", slack_escape(alert.feed_title or item.feed_id)),
        ("Published", when),
        ("Rule", f"`{slack_escape(alert.rule_id)}`"),
        ("Severity", alert.severity.label.upper()),
    ]
    return {
        "type": "section",
        "fields": [_mrkdwn(cut(f"*{name}*\n{value}", FIELD_MAX)) for name, value in fields],
    }


def _evidence_section(alert: Alert) -> dict[str, Any] | None:
    words = matched_words(alert)
    lines = []
    if words:
        lines.append("*Matched:* " + ", ".join(f"*{slack_escape(w)}*" for w in words))
    for label, values in (("Places", places(alert)), ("Numbers", numbers(alert))):
        if values:
            lines.append(f"*{label}:* " + slack_escape(", ".join(values)))
    scored = score(alert)
    if scored:
        lines.append(f"*Score:* {slack_escape(scored)}")
    reason = alert.evidence.details.get("reason")
    if reason:
        lines.append(f"*Why:* {slack_escape(str(reason))}")
    head = cut("\n".join(lines), SECTION_MAX - 200)
    snippet = alert.evidence.details.get("snippet")
    if isinstance(snippet, str) and snippet.strip():
        room = SECTION_MAX - len(head) - 3
        quoted = _cut_highlighted(snippet.strip(), words, room)
        head = f"{head}\n> {quoted}" if head else f"> {quoted}"
    return {"type": "section", "text": _mrkdwn(head)} if head else None


def _cut_highlighted(snippet: str, words: list[str], limit: int) -> str:
    return fit(" ".join(snippet.split()), lambda raw: highlight_slack(raw, words), limit)


def _digest_line(entry: dict[str, Any]) -> str:
    title = cut_escaped(str(entry.get("title") or "(no title)"), TITLE_MAX)
    url = entry.get("url")
    head = f"<{slack_escape(str(url))}|{title}>" if url else title
    severity = str(entry.get("severity", "")).upper()
    feed = slack_escape(str(entry.get("feed", "")))
    return f"• *{severity}* {head} — {feed} (`{slack_escape(str(entry.get('rule', '')))}`)"


def _digest_sections(alert: Alert) -> list[dict[str, Any]]:
    """A digest's batched alerts, one line each, packed into sections within the limits."""
    sections: list[dict[str, Any]] = []
    text = ""
    for entry in digest_entries(alert):
        line = cut(_digest_line(entry), SECTION_MAX)
        if text and len(text) + 1 + len(line) > SECTION_MAX:
            sections.append({"type": "section", "text": _mrkdwn(text)})
            text = ""
        text = f"{text}\n{line}" if text else line
    if text:
        sections.append({"type": "section", "text": _mrkdwn(text)})
    return sections[: BLOCKS_MAX - 6]


def _context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(cut(t, CONTEXT_MAX)) for t in texts[:10]]}


def slack_blocks(alert: Alert) -> list[dict[str, Any]]:
    """The message's blocks, in order, each within Slack's limits."""
    header = f"{SEVERITY_EMOJI[alert.severity]} {alert.severity.label.upper()} · {alert.rule_id}"
    heading = {"type": "plain_text", "text": cut(header, HEADER_MAX), "emoji": True}
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": heading},
        _title_section(alert),
        _fields(alert),
    ]
    evidence = _evidence_section(alert)
    if evidence:
        blocks.append(evidence)
    blocks.extend(_digest_sections(alert))
    others = sources(alert)
    if others:
        shown = ", ".join(slack_escape(s) for s in others[:SOURCES_SHOWN])
        more = len(others) - SOURCES_SHOWN
        n = len(others)
        blocks.append(
            _context(
                f":newspaper: Also reported by {n} source{'s' if n != 1 else ''}: {shown}"
                + (f" and {more} more" if more > 0 else "")
            )
        )
    return blocks[:BLOCKS_MAX]


def slack_message(
    alert: Alert,
    text: str,
    *,
    channel: str | None = None,
    username: str | None = None,
    icon_emoji: str | None = None,
) -> dict[str, Any]:
    """The whole webhook payload: fallback ``text``, blocks, and the colour bar."""
    message: dict[str, Any] = {
        "text": fallback_text(text, alert.item.url),
        "blocks": slack_blocks(alert),
        "attachments": [
            {
                "color": SEVERITY_COLOUR[alert.severity],
                "blocks": [_context(f"media-monitor · alert `{slack_escape(alert.alert_id)}`")],
            }
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }
    for key, value in (("channel", channel), ("username", username), ("icon_emoji", icon_emoji)):
        if value:
            message[key] = value
    return message


class SlackSink:
    """Posts each alert to one Slack incoming webhook."""

    def __init__(
        self,
        config: SlackSinkConfig,
        *,
        clock: Clock | None = None,
        template: MessageTemplate | None = None,
    ) -> None:
        self.name = config.name
        self.config = config
        self.template = template or load_template(
            "slack_text.txt.j2",
            config.template,
            flavour="slack",
            sink=config.name,
            key=f"sinks[{config.name}].template",
        )
        self._poster = HttpPoster(
            config.name,
            config.webhook_url,
            timeout=config.timeout.total_seconds(),
            receiver="Slack",
            clock=clock,
        )
        # Pacing is wall-clock spacing between requests, not alert time: monotonic is right.
        self._pace = asyncio.Lock()
        self._last_sent = float("-inf")

    def payload(self, alert: Alert) -> dict[str, Any]:
        cfg = self.config
        return slack_message(
            alert,
            self.template.render(alert),
            channel=cfg.channel,
            username=cfg.username,
            icon_emoji=cfg.icon_emoji,
        )

    async def deliver(self, alert: Alert) -> str:
        """Send, no sooner than ``min_interval`` after the last; return Slack's answer."""
        body = json.dumps(self.payload(alert), ensure_ascii=False).encode("utf-8")
        async with self._pace:
            wait = self._last_sent + self.config.min_interval.total_seconds() - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                return await self._poster.post(
                    body, {"Content-Type": "application/json; charset=utf-8"}
                )
            finally:
                self._last_sent = time.monotonic()

    async def send(self, alert: Alert) -> None:
        await self.deliver(alert)

    async def close(self) -> None:
        await self._poster.close()
