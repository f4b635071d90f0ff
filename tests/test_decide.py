"""Pure policy: which items may alert, backoff arithmetic, how long history is kept."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import decide
from monitor.config.models import AppConfig
from monitor.types import Item

NOW = datetime(2025, 6, 8, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def item(age: timedelta, *, missing: bool = False) -> Item:
    return Item("i", "f", "t", "", None, NOW - age, published_missing=missing)


@pytest.mark.parametrize(
    ("age", "missing", "first_poll", "expected"),
    [
        (timedelta(hours=1), False, True, True),  # fresh news on a first poll
        (2 * DAY, False, True, False),  # backlog on a first poll
        (2 * DAY, False, False, True),  # late but new to us, later on
        (40 * DAY, False, False, False),  # past retention: could be a pruned item re-served
        (timedelta(0), True, True, False),  # undated on a first poll: age unknown
        (timedelta(0), True, False, True),  # undated later: first seen now
    ],
)
def test_may_alert(age: timedelta, missing: bool, first_poll: bool, expected: bool) -> None:
    """Backlog, items past retention and undated first-poll items do not alert."""
    got = decide.may_alert(
        item(age, missing=missing),
        first_poll=first_poll,
        now=NOW,
        max_item_age=DAY,
        retention=30 * DAY,
    )
    assert got is expected


@given(
    errors=st.integers(min_value=1, max_value=60),
    retry_after=st.none() | st.floats(min_value=0, max_value=100_000),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_stays_between_floor_and_cap(
    errors: int, retry_after: float | None, seed: int
) -> None:
    """Backoff is never above the cap, never below 80% of the minimum, and honours Retry-After."""
    low, high = timedelta(minutes=1), timedelta(hours=6)
    delay = decide.backoff_delay(errors, low, high, random.Random(seed), retry_after)
    assert low * 0.8 <= delay <= high
    if retry_after is not None:
        # timedelta keeps microseconds: allow for that rounding
        assert delay.total_seconds() >= min(retry_after, high.total_seconds()) - 1e-6


def test_backoff_grows_until_the_cap() -> None:
    """Without jitter's noise the n-th error waits about twice the (n-1)-th, up to the cap."""
    rng = random.Random(1)
    low, high = timedelta(minutes=1), timedelta(hours=6)
    medians = [
        sorted(decide.backoff_delay(n, low, high, rng).total_seconds() for _ in range(51))[25]
        for n in range(1, 12)
    ]
    assert medians[1] > 1.5 * medians[0]
    assert medians[-1] == pytest.approx(high.total_seconds(), rel=0.2)


@given(
    interval=st.floats(min_value=1, max_value=86_400),
    jitter=st.floats(min_value=0, max_value=0.5),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_jitter_stays_within_its_fraction(interval: float, jitter: float, seed: int) -> None:
    """A jittered interval is within ±jitter of the interval (and at least a second)."""
    got = decide.jittered(timedelta(seconds=interval), jitter, random.Random(seed)).total_seconds()
    assert (
        max(1.0, interval * (1 - jitter)) - 1e-6 <= got <= max(1.0, interval * (1 + jitter)) + 1e-6
    )


def test_history_span_covers_the_longest_rule_window() -> None:
    """Mentions are kept as long as the longest novelty window or burst baseline needs."""
    config = AppConfig.model_validate(
        {
            "rules": [
                {"kind": "terms", "id": "t", "any": ["x"]},
                {"kind": "novelty", "id": "n", "window": "90d"},
                {"kind": "burst", "id": "b", "window": "2h", "baseline_window": "14d"},
            ]
        }
    )
    assert decide.history_span(config) == timedelta(days=90)
    assert decide.history_span(AppConfig()) == timedelta(0)
