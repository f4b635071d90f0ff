"""Rule regression cases and backtests: the logic behind ``monitor test`` and ``monitor backtest``.

Pure-ish: judging and counting are pure; the readers stream items from a JSON-lines
archive (optionally gzipped), a directory of feed files, or the SQLite store (read-only),
and never write anything.

    cases.jsonl ─read_cases─▶ Case ─judge (each on its own, no history)─▶ CaseResult
        ─confusion─▶ per rule and overall: TP FN FP TN, recall, false-positive rate

    archive | feeds dir | store ─▶ Item ─sorted by time─▶ RuleSet.assess(history, now=published)
        ─▶ Alert (as the daemon would make it) ─▶ Tally, alerts.jsonl;  mentions ─▶ MemoryHistory

A backtest's history starts empty: the novelty rules' baselines (the seeds' places) are
in the rules themselves, and every item's mentions are added after it is judged, with the
item's publication time, so novelty and burst windows are in the archive's time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from monitor.decide import make_alert
from monitor.exceptions import ConfigError, ConfigIssue, MonitorError
from monitor.html import html_to_text, looks_like_html
from monitor.parse import parse_feed
from monitor.rules.engine import RuleSet
from monitor.rules.history import MemoryHistory
from monitor.types import Alert, Item, Match, Severity

__all__ = [
    "BacktestTally", "Case", "CaseResult", "Confusion", "backtest", "confusion", "item_from_json",
    "judge", "read_cases", "read_feed_dir", "read_jsonl", "read_store", "sort_by_time",
]  # fmt: skip

EXAMPLES_PER_RULE = 3
_LANGS = ("en", "uk", "ru")
_CASE_KEYS = frozenset({"title", "summary", "lang", "expect", "rule", "min_severity", "note"})


# --- cases ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """One labelled sentence: should the rules (or one rule) fire on it or stay silent."""

    source: str
    line: int
    title: str
    summary: str
    lang: str | None
    expect: str  # "fire" | "silent"
    rule: str | None = None
    min_severity: Severity | None = None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def item(self) -> Item:
        digest = hashlib.sha256(f"{self.title}\n{self.summary}".encode()).hexdigest()[:16]
        return Item(
            id=f"case-{self.line}-{digest}",
            feed_id="cases",
            title=self.title,
            summary=self.summary,
            url=None,
            published=datetime(2025, 6, 8, 12, tzinfo=UTC),
            language=self.lang,
        )


def read_cases(path: Path, rule_ids: Iterable[str] = ()) -> list[Case]:
    """Parse a cases file; ConfigError naming file:line for a malformed line or unknown rule."""
    known = frozenset(rule_ids)
    cases: list[Case] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([ConfigIssue(str(path), f"cannot read the cases file: {e}")]) from e
    for number, text in enumerate(lines, 1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            cases.append(_case(str(path), number, text, known))
        except ValueError as e:
            raise ConfigError([ConfigIssue(str(path), str(e), line=number)]) from None
    return cases


def _case(source: str, number: int, text: str, known: frozenset[str]) -> Case:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not a JSON object: {e.msg} at column {e.colno}") from None
    if not isinstance(data, dict):
        raise ValueError('each line must be a JSON object like {"title": ..., "expect": ...}')
    unknown = sorted(set(data) - _CASE_KEYS)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)}; use {', '.join(sorted(_CASE_KEYS))}"
        )
    title, summary = data.get("title"), data.get("summary", "")
    if not isinstance(title, str) or not title.strip() or not isinstance(summary, str):
        raise ValueError("`title` must be a non-empty string (and `summary` a string)")
    if data.get("expect") not in ("fire", "silent"):
        raise ValueError(f'`expect` must be "fire" or "silent", not {data.get("expect")!r}')
    lang = data.get("lang")
    if lang is not None and lang not in _LANGS:
        raise ValueError(f"`lang` must be one of {', '.join(_LANGS)}, not {lang!r}")
    rule = data.get("rule")
    if rule is not None and (not isinstance(rule, str) or (known and rule not in known)):
        raise ValueError(f"`rule` {rule!r} is not a rule of this configuration")
    severity = data.get("min_severity")
    try:
        level = Severity.parse(severity) if severity is not None else None
    except (ValueError, AttributeError):
        raise ValueError(
            f"`min_severity` must be info, warning or critical, not {severity!r}"
        ) from None
    return Case(source, number, title, summary, lang, data["expect"], rule, level)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """A case, what fired on it, and whether that is what it expected."""

    case: Case
    matches: tuple[Match, ...]
    passed: bool

    def relevant(self) -> list[Match]:
        """The matches the case is about: its rule's, at its minimum severity or above."""
        return _relevant(self.case, self.matches)

    def to_dict(self) -> dict[str, Any]:
        c = self.case
        return {
            "line": c.line, "title": c.title, "lang": c.lang, "expect": c.expect,
            "rule": c.rule, "passed": self.passed,
            "fired": [{"rule": m.rule_id, "severity": m.severity.label,
                       "evidence": m.evidence.to_dict()} for m in self.matches],
        }  # fmt: skip


