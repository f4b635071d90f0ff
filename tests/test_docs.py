"""The configuration reference: every field described, docs/configuration.md up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from monitor.config.models import AppConfig
from monitor.config.reference import fields, reference, sections

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
REGENERATE = "regenerate it: monitor schema --markdown > docs/configuration.md"


def every_field() -> list[tuple[str, str]]:
    """(model, field) for every field of every model the configuration can contain."""
    return sorted({(s.model.__name__, name) for s in sections() for name in s.model.model_fields})


@pytest.mark.parametrize(("model", "name"), every_field())
def test_every_field_has_a_description(model: str, name: str) -> None:
    """Each field of each config model says what it is for (description=...)."""
    owner = next(s.model for s in sections() if s.model.__name__ == model)
    assert owner.model_fields[name].description, f"{model}.{name} has no description="


def models_in(annotation: Any, found: set[type[BaseModel]]) -> set[type[BaseModel]]:
    """Every model class inside an annotation, recursively (an independent walk)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in found:
            found.add(annotation)
            for info in annotation.model_fields.values():
                models_in(info.annotation, found)
        return found
    for arg in get_args(annotation):
        models_in(arg, found)
    return found


def test_every_model_is_reached() -> None:
    """The reference walks every model nested anywhere in AppConfig, union members included."""
    assert {s.model for s in sections()} == models_in(AppConfig, set())


def test_every_key_is_in_the_reference() -> None:
    """Each documented key path appears in the generated Markdown."""
    text = reference()
    for doc in fields():
        assert f"`{doc.path}`" in text


def test_docs_configuration_md_is_up_to_date() -> None:
    """docs/configuration.md is exactly what `monitor schema --markdown` prints."""
    assert DOC.exists(), f"docs/configuration.md is missing; {REGENERATE}"
    assert DOC.read_text(encoding="utf-8") == reference(), f"out of date; {REGENERATE}"


def test_the_readme_quick_tour_config_is_valid(tmp_path: Path) -> None:
    """The configuration shown in the README's quick tour loads and its rules compile."""
    from monitor.config.loader import load_config
    from monitor.rules.compile import compile_rules

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("## Quick tour")
    block = readme[readme.index("```yaml\n", start) + 8 :]
    block = block[: block.index("```")]
    (tmp_path / "rules.yaml").write_text("rules: []\n")
    (tmp_path / "tour.yaml").write_text(block)
    compile_rules(load_config(tmp_path / "tour.yaml", env={}).rules)
