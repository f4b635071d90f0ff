"""Gazetteer: aliases in Latin and Cyrillic, inflections, guards, offsets, the build."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import pytest

import monitor
import monitor.gazetteer as gazetteer_module
from monitor.gazetteer import Gazetteer, Place, PlaceMention, table_cache
from monitor.gazetteer.build import main as build_main
from monitor.gazetteer.table_cache import Tables
from monitor.text import normalize

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_62a9824890f7b761.txt"
SHIPPED = Path(__file__).resolve().parent.parent / "monitor" / "data" / "gazetteer"

KYIV, KHARKIV, DNIPRO, MOSCOW = "gn:703448", "gn:706483", "gn:709930", "gn:524901"


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.load()


def found(gaz: Gazetteer, text: str) -> list[tuple[str, str]]:
    norm = normalize(text)
    return [(norm.quote(m.start, m.end), m.place.id) for m in gaz.find(norm)]


def ids(gaz: Gazetteer, text: str) -> list[str]:
    return [pid for _, pid in found(gaz, text)]


REGIONS = [
    ("Kursk region", "RU-KRS"),
    ("Kursk Oblast", "RU-KRS"),
    ("Kurskaya oblast", "RU-KRS"),
    ("Курская область", "RU-KRS"),
    ("в Курской области", "RU-KRS"),
    ("Курщина", "RU-KRS"),
    ("Дніпропетровська область", "UA-12"),
    ("у Дніпропетровській області", "UA-12"),
    ("Дніпропетровщина", "UA-12"),
    ("на Дніпропетровщині", "UA-12"),
    ("Dnipropetrovsk region", "UA-12"),
    ("Dnepropetrovsk oblast", "UA-12"),
    ("Dnipropetrovsk", "UA-12"),
    ("Dnepropetrovsk", "UA-12"),
    ("Crimea", "UA-43"),
    ("в Крыму", "UA-43"),
    ("Donetsk People's Republic", "UA-14"),
    ("the DPR", "UA-14"),
    ("в ДНР", "UA-14"),
    ("Донецкой области", "UA-14"),
    ("Донецкой", "UA-14"),
    ("на Донеччині", "UA-14"),
    ("LPR", "UA-09"),
    ("в ЛНР", "UA-09"),
    ("Belgorod region", "RU-BEL"),
    ("Белгородской области", "RU-BEL"),
    ("Bryansk Oblast", "RU-BRY"),
    ("Брянской области", "RU-BRY"),
    ("Kyiv region", "UA-32"),
    ("Sumy region", "UA-59"),
    ("на Сумщині", "UA-59"),
    ("Харківської області", "UA-63"),
    ("Kharkov oblast", "UA-63"),
    ("Zaporizhzhia region", "UA-23"),
    ("Zaporozhye oblast", "UA-23"),
    ("Krasnodar Krai", "RU-KDA"),
    ("в Краснодарском крае", "RU-KDA"),
    ("Tatarstan", "RU-TA"),
    ("Gomel region", "BY-HO"),
]


@pytest.mark.parametrize(("text", "place_id"), REGIONS)
def test_region_forms(gaz: Gazetteer, text: str, place_id: str) -> None:
    """English, romanised and inflected Cyrillic region forms map to the ISO 3166-2 region."""
    assert ids(gaz, text) == [place_id]


CITIES = [
    ("Kyiv", KYIV), ("Kiev", KYIV), ("Київ", KYIV), ("Киев", KYIV), ("у Києві", KYIV),
    ("до Києва", KYIV), ("в Киеве", KYIV), ("Kyiv's forces", KYIV),
    ("Kharkiv", KHARKIV), ("Kharkov", KHARKIV), ("Харків", KHARKIV), ("у Харкові", KHARKIV),
    ("з Харкова", KHARKIV), ("Харкову", KHARKIV), ("в Харькове", KHARKIV), ("Харькова", KHARKIV),
    ("Dnipro", DNIPRO), ("Dnepr", DNIPRO), ("Дніпро", DNIPRO), ("Днепр", DNIPRO),
    ("у Дніпрі", DNIPRO), ("Днепропетровск", DNIPRO),
    ("Bakhmut", "gn:713174"), ("Artemivsk", "gn:713174"), ("Артемовск", "gn:713174"),
    ("Бахмут", "gn:713174"),
    ("Zaporizhzhia", "gn:687700"), ("Zaporozhye", "gn:687700"), ("Zaporizhia", "gn:687700"),
    ("Запоріжжя", "gn:687700"), ("Запорожье", "gn:687700"), ("из Запорожья", "gn:687700"),
    ("Mykolaiv", "gn:700569"), ("Nikolaev", "gn:700569"),
    ("Odesa", "gn:698740"), ("Odessa", "gn:698740"), ("в Одессе", "gn:698740"),
    ("Lviv", "gn:702550"), ("Lvov", "gn:702550"), ("Lemberg", "gn:702550"), ("Львова", "gn:702550"),
    ("Pokrovsk", "gn:704422"), ("Kramatorsk", "gn:704508"),
    ("Sloviansk", "gn:693468"), ("Slavyansk", "gn:693468"),
    ("Kherson", "gn:706448"), ("Sumy", "gn:692194"),
    ("Chernihiv", "gn:710735"), ("Chernigov", "gn:710735"),
    ("Mariupol", "gn:701822"), ("Avdiivka", "gn:713122"), ("Toretsk", "gn:709354"),
    ("Chasiv Yar", "gn:710915"), ("Kupiansk", "gn:703656"), ("Vovchansk", "gn:689304"),
    ("Belgorod", "gn:578072"), ("Белгород", "gn:578072"),
    ("Kursk", "gn:538560"), ("Курск", "gn:538560"), ("Sudzha", "gn:486816"),
    ("Moscow", MOSCOW), ("Москва", MOSCOW), ("в Москве", MOSCOW), ("из Москвы", MOSCOW),
    ("St Petersburg", "gn:498817"), ("Saint Petersburg", "gn:498817"),
    ("Petersburg", "gn:498817"),
    ("Minsk", "gn:625144"), ("Минск", "gn:625144"),
    ("Zorya", "gn:9529613"), ("Zarya", "gn:9529613"), ("Зоря", "gn:9529613"),
    ("Sevastopol", "gn:694423"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "place_id"), CITIES)
def test_city_aliases(gaz: Gazetteer, text: str, place_id: str) -> None:
    """Current, old and transliterated city names and their case forms map to one city."""
    assert ids(gaz, text) == [place_id]


COUNTRIES = [
    ("Russia", "RU"), ("Россия", "RU"), ("России", "RU"), ("Росія", "RU"), ("Росії", "RU"),
    ("Russian Federation", "RU"), ("Ukraine", "UA"), ("Україна", "UA"), ("Украины", "UA"),
    ("Moldova", "MD"), ("Belarus", "BY"), ("Беларуси", "BY"), ("the UK", "GB"),
    ("USA", "US"), ("US officials", "US"), ("United States", "US"), ("Czech Republic", "CZ"),
    ("Czechia", "CZ"), ("Türkiye", "TR"), ("Turkey", "TR"), ("Польщі", "PL"),
    ("Georgia", "GE"),  # the US state is not in the table: Georgia is the country
]  # fmt: skip


@pytest.mark.parametrize(("text", "place_id"), COUNTRIES)
def test_countries(gaz: Gazetteer, text: str, place_id: str) -> None:
    """Common short names and Ukrainian/Russian names (inflected) map to the country."""
    assert ids(gaz, text) == [place_id]


NEGATIVES = [
    "Have a nice day",
    "Nice weather in the Alps",
    "He ordered at the bar",
    "Bar none, it was the best",
    "Mir was the name of a space station",
    "I bought a barrel of oil",
    "The sum of the parts",
    "consumption rose",
    "Paris Hilton arrived",
    "Georgia Meloni spoke",
    "Michael Jordan scored",
    "it grants permission",
    "let us go",
    "mir i voyna",
    "locale en_US",
    "Vladimir Putin spoke",
    "Борьба за мир",
    "Это того стоит",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_guards_reject(gaz: Gazetteer, text: str) -> None:
    """Common words, partial words, lower case, exact-case codes and person names are no places."""
    assert found(gaz, text) == []


POSITIVES = [
    ("Shelling hit the town of Bar overnight", "gn:712861"),
    ("Moscow said the talks failed", MOSCOW),
    ("Strikes on Paris were reported", "gn:2988507"),
    ("Jordan's king met Biden", "JO"),
    ("Georgia Region officials", "GE"),
]


@pytest.mark.parametrize(("text", "place_id"), POSITIVES)
def test_guards_accept(gaz: Gazetteer, text: str, place_id: str) -> None:
    """A stoplisted name mid-sentence and Capitalised, and metonyms, are places."""
    assert place_id in ids(gaz, text)


def test_seed_article(gaz: Gazetteer) -> None:
    """The seed article yields its theatre: regions, cities, village, countries."""
    got = set(ids(gaz, SEED.read_text(encoding="utf-8")))
    assert {"UA-12", "UA-14", "UA-59", DNIPRO, "gn:9529613", "UA", "RU", MOSCOW, KYIV} <= got
    assert "US" in got  # "the US president"


def test_coordinated_regions(gaz: Gazetteer) -> None:
    """ "Donetsk, Luhansk and Zaporizhzhia regions" names three regions, not two cities."""
    text = "the Donetsk, Luhansk and Zaporizhzhia regions"
    assert ids(gaz, text) == ["UA-14", "UA-09", "UA-23"]


def test_longest_match_and_no_overlap(gaz: Gazetteer) -> None:
    """ "Kursk region" is one region mention, not the city Kursk plus a word."""
    norm = normalize("Fighting in the Kursk region continues")
    (m,) = gaz.find(norm)
    assert (m.place.id, m.alias) == ("RU-KRS", "kursk region")


def test_offsets_round_trip(gaz: Gazetteer) -> None:
    """Mention offsets quote the original text through Normalized.quote."""
    text = "Удар по «Харкову» и Kyiv’s suburbs; ДНІПРОПЕТРОВСЬКА ОБЛАСТЬ"
    norm = normalize(text)
    quotes = [norm.quote(m.start, m.end) for m in gaz.find(norm)]
    assert quotes == ["Харкову", "Kyiv", "ДНІПРОПЕТРОВСЬКА ОБЛАСТЬ"]
    for m in gaz.find(norm):
        assert norm.text[m.start : m.end] == m.alias


def test_city_links_to_region(gaz: Gazetteer) -> None:
    """Cities carry their ISO region (via geonames admin1); regions carry their own id."""
    assert gaz.get(DNIPRO).region == "UA-12"
    assert gaz.get(KHARKIV).region == "UA-63"
    assert gaz.get("gn:9529613").region == "UA-14"
    assert gaz.get(KYIV).region == "UA-30"
    assert gaz.get("gn:538560").region == "RU-KRS"
    assert gaz.get("UA-12") == Place("UA-12", "Dnipropetrovsk Oblast", "region", "UA", "UA-12")
    assert gaz.get("UA").kind == "country" and gaz.get("UA").region is None


def test_lookup_and_aliases(gaz: Gazetteer) -> None:
    """lookup() lists what a name can mean best first; aliases() exposes the table."""
    assert gaz.lookup("Dnipro")[0].id == DNIPRO
    assert gaz.lookup("  dnipropetrovsk ")[0].id == "UA-12"
    assert gaz.lookup("no such place") == []
    table = dict(gaz.aliases())
    assert table["kyiv"][0] == KYIV and table["курской области"] == ("RU-KRS",)
    with pytest.raises(KeyError):
        gaz.get("XX-99")


def test_accept_applies_guards(gaz: Gazetteer) -> None:
    """accept() takes one raw hit and applies the same guards as find()."""
    norm = normalize("the barrel and Kyiv")
    assert gaz.accept(norm, "bar", 4, 7) is None
    k = norm.text.index("kyiv")
    assert gaz.accept(norm, "kyiv", k, k + 4) == PlaceMention(gaz.get(KYIV), "kyiv", k, k + 4)
    assert gaz.accept(norm, "no such alias", 0, 3) is None


def test_load_is_cached_and_find_is_fast(gaz: Gazetteer) -> None:
    """load() returns one shared instance; find on a 600-char text takes well under a ms."""
    assert Gazetteer.load() is gaz
    norm = normalize(SEED.read_text(encoding="utf-8")[:600])
    runs = 200
    t = time.perf_counter()
    for _ in range(runs):
        gaz.find(norm)
    per_call_us = (time.perf_counter() - t) / runs * 1e6
    print(f"find: {per_call_us:.0f} us per 600-char text")


def test_build_is_deterministic(tmp_path: Path) -> None:
    """Two builds give identical bytes, identical to the shipped places.json."""
    build_main(["--out", str(tmp_path / "a")])
    build_main(["--out", str(tmp_path / "b")])
    a = (tmp_path / "a" / "places.json").read_bytes()
    assert a == (tmp_path / "b" / "places.json").read_bytes()
    assert a == (SHIPPED / "places.json").read_bytes()


@pytest.mark.parametrize(
    ("text", "country"),
    [
        ("Drone debris found in a Romanian village", "RO"),
        ("Russian drones violated Polish airspace", "PL"),
        ("Polish officials said a drone crashed", "PL"),
        ("The Moldovan government condemned the strike", "MD"),
    ],
)
def test_neighbours_adjectives_are_their_countries(text: str, country: str) -> None:
    """Spill-over news names neighbours by adjective: "Polish airspace" is Poland."""
    found = {m.place.id for m in Gazetteer.load().find(normalize(text))}
    assert country in found


def test_lowercase_polish_is_not_poland() -> None:
    """Shoe polish is not a country."""
    found = {m.place.id for m in Gazetteer.load().find(normalize("She used shoe polish"))}
    assert "PL" not in found


# The table cache (monitor.gazetteer.table_cache): a shortcut that must never change results.

RAW = (SHIPPED / "places.json").read_bytes()


def small_table(*extra: list[object]) -> bytes:
    """A places.json with the shipped places but only the Kyiv aliases: quick to build."""
    data = json.loads(RAW)
    data["aliases"] = [a for a in data["aliases"] if a[1][0] == KYIV] + list(extra)
    return json.dumps(data).encode()


SMALL = small_table()
CACHE_TEXTS = [
    SEED.read_text(encoding="utf-8"),
    *(text for text, _ in REGIONS + CITIES + COUNTRIES + POSITIVES),
    *NEGATIVES,
    "the Donetsk, Luhansk and Zaporizhzhia regions",
]


@pytest.fixture
def cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cache file, in a cache home of this test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "media-monitor" / "gazetteer.pickle"


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The data each time the tables are built rather than read from the cache."""
    built: list[bytes] = []
    real = gazetteer_module._tables

    def counted(raw: bytes) -> Tables:
        built.append(raw)
        return real(raw)

    monkeypatch.setattr(gazetteer_module, "_tables", counted)
    return built


