"""The sensor register: every sensor in public space, one row each, from the city file.

Where it stands (its registered position, or the centre of the zone it is registered in),
who owns and runs it, why it is there, what it measures, what personal data it touches and
how that is treated, the legal basis, whom to write to, and the addresses of its printable
notice and of its register entry. Published as JSON and CSV beside the transparency
register (``open/<city>/register/sensor-register.*``), listed in the catalogue and the
data package with it; the portal's pages for residents show it (``core.publish.residents``).

A sensor is published by its registry name (``aq-001``), never by the id its hub gives it
(a DevEUI, an access point's MAC): those are the city's plumbing, not the resident's
business, and a MAC in the open zone would look like a leak.
"""

from __future__ import annotations

from citypipe.core.disclosure import treatment
from citypipe.core.publish.dcat import public_url
from citypipe.core.publish.geo import zone_name
from citypipe.core.publish.register import SENSORS, csv_bytes, json_document, personal_rules
from citypipe.core.publish.statements import BASES
from citypipe.domain.city import Action, City, Source
from citypipe.domain.geo import centroid
from citypipe.domain.model import QUANTITY_UNITS
from citypipe.domain.naming import StackNames
from citypipe.domain.personal import OPT_OUT_FIELD

SENSOR_COLUMNS = (
    "sensor", "kind", "source", "owner", "contact", "controller", "purpose", "measures",
    "zone", "zone_name", "longitude", "latitude", "position", "personal_data",
    "personal_fields", "treatment", "guarantee", "legal_basis", "opt_out", "notice_url",
    "register_url",
)  # fmt: skip


def legal_basis(city: City, source: Source) -> str:
    """The basis of a source's processing of personal data in words ("": it touches none,
    or the city states none)."""
    if not source.policy.personal:
        return ""
    processing = city.processing
    basis = source.notice.legal_basis or (processing.legal_basis if processing else None)
    if basis is None:
        return ""
    if processing is not None and basis is processing.legal_basis:
        return f"{BASES[basis]}; {processing.legal_basis_detail}"
    return BASES[basis]


def opted_out_by(source: Source) -> bool:
    """Whether a resident's opt-out reaches this source's detections (it reads a device
    address: pseudonymized, or dropped while the reading is counted)."""
    return source.policy.personal.get(OPT_OUT_FIELD) in (Action.PSEUDONYMIZE, Action.DROP)


def _where(city: City, sensor: str, zone: str) -> tuple[str, str, str]:
    """(longitude, latitude, how they were found) of a sensor."""
    device = city.registry.devices[sensor]
    if device.at is not None:
        return f"{device.at[0]:.6f}", f"{device.at[1]:.6f}", "registered position"
    feature = next(f for f in city.zones.features if f.id == zone)
    lon, lat = centroid(feature.geometry.coordinates)
    return f"{lon:.6f}", f"{lat:.6f}", "centre of its zone (registered by zone)"


def sensor_rows(city: City) -> list[dict[str, str]]:
    """One row per sensor in public space, by name."""
    names = StackNames(city.slug)
    zones = {r.sensor: r.zone for r in city.devices.values()}
    rows = []
    for sensor, device in sorted(city.registry.devices.items()):
        profile = city.registry.profiles[device.profile]
        source = city.sources[profile.source]
        if not source.notice.public_space:
            continue
        quantities = sorted({spec.quantity for spec in profile.fields.values()})
        privacy = treatment(city, quantities)
        lon, lat, position = _where(city, sensor, zones[sensor])
        rows.append(
            {
                "sensor": sensor,
                "kind": profile.kind,
                "source": profile.source,
                "owner": source.notice.owner or city.publisher.name,
                "contact": source.notice.contact or city.publisher.email,
                "controller": city.publisher.name,
                "purpose": source.purpose,
                "measures": ", ".join(f"{q} ({QUANTITY_UNITS[q]})" for q in quantities),
                "zone": zones[sensor],
                "zone_name": zone_name(city, zones[sensor]),
                "longitude": lon,
                "latitude": lat,
                "position": position,
                "personal_data": "yes" if source.policy.personal else "no",
                "personal_fields": personal_rules(source),
                "treatment": privacy.rule,
                "guarantee": privacy.resident or "",
                "legal_basis": legal_basis(city, source),
                "opt_out": "yes" if opted_out_by(source) else "no",
                "notice_url": public_url(city, names.notice_key(sensor)),
                "register_url": public_url(city, names.sensor_page_key()) + f"#{sensor}",
            }
        )
    return rows


def sensor_documents(city: City) -> dict[str, tuple[bytes, str]]:
    """Key -> (bytes, media type) of the sensor register, JSON and CSV."""
    names = StackNames(city.slug)
    rows = sensor_rows(city)
    return {
        names.register_key(SENSORS, "json"): (
            json_document({"city": city.name, "sensors": rows}),
            "application/json",
        ),
        names.register_key(SENSORS, "csv"): (
            csv_bytes(SENSOR_COLUMNS, [[r[c] for c in SENSOR_COLUMNS] for r in rows]),
            "text/csv",
        ),
    }
