"""The analyst's commands: ``derive``, ``test`` and ``backtest`` (registered on ``monitor``).

Thin: argument parsing, reading files and the network, printing with rich. The logic is
in :mod:`monitor.derive` and :mod:`monitor.analyst`. Exit codes follow ``monitor.cli``:
0 success, 1 the check failed (a case missed), 2 bad usage, configuration or input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from monitor.cli_common import EXIT_CONFIG, EXIT_FAILED, config_option
from monitor.config.base import parse_duration
from monitor.config.loader import load_config
from monitor.config.models import AppConfig
from monitor.exceptions import ConfigError, MonitorError
from monitor.rules.engine import RuleSet, Verdict
from monitor.types import Alert, Item, Match

EXIT_USAGE = EXIT_CONFIG
_STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _rules(config_path: Path) -> tuple[AppConfig, RuleSet]:
    from monitor.rules.compile import compile_rules

    try:
        config = load_config(config_path)
        return config, compile_rules(config.rules)
    except ConfigError as e:
        _fail(f"invalid configuration\n{e}")
    except MonitorError as e:
        _fail(f"{config_path}: {e}")
    raise AssertionError("unreachable")


# --- derive -----------------------------------------------------------------------------


@click.command()
@click.argument("seed_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("config/rules.yaml"),
              show_default=True, help="The rules file to write.")  # fmt: skip
@click.option("--lexicon", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="A lexicon file instead of the shipped one.")  # fmt: skip
@click.option("--local", default="rules.local.yaml", show_default=True,
              help="Hand-written rules file to include (created empty if missing).")  # fmt: skip
def derive(seed_dir: Path, output: Path, lexicon: Path | None, local: str) -> None:
    """Write the rules file from the seed articles (*.txt) and the escalation lexicon."""
    from monitor.derive import derive as derive_rules
    from monitor.derive import lexicon_from_text, read_seed, shipped_lexicon
    from monitor.gazetteer import Gazetteer

    files = sorted(seed_dir.glob("*.txt"))
    if not files:
        _fail(f"{seed_dir}: no seed articles (*.txt)")
    seeds = [read_seed(f.name, f.read_text(encoding="utf-8")) for f in files]
    try:
        lex = lexicon_from_text(lexicon.read_text("utf-8"), str(lexicon)) if lexicon else None
    except ValueError as e:
        _fail(str(e))
    regenerate = f"monitor derive {_shown(seed_dir)}/ -o {_shown(output)}"
    text = derive_rules(seeds, lex or shipped_lexicon(), gazetteer=Gazetteer.load(),
                        regenerate=regenerate, local=local or None)  # fmt: skip
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    if local and not (output.parent / local).exists():
        (output.parent / local).write_text(_LOCAL_TEMPLATE, encoding="utf-8")
        click.echo(f"wrote {output.parent / local} (empty, for your own rules)")
    click.echo(f"wrote {output} from {len(seeds)} seed(s)")


def _shown(path: Path) -> str:
    """A path for the header's regenerate line: as given if relative, else its name only."""
    return path.as_posix().rstrip("/") if not path.is_absolute() else path.name


_LOCAL_TEMPLATE = """\
# Hand-written rules, included by the derived rules file. `monitor derive` never
# overwrites this file: keep your own rules here. Same syntax as any rules file.
rules: []
"""


# --- test -------------------------------------------------------------------------------


@click.command("test")
@config_option
@click.argument("text", required=False)
@click.option("--file", "file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Judge this text file (first line is the title).")  # fmt: skip
@click.option("--url", help="Fetch a feed (every item is judged) or an HTML page.")
@click.option("--lang", help="Language of the text (en, uk, ru...).")
@click.option("--explain", is_flag=True, help="Show every rule's verdict and reason.")
@click.option("--cases", type=click.Path(path_type=Path, dir_okay=False),
              help="Judge a JSON-lines cases file instead; exit 1 on any miss.")  # fmt: skip
@click.option("--json", "json_out", is_flag=False, flag_value="-", default=None,
              help="JSON output: to stdout, or with --cases to a file (--json OUT).")  # fmt: skip
@click.option("--report-only", is_flag=True, help="With --cases: exit 0 even on misses.")
def test_command(
    config_path: Path, text: str | None, file: Path | None, url: str | None, lang: str | None,
    explain: bool, cases: Path | None, json_out: str | None, report_only: bool,
) -> None:  # fmt: skip
    """Which rules fire on a text, a file, a URL, or a whole cases file, and why."""
    if json_out not in (None, "-") and text is None and not cases and not file and not url:
        text, json_out = json_out, "-"  # `--json "some text"`: the text is not a path
    _, rules = _rules(config_path)
    if cases is not None:
        _run_cases(cases, rules, json_out, report_only)
        return
    items = _items_to_test(text, file, url, lang)
    console = Console(stderr=json_out == "-", highlight=False)
    found: list[dict[str, Any]] = []
    for item in items:
        matches = rules.evaluate(item)
        for m in matches:
            entry = {"rule": m.rule_id, "severity": m.severity.label,
                     "evidence": m.evidence.to_dict()}  # fmt: skip
            found.append(entry if len(items) == 1 else {**entry, "item": item.title})
        if json_out is None:
            _show(console, item, matches, rules.explain(item) if explain else None)
    if json_out is not None:
        _write_json(json_out, {"matches": found})