def all_found(gaz: Gazetteer) -> list[list[tuple[str, str, int, int]]]:
    return [
        [(m.place.id, m.alias, m.start, m.end) for m in gaz.find(normalize(text))]
        for text in CACHE_TEXTS
    ]


def test_cache_hit_finds_the_same(gaz: Gazetteer, cache_file: Path, builds: list[bytes]) -> None:
    """The first load builds and caches the tables; the next reads them and finds the same."""
    built = Gazetteer.from_json(RAW)
    assert cache_file.exists() and len(builds) == 1
    cached = Gazetteer.from_json(RAW)
    assert len(builds) == 1
    assert all_found(cached) == all_found(built) == all_found(gaz)
    assert list(cached.aliases()) == list(gaz.aliases())
    assert list(cached.places()) == list(gaz.places())
    assert cached.lookup("Dnipro") == gaz.lookup("Dnipro")


def test_changed_data_is_not_served_stale(cache_file: Path, builds: list[bytes]) -> None:
    """A cache built from other data (or another package version) is rebuilt, not used."""
    assert ids(Gazetteer.from_json(SMALL), "Zzyzx") == []
    changed = small_table(["zzyzx", [KYIV], ""])
    assert ids(Gazetteer.from_json(changed), "Zzyzx") == [KYIV]
    assert ids(Gazetteer.from_json(SMALL), "Zzyzx") == []
    assert builds == [SMALL, changed, SMALL]


