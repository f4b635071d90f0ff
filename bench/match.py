"""Rule-matching benchmark: items/s per core through the whole rule evaluation.

Rules: the shipped ones (config/monitor.yaml: the derived config/rules.yaml and the local
file), alone and with 1,000 generated rules of every kind (terms, near, quantity, score,
novelty, burst). The generated rules watch words of their own, as topic rules of other
desks watch names; one rule in fifty (``--common``) also watches a word the items use, so
they are candidates on some items and fire on few. Every novelty rule uses conflict
context words, so on a conflict item most of them are checked.

Items, about 600 characters each (a title and a summary), in two mixes measured apart:

* news: world news as a wire feed carries it, mostly neutral (economy, politics, sport,
  weather, technology, culture, each with its places) and 15% conflict stories (drone and
  missile raids with counts, offensives, strikes across a border, nuclear threats);
* dense: paragraphs of the seed article (seeds/), every item an escalation story.

Measured, each on one core: ``RuleSet.assess`` (the whole evaluation: scan, places,
rules, evidence, history mentions) with a MemoryHistory of earlier mentions so novelty
and burst rules do their lookups; then, over the same items and the shipped + generated
rules, the naive baseline (each rule's terms as one compiled regular expression, every
rule searched on every item) and a raw automaton scan (pyahocorasick over the lower-cased
text with the same keys, no rule logic: what one pass costs). Timing is process CPU time,
best of ``--runs`` (the machine may be shared). Target: >= 20,000 items/s with shipped +
1,000 rules and >= 100x the naive baseline.

Usage: python bench/match.py [--rules 1000] [--items 4000] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ahocorasick
from pydantic import TypeAdapter

from monitor.config.loader import load_config
from monitor.config.rule_models import RuleConfig
from monitor.gazetteer import Gazetteer
from monitor.rules.compile import compile_rules
from monitor.rules.engine import RuleSet
from monitor.rules.history import MemoryHistory
from monitor.rules.lexicon import parse_term
from monitor.types import Item

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)
CONFLICT_SHARE = 0.15

# Sentences by topic; {city}, {country}, {n}, {day}, {who} are filled per item.
NEUTRAL: dict[str, tuple[str, ...]] = {
    "economy": (
        "The central bank of {country} kept its main interest rate at {n} percent on {day}, "
        "citing slowing inflation and a cooling labour market.",
        "Officials in {city} said the new budget would support schools, hospitals and local "
        "businesses while keeping the deficit below target.",
        "Exports rose for a third month as demand from {country} recovered, the statistics "
        "office said, and economists expect growth to pick up later this year.",
        "Shares of the country's largest lender climbed after it reported record quarterly "
        "profits and raised its dividend.",
        "Unemployment in {country} fell to its lowest level in a decade, helped by hiring in "
        "construction, tourism and health care.",
        "The government of {country} agreed a trade deal with {country} that cuts tariffs on "
        "cars, wine and machinery over five years.",
        "{who}, the finance minister, told reporters in {city} that energy prices were "
        "easing and that fuel subsidies would be phased out by the end of the year.",
    ),
    "politics": (
        "Voters in {country} go to the polls on {day} in an election expected to be close, "
        "with the governing coalition trailing in recent surveys.",
        "Parliament in {city} approved a bill on housing after a long debate, sending it to "
        "the upper chamber for a final vote next month.",
        "{who} met regional leaders in {city} to discuss roads, water supply and the "
        "transfer of powers to local councils.",
        "The opposition said it would challenge the result in court, while observers from "
        "{country} described the vote as orderly.",
        "The prime minister of {country} reshuffled the cabinet on {day}, replacing the "
        "ministers for health, education and transport.",
        "Thousands marched in {city} against plans to raise the retirement age, in the "
        "largest protest in the capital this year.",
        "Coalition talks resumed on {day} after the two largest parties agreed on a common "
        "programme for pensions and public transport.",
    ),
    "sport": (
        "{city} won the derby 2-1 with a late goal from their captain, moving three points "
        "clear at the top of the league.",
        "The coach said his team had to improve its defence before the championship final "
        "against {country} next week.",
        "{who} reached the semi-final of the tournament in {city} after a three-set win "
        "over the defending champion.",
        "Organisers of the marathon in {city} expect {n},000 runners on {day}, and roads "
        "in the centre will be closed from early morning.",
        "The striker signed a new four-year contract, ending weeks of speculation about a "
        "move to a club in {country}.",
        "{country} named a young squad for the summer tour, with four players who have not yet "
        "played an international match.",
        "Tickets for the final in {city} sold out within an hour, and fans without them "
        "will watch on big screens in the main square.",
    ),
    "weather": (
        "Forecasters warned of heavy rain and strong winds in the north of {country} at the "
        "weekend, with flooding possible along the coast.",
        "A heatwave pushed temperatures above {n} degrees in {city}, and the city opened "
        "cooling centres for older residents.",
        "Snow closed mountain passes for a second day and several flights from {city} were "
        "cancelled or delayed.",
        "Farmers in {country} said the dry spring had cut the wheat harvest, and prices "
        "for bread and animal feed are expected to rise.",
        "Emergency services in {city} rescued dozens of people from flooded homes after "
        "the river burst its banks on {day}.",
        "Wildfires forced the evacuation of {n}0 homes in the south of {country}, where "
        "firefighters were helped by a change in the wind.",
        "The weather service said last month was the warmest on record in {country}, "
        "continuing a run of unusually hot years.",
    ),
    "technology": (
        "The company unveiled a new smartphone in {city} with a larger battery and a camera "
        "that works better in low light.",
        "Regulators in {country} opened an inquiry into how the largest app stores set "
        "their fees for developers.",
        "A delivery drone service started in the suburbs of {city}, bringing parcels to "
        "gardens within thirty minutes of an order.",
        "Researchers in {city} said a new battery chemistry could halve the cost of storing "
        "solar power for a night.",
        "{who} said the start-up would hire {n}0 engineers this year and open an office "
        "in {country}.",
        "A space agency in {country} said its lunar probe had entered orbit and would "
        "begin sending images next week.",
        "Hackers stole customer data from an airline based in {city}, which said card "
        "numbers were not affected and urged users to change their passwords.",
    ),
    "culture": (
        "The film festival in {city} opened on {day} with a drama about three sisters who "
        "run a hotel on the coast.",
        "A museum in {city} returned a collection of bronzes to {country} after years of "
        "talks between the two governments.",
        "The band announced a world tour for its new album, starting in {city} in the autumn.",
        "{who}, the novelist, won the prize for a book about growing up in a port town "
        "in {country}.",
        "The opera house in {city} reopened after a three-year renovation with a new "
        "production of a comic opera by Mozart.",
        "Archaeologists in {country} found the remains of a Roman villa during work on a "
        "new railway line.",
        "A retrospective of the painter's early work opens in {city} on {day} and runs "
        "until the end of the summer.",
    ),
}
CONFLICT = (
    "Russia launched {n} drones and {m} missiles at Ukraine overnight, the air force said, "
    "and air defence shot down most of them over {ua}.",
    "A Russian missile strike on {ua} killed {k} people and damaged a power plant, "
    "regional officials said on {day}.",
    "Russian troops are advancing towards {ua} and captured a village near the front line, "
    "the defence ministry in Moscow claimed.",
    "Ukraine said its drones struck an oil refinery in {ru} for the first time, causing a "
    "large fire.",
    "Officials in {nb} said drone debris fell near a village close to the border after a "
    "night of Russian attacks on western Ukraine.",
    "{who} warned that Moscow could use nuclear weapons if Western long-range missiles "
    "were fired at Russian territory.",
    "Shelling of {ua} continued through the night, and the governor urged residents to "
    "stay in shelters.",
    "It was the largest air attack on {ua} since the start of the war, with hundreds of "
    "drones launched in several waves.",
    "Peace talks stalled after Moscow demanded that Kyiv withdraw its troops from four "
    "regions, a condition Ukraine has refused.",
    "Rescue workers in {ua} searched the rubble of an apartment block hit by a Russian "
    "glide bomb, and at least {k} people were injured.",
    "The Ukrainian army said it had pushed back an assault near {ua}, destroying {k} tanks "
    "and several armoured vehicles.",
    "Air raid alerts sounded across Ukraine for several hours, and explosions were heard in "
    "{ua} and {ua2}.",
)
CITIES = ("Paris", "Berlin", "Tokyo", "Madrid", "Seoul", "Cairo", "Nairobi", "Brussels",
          "Warsaw", "Vilnius", "Lviv", "Kyiv", "Tehran", "Rome", "Dublin", "Vienna")  # fmt: skip
COUNTRIES = ("Brazil", "Chile", "Israel", "Poland", "Romania", "Japan", "Kenya", "Canada",
             "India", "Mexico", "Norway", "Portugal", "Egypt", "Moldova")  # fmt: skip
UA_PLACES = ("Kharkiv", "Odesa", "Zaporizhzhia", "Kherson", "Sumy", "Dnipro", "Pokrovsk",
             "Kupiansk", "Kyiv", "Lviv", "the Dnipropetrovsk region", "Crimea")  # fmt: skip
RU_PLACES = ("Belgorod", "Kursk", "Bryansk", "Voronezh", "Taganrog", "Rostov")
NEIGHBOURS = ("Poland", "Romania", "Moldova", "Lithuania")
WHO = ("Anna Kovacs", "Mark Rutte", "Dmitry Medvedev", "Maria Silva", "Kenji Sato")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Words the generated rules may watch: the items' own vocabulary, conflict and neutral.
VOCAB = ("drone", "missile", "troops", "shelling", "refinery", "nuclear", "border", "village",
         "election", "budget", "league", "heatwave", "smartphone", "museum", "harvest",
         "inflation", "festival", "flooding", "parliament", "battery")  # fmt: skip
CONTEXT = ["advanc*", "offensive", "captur*", "troops", "shell*", "strik*", "attack*",
           "drone*", "missile*", "наступ*", "обстріл*", "удар*"]  # fmt: skip


def _fill(sentence: str, rng: random.Random) -> str:
    return sentence.format(
        city=rng.choice(CITIES), country=rng.choice(COUNTRIES), day=rng.choice(DAYS),
        who=rng.choice(WHO), n=rng.choice((2, 4, 12, 35, 70, 120, 300, 479)),
        m=rng.choice((3, 9, 40, 64)), k=rng.choice((2, 5, 14)), ua=rng.choice(UA_PLACES),
        ua2=rng.choice(UA_PLACES), ru=rng.choice(RU_PLACES), nb=rng.choice(NEIGHBOURS),
    )  # fmt: skip


def _item(i: int, title: str, summary: str) -> Item:
    return Item(id=f"i{i}", feed_id=f"feed{i % 40}", title=title, summary=summary, url=None,
                published=NOW - timedelta(minutes=i % 600), language="en")  # fmt: skip


def news_items(count: int, rng: random.Random) -> list[Item]:
    """World news of about 600 characters, CONFLICT_SHARE of them conflict stories."""
    items = []
    for i in range(count):
        conflict = rng.random() < CONFLICT_SHARE
        pool = CONFLICT if conflict else NEUTRAL[rng.choice(list(NEUTRAL))]
        sentences = [_fill(s, rng) for s in rng.sample(pool, len(pool))]
        title = sentences[0].split(",")[0].rstrip(".")[:100]
        summary = ""
        for sentence in sentences[1:]:
            if len(title) + len(summary) >= 560:
                break
            summary = f"{summary} {sentence}".strip()
        items.append(_item(i, title, summary))
    return items


def dense_items(count: int, rng: random.Random) -> list[Item]:
    """Paragraphs of the seed article: every item an escalation story."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt")))
    paragraphs = [p.strip() for p in text.split("\n") if len(p.strip()) > 60]
    return [
        _item(i, rng.choice(paragraphs)[:100], " ".join(rng.sample(paragraphs, 3))[:500])
        for i in range(count)
    ]


