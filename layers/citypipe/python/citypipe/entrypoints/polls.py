"""The poller's tick: ingest's EventBridge scheduled event (or its CRON POST on Scaleway)."""

from __future__ import annotations

from typing import Any

from citypipe.entrypoints.events import fired_at
from citypipe.service.poll import Poller, poll_tick


def polled(poller: Poller | None, event: dict[str, Any]) -> dict[str, Any]:
    """Run the polls due at the tick the event fired for; their counts by source and API
    (none where the city polls no API: the tick is deployed with every stack)."""
    if poller is None:
        return {"polls": {}}
    done = poll_tick(poller, fired_at(event, poller.deps.clock.now()))
    return {"polls": {name: counts.model_dump(mode="json") for name, counts in done.items()}}
