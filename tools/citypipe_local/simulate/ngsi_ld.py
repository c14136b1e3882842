"""NGSI-LD: air quality monitors behind a context broker (every minute), as its
notifications of ``AirQualityObserved`` entities (normalized, the context in a Link header).

Each pollutant a Property with its ``unitCode`` (GQ: ug/m3) and ``observedAt``; the entity
id is the device's URN. Faults: NO2 in mg/m3 (GP), an unknown attribute (``so2``), a
truncated body, a resend.
"""

from __future__ import annotations

from typing import Any

from citypipe_local.simulate.clock import iso_ms
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.faults import DUPLICATE, INVALID_JSON, UNIT_MISMATCH, UNKNOWN_FIELD
from citypipe_local.simulate.values import dec
from citypipe_local.simulate.wire import dumps
from citypipe_local.simulate.world import Sensor

FAULTS = (INVALID_JSON, UNIT_MISMATCH, UNKNOWN_FIELD, DUPLICATE)
LINK = (
    "<https://smartdatamodels.org/context.jsonld>; "
    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
)


def notification(day: Day, dev: Sensor, at: int) -> None:
    """The broker's notification of ``dev``'s entity at ``at``."""
    values = day.values.air(dev, at)
    when = iso_ms(at)
    entity = _entity(dev, when, values)
    spoil = day.spoil(FAULTS)
    if spoil == UNIT_MISMATCH:  # mg/m3 (GP) instead of ug/m3 (GQ)
        day.truth.reject(UNIT_MISMATCH)
        entity["no2"]["unitCode"] = "GP"
        values.pop("no2")
    elif spoil == UNKNOWN_FIELD:
        day.truth.reject(UNKNOWN_FIELD)
        entity["so2"] = {"type": "Property", "value": 3.0, "unitCode": "GQ", "observedAt": when}
    elif spoil == INVALID_JSON:
        values = {}
    body = dumps(
        {
            "id": f"urn:ngsi-ld:Notification:{at:x}{dev.position:04x}",
            "type": "Notification",
            "subscriptionId": "urn:ngsi-ld:Subscription:velden-air",
            "notifiedAt": when,
            "data": [entity],
        }
    )
    day.send("ngsi-ld", dev, at, body, spoil, 3, headers={"Link": LINK})
    day.truth.accept(dev, at, values)


def _entity(dev: Sensor, when: str, values: dict[str, int]) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": dev.device.id,
        "type": "AirQualityObserved",
        "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": when}},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": list(dev.device.at or (0, 0))},
        },
        "refDevice": {
            "type": "Relationship",
            "object": f"urn:ngsi-ld:Device:{dev.device.id[-8:]}",
        },
    }
    for name, centi in values.items():
        entity[name] = {
            "type": "Property",
            "value": float(dec(centi)),
            "unitCode": "GQ",
            "observedAt": when,
        }
    return entity