def _items_to_test(
    text: str | None, file: Path | None, url: str | None, lang: str | None
) -> list[Item]:
    given = [x for x in (text, file, url) if x is not None]
    if len(given) != 1:
        _fail("give exactly one of TEXT, --file or --url (or --cases)")
    if url is not None:
        return _fetch(url, lang)
    body = file.read_text(encoding="utf-8") if file is not None else str(text)
    title, _, summary = body.strip().partition("\n") if file is not None else (body, "", "")
    return [_item(title, summary.strip(), lang)]


def _item(title: str, summary: str, lang: str | None, url: str | None = None) -> Item:
    now = datetime.now(UTC)
    return Item(id="test", feed_id="test", title=title, summary=summary, url=url,
                published=now, language=lang)  # fmt: skip


def _fetch(url: str, lang: str | None) -> list[Item]:
    """A feed's items, or an HTML page as one item (its <title> and its text)."""
    import re

    import httpx

    from monitor.html import html_to_text
    from monitor.parse import parse_feed

    try:
        response = httpx.get(url, follow_redirects=True, timeout=20.0)
        response.raise_for_status()
    except httpx.HTTPError as e:
        _fail(f"cannot fetch {url}: {e}")
    try:
        parsed = parse_feed(response.content, dict(response.headers), feed_id="test", url=url,
                            now=datetime.now(UTC), language=lang)  # fmt: skip
        if parsed.items:
            return list(parsed.items)
    except MonitorError:
        pass  # not a feed: read it as a page
    page = response.text
    m = re.search(r"<title[^>]*>(.*?)</title>", page, re.IGNORECASE | re.DOTALL)
    title = html_to_text(m.group(1)) if m else url
    body = re.sub(r"<title[^>]*>.*?</title>", " ", page, flags=re.IGNORECASE | re.DOTALL)
    return [_item(title, html_to_text(body), lang, url)]


def _show(
    console: Console, item: Item, matches: Sequence[Match], verdicts: list[Verdict] | None
) -> None:
    """The item with matched spans highlighted, then the rules that fired (or every verdict)."""
    spans: dict[str, list[tuple[int, int, str]]] = {"title": [], "summary": []}
    for m in matches:
        style = _STYLE[m.severity.label]
        for hit in m.evidence.terms:
            spans[hit.field].append((hit.start, hit.end, style))
        for place in m.evidence.details.get("places", ()):
            if isinstance(place, dict) and place.get("field") in spans:
                spans[place["field"]].append((place["start"], place["end"], "bold magenta"))
    for name, value in (("title", item.title), ("summary", item.summary)):
        if value:
            body = Text(value)
            for start, end, style in spans[name]:
                body.stylize(style, start, end)
            console.print(Text(f"{name}: ", style="dim") + body)
    if not matches:
        console.print("[green]no rule fires[/green]")
    for m in matches:
        console.print(f"[{_STYLE[m.severity.label]}]{m.severity.label.upper()}[/] {m.rule_id}  "
                      f"{_evidence_line(m)}")  # fmt: skip
    if verdicts is not None:
        table = Table("rule", "fired", "why")
        for v in verdicts:
            table.add_row(v.rule_id, "yes" if v.fired else "no",
                          _evidence_line(v.match) if v.match else v.reason)  # fmt: skip
        console.print(table)


def _evidence_line(m: Match) -> str:
    d = m.evidence.details
    parts = [", ".join(dict.fromkeys(h.text for h in m.evidence.terms))]
    if "score" in d:
        parts.append(f"score {d['score']} {d.get('breakdown', {})}")
    parts += [f"number {n['text']} {n.get('noun', '')}" for n in d.get("numbers", ())]
    places = [p.get("name") for p in d.get("places", ()) if isinstance(p, dict)]
    if places and m.evidence.details.get("kind") in ("novelty", "burst"):
        parts.append("places " + ", ".join(str(p) for p in places))
    return "; ".join(p for p in parts if p)


