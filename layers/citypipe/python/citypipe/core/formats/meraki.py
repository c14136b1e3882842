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


def _seen(observation: dict[str, Any], path: str, fallback: float) -> float | Rejection:
    """When a client was seen: ``seenTime`` (v2), ``latestRecord.time`` (v3), else
    ``seenEpoch``, else arrival; any of them sent but unreadable: ``invalid_time``."""
    epoch = observation.get("seenEpoch")
    seen = number(epoch)
    if epoch is not None and seen is None:
        return Rejection("invalid_time", "seenEpoch is not a number", f"{path}.seenEpoch")
    record = observation.get("latestRecord")
    return hub_time(
        fallback if seen is None else seen,
        ("seenTime", observation.get("seenTime")),
        ("latestRecord.time", record.get("time") if isinstance(record, dict) else None),
        within=path,
    )


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
    for index, observation in enumerate(observations):
        path = paths[index]
        if not isinstance(observation, dict):
            out.append(Rejection("invalid_record", "an observation is an object", path))
            continue
        record = observation.get("latestRecord")
        device = ap or (record.get("nearestApMac") if isinstance(record, dict) else None)
        if not isinstance(device, str) or not device:
            out.append(Rejection("missing_device_id", "no apMac (v2) or nearestApMac (v3)", path))
            continue
        at = _seen(observation, path, ctx.received_at)
        if isinstance(at, Rejection):
            out.append(at)
            continue
        subject = observation.get("clientMac")
        carried = {
            name: True
            for key, name in _CARRIED
            if (value := observation.get(key))
            or (value is not None and type(value) not in _EMPTIES)
        }
        out.append(
            Reading(
                "meraki",
                device,
                FIELD,
                1,
                at,
                path,
                subject=subject if isinstance(subject, str) else None,
                personal=carried or None,
            )
        )
    return out


FORMAT = Format("meraki", 2, "meraki", parse, SCHEMA, "Meraki Scanning API v2/v3")
