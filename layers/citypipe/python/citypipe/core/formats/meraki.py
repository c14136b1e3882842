"""Cisco Meraki Scanning API presence: v2 ``DevicesSeen``/``BluetoothDevicesSeen`` (the
access point in ``data.apMac``) and v3 ``WiFi``/``Bluetooth`` (the nearest access point
of each client in ``latestRecord.nearestApMac``). Each observation of a client is one
``presence`` reading of the access point, its ``clientMac`` the data subject (pseudonymized
at the edge by the source's policy). Of everything else about the client (IPs, SSID, OS,
manufacturer, position, signal) only its presence is noted, for the source's rules; no
value, nor the shared ``secret``, is ever read.
"""

from __future__ import annotations

from typing import Any

from citypipe.core.formats.common import (
    Context,
    Format,
    Reading,
    Rejection,
    hub_time,
    number,
    obj,
)

FIELD = "presence"
# The other personal fields an observation carries (``domain.personal`` names): only that
# they are there is read (for the source's rules: refuse refuses the reading), never a value.
CARRIED = {
    "ipv4": "ip_address", "ipv6": "ip_address", "ssid": "ssid", "rssi": "rssi",
    "location": "location", "os": "os", "manufacturer": "manufacturer",
}  # fmt: skip
# A carried field sent empty (null, "", [] or {}) is not carried: a falsy JSON value of
# another type (0, false) is
_EMPTIES = (str, list, dict)
_CARRIED = tuple(CARRIED.items())
_PATHS = tuple(f"data.observations[{i}]" for i in range(64))  # a post's first observations
# The names of the Scanning API's v2 and v3 posts (Meraki's documentation).
SCHEMA = frozenset(
    {
        "version", "secret", "type", "data", "networkId", "apMac", "apFloors", "apTags",
        "observations", "clientMac", "name", "seenTime", "seenEpoch", "ipv4", "ipv6", "ssid",
        "os", "manufacturer", "rssi", "location", "locations", "lat", "lng", "unc", "x", "y",
        "floorPlanId", "floorPlanName", "latestRecord", "nearestApMac", "nearestApRssi",
        "nearestApTags", "time", "variance", "rssiRecords", "userId",
    }
)  # fmt: skip


def _seen(
    observation: dict[str, Any], record: dict[str, Any] | None, path: str, fallback: float
) -> float | Rejection:
    """When a client was seen: ``seenTime`` (v2), ``latestRecord.time`` (v3), else
    ``seenEpoch``, else arrival; any of them sent but unreadable: ``invalid_time``."""
    epoch = observation.get("seenEpoch")
    seen = None if epoch is None else number(epoch)
    if epoch is not None and seen is None:
        return Rejection("invalid_time", "seenEpoch is not a number", f"{path}.seenEpoch")
    return hub_time(
        fallback if seen is None else seen,
        ("seenTime", observation.get("seenTime")),
        ("latestRecord.time", None if record is None else record.get("time")),
        within=path,
    )


def _carried(observation: dict[str, Any]) -> dict[str, bool] | None:
    """The personal fields an observation carries, by name (None: none), in ``CARRIED``'s
    order (a loop: a dict comprehension's frame costs a third more)."""
    get = observation.get
    carried = {}
    for key, name in _CARRIED:
        value = get(key)
        if value or (value is not None and type(value) not in _EMPTIES):
            carried[name] = True
    return carried or None


def _paths(count: int) -> list[str]:
    return [f"data.observations[{i}]" for i in range(count)]


def parse(document: Any, ctx: Context) -> list[Reading | Rejection]:
    doc = obj(document, "a Scanning API post")
    data = obj(doc.get("data"), "data", "data")
    observations = data.get("observations")
    if not isinstance(observations, list):
        return [Rejection("invalid_payload", "data.observations is an array", "data")]
    ap = data.get("apMac")
    if not observations:
        return []
    out: list[Reading | Rejection] = []
    paths = _PATHS if len(observations) <= len(_PATHS) else _paths(len(observations))
    received = ctx.received_at
    for index, observation in enumerate(observations):
        path = paths[index]
        if not isinstance(observation, dict):
            out.append(Rejection("invalid_record", "an observation is an object", path))
            continue
        record = observation.get("latestRecord")
        if not isinstance(record, dict):
            record = None
        device = ap or (None if record is None else record.get("nearestApMac"))
        if not isinstance(device, str) or not device:
            out.append(Rejection("missing_device_id", "no apMac (v2) or nearestApMac (v3)", path))
            continue
        at = _seen(observation, record, path, received)
        if isinstance(at, Rejection):
            out.append(at)
            continue
        subject = observation.get("clientMac")
        subject = subject if isinstance(subject, str) else None
        carried = _carried(observation)
        out.append(Reading("meraki", device, FIELD, 1, at, path, None, subject, carried))
    return out


FORMAT = Format("meraki", 2, "meraki", parse, SCHEMA, "Meraki Scanning API v2/v3")
