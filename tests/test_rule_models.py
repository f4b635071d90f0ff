"""Rule config models: a closed union on ``kind`` that rejects what it cannot run."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from monitor.config.models import AppConfig
from monitor.config.rule_models import (
    NearRuleConfig,
    QuantityRuleConfig,
    RegexRuleConfig,
    RuleConfig,
    ScoreRuleConfig,
    TermsRuleConfig,
)

_RULE = TypeAdapter(RuleConfig)

SCORE = {
    "kind": "score",
    "id": "s",
    "categories": {"weapons": {"weight": 1, "cap": 3, "terms": {"oreshnik": 3}}},
    "bands": {"info": 2, "warning": 4, "critical": 7},
}


@pytest.mark.parametrize(
    ("data", "model"),
    [
        ({"kind": "terms", "id": "t", "any": ["offensive"], "none": ["league"]}, TermsRuleConfig),
        ({"kind": "near", "id": "n", "terms": [["drone*"], ["kyiv"]], "within": 5}, NearRuleConfig),
        ({"kind": "near", "id": "n", "terms": [["a"], ["b"]], "within": "sentence"},
         NearRuleConfig),
        ({"kind": "regex", "id": "x", "pattern": "(?P<n>\\d+)", "thresholds": {"n": ">= 4"}},
         RegexRuleConfig),
        ({"kind": "quantity", "id": "q", "nouns": ["drone*"], "min": 400}, QuantityRuleConfig),
        ({"kind": "quantity", "id": "q", "nouns": ["drone*"], "max": 10}, QuantityRuleConfig),
        (SCORE, ScoreRuleConfig),
    ],
)  # fmt: skip
def test_kinds_parse(data: dict[str, Any], model: type[object]) -> None:
    """Each kind's example parses into its model, with the common defaults."""
    rule = _RULE.validate_python(data)
    assert isinstance(rule, model)
    assert rule.fields == ("title", "summary")
    assert rule.enabled is True
    assert rule.inflect is True
    assert rule.requires == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "nope", "id": "a"}, "does not match any of the expected tags"),
        ({"kind": "terms", "id": "a", "any": ["x"], "colour": "red"}, "Extra inputs"),
        ({"kind": "terms", "id": "a"}, "needs `any` or `all`"),
        ({"kind": "terms", "id": "a", "any": ["x"], "at_least": 2}, "at_least is 2"),
        ({"kind": "terms", "id": "a b", "any": ["x"]}, "should match pattern"),
        ({"kind": "terms", "id": "a", "any": ["x"], "fields": ["body"]}, "'title' or 'summary'"),
        ({"kind": "terms", "id": "a", "any": ["x"], "severity": "high"}, "'info', 'warning'"),
        ({"kind": "near", "id": "a", "terms": [["x"]]}, "at least 2 items"),
        ({"kind": "near", "id": "a", "terms": [["x"], []]}, "every group"),
        ({"kind": "near", "id": "a", "terms": [["x"], ["y"]], "within": -1}, "0 or more"),
        ({"kind": "near", "id": "a", "terms": [["x"], ["y"]], "within": "para"}, "sentence"),
        ({"kind": "regex", "id": "a", "pattern": "x", "thresholds": {"n": "about 4"}}, "pattern"),
        ({"kind": "quantity", "id": "a", "nouns": ["drone*"]}, "needs `min`, `max`"),
        ({"kind": "quantity", "id": "a", "nouns": ["x"], "min": 5, "max": 1}, "greater than max"),
        ({**SCORE, "severity": "critical"}, "comes from its `bands`"),
        ({**SCORE, "bands": {"info": 5, "warning": 4}}, "must be above band info"),
        ({**SCORE, "bands": {}}, "at least 1 item"),
    ],
)
def test_invalid_rules(data: dict[str, Any], message: str) -> None:
    """A rule the engine could not run is a validation error that says why."""
    with pytest.raises(ValidationError) as info:
        _RULE.validate_python(data)
    assert message in str(info.value)


def test_rules_are_frozen() -> None:
    """Loaded rules are immutable."""
    rule = _RULE.validate_python({"kind": "terms", "id": "a", "any": ["x"]})
    with pytest.raises(ValidationError):
        rule.id = "b"  # type: ignore[misc]


def test_app_config_holds_every_kind() -> None:
    """The application config accepts a list mixing every kind."""
    config = AppConfig.model_validate(
        {
            "rules": [
                {"kind": "terms", "id": "t", "any": ["offensive"]},
                {"kind": "near", "id": "n", "terms": [["a"], ["b"]], "requires": ["t"]},
                {"kind": "quantity", "id": "q", "nouns": ["drone*"], "min": 400},
                SCORE,
            ]
        }
    )
    assert [r.kind for r in config.rules] == ["terms", "near", "quantity", "score"]


def test_json_schema_exports() -> None:
    """The rule union exports a JSON Schema for editors."""
    schema = _RULE.json_schema()
    assert set(schema["discriminator"]["mapping"]) == {
        "terms", "near", "regex", "quantity", "score", "novelty", "burst"
    }  # fmt: skip
