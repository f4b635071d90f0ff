"""Configuration: pydantic models and the YAML loader. Pydantic stays in this package."""

from monitor.config.models import AppConfig

__all__ = ["AppConfig"]
