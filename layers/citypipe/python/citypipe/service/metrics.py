"""What each processed input adds to the stack's CloudWatch metrics, as an embedded metric
format (EMF) document merged into the stage's "processed" log line: no API call, no extra
line. CloudWatch Logs extracts the metrics from Lambda's logs; elsewhere they are JSON log
fields like any other. The template's quarantine-rate alarm reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from citypipe.domain.books import OPTED_OUT, PollCounts, StageCounts
from citypipe.domain.model import Function

NAMESPACE = "citypipe"
READINGS_IN = "ReadingsIn"
READINGS_QUARANTINED = "ReadingsQuarantined"
POLL_REQUESTS = "PollRequests"
POLL_FAILURES = "PollFailures"
OPTOUTS_RECORDED = "OptOutsRecorded"
OPTOUTS_REFUSED = "OptOutsRefused"
OPTOUTS_UNAVAILABLE = "OptOutsUnavailable"


def embedded_metrics(
    city: str, function: Function, counts: StageCounts, at: datetime
) -> dict[str, Any]:
    """Log fields that make a log line an EMF document: per city and function, the readings
    an input held and how many of them were quarantined."""
    return _emf(
        at,
        {"city": city, "function": function.value},
        {
            READINGS_IN: counts.readings_in,
            # opted-out detections are a resident's choice, not a fault the alarm is for
            READINGS_QUARANTINED: counts.quarantined_total - counts.quarantined.get(OPTED_OUT, 0),
        },
    )


def poll_metrics(city: str, counts: PollCounts, at: datetime) -> dict[str, Any]:
    """Log fields that make a poll's "polled" line an EMF document: per city, the requests
    a tick sent to hub APIs and how many of them gave nothing (the template alarms on it)."""
    return _emf(
        at, {"city": city}, {POLL_REQUESTS: counts.requests, POLL_FAILURES: counts.failures}
    )


def optout_metrics(city: str, status: int, at: datetime) -> dict[str, Any]:
    """Log fields that make an opt-out's answer line an EMF document: per city, an opt-out
    recorded (202), refused (429: the hour's bound; 507: the set full — the template alarms
    on both) or not written for now (503). Never the address."""
    return _emf(
        at,
        {"city": city},
        {
            OPTOUTS_RECORDED: int(status == 202),
            OPTOUTS_REFUSED: int(status in (429, 507)),
            OPTOUTS_UNAVAILABLE: int(status == 503),
        },
    )


def _emf(at: datetime, dimensions: dict[str, str], counts: dict[str, int]) -> dict[str, Any]:
    """The fields of an EMF document: ``counts`` as metrics (Count) of ``NAMESPACE`` under
    one set of ``dimensions``, each dimension and count a field of the line."""
    directive = {
        "Namespace": NAMESPACE,
        "Dimensions": [list(dimensions)],
        "Metrics": [{"Name": name, "Unit": "Count"} for name in counts],
    }
    return {
        "_aws": {"Timestamp": int(at.timestamp() * 1000), "CloudWatchMetrics": [directive]},
        **dimensions,
        **counts,
    }
