"""Message templates: Jinja2 files shipped in ``monitor/sinks/templates/``, each
replaceable by a file named in the sink's config.

Every template is compiled and rendered once against the sample alert when the
sink is built, so a syntax error or an unknown variable stops start-up with the
file, the line and the sink, instead of failing every delivery later.
Variables are those of :func:`monitor.sinks.render.template_context`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
from markupsafe import Markup, escape

from monitor.exceptions import ConfigError, ConfigIssue, SinkError
from monitor.sinks.render import template_context
from monitor.sinks.sample import sample_alert
from monitor.types import Alert

Flavour = Literal["text", "html", "slack"]
# A fixed moment for the start-up check render: templates see no clock.
_CHECK_TIME = datetime(2025, 6, 8, 9, 15, tzinfo=UTC)


def slack_escape(text: str) -> str:
    """The three characters Slack's mrkdwn wants escaped; nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _words_pattern(words: list[str]) -> re.Pattern[str] | None:
    words = sorted({w for w in words if w.strip()}, key=len, reverse=True)
    if not words:
        return None
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)


def highlight_html(text: str, words: list[str]) -> Markup:
    """``text`` HTML-escaped, with each matched word in ``<strong>``."""
    strong = Markup("<strong>%s</strong>")  # % escapes the word
    return Markup("").join(_highlight(text, words, escape, lambda w: strong % w))


def highlight_slack(text: str, words: list[str]) -> str:
    """``text`` Slack-escaped, with each matched word in ``*bold*``."""
    return "".join(_highlight(text, words, slack_escape, lambda w: f"*{slack_escape(w)}*"))


def _highlight(
    text: str, words: list[str], escape_: Callable[[str], str], bold: Callable[[str], str]
) -> list[str]:
    """``text`` in escaped pieces, the matched words made bold (escaping is bold's job)."""
    pattern = _words_pattern(words)
    if pattern is None:
        return [escape_(text)]
    out, last = [], 0
    for m in pattern.finditer(text):
        out += [escape_(text[last : m.start()]), bold(m.group(0))]
        last = m.end()
    out.append(escape_(text[last:]))
    return out


def _finalize_slack(value: Any) -> Any:
    return slack_escape(value) if isinstance(value, str) else value


def _environment(flavour: Flavour) -> jinja2.Environment:
    options: dict[str, Any] = {
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": False,
        "autoescape": flavour == "html",
    }
    if flavour == "slack":
        options["finalize"] = _finalize_slack
    env = jinja2.Environment(**options)  # noqa: S701 - autoescape is on for HTML, the only markup
    env.filters["highlight"] = highlight_html if flavour == "html" else highlight_slack
    return env


@functools.cache
def environment(flavour: Flavour) -> jinja2.Environment:
    """One environment per flavour, built once; templates compiled from it are immutable."""
    return _environment(flavour)


class MessageTemplate:
    """A compiled template that renders an alert, naming its sink if it fails."""

    def __init__(self, template: jinja2.Template, *, sink: str, source: str) -> None:
        self._template = template
        self.sink = sink
        self.source = source

    def render(self, alert: Alert, **extra: Any) -> str:
        try:
            return self._template.render(**template_context(alert), **extra).strip()
        except jinja2.TemplateError as e:
            raise SinkError(
                self.sink, f"template {self.source} failed: {type(e).__name__}: {e}",
                transient=False,
            ) from None  # fmt: skip


def load_template(
    default: str, override: Path | None, *, flavour: Flavour, sink: str, key: str
) -> MessageTemplate:
    """The packaged template ``default``, or the user's file ``override``; checked now."""
    if override is None:
        source = (resources.files("monitor.sinks") / "templates" / default).read_text("utf-8")
        return compile_template(source, flavour=flavour, sink=sink, key=key, origin=default)
    try:
        source = override.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            [_issue(str(override), sink, key, f"cannot read the template: {type(e).__name__}: {e}")]
        ) from e
    return compile_template(source, flavour=flavour, sink=sink, key=key, origin=str(override))


def compile_template(
    source: str, *, flavour: Flavour, sink: str, key: str, origin: str
) -> MessageTemplate:
    """Compile ``source`` and render it once against the sample alert."""
    env = environment(flavour)
    try:
        template = env.from_string(source)
        template.render(**template_context(sample_alert(_CHECK_TIME)))
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(
            [_issue(origin, sink, key, f"template syntax: {e.message}", e.lineno)]
        ) from e
    except jinja2.TemplateError as e:
        raise ConfigError([_issue(origin, sink, key, f"template does not render: {e}")]) from e
    return MessageTemplate(template, sink=sink, source=origin)


def _issue(origin: str, sink: str, key: str, message: str, line: int | None = None) -> ConfigIssue:
    return ConfigIssue(
        origin,
        f"sink '{sink}': {message}",
        line=line,
        key_path=key,
        hint="variables are listed in the README, section 'Sinks'",
    )
