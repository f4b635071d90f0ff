"""Seed derivation: what it finds in the seed, and that its output is stable and valid."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config.loader import load_config
from monitor.derive import (
    analyse,
    derive,
    known_kinds,
    lexicon_from_text,
    read_seed,
    shipped_lexicon,
    shipped_theatre,
    theatre_from_text,
)
from monitor.gazetteer import Gazetteer
from monitor.rules.compile import compile_rules

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHIPPED = ROOT / "config" / "rules.yaml"
REGENERATE = "monitor derive seeds/ -o config/rules.yaml"


def seeds() -> list:  # type: ignore[type-arg]
    return [read_seed(p.name, p.read_text("utf-8")) for p in sorted(SEEDS.glob("*.txt"))]


def derived(**kw: object) -> str:
    return derive(
        seeds(), shipped_lexicon(), gazetteer=Gazetteer.load(), regenerate=REGENERATE, **kw
    )  # type: ignore[arg-type]


def test_read_seed_takes_the_date_line_off() -> None:
    """The leading ``date YYYY-MM-DD`` line becomes the seed's date, not its text."""
    seed = read_seed("a.txt", " date 2025-06-08 As Russia and Ukraine continue")
    assert seed.date == date(2025, 6, 8)
    assert seed.text == "As Russia and Ukraine continue"
    assert read_seed("b.txt", "No date here").date is None


def test_derive_is_deterministic() -> None:
    """The same seeds and lexicon give the same bytes twice."""
    assert derived() == derived()


def test_shipped_rules_file_is_the_derived_one() -> None:
    """config/rules.yaml is exactly what derive writes from seeds/ (regenerate it if not)."""
    assert SHIPPED.read_text("utf-8") == derived(), (
        "config/rules.yaml is stale: run `monitor derive seeds/ -o config/rules.yaml`"
    )


def test_cli_derive_writes_the_same_bytes(tmp_path: Path) -> None:
    """`monitor derive` from the repository root reproduces the shipped file byte for byte."""
    out = tmp_path / "rules.yaml"
    result = CliRunner().invoke(main, ["derive", str(SEEDS), "-o", str(out)])
    assert result.exit_code == 0, result.output
    body = out.read_text("utf-8")
    regenerate_line = body.splitlines()[3]
    assert regenerate_line.endswith("-o rules.yaml")  # an absolute path shows its name only
    assert body.replace(regenerate_line, f"#   {REGENERATE}") == SHIPPED.read_text("utf-8")
    assert (tmp_path / "rules.local.yaml").read_text("utf-8").strip().endswith("rules: []")


def test_cli_derive_keeps_an_existing_local_file(tmp_path: Path) -> None:
    """The hand-written rules file is created once and never overwritten."""
    local = tmp_path / "rules.local.yaml"
    local.write_text("rules: []  # mine\n")
    result = CliRunner().invoke(main, ["derive", str(SEEDS), "-o", str(tmp_path / "rules.yaml")])
    assert result.exit_code == 0, result.output
    assert local.read_text() == "rules: []  # mine\n"


def test_seed_places_are_the_baseline() -> None:
    """The seed's regions, countries and cities (with their regions) are found; RU and UA
    are the theatre."""
    found = analyse(seeds(), shipped_lexicon(), Gazetteer.load())
    assert {"UA-12", "UA-14", "UA-59", "UA", "RU", "gn:709930"} <= set(found.places)
    assert found.places["UA-12"][0].name == "Dnipropetrovsk Oblast"
    assert found.theatre == ("RU", "UA")


def test_seed_language_is_found_and_quoted() -> None:
    """Lexicon terms in the seed are found with a quote of where they occur."""
    found = analyse(seeds(), shipped_lexicon(), Gazetteer.load())
    assert "Oreshnik" in found.found["oreshnik"]
    assert "advancing into" in found.found["advancing into"]
    assert "realities on the ground" in found.found["realities on the ground"]


