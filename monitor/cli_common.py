"""What every command module shares: the config option, loading, exit codes.

Exit codes: 0 success; 1 the command ran but failed; 2 bad usage or
configuration; 3 start-up failed (store, rules, the HTTP server's port).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from monitor.config.loader import load_config
from monitor.config.models import AppConfig
from monitor.exceptions import ConfigError
from monitor.observability import configure_logging, redactor

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_STARTUP = 3

DEFAULT_CONFIG = "config/monitor.yaml"

config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_CONFIG,
    envvar="MONITOR_CONFIG",
    show_default=True,
    help="Configuration file (env MONITOR_CONFIG).",
)


def load_or_exit(config_path: Path) -> AppConfig:
    """Load the configuration, set up logging and redaction; exit 2 on a bad file."""
    try:
        config = load_config(config_path)
    except ConfigError as e:
        click.echo(f"error: invalid configuration\n{e}", err=True)
        sys.exit(EXIT_CONFIG)
    configure_logging(config.logging.format, config.logging.level)
    redactor.update(secret.get_secret_value() for secret in config.secrets())
    return config
