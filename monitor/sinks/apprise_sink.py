"""Apprise sink: any of the services Apprise speaks (Telegram, Teams, Matrix, ...).

Optional: needs ``pip install 'media-monitor[apprise]'``. Apprise is imported
only when such a sink is built, and a missing package stops start-up with that
instruction. Apprise reports only success or failure, so every failure is
taken as transient; its URLs (secrets) are never named in errors.
"""

from __future__ import annotations

import importlib
from typing import Any

from monitor.config.models import AppriseSinkConfig
from monitor.exceptions import SinkError
from monitor.sinks.render import SEVERITY_MARK
from monitor.sinks.templates import load_template
from monitor.types import Alert, Severity

INSTALL_HINT = "the apprise sink needs the apprise package: install media-monitor[apprise]"
_NOTIFY_TYPE = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "failure"}


def _import_apprise(sink: str) -> Any:
    try:
        return importlib.import_module("apprise")
    except ImportError:
        raise SinkError(sink, INSTALL_HINT, transient=False) from None


class AppriseSink:
    def __init__(self, config: AppriseSinkConfig) -> None:
        self.name = config.name
        self._apprise = _import_apprise(config.name)
        self.body = load_template(
            "apprise_body.txt.j2", config.template, flavour="text",
            sink=config.name, key=f"sinks[{config.name}].template",
        )  # fmt: skip
        self._notifier = self._apprise.Apprise()
        for i, url in enumerate(config.urls):
            if not self._notifier.add(url.get_secret_value()):
                raise SinkError(
                    config.name, f"urls[{i}] is not an Apprise URL it can use", transient=False
                )

    def title(self, alert: Alert) -> str:
        mark = SEVERITY_MARK[alert.severity]
        return f"{mark} {alert.severity.label.upper()} {alert.rule_id}: {alert.item.title}"[:250]

    async def deliver(self, alert: Alert) -> str:
        ok = await self._notifier.async_notify(
            body=self.body.render(alert),
            title=self.title(alert),
            notify_type=_NOTIFY_TYPE[alert.severity],
        )
        if not ok:
            raise SinkError(
                self.name, "Apprise could not notify every URL (see its log)", transient=True
            )
        return f"Apprise notified {len(self._notifier)} service(s)"

    async def send(self, alert: Alert) -> None:
        await self.deliver(alert)

    async def close(self) -> None:
        return None