def _relevant(case: Case, matches: Iterable[Match]) -> list[Match]:
    floor = case.min_severity or Severity.INFO
    return [m for m in matches if (case.rule in (None, m.rule_id)) and m.severity >= floor]


def judge(case: Case, rules: RuleSet) -> CaseResult:
    """Evaluate one case on its own: no history, so novelty judges against its baseline."""
    matches = tuple(rules.evaluate(case.item()))
    hit = bool(_relevant(case, matches))
    return CaseResult(case, matches, hit if case.expect == "fire" else not hit)


@dataclass(slots=True)
class Confusion:
    """Counts of one rule (or all) over the cases that say something about it."""

    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def fpr(self) -> float | None:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else None


def confusion(results: Sequence[CaseResult], rule_ids: Sequence[str]) -> dict[str, Confusion]:
    """Per rule and overall ("*"): a fire case counts for its rule; a silent one for each
    rule it names, or for every rule when it names none."""
    table = {rule_id: Confusion() for rule_id in (*rule_ids, "*")}
    for r in results:
        fired = {m.rule_id for m in r.relevant()}
        overall = table["*"]
        if r.case.expect == "fire":
            overall.tp, overall.fn = overall.tp + r.passed, overall.fn + (not r.passed)
            if r.case.rule in table:
                c = table[r.case.rule]
                c.tp, c.fn = c.tp + r.passed, c.fn + (not r.passed)
            continue
        overall.tn, overall.fp = overall.tn + r.passed, overall.fp + (not r.passed)
        for rule_id in [r.case.rule] if r.case.rule else rule_ids:
            if rule_id in table:
                c = table[rule_id]
                c.fp, c.tn = c.fp + (rule_id in fired), c.tn + (rule_id not in fired)
    return table


# --- reading items ----------------------------------------------------------------------


