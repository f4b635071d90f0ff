"""What every config model shares."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

SeverityName = Literal["info", "warning", "critical"]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class Model(BaseModel):
    """Unknown keys are errors; loaded config is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