def test_key_phrases_are_anchored_on_lexicon_hits() -> None:
    """Markers next to lexicon terms make the seed's key phrases, each with its category."""
    found = analyse(seeds(), shipped_lexicon(), Gazetteer.load())
    phrases = {p.phrase: p.category for p in found.phrases}
    assert phrases["record amounts of drones"] == "weapons"
    assert phrases["new realities on the ground"] == "rhetoric"
    assert phrases["for the first time"] == ""
    assert "significant territorial escalation" in phrases


def test_boosted_terms_carry_their_quote() -> None:
    """A lexicon term the seed uses is boosted and its line quotes the seed."""
    text = derived()
    line = next(li for li in text.splitlines() if li.strip().startswith("oreshnik:"))
    assert line.split("#")[0].strip() == "oreshnik: 4.5"
    assert "seed:" in line and "Oreshnik missile" in line
    assert "          kinzhal: 2\n" in text  # not in the seed: weight as in the lexicon


def test_derived_file_loads_and_compiles(tmp_path: Path) -> None:
    """The derived file is a valid rules file with every rule kind the brief asks for."""
    (tmp_path / "rules.yaml").write_text(derived())
    (tmp_path / "rules.local.yaml").write_text("rules: []\n")
    (tmp_path / "monitor.yaml").write_text("include: [rules.yaml]\n")
    config = load_config(tmp_path / "monitor.yaml")
    kinds = {r.id: r.kind for r in config.rules}
    assert kinds["escalation-score"] == "score"
    assert kinds["new-front"] == kinds["strike-reaches-new-region"] == "novelty"
    assert kinds["new-country"] == "novelty"
    assert kinds["record-raid"] == "quantity"
    assert kinds["named-weapon"] == "terms"
    assert kinds["hard-rhetoric"] == "near"
    assert kinds["place-burst"] == "burst"
    compile_rules(config.rules)


def test_kinds_this_build_lacks_are_written_commented_out(tmp_path: Path) -> None:
    """Without novelty and burst kinds those rules are comments and the file still loads."""
    older = known_kinds() - {"novelty", "burst"}
    text = derived(kinds=older)
    assert "  # - kind: novelty" in text and "  # - kind: burst" in text
    (tmp_path / "rules.yaml").write_text(text)
    (tmp_path / "rules.local.yaml").write_text("rules: []\n")
    ids = {r.id for r in load_config(tmp_path / "rules.yaml").rules}
    assert "new-front" not in ids and "escalation-score" in ids


def test_a_lexicon_without_a_section_is_refused() -> None:
    """A lexicon file missing a section is a ValueError naming the file and the section."""
    with pytest.raises(ValueError, match=r"mine\.yaml: missing section\(s\) .*guards"):
        lexicon_from_text("categories: {}\n", "mine.yaml")


# --- the known theatre and the novelty baselines --------------------------------------


def rules_by_id(text: str, tmp_path: Path) -> dict[str, object]:
    (tmp_path / "rules.yaml").write_text(text)
    (tmp_path / "rules.local.yaml").write_text("rules: []\n")
    return {r.id: r for r in load_config(tmp_path / "rules.yaml").rules}


