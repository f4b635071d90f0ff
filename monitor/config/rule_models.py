"""Rule models: one per rule kind, a closed union discriminated by ``kind``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from monitor.config.base import ID_PATTERN, Model, SeverityName


class TermsRuleConfig(Model):
    """Fires when the item has any/all of the terms and none of the excluded ones."""

    kind: Literal["terms"]
    id: str = Field(pattern=ID_PATTERN)
    description: str = ""
    severity: SeverityName = "warning"
    any: tuple[str, ...] = Field((), description="At least one of these terms must occur.")
    all: tuple[str, ...] = Field((), description="Every one of these terms must occur.")
    none: tuple[str, ...] = Field((), description="The rule is silent if any of these occurs.")
    fields: tuple[Literal["title", "summary"], ...] = ("title", "summary")
    feed_tags: tuple[str, ...] = Field(
        (), description="Only items of feeds with one of these tags."
    )
    languages: tuple[str, ...] = Field((), description="Only items in these languages.")
    enabled: bool = True

    @model_validator(mode="after")
    def _needs_terms(self) -> TermsRuleConfig:
        if not self.any and not self.all:
            raise ValueError("a terms rule needs `any` or `all` terms; add at least one")
        return self


RuleConfig = Annotated[TermsRuleConfig, Field(discriminator="kind")]