def pseudo_word(rng: random.Random) -> str:
    syllables = ("ka", "lo", "mi", "ren", "tor", "vas", "qui", "zel", "pra", "dun", "sho", "bek")
    return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))


def generated_rules(count: int, rng: random.Random, common: float) -> list[dict[str, Any]]:
    """terms 50%, near 15%, quantity 10%, score 10%, novelty 10%, burst 5%.

    Each rule watches made-up words of its own; a ``common`` share of them also watches
    one word the items use (VOCAB), as the first of its terms.
    """
    countries = ["UA", "RU", "MD", "BY", "PL", "GE", "LT", "RO"]
    baseline = ["UA-14", "UA-09", "UA-63", "RU-BEL"]

    def word() -> str:
        return pseudo_word(rng)

    rules: list[dict[str, Any]] = []
    for n in range(count):
        slot = n % 20
        first = rng.choice(VOCAB) if rng.random() < common else word()
        rule: dict[str, Any] = {"id": f"gen-{n}"}
        if slot < 10:
            rule |= {"kind": "terms", "any": [first, word(), word(), word()], "none": [word()]}
        elif slot < 13:
            rule |= {"kind": "near", "terms": [[first, word()], [word(), "drone*"]], "within": 8}
        elif slot < 15:
            rule |= {"kind": "quantity", "nouns": [first, f"{word()}*"], "min": 100}
        elif slot < 17:
            weights = {first: 1.0} | {word(): 1.0 for _ in range(4)}
            rule |= {
                "kind": "score",
                "categories": {"c": {"terms": weights}},
                "bands": {"info": 1.0},
            }
        elif slot < 19:
            rule |= {"kind": "novelty", "level": "region", "countries": rng.sample(countries, 2),
                     "context": {"terms": rng.sample(CONTEXT, 6), "within": "sentence"},
                     "baseline": rng.sample(baseline, 2)}  # fmt: skip
        else:
            rule |= {"kind": "burst", "keys": "terms", "terms": [first, word()], "min_sources": 3}
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


