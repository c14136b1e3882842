"""The hourly job's trigger: an EventBridge scheduled event (or a CRON POST)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from citypipe.entrypoints.events import fired_at
from citypipe.service.export import ExportPorts
from citypipe.service.housekeeping import hourly
from citypipe.service.kernel import Deps


def scheduled(deps: Deps, ports: ExportPorts, event: dict[str, Any]) -> dict[str, Any]:
    """Run the hourly job at the time the event fired (now if it does not say)."""
    return asdict(hourly(deps, ports, fired_at(event, deps.clock.now())))