def test_new_version_is_not_served_stale(
    cache_file: Path, builds: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package version is part of the cache key."""
    Gazetteer.from_json(SMALL)
    monkeypatch.setattr(monitor, "__version__", "999.0")
    Gazetteer.from_json(SMALL)
    assert len(builds) == 2


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "right key, bad tables"])
def test_corrupt_cache_is_ignored(cache_file: Path, builds: list[bytes], damage: str) -> None:
    """A damaged cache file is ignored and replaced by a good one."""
    Gazetteer.from_json(SMALL)
    good = cache_file.read_bytes()
    key = pickle.dumps(table_cache._key(SMALL))
    cache_file.write_bytes(
        {
            "empty": b"",
            "garbage": b"\x80\x05not a pickle",
            "truncated": good[: len(good) // 2],
            "right key, bad tables": key + pickle.dumps(("no", "tables")),
        }[damage]
    )
    assert ids(Gazetteer.from_json(SMALL), "Kyiv") == [KYIV]
    assert len(builds) == 2
    assert ids(Gazetteer.from_json(SMALL), "Kyiv") == [KYIV]
    assert len(builds) == 2  # rewritten: the third load was a hit


def test_cache_others_can_write_is_not_trusted(cache_file: Path, builds: list[bytes]) -> None:
    """Unpickling can run code: a cache file others may write is rebuilt, not read."""
    Gazetteer.from_json(SMALL)
    cache_file.chmod(0o666)
    Gazetteer.from_json(SMALL)
    assert len(builds) == 2
    assert cache_file.stat().st_mode & 0o777 == 0o600


def test_unwritable_cache_dir_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, builds: list[bytes]
) -> None:
    """Where no cache can be written (a read-only home), every load builds, without error."""
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    assert ids(Gazetteer.from_json(SMALL), "Kyiv") == [KYIV]
    assert ids(Gazetteer.from_json(SMALL), "Kyiv") == [KYIV]
    assert len(builds) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["a file"]


def test_cache_location_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$XDG_CACHE_HOME/media-monitor if it is absolute, else ~/.cache/media-monitor."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert table_cache.cache_file() == tmp_path / "media-monitor" / "gazetteer.pickle"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert table_cache.cache_file() == tmp_path / "home" / ".cache" / "media-monitor" / (
        "gazetteer.pickle"
    )
