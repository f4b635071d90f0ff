"""Rule models: one per rule kind, a closed union discriminated by ``kind``.

Adding a kind is a model here (subclass :class:`RuleBase`) plus a matcher in
``monitor.rules``. Term syntax (wildcards ``advanc*``, inflections, Cyrillic stems) is
described in :mod:`monitor.rules.lexicon`; number reading in :mod:`monitor.rules.numbers`.
Patterns, terms and ``requires`` references are checked when the rules are compiled
(``monitor.rules.compile.compile_rules``), which names the rule and the bad part.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import Field, model_validator

from monitor.config.base import ID_PATTERN, Duration, Model, SeverityName

FieldName = Literal["title", "summary"]
PlaceLevel = Literal["city", "region", "country"]
Terms = tuple[str, ...]
THRESHOLD_PATTERN = r"^\s*(>=|<=|==|!=|>|<|=)\s*-?\d+(\.\d+)?\s*$"


class CooldownConfig(Model):
    """After an alert of the rule, hold back its alerts for the same key for ``duration``."""

    duration: Duration = Field(description="e.g. 6h.")
    key: Literal["place", "rule"] = Field(
        "rule",
        description="place: one cooldown per place the alert names (an alert naming a place "
        "not in cooldown still goes out); rule: one for the whole rule.",
    )

    @model_validator(mode="after")
    def _positive(self) -> CooldownConfig:
        if self.duration <= timedelta(0):
            raise ValueError("cooldown duration must be longer than zero, e.g. 6h")
        return self


class RuleBase(Model):
    """What every rule kind has: identity, severity and scope."""

    id: str = Field(
        pattern=ID_PATTERN, description="Stable name of the rule; alerts and routes refer to it."
    )
    description: str = Field(
        "", description="Free text for people reading the rules; not used in matching."
    )
    severity: SeverityName = Field("warning", description="Severity of the alerts the rule raises.")
    enabled: bool = Field(
        True, description="false keeps the rule in the file but never evaluates it."
    )
    fields: tuple[FieldName, ...] = Field(
        ("title", "summary"), min_length=1, description="Which parts of the item are read."
    )
    feed_tags: tuple[str, ...] = Field(
        (), description="Only items with one of these tags (the item's or its feed's)."
    )
    languages: tuple[str, ...] = Field(
        (),
        description="Only items in these languages (ISO 639-1; 'en' also covers 'en-GB'). "
        "Items of unknown language are out of scope of a rule that names languages.",
    )
    requires: tuple[str, ...] = Field(
        (), description="Ids of other rules that must also fire on the item."
    )
    requires_min_severity: SeverityName | None = Field(
        None,
        description="The `requires` rules must have fired at this severity or higher "
        "(a score rule's severity is its band).",
    )
    none: Terms = Field((), description="The rule is silent if any of these terms occurs.")
    inflect: bool = Field(
        True,
        description="Latin words also match their English inflections (strike: strikes, "
        "struck, striking); false matches the exact forms only.",
    )
    cooldown: CooldownConfig | None = Field(
        None,
        description="Suppress further alerts of this rule for the same key (place or rule) "
        "for a while; suppressed alerts are recorded and counted, not sent.",
    )
    min_sources: int = Field(
        1,
        ge=1,
        description="Alert only once this many distinct feeds report the story (burst "
        "rules: distinct sources within `window`, see below).",
    )


class TermsRuleConfig(RuleBase):
    """Fires when the item has any/all of the terms and none of the excluded ones."""

    kind: Literal["terms"] = Field(description="Selects this rule kind: terms.")
    any: Terms = Field((), description="At least one (or `at_least`) of these terms must occur.")
    all: Terms = Field((), description="Every one of these terms must occur.")
    at_least: int | None = Field(
        None, ge=1, description="How many distinct `any` terms must occur (default 1)."
    )

    @model_validator(mode="after")
    def _needs_terms(self) -> TermsRuleConfig:
        if not self.any and not self.all:
            raise ValueError("a terms rule needs `any` or `all` terms; add at least one")
        if self.at_least is not None and self.at_least > len(self.any):
            raise ValueError(
                f"at_least is {self.at_least} but `any` has only {len(self.any)} terms; "
                "lower it or add terms"
            )
        return self


class NearRuleConfig(RuleBase):
    """Fires when a term of each group occurs within ``within`` words (or one sentence)."""

    kind: Literal["near"] = Field(description="Selects this rule kind: near.")
    terms: tuple[Terms, ...] = Field(
        min_length=2, description="Two or more groups of terms; one of each must occur."
    )
    within: int | Literal["sentence"] = Field(
        10, description="Most words between the terms, or 'sentence' for the same sentence."
    )

    @model_validator(mode="after")
    def _groups(self) -> NearRuleConfig:
        if any(not group for group in self.terms):
            raise ValueError("every group of `terms` needs at least one term")
        if isinstance(self.within, int) and self.within < 0:
            raise ValueError("within must be 0 or more words, or 'sentence'")
        return self


class RegexRuleConfig(RuleBase):
    """Fires when ``pattern`` matches the normalised text and its numbers pass ``thresholds``."""

    kind: Literal["regex"] = Field(description="Selects this rule kind: regex.")
    pattern: str = Field(
        min_length=1,
        description="Python regular expression, matched case-insensitively on the "
        "normalised text (lower-case, straight quotes, '-' for every dash).",
    )
    thresholds: dict[str, Annotated[str, Field(pattern=THRESHOLD_PATTERN)]] = Field(
        default_factory=dict,
        description="Named group -> comparison, e.g. {count: '>= 400'}; the group is read "
        "as a number (digits, '1,000', '1.2 thousand', number words).",
    )


class QuantityRuleConfig(RuleBase):
    """Fires when a number counting one of ``nouns`` is within [min, max]."""

    kind: Literal["quantity"] = Field(description="Selects this rule kind: quantity.")
    nouns: Terms = Field(min_length=1, description="What is counted: drone*, 'ballistic missile*'.")
    min: float | None = Field(None, description="Fires at this number or more.")
    max: float | None = Field(None, description="Fires at this number or fewer.")
    max_gap: int = Field(
        3, ge=0, le=6, description="Words allowed between the number and the noun."
    )

    @model_validator(mode="after")
    def _bounds(self) -> QuantityRuleConfig:
        if self.min is None and self.max is None:
            raise ValueError("a quantity rule needs `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self


class ScoreCategory(Model):
    """A category of a score lexicon: term weights, scaled by ``weight``, capped at ``cap``."""

    weight: float = Field(1.0, ge=0, description="Multiplies the category's term weights.")
    cap: float | None = Field(None, gt=0, description="Most this category adds to the score.")
    terms: dict[str, float] = Field(min_length=1, description="term -> weight")


class ScoreRuleConfig(RuleBase):
    """Sums weighted terms by category; the severity is the highest band the score reaches."""

    kind: Literal["score"] = Field(description="Selects this rule kind: score.")
    categories: dict[str, ScoreCategory] = Field(
        min_length=1, description="Category name -> its terms, weight and cap."
    )
    bands: dict[SeverityName, float] = Field(
        min_length=1, description="Lowest score for each severity, e.g. {info: 2, critical: 7}."
    )

    @model_validator(mode="after")
    def _bands(self) -> ScoreRuleConfig:
        if "severity" in self.model_fields_set:
            raise ValueError("a score rule's severity comes from its `bands`; remove `severity`")
        order = ["info", "warning", "critical"]
        given = sorted(self.bands.items(), key=lambda kv: order.index(kv[0]))
        for (low, a), (high, b) in pairwise(given):
            if b <= a:
                raise ValueError(f"band {high} ({b:g}) must be above band {low} ({a:g})")
        return self


_COUNTRY = r"^[A-Za-z]{2}$"
_LEVEL = (
    "What counts as a place: a city rolls up to its region (level region) or its country "
    "(level country); a place coarser than the level counts as itself."
)


class PlaceContext(Model):
    """Conflict-context terms that must occur near a place for its mention to count."""

    terms: Terms = Field(min_length=1, description="advanc*, offensive, обстріл*, ...")
    within: int | Literal["sentence"] = Field(
        "sentence", description="Most words between a term and the place, or 'sentence'."
    )

    @model_validator(mode="after")
    def _within(self) -> PlaceContext:
        if isinstance(self.within, int) and self.within < 0:
            raise ValueError("within must be 0 or more words, or 'sentence'")
        return self


class NoveltyRuleConfig(RuleBase):
    """Fires when a place is mentioned, in context, that is neither in the baseline nor in
    the history of in-context mentions within ``window``."""

    kind: Literal["novelty"] = Field(description="Selects this rule kind: novelty.")
    level: PlaceLevel = Field("region", description=_LEVEL)
    countries: tuple[Annotated[str, Field(pattern=_COUNTRY)], ...] = Field(
        (), description="Only places in these countries (ISO 3166-1 alpha-2); empty: any."
    )
    context: PlaceContext | None = Field(
        None, description="Terms that must occur near the place; none: every mention counts."
    )
    baseline: tuple[str, ...] = Field(
        (),
        description="Known places: ids (UA-12, UA, gn:709930) or names (Dnipro, Ukraine), "
        "resolved by the gazetteer when the rules are compiled.",
    )
    window: Duration = Field(
        timedelta(days=90), description="Seen in context within this window: not novel."
    )

    @model_validator(mode="after")
    def _window(self) -> NoveltyRuleConfig:
        if self.window <= timedelta(0):
            raise ValueError("window must be longer than zero, e.g. 90d")
        return self


class BurstRuleConfig(RuleBase):
    """Fires when a place or term is suddenly reported by many sources."""

    kind: Literal["burst"] = Field(description="Selects this rule kind: burst.")
    keys: Literal["places", "terms"] = Field("places", description="What is counted.")
    terms: Terms = Field((), description="With keys: terms, the terms to track.")
    level: PlaceLevel = Field("region", description=_LEVEL)
    countries: tuple[Annotated[str, Field(pattern=_COUNTRY)], ...] = Field(
        (), description="With keys: places, only places in these countries; empty: any."
    )
    min_sources: int = Field(
        3, ge=1, description="Distinct sources within `window`, this item's included."
    )
    window: Duration = Field(timedelta(hours=2), description="The burst window before now.")
    factor: float = Field(
        5, ge=0, description="Mentions in `window` must be this many times the baseline rate."
    )
    baseline_window: Duration = Field(
        timedelta(days=14), description="The window before `window` the rate is compared with."
    )

    @model_validator(mode="after")
    def _shape(self) -> BurstRuleConfig:
        if self.keys == "terms" and not self.terms:
            raise ValueError("a burst rule with keys: terms needs `terms` to track")
        if self.keys == "places" and self.terms:
            raise ValueError("`terms` is for keys: terms; remove it or set keys: terms")
        if self.window <= timedelta(0) or self.baseline_window <= timedelta(0):
            raise ValueError("window and baseline_window must be longer than zero")
        return self


RuleConfig = Annotated[
    TermsRuleConfig
    | NearRuleConfig
    | RegexRuleConfig
    | QuantityRuleConfig
    | ScoreRuleConfig
    | NoveltyRuleConfig
    | BurstRuleConfig,
    Field(discriminator="kind"),
]