def test_the_shipped_theatre_uses_gazetteer_ids() -> None:
    """Every id of theatre.yaml is a gazetteer region (or country), dated as of the seed."""
    theatre = shipped_theatre(Gazetteer.load())
    assert theatre.as_of == date(2025, 6, 8)
    assert {"UA-63", "UA-65", "UA-23", "RU-KRS"} <= set(theatre.ground)
    assert {"UA-46", "UA-51", "RU-MOW", "RU-TA"} <= set(theatre.strike)
    assert "UA-12" not in theatre.ground  # the seed's first: an advance there is news
    assert set(theatre.involved) == {"UA", "RU", "BY"}
    assert {"PL", "RO", "MD", "LT", "LV", "EE", "FI"} <= set(theatre.watch)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("as_of: 2025-06-08\nground: {}\nstrike: {}\n", r"missing section\(s\) countries"),
        ("as_of: soon\nground: {}\nstrike: {}\ncountries: {}\n", "as_of must be a date"),
        (
            "as_of: 2025-06-08\nground: {UA-99: x}\nstrike: {}\ncountries: {}\n",
            "ground: 'UA-99' is not a gazetteer id",
        ),
        (
            "as_of: 2025-06-08\nground: {}\nstrike: {UA: x}\ncountries: {}\n",
            "strike: UA is a country, not a region",
        ),
        (
            "as_of: 2025-06-08\nground: {UA-63: x}\nstrike: {UA-63: y}\ncountries: {}\n",
            "UA-63 in both ground and strike",
        ),
    ],
)
def test_a_bad_theatre_file_is_refused(text: str, message: str) -> None:
    """A theatre file with a missing section, a bad date or a bad id names file and fault."""
    with pytest.raises(ValueError, match=rf"mine\.yaml: .*{message}"):
        theatre_from_text(text, "mine.yaml", Gazetteer.load())


def test_the_seed_first_reached_region_is_found() -> None:
    """ "advancing into Ukraine's Dnipropetrovsk region for the first time" makes UA-12 a
    first; Ukraine (a country) and Moscow (far from the framing) are not."""
    found = analyse(seeds(), shipped_lexicon(), Gazetteer.load())
    assert list(found.firsts) == ["UA-12"]
    assert "Dnipropetrovsk region for the first time" in found.firsts["UA-12"]


def test_ground_baseline_is_the_theatre_and_the_seed_minus_its_first(tmp_path: Path) -> None:
    """new-front knows the ground theatre and the seed's places, except UA-12 and its city
    Dnipro; strike-reaches-new-region knows them all plus the struck regions; new-country
    knows the belligerents and Belarus."""
    rules = rules_by_id(derived(), tmp_path)
    front = set(rules["new-front"].baseline)  # type: ignore[attr-defined]
    assert {"UA-63", "UA-65", "UA-59", "RU-KRS", "RU-MOW", "UA", "RU"} <= front
    assert not {"UA-12", "gn:709930", "UA-46", "UA-53"} & front
    strike = set(rules["strike-reaches-new-region"].baseline)  # type: ignore[attr-defined]
    assert front | {"UA-12", "gn:709930", "UA-46", "UA-51", "UA-53", "RU-TA"} <= strike
    assert not {"RU-KHA", "RU-PRI", "RU-NVS"} & strike
    assert set(rules["new-country"].baseline) == {"UA", "RU", "BY"}  # type: ignore[attr-defined]
    severities = {i: rules[i].severity for i in ("new-front", "strike-reaches-new-region")}  # type: ignore[attr-defined]
    assert severities == {"new-front": "critical", "strike-reaches-new-region": "warning"}


def test_the_header_says_where_the_theatre_comes_from() -> None:
    """The rules file names theatre.yaml, its date and hash, and says it must be reviewed;
    the left-out first is shown with the seed's words."""
    text = derived()
    theatre = shipped_theatre()
    assert f"theatre.yaml (sha256:{theatre.sha256[:16]})" in text
    assert "known theatre as of 2025-06-08" in text and "reviewed" in text
    assert "#   UA-12 (Dnipropetrovsk Oblast): 'advancing into" in text


def test_a_seed_newer_than_the_theatre_is_flagged() -> None:
    """A seed dated after the theatre's as_of puts a review warning in the header."""
    later = read_seed("later.txt", "date 2026-01-01 Russian troops advance into Poltava region.")
    text = derive(
        [*seeds(), later], shipped_lexicon(), gazetteer=Gazetteer.load(), regenerate=REGENERATE
    )
    assert "# WARNING: seed(s) later.txt are newer than the theatre" in text
    assert "WARNING" not in derived().split("rules:")[0]