def _write_json(target: str, data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if target == "-":
        click.echo(text)
    else:
        Path(target).write_text(text + "\n", encoding="utf-8")


def _run_cases(path: Path, rules: RuleSet, json_out: str | None, report_only: bool) -> None:
    from monitor.analyst import confusion, judge, read_cases

    try:
        cases = read_cases(path, rules.rule_ids)
    except ConfigError as e:
        _fail(str(e))
    results = [judge(case, rules) for case in cases]
    console = Console(stderr=json_out == "-", highlight=False)
    table = Table("rule", "TP", "FN", "FP", "TN", "recall", "false-positive rate",
                  title=f"{path}: {len(results)} cases")  # fmt: skip
    for rule_id, c in confusion(results, rules.rule_ids).items():
        table.add_row("overall" if rule_id == "*" else rule_id, str(c.tp), str(c.fn), str(c.fp),
                      str(c.tn), _pct(c.recall), _pct(c.fpr))  # fmt: skip
    console.print(table)
    misses = [r for r in results if not r.passed]
    for r in misses:
        what = "missed" if r.case.expect == "fire" else "false alarm"
        rule = f" ({r.case.rule})" if r.case.rule else ""
        console.print(f"[red]{what}{rule}[/red] {r.case.where}: {r.case.title}")
        for m in r.matches:
            console.print(f"    fired {m.rule_id} [{m.severity.label}]: {_evidence_line(m)}")
    if json_out is not None:
        _write_json(json_out, {"results": [r.to_dict() for r in results]})
    console.print(f"{len(results) - len(misses)} of {len(results)} cases pass")
    if misses and not report_only:
        sys.exit(EXIT_FAILED)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


# --- backtest ---------------------------------------------------------------------------


@click.command()
@config_option
@click.option("--since", help="Items of the store published in this past window (7d, 12h).")
@click.option("--input", "input_path", type=click.Path(path_type=Path, exists=True),
              help="An archive: items.jsonl[.gz], or a directory of feed files.")  # fmt: skip
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the would-be alerts here, one JSON object per line.")  # fmt: skip
@click.option("--presorted", is_flag=True,
              help="The archive is already in time order: stream it without sorting.")  # fmt: skip
def backtest(config_path: Path, since: str | None, input_path: Path | None,
             output: Path | None, presorted: bool) -> None:  # fmt: skip
    """Run the rules over stored or archived items in time order; sends nothing."""
    from monitor.analyst import InputError, read_feed_dir, read_jsonl, read_store, sort_by_time
    from monitor.sinks.render import alert_to_dict

    if since and input_path:
        _fail("give --since (the store) or --input (an archive), not both")
    config, rules = _rules(config_path)
    now = datetime.now(UTC)
    console = Console(stderr=True, highlight=False)
    try:
        if input_path is None:
            window = parse_duration(since or "7d")
            items: Iterable[Item] = read_store(Path(config.storage.path), now - window)
        elif input_path.is_dir():
            items = sort_by_time(read_feed_dir(input_path, now))
        else:
            items = read_jsonl(input_path)
            items = items if presorted else sort_by_time(items)
        out = output.open("w", encoding="utf-8") if output else None
        try:
            tally = _with_progress(console, items, rules, config, out, alert_to_dict)
        finally:
            if out is not None:
                out.close()
    except (InputError, ValueError, MonitorError) as e:
        _fail(str(e))
    _report(Console(highlight=False), tally)


def _with_progress(console: Console, items: Iterable[Item], rules: RuleSet, config: AppConfig,
                   out: IO[str] | None, render: Any) -> Any:  # fmt: skip
    from monitor.analyst import backtest as run

    total = len(items) if isinstance(items, list) else None
    tags = {f.id: f.tags for f in config.feeds}
    titles = {f.id: f.title or f.id for f in config.feeds}
    with Progress(TextColumn("backtest"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console,
                  disable=not console.is_terminal) as progress:  # fmt: skip
        task = progress.add_task("items", total=total)

        def write(alert: Alert) -> None:
            if out is not None:
                out.write(json.dumps(render(alert), ensure_ascii=False) + "\n")

        return run(_counted(items, progress, task), rules, feed_tags=tags, feed_titles=titles,
                   on_alert=write)  # fmt: skip


def _counted(items: Iterable[Item], progress: Progress, task: Any) -> Iterator[Item]:
    for n, item in enumerate(items, 1):
        yield item
        if n % 500 == 0:
            progress.update(task, completed=n)


def _report(console: Console, tally: Any) -> None:
    console.print(f"{tally.items} items, {tally.alerts} would-be alerts")
    table = Table("rule", "alerts", title="per rule")
    for rule_id, n in sorted(tally.per_rule.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(rule_id, str(n))
    console.print(table)
    days = Table("day", "alerts", title="per day")
    for day in sorted(tally.per_day):
        days.add_row(day, str(tally.per_day[day]))
    console.print(days)
    for rule_id in sorted(tally.examples):
        console.print(f"[bold]{rule_id}[/bold] examples:")
        for alert in tally.examples[rule_id]:
            console.print(f"  {alert.item.published:%Y-%m-%d %H:%M} {alert.item.title[:100]}")
