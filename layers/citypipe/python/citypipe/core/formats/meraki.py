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
    first_time,
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


def _seen(observation: dict[str, Any], fallback: float) -> float:
    record = observation.get("latestRecord")
    at = first_time(
        observation.get("seenTime"), record.get("time") if isinstance(record, dict) else None
    )
    if at is None:
        epoch = number(observation.get("seenEpoch"))
        at = fallback if epoch is None else epoch
    return at


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
    for index, observation in enumerate(observations):
        path = f"data.observations[{index}]"
        if not isinstance(observation, dict):
            out.append(Rejection("invalid_record", "an observation is an object", path))
            continue
        record = observation.get("latestRecord")
        device = ap or (record.get("nearestApMac") if isinstance(record, dict) else None)
        if not isinstance(device, str) or not device:
            out.append(Rejection("missing_device_id", "no apMac (v2) or nearestApMac (v3)", path))
            continue
        subject = observation.get("clientMac")
        carried = {
            name: True
            for key, name in CARRIED.items()
            if observation.get(key) not in (None, "", [], {})
        }
        out.append(
            Reading(
                "meraki",
                device,
                FIELD,
                1,
                _seen(observation, ctx.received_at),
                path,
                subject=subject if isinstance(subject, str) else None,
                personal=carried or None,
            )
        )
    return out


FORMAT = Format("meraki", 1, "meraki", parse, SCHEMA, "Meraki Scanning API v2/v3")
