"""Rule-matching benchmark: items/s through the whole rule evaluation, against two yardsticks.

Items are ~600 characters (a title and a summary) drawn deterministically from a
vocabulary that mixes neutral news (86% of words) with escalation language in English,
Ukrainian and Russian (8%), place names (4%) and counted things (2%), so every item
triggers several shipped rules and novelty rules really look at places. The generated rules
use a real word for one term in fifty, else made-up words, as topic rules of other desks
would: they are candidates on some items and fire on few.

Measured, each on one core (single process, single thread):

1. ``RuleSet.evaluate`` with the shipped rules (config/monitor.yaml);
2. the same with the shipped rules plus 1,000 generated rules (terms, near, quantity and
   score rules over real and made-up words);
3. the naive baseline: each of those rules' terms as one compiled regular expression per
   rule, every rule searched on every item;
4. a raw automaton scan: pyahocorasick over the same lower-cased text with the same keys,
   no rule logic at all (a floor: what one pass costs).

Prints items/s for each, engine/naive (target >= 100x) and engine/raw (how much of the
raw scan cost the rule logic adds). Usage: python bench/match.py [--items 20000]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ahocorasick
from pydantic import TypeAdapter

from monitor.config.loader import load_config
from monitor.config.rule_models import RuleConfig
from monitor.rules.compile import compile_rules
from monitor.rules.lexicon import parse_term
from monitor.types import Item

ROOT = Path(__file__).resolve().parent.parent
# Word lists are written as text: easier to read and edit than list literals.
NEUTRAL = (  # noqa: SIM905
    "the government said on monday that the new budget would support schools hospitals and "
    "local businesses while the central bank kept interest rates unchanged officials expect "
    "growth to pick up later this year as exports recover and inflation eases the minister "
    "told reporters in the capital after a meeting with regional leaders about roads housing "
    "and energy prices weather forecasters warned of heavy rain in the north at the weekend"
).split()
ESCALATION = (  # noqa: SIM905
    "drones missiles shahed ballistic offensive troops advancing captured front line shelling "
    "air defence intercepted overnight attack massive record escalation nuclear threatened "
    "mobilization martial law ultimatum retaliation oreshnik atacms storm shadow kinzhal "
    "дронів ракети наступ війська обстріл беспилотников ракеты наступление войска удар"
).split()
PLACES = (  # noqa: SIM905
    "Kyiv Kharkiv Odesa Lviv Dnipro Zaporizhzhia Kherson Sumy Poltava Donetsk Moscow Belgorod "
    "Kursk Bryansk Warsaw Berlin Paris London Київ Харків Одеса Москва Курськ"
).split()
NUMBERS = ("12", "40", "75", "120", "300", "479", "1,000", "hundreds of")


def make_items(count: int, seed: int = 7) -> list[Item]:
    """``count`` items of about 600 characters, deterministic for a seed."""
    rng = random.Random(seed)
    when = datetime(2025, 6, 8, tzinfo=UTC)
    items = []
    for n in range(count):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < 600:
            roll = rng.random()
            if roll < 0.86:
                words.append(rng.choice(NEUTRAL))
            elif roll < 0.94:
                words.append(rng.choice(ESCALATION))
            elif roll < 0.98:
                words.append(rng.choice(PLACES))
            else:
                words += [rng.choice(NUMBERS), rng.choice(("drones", "missiles", "people"))]
        text = " ".join(words)
        cut = text.find(" ", 80)
        items.append(
            Item(
                id=f"i{n}",
                feed_id=f"f{n % 40}",
                title=text[:cut].capitalize() + ".",
                summary=text[cut + 1 :].capitalize() + ".",
                url=None,
                published=when,
                language="en",
            )
        )
    return items


def pseudo_word(rng: random.Random) -> str:
    syllables = ("ka", "lo", "mi", "ren", "tor", "vas", "qui", "zel", "pra", "dun", "sho", "bek")
    return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))


def generated_rules(count: int, seed: int = 11) -> list[dict[str, Any]]:
    """``count`` rules of five kinds; one term in fifty is a word the items contain."""
    rng = random.Random(seed)
    vocab = [w for w in ESCALATION + PLACES if len(w) >= 4]

    def term() -> str:
        return rng.choice(vocab) if rng.random() < 0.02 else pseudo_word(rng)

    rules: list[dict[str, Any]] = []
    for n in range(count):
        kind = ("terms", "terms", "near", "quantity", "score")[n % 5]
        rule: dict[str, Any] = {"kind": kind, "id": f"gen-{n}"}
        if kind == "terms":
            rule |= {"any": [term() for _ in range(4)], "none": [pseudo_word(rng)]}
        elif kind == "near":
            rule |= {"terms": [[term(), term()], [term(), term()]], "within": 8}
        elif kind == "quantity":
            rule |= {"nouns": [term(), f"{pseudo_word(rng)}*"], "min": 100}
        else:
            rule |= {"categories": {"c": {"terms": {term(): 1.0 for _ in range(5)}}},
                     "bands": {"info": 2.0}}  # fmt: skip
        rules.append(rule)
    return rules


def rule_terms(rule: Any) -> list[str]:
    """Every term a rule config names (for the naive baseline and the raw scan)."""
    out: list[str] = []
    for name in ("any", "all", "nouns", "none"):
        out += list(getattr(rule, name, ()) or ())
    for group in getattr(rule, "terms", ()) or ():
        out += [group] if isinstance(group, str) else list(group)
    context = getattr(rule, "context", None)
    if context is not None:
        out += list(context.terms)
    for cat in (getattr(rule, "categories", None) or {}).values():
        out += list(cat.terms)
    return out


def naive(rules: Sequence[Any]) -> Callable[[Item], int]:
    """One compiled regex per rule (its terms' forms, word-bounded); every rule every item."""
    patterns = []
    for rule in rules:
        forms = []
        for t in rule_terms(rule):
            spec = parse_term(t)
            forms += [re.escape(f) + (r"\w*" if spec.prefix else "") for f in spec.forms]
        if forms:
            patterns.append(re.compile(r"\b(?:" + "|".join(forms) + r")\b", re.IGNORECASE))

    def run(item: Item) -> int:
        text = f"{item.title}\n{item.summary}"
        return sum(1 for p in patterns if p.search(text))

    return run


def raw_scan(rules: Sequence[Any]) -> Callable[[Item], int]:
    """pyahocorasick over the lower-cased text with the same keys; counts hits only."""
    automaton = ahocorasick.Automaton()
    for rule in rules:
        for t in rule_terms(rule):
            for form in parse_term(t).forms:
                automaton.add_word(form, form)
    automaton.make_automaton()

    def run(item: Item) -> int:
        return sum(1 for _ in automaton.iter(f"{item.title}\n{item.summary}".lower()))

    return run


def rate(fn: Callable[[Item], object], items: Sequence[Item], seconds: float = 3.0) -> float:
    """Items per second of ``fn``, over as many passes of ``items`` as fit in ``seconds``."""
    for item in items[:200]:
        fn(item)  # warm caches
    done, start = 0, time.perf_counter()
    while True:
        for item in items:
            fn(item)
        done += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    items = make_items(args.items)
    shipped = list(load_config(ROOT / "config" / "monitor.yaml").rules)
    extra = TypeAdapter(list[RuleConfig]).validate_python(generated_rules(args.rules))
    both = shipped + list(extra)
    avg = sum(len(i.title) + len(i.summary) + 1 for i in items) / len(items)
    print(f"{len(items)} items, {avg:.0f} chars each; {len(shipped)} shipped rules, "
          f"{len(both)} with the generated ones")  # fmt: skip
    engine_shipped = compile_rules(shipped)
    engine_both = compile_rules(both)
    fired = sum(len(engine_both.evaluate(i)) for i in items[:1000])
    results = {
        "engine, shipped rules": rate(engine_shipped.evaluate, items, args.seconds),
        "engine, shipped + generated": rate(engine_both.evaluate, items, args.seconds),
        "naive regex per rule, shipped + generated": rate(
            naive(both), items[: max(200, len(items) // 20)], args.seconds
        ),
        "raw automaton scan, same keys": rate(raw_scan(both), items, args.seconds),
    }
    for name, value in results.items():
        print(f"{name:<45} {value:>10,.0f} items/s")
    engine = results["engine, shipped + generated"]
    print(f"rules fired per item (shipped + generated): {fired / 1000:.2f}")
    print(f"engine / naive: {engine / results['naive regex per rule, shipped + generated']:.0f}x")
    print(f"engine / raw automaton scan: {engine / results['raw automaton scan, same keys']:.2f}x")


if __name__ == "__main__":
    main()
