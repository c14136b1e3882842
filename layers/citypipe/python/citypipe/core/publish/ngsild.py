"""A theme's day as NGSI-LD entities of the FIWARE Smart Data Models (key-values form).

One entity per zone and 15-minute window (per vehicle type for traffic), with the
published figures as the model's attributes: AirQualityObserved (mean concentrations),
NoiseLevelObserved (mean LAeq), TrafficFlowObserved (vehicles counted: ``intensity``, one
entity for every vehicle, one for heavy vehicles as ``lorry``, one for bicycles; the
pedestrians a traffic counter counts are a CrowdFlowObserved, the model's has no walker),
WeatherObserved (means in the model's units: humidity a fraction, pressure in hPa),
CrowdFlowObserved (distinct devices: ``peopleCount``, whose ``description`` says so: the
model means people, a Wi-Fi counter sees devices). A cell that is suppressed or
flagged gives no attribute (an entity with none is left out): NGSI-LD has no "withheld"
value, and the CSV and Parquet say why. The file is a JSON array, what an NGSI-LD
broker's batch upsert (``POST /ngsi-ld/v1/entityOperations/upsert``) takes, in window
order (then by id), like the CSV: a day is written a few windows at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from citypipe.core.disclosure import DisclosedCell, Status
from citypipe.core.publish.geo import zone_name
from citypipe.domain.city import City
from citypipe.domain.themes import SmartDataModel, Theme

ISO = "%Y-%m-%dT%H:%M:%SZ"
# traffic.vehicles: every vehicle type; heavy vehicles (goods vehicles over 3.5 t, buses):
# the model's lorry, its closest type
VEHICLE_TYPES = {"traffic.bicycles": "bicycle", "traffic.heavy_vehicles": "lorry"}


def _value(model: SmartDataModel, cell: DisclosedCell) -> float | int | None:
    if model.type == "CrowdFlowObserved":  # people: devices; pedestrians: the total counted
        if cell.distinct_devices is not None:
            return cell.distinct_devices
        return None if cell.sum is None else round(cell.sum)
    if model.type == "TrafficFlowObserved":
        return cell.sum
    if cell.mean is None:
        return None
    return round(cell.mean * model.scales.get(cell.quantity, 1.0), 6)


def entities(
    city: City, theme: Theme, cells: Sequence[DisclosedCell], source: str
) -> list[dict[str, Any]]:
    """The entities of these cells (whole windows), sorted by window, then id. ``source``:
    the URL of the day's CSV."""
    models = {q: m for m in reversed(theme.models) for q in m.attributes}
    grouped: dict[tuple[datetime, str, str], dict[str, Any]] = {}
    for cell in cells:
        model = models.get(cell.quantity)
        if model is None or cell.status is not Status.PUBLISHED:
            continue
        attribute = model.attributes[cell.quantity]
        value = _value(model, cell)
        if value is None:
            continue
        vehicle = (
            VEHICLE_TYPES.get(cell.quantity, "") if model.type == "TrafficFlowObserved" else ""
        )
        key = (cell.window_start, cell.zone, vehicle or model.type)
        if (entity := grouped.get(key)) is None:  # the window's first figure of the entity
            entity = grouped[key] = _entity(city, model, cell, vehicle, source)
        entity[attribute] = value
    return [grouped[key] for key in sorted(grouped, key=lambda k: (k[0], str(grouped[k]["id"])))]


def _what_is_counted(city: City, quantity: str) -> str:
    """What a CrowdFlowObserved's ``peopleCount`` counts: pedestrians a traffic counter
    counted (it sees no one's identifier), or devices, not people (a person may carry none
    or two), each once per zone and window however many sensors saw it, in a bounded number
    of windows a day, with noise (decision 0078)."""
    if quantity not in city.personal_quantities:
        return "peopleCount: pedestrians counted in the zone in the window by traffic counters."
    noise = city.disclosure.noise
    return (
        "peopleCount: distinct Wi-Fi devices (not people) seen in the zone in the window, each "
        f"counted once however many sensors saw it and in at most {noise.contributions_per_day} "
        f"windows a day, plus differential-privacy noise (epsilon {noise.epsilon:g} per "
        "device and day)."
    )


def _entity(
    city: City, model: SmartDataModel, cell: DisclosedCell, vehicle: str, source: str
) -> dict[str, Any]:
    start, end = cell.window_start.strftime(ISO), cell.window_end.strftime(ISO)
    compact = cell.window_start.strftime("%Y%m%dT%H%MZ")
    ident = f"urn:ngsi-ld:{model.type}:{city.slug}:{cell.zone}:{compact}"
    if vehicle:
        ident += f":{vehicle}"
    geometry = next(f.geometry for f in city.zones.features if f.id == cell.zone)
    entity: dict[str, Any] = {
        "id": ident,
        "type": model.type,
        "areaServed": zone_name(city, cell.zone),
        "location": {
            "type": "Polygon",
            "coordinates": [[list(p) for p in ring] for ring in geometry.coordinates],
        },
        "dataProvider": city.publisher.name,
        "source": source,
    }
    if model.type in ("AirQualityObserved", "WeatherObserved"):
        entity["dateObserved"] = start  # the window's start; the window is 15 minutes
    else:
        entity |= {
            "dateObserved": f"{start}/{end}",
            "dateObservedFrom": start,
            "dateObservedTo": end,
        }
    if vehicle:
        entity["vehicleType"] = vehicle
    if model.type == "CrowdFlowObserved":
        entity["description"] = _what_is_counted(city, cell.quantity)
    entity["@context"] = [model.context]
    return entity
