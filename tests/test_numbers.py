"""Reading numbers and quantities in normalised text."""

from __future__ import annotations

import pytest

from monitor.rules.numbers import (
    compare,
    digits_value,
    parse_number,
    parse_threshold,
    quantity_before,
)
from monitor.text import fold


def read(text: str, noun: str, max_gap: int = 3) -> tuple[float, str, str, bool] | None:
    """The quantity read before the first occurrence of ``noun`` in ``text``."""
    folded = fold(text)
    start = folded.index(fold(noun))
    q = quantity_before(folded, start, start + len(noun), max_gap=max_gap)
    return None if q is None else (q.value, q.text, q.qualifier, q.vague)


@pytest.mark.parametrize(
    ("text", "noun", "expected"),
    [
        ("479 drones", "drones", (479, "479", "", False)),
        ("nearly 500 Shahed drones", "drones", (500, "500", "nearly", False)),
        ("hundreds of missiles", "missiles", (200, "hundreds", "", True)),
        ("dozens of Shahed drones", "drones", (24, "dozens", "", True)),
        ("thousands of shells", "shells", (2000, "thousands", "", True)),
        ("hundreds of thousands of shells", "shells", (200_000, "hundreds of thousands", "", True)),
        ("more than 1,000 drones", "drones", (1000, "1,000", "more than", False)),
        ("around 100 Russian drones", "drones", (100, "100", "around", False)),
        ("over 1 000 drones", "drones", (1000, "1 000", "over", False)),
        ("a record 728 drones and decoys", "drones", (728, "728", "record", False)),
        ("four hundred and seventy-nine drones", "drones",
         (479, "four hundred and seventy-nine", "", False)),
        ("two thousand four hundred drones", "drones",
         (2400, "two thousand four hundred", "", False)),
        ("a dozen drones", "drones", (12, "a dozen", "", False)),
        ("several hundred drones", "drones", (200, "several hundred", "", False)),
        ("1.2 thousand drones", "drones", (1200, "1.2 thousand", "", False)),
        ("3k drones", "drones", (3000, "3k", "", False)),
        ("479 Shahed-type attack drones", "drones", (479, "479", "", False)),
        ("a 479-drone attack", "drone", (479, "479", "", False)),
        ("200 aircraft were lost", "aircraft", (200, "200", "", False)),
        ("Ukraine shot down 477 of 479 drones", "drones", (479, "479", "", False)),
        ("479 дронів", "дронів", (479, "479", "", False)),
        ("более 400 беспилотников", "беспилотников", (400, "400", "более", False)),
        ("понад 400 дронів", "дронів", (400, "400", "понад", False)),
        ("сотні дронів", "дронів", (200, "сотні", "", True)),
        ("сотни беспилотников", "беспилотников", (200, "сотни", "", True)),
        ("тисячі ракет", "ракет", (2000, "тисячі", "", True)),
        ("1,5 тисячі дронів", "дронів", (1500, "1,5 тисячі", "", False)),
        ("2 тысячи ракет", "ракет", (2000, "2 тысячи", "", False)),
    ],
)  # fmt: skip
def test_reads_quantity(text: str, noun: str, expected: tuple[float, str, str, bool]) -> None:
    """The number in front of the noun is read with its value, text, qualifier and vagueness."""
    assert read(text, noun) == expected


@pytest.mark.parametrize(
    ("text", "noun"),
    [
        ("400 drone hobbyists", "drone"),  # a singular noun before another word is a modifier
        ("500 drone pilots met", "drone"),
        ("300 people attacked by drones", "drones"),  # a function word breaks the run
        ("In 2024, drones", "drones"),  # so does punctuation
        ("728 drones and missiles", "missiles"),
        ("Russia launched drones", "drones"),
        ("a drone", "drone"),
        ("479 very big new attack drones", "drones"),  # more than three words between
    ],
)
def test_reads_no_quantity(text: str, noun: str) -> None:
    """No number is read when none counts the noun."""
    assert read(text, noun) is None


def test_max_gap_widens_the_adjective_run() -> None:
    """``max_gap`` is how many words may stand between the number and its noun."""
    assert read("479 very big new attack drones", "drones", max_gap=4) == (479, "479", "", False)
    assert read("479 attack drones", "drones", max_gap=0) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,200", 1200),
        ("1 000", 1000),
        ("1.2 thousand", 1200),
        ("four hundred and seventy-nine", 479),
        ("Four Hundred", 400),
        ("hundreds", 200),
        ("сотні", 200),
        ("2.500", 2500),
        ("1,5", 1.5),
        ("12", 12),
        ("abc", None),
        ("400 drones", None),
        ("", None),
    ],
)
def test_parse_number(text: str, value: float | None) -> None:
    """A whole string reads as a number only if every token is part of one."""
    assert parse_number(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("1,000", 1000), ("1 000 000", 1e6), ("2.500", 2500), ("1.25", 1.25), ("1,5", 1.5)],
)
def test_digits_value(text: str, value: float) -> None:
    """Three digits after a separator make it a thousands separator, else a decimal point."""
    assert digits_value(text) == value


@pytest.mark.parametrize(
    ("text", "parsed", "value", "result"),
    [
        (">= 400", (">=", 400.0), 400, True),
        ("> 400", (">", 400.0), 400, False),
        ("<10", ("<", 10.0), 3, True),
        ("= 5", ("=", 5.0), 5, True),
        ("!= 5", ("!=", 5.0), 5, False),
    ],
)
def test_thresholds(text: str, parsed: tuple[str, float], value: float, result: bool) -> None:
    """Thresholds parse as OP NUMBER and compare as written."""
    assert parse_threshold(text) == parsed
    assert compare(value, *parsed) is result


def test_bad_threshold() -> None:
    """A threshold that is not OP NUMBER does not parse."""
    assert parse_threshold("about 400") is None