class InputError(MonitorError):
    """An archive line or file that cannot be read; names the file and line."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.identity = where


def item_from_json(data: Mapping[str, Any], where: str = "") -> Item:
    """An archive line -> Item: published (ISO 8601), title, summary (HTML ok), link, source."""
    try:
        published = datetime.fromisoformat(str(data["published"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        raise InputError("`published` must be an ISO 8601 time", where) from None
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    title = str(data.get("title") or "")
    summary = str(data.get("summary") or "")
    if looks_like_html(summary) or "&" in summary:
        summary = html_to_text(summary)
    link = data.get("link") or data.get("url")
    source = str(data.get("source") or data.get("feed") or "archive")
    key = str(data.get("id") or link or f"{source}\n{title}\n{summary}")
    return Item(
        id=hashlib.sha256(key.encode()).hexdigest()[:32],
        feed_id=source,
        title=html_to_text(title) if looks_like_html(title) else title,
        summary=summary,
        url=str(link) if link else None,
        published=published.astimezone(UTC),
        tags=tuple(str(t) for t in data.get("tags") or ()),
        language=str(data["lang"]) if data.get("lang") else None,
    )


def read_jsonl(path: Path) -> Iterator[Item]:
    """Stream items from a JSON-lines archive (``.gz`` read through gzip)."""
    opener: Callable[..., IO[str]] = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"not a JSON object: {e.msg}", where) from None
                if not isinstance(data, dict):
                    raise InputError("each line must be a JSON object", where)
                yield item_from_json(data, where)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the archive: {e}", str(path)) from e


def read_feed_dir(path: Path, now: datetime) -> Iterator[Item]:
    """Items of every feed file in a directory (name order); the file name is the source."""
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        body = file.read_bytes()
        try:
            parsed = parse_feed(body, {}, feed_id=file.stem, url=file.as_uri(), now=now)
        except MonitorError as e:
            raise InputError(f"not a feed: {e}", str(file)) from e
        yield from parsed.items


def read_store(database: Path, since: datetime) -> Iterator[Item]:
    """Items published since ``since`` from the SQLite store, oldest first, read-only.

    The store's own class checks the schema version; the rows are read here with a plain
    read-only connection, streamed in time order by SQL.
    """
    from monitor.storage.sqlite import SQLiteStorage

    SQLiteStorage(database, read_only=True).close()
    uri = database.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute(
            "SELECT id, feed_id, title, summary, url, published, published_missing, guid,"
            " tags, language, content_hash FROM items WHERE published >= ?"
            " ORDER BY published, id",
            (since.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z",),
        )
        for row in rows:
            yield Item(
                id=row[0], feed_id=row[1], title=row[2], summary=row[3], url=row[4],
                published=datetime.fromisoformat(row[5].replace("Z", "+00:00")),
                published_missing=bool(row[6]), guid=row[7], tags=tuple(json.loads(row[8])),
                language=row[9], content_hash=row[10],
            )  # fmt: skip
    except sqlite3.Error as e:
        raise InputError(f"cannot read items: {e}", str(database)) from e
    finally:
        conn.close()


def sort_by_time(items: Iterable[Item]) -> list[Item]:
    """Items in publication order (ties by id); in memory, fine to about a million items."""
    return sorted(items, key=lambda i: (i.published, i.id))


# --- backtest ---------------------------------------------------------------------------


@dataclass(slots=True)
class BacktestTally:
    """What a backtest found: items read, alerts per rule and per day, a few examples."""

    items: int = 0
    alerts: int = 0
    per_rule: Counter[str] = field(default_factory=Counter)
    per_severity: Counter[str] = field(default_factory=Counter)
    per_day: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Alert]] = field(default_factory=lambda: defaultdict(list))

    def add(self, alert: Alert) -> None:
        self.alerts += 1
        self.per_rule[alert.rule_id] += 1
        self.per_severity[alert.severity.label] += 1
        self.per_day[alert.item.published.date().isoformat()] += 1
        if len(self.examples[alert.rule_id]) < EXAMPLES_PER_RULE:
            self.examples[alert.rule_id].append(alert)


def backtest(
    items: Iterable[Item],
    rules: RuleSet,
    *,
    feed_tags: Mapping[str, Sequence[str]] | None = None,
    feed_titles: Mapping[str, str] | None = None,
    on_alert: Callable[[Alert], None] | None = None,
    on_item: Callable[[], None] | None = None,
) -> BacktestTally:
    """Run the rules over items in the order given (time order), with a fresh history."""
    history = MemoryHistory()
    tags = feed_tags or {}
    titles = feed_titles or {}
    tally = BacktestTally()
    for item in items:
        tally.items += 1
        found = rules.assess(
            item, feed_tags=tags.get(item.feed_id, ()), history=history, now=item.published
        )
        for match in found.matches:
            alert = make_alert(
                match, item, now=item.published, feed_title=titles.get(item.feed_id, "")
            )
            tally.add(alert)
            if on_alert is not None:
                on_alert(alert)
        history.add(found.mentions, item_id=item.id, source=item.feed_id)
        if on_item is not None:
            on_item()
    return tally
