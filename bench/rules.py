"""Rule-engine benchmark: items per second per core for `RuleSet.assess`.

The rules are the shipped ones (config/rules.yaml, derived from the seeds; with
``--extras`` also one more rule of every kind) plus N generated rules (default 1,000:
terms, near, novelty with varied baselines and countries, and term bursts). Items are of
two kinds, measured apart and mixed:

* seed: sentences of the seed article (seeds/), dense in places and escalation terms;
* news: generated news-like items (about 60 words) with zero to three places.

History is a MemoryHistory filled with earlier mentions, so novelty and burst rules do
their lookups. Timing is process CPU time, best of several runs (the machine may be
shared). Usage: python bench/rules.py [--rules 1000] [--items 4000] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from ruamel.yaml import YAML

from monitor.config.rule_models import RuleConfig
from monitor.rules.compile import compile_rules
from monitor.rules.engine import RuleSet
from monitor.rules.history import MemoryHistory
from monitor.types import Item

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)
CONTEXT = ["advanc*", "offensive", "captur*", "seiz*", "troops", "shell*", "strik*",
           "attack*", "drone*", "missile*", "наступ*", "обстріл*", "удар*"]  # fmt: skip
PLACES = ["Kharkiv", "Pokrovsk", "Dnipro", "Zaporizhzhia", "Kherson", "Sumy", "Odesa",
          "Belgorod", "Kursk", "Moldova", "Chisinau", "Poland", "Berlin", "Kyiv", "Lviv",
          "Donetsk region", "Dnipropetrovsk region", "Crimea", "Georgia", "Vilnius"]  # fmt: skip
_NEWS = ("officials said the regional council met on tuesday to discuss the budget while "
         "residents reported power cuts after storms and the ministry announced new rules "
         "for exports as markets rose and football fans gathered near the stadium where "
         "police said traffic would be restricted and schools remain closed")  # fmt: skip
WORDS = _NEWS.split()
_VOCAB = (
    "drone missile strike shelling offensive advance troops brigade artillery tank "
    "ceasefire talks sanctions refinery airbase frontline evacuation blackout"
)
VOCAB = _VOCAB.split()


def shipped_like(*, extras: bool = False) -> list[dict[str, Any]]:
    """config/rules.yaml (as derived from the seeds), with ``extras`` one rule of each kind."""
    yaml = YAML(typ="safe")
    shipped = list(yaml.load((ROOT / "config" / "rules.yaml").read_text())["rules"])
    if not extras:
        return shipped
    return [
        *shipped,
        {"kind": "novelty", "id": "x-new-region", "severity": "critical", "level": "region",
         "countries": ["UA", "RU"], "context": {"terms": CONTEXT, "within": "sentence"},
         "baseline": ["UA-14", "UA-12", "Dnipro", "Ukraine", "Russia"], "window": "90d"},
        {"kind": "novelty", "id": "x-new-country", "level": "country",
         "context": {"terms": CONTEXT, "within": 12}, "baseline": ["Ukraine", "Russia"]},
        {"kind": "burst", "id": "x-place-burst", "keys": "places", "min_sources": 3,
         "window": "2h", "factor": 5, "baseline_window": "14d"},
        {"kind": "burst", "id": "x-weapon-burst", "keys": "terms",
         "terms": ["oreshnik", "shahed*", "glide bomb*"], "min_sources": 3},
        {"kind": "score", "id": "x-escalation", "bands": {"info": 2, "warning": 4, "critical": 7},
         "categories": {
             "military": {"terms": {"offensive": 2, "advanc*": 2, "troops": 1, "tank*": 1}},
             "strikes": {"terms": {"drone*": 1, "missile*": 2, "record": 2}, "cap": 4}}},
        {"kind": "near", "id": "x-record-raid", "terms": [["record"], ["drone*", "missile*"]],
         "within": 6},
        {"kind": "quantity", "id": "x-mass-drones", "nouns": ["drone*"], "min": 400},
        {"kind": "regex", "id": "x-casualties", "pattern": r"(?P<n>\d+) (?:people )?killed",
         "thresholds": {"n": ">= 10"}},
    ]  # fmt: skip


def generated(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """70% terms, 15% near, 10% novelty, 5% term bursts.

    Terms, near and bursts watch their own words (as a watch list of names would), one
    in fifty also a common conflict word; every novelty rule uses conflict context words,
    so on a conflict item most of them are checked.
    """
    rules: list[dict[str, Any]] = []
    countries = ["UA", "RU", "MD", "BY", "PL", "GE", "LT", "RO"]
    baseline = ["UA-14", "UA-09", "UA-63", "RU-BEL"]
    for i in range(n):
        kind = i % 20
        common = [rng.choice(VOCAB)] if i % 50 == 0 else []
        if kind < 14:
            rules.append({"kind": "terms", "id": f"g{i}",
                          "any": [f"term{i}a", f"gen{i}*", f"two words{i}", *common]})  # fmt: skip
        elif kind < 17:
            rules.append({"kind": "near", "id": f"g{i}", "within": 8,
                          "terms": [[f"near{i}", *common], [f"by{i}", "drone*"]]})  # fmt: skip
        elif kind < 19:
            rules.append({"kind": "novelty", "id": f"g{i}", "level": "region",
                          "countries": rng.sample(countries, 2),
                          "context": {"terms": rng.sample(CONTEXT, 6), "within": "sentence"},
                          "baseline": rng.sample(baseline, 2)})  # fmt: skip
        else:
            rules.append({"kind": "burst", "id": f"g{i}", "keys": "terms",
                          "terms": [f"burst{i}", *common], "min_sources": 3})  # fmt: skip
    return rules


def news_items(n: int, rng: random.Random) -> list[Item]:
    items = []
    for i in range(n):
        words = [rng.choice(WORDS + VOCAB[:4]) for _ in range(60)]
        for _ in range(rng.randint(0, 3)):
            words.insert(rng.randrange(len(words)), rng.choice(PLACES))
        title = " ".join(words[:10]).capitalize()
        summary = ". ".join(" ".join(words[j : j + 15]).capitalize() for j in range(10, 60, 15))
        items.append(_item(i, title, summary + "."))
    return items


def seed_items(n: int, rng: random.Random) -> list[Item]:
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt")))
    paragraphs = [p.strip() for p in text.split("\n") if len(p.strip()) > 60]
    return [
        _item(i, rng.choice(paragraphs)[:140], " ".join(rng.sample(paragraphs, 2))[:600])
        for i in range(n)
    ]


def _item(i: int, title: str, summary: str) -> Item:
    return Item(id=f"i{i}", feed_id=f"feed{i % 40}", title=title, summary=summary, url=None,
                published=NOW - timedelta(minutes=i % 600))  # fmt: skip


def history_for(rules: RuleSet, items: list[Item]) -> MemoryHistory:
    """Mentions of the items, a week earlier: lookups find something, novelty mostly not."""
    history = MemoryHistory()
    for item in items:
        for m in rules.assess(item, now=NOW - timedelta(days=7)).mentions:
            history.add([m], item_id=item.id, source=item.feed_id)
    return history


def measure(rules: RuleSet, items: list[Item], history: MemoryHistory, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        for item in items:
            rules.assess(item, history=history, now=NOW)
        best = min(best, time.process_time() - start)
    return len(items) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000, help="generated rules")
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--extras", action="store_true", help="add a rule of each kind the shipped file lacks"
    )
    args = parser.parse_args()
    rng = random.Random(1)
    configs = TypeAdapter(list[RuleConfig]).validate_python(
        shipped_like(extras=args.extras) + generated(args.rules, rng)
    )
    start = time.perf_counter()
    rules = compile_rules(configs)
    compile_s = time.perf_counter() - start
    kinds: dict[str, int] = {}
    for config in configs:
        kinds[config.kind] = kinds.get(config.kind, 0) + 1
    print(f"{len(configs)} rules {kinds}; compiled in {compile_s:.2f}s")
    seed, news = seed_items(args.items, rng), news_items(args.items, rng)
    mixed = seed[: args.items // 4] + news[: args.items * 3 // 4]
    rng.shuffle(mixed)
    history = history_for(rules, seed[:500] + news[:500])
    print(f"history: {len(history)} mentions")
    for name, items in (("news", news), ("seed", seed), ("mixed 1:3", mixed)):
        fired = sum(len(rules.evaluate(i, history=history, now=NOW)) for i in items[:500])
        rate = measure(rules, items, history, args.runs)
        print(f"{name:>10}: {rate:8,.0f} items/s per core ({fired / 500:.2f} matches/item)")


if __name__ == "__main__":
    main()