def naive(rules: Sequence[Any]) -> Callable[[Item], object]:
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


def raw_scan(rules: Sequence[Any]) -> Callable[[Item], object]:
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


def cpu_rate(fn: Callable[[Item], object], items: Sequence[Item], runs: int) -> float:
    """Items per CPU second of ``fn`` over ``items``, best of ``runs``."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        for item in items:
            fn(item)
        best = min(best, time.process_time() - start)
    return len(items) / best


def history_for(rules: RuleSet, items: Sequence[Item]) -> MemoryHistory:
    """The items' mentions a week earlier: lookups find something, novelty mostly not."""
    history = MemoryHistory()
    for item in items:
        mentions = rules.assess(item, now=NOW - timedelta(days=7)).mentions
        history.add(mentions, item_id=item.id, source=item.feed_id)
    return history


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000, help="generated rules")
    parser.add_argument("--items", type=int, default=4000, help="items per mix")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--naive-items", type=int, default=100)
    parser.add_argument(
        "--common", type=float, default=0.02, help="share of generated rules with a common word"
    )
    args = parser.parse_args()
    rng = random.Random(1)
    shipped = list(load_config(ROOT / "config" / "monitor.yaml").rules)
    extra = TypeAdapter(list[RuleConfig]).validate_python(
        generated_rules(args.rules, rng, args.common)
    )
    both = shipped + list(extra)
    _, load_s = timed(Gazetteer.load)
    engine_shipped, shipped_s = timed(lambda: compile_rules(shipped))
    engine_both, both_s = timed(lambda: compile_rules(both))
    print(f"{len(shipped)} shipped rules, {len(both)} with the generated ones; gazetteer "
          f"loaded in {load_s:.2f}s, compiled in {shipped_s:.2f}s and {both_s:.2f}s")  # fmt: skip
    mixes = {"news": news_items(args.items, rng), "dense": dense_items(args.items, rng)}
    history = history_for(engine_both, mixes["news"][:500] + mixes["dense"][:500])
    naive_fn, raw_fn = naive(both), raw_scan(both)
    for name, items in mixes.items():
        chars = sum(len(i.title) + len(i.summary) + 1 for i in items) / len(items)
        fired = sum(len(engine_both.assess(i, history=history, now=NOW).matches) for i in items)
        shipped_fired = sum(
            len(engine_shipped.assess(i, history=history, now=NOW).matches) for i in items
        )
        per_item = (
            f"{shipped_fired / len(items):.2f} shipped, {fired / len(items):.2f} with generated"
        )
        print(f"{name}: {len(items)} items, {chars:.0f} chars; matches per item: {per_item}")
        results = {
            "engine, shipped rules": cpu_rate(
                lambda i: engine_shipped.assess(i, history=history, now=NOW), items, args.runs
            ),
            "engine, shipped + generated": cpu_rate(
                lambda i: engine_both.assess(i, history=history, now=NOW), items, args.runs
            ),
            "naive regex per rule, shipped + generated": cpu_rate(
                naive_fn, items[: args.naive_items], 1
            ),
            "raw automaton scan, same keys": cpu_rate(raw_fn, items, args.runs),
        }
        for label, value in results.items():
            print(f"  {label:<43} {value:>9,.0f} items/s per core")
        engine = results["engine, shipped + generated"]
        naive_rate = results["naive regex per rule, shipped + generated"]
        raw_rate = results["raw automaton scan, same keys"]
        print(f"  engine / naive: {engine / naive_rate:.0f}x", end="; ")
        print(f"engine / raw scan: {engine / raw_rate:.2f}x")


if __name__ == "__main__":
    main()
