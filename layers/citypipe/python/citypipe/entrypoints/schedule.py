"""The hourly job's trigger: an EventBridge scheduled event (or a CRON POST)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from citypipe.service.export import ExportPorts
from citypipe.service.housekeeping import hourly
from citypipe.service.kernel import Deps


def scheduled(deps: Deps, ports: ExportPorts, event: dict[str, Any]) -> dict[str, Any]:
    """Run the hourly job at the time the event fired (now if it does not say)."""
    fired = datetime.fromisoformat(
        str(event.get("time") or deps.clock.now().isoformat()).replace("Z", "+00:00")
    )
    return asdict(hourly(deps, ports, fired))
