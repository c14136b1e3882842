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

import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import BinaryIO

from citypipe.core.disclosure import treatment
from citypipe.core.publish.dcat import public_url
from citypipe.core.publish.geo import zone_name
from citypipe.core.publish.register import personal_rules
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
    return list(_rows(city))


def _rows(city: City) -> Iterator[dict[str, str]]:
    names = StackNames(city.slug)
    zones = {r.sensor: r.zone for r in city.devices.values()}
    for sensor, device in sorted(city.registry.devices.items()):
        profile = city.registry.profiles[device.profile]
        source = city.sources[profile.source]
        if not source.notice.public_space:
            continue
        quantities = sorted({spec.quantity for spec in profile.fields.values()})
        privacy = treatment(city, quantities)
        lon, lat, position = _where(city, sensor, zones[sensor])
        yield (
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


# The sensor register's formats: extension -> media type
SENSOR_FORMATS = {"json": "application/json", "csv": "text/csv"}


def write_sensor_register(city: City, sinks: Mapping[str, BinaryIO]) -> None:
    """The sensor register as JSON and CSV (``sinks``: by extension, ``SENSOR_FORMATS``), a
    row at a time: a row a sensor, megabytes in a big city, never all in memory at once
    (decision 0111). The JSON is ``{"city": …, "sensors": […]}`` indented by one, keys
    sorted; the CSV has a header of ``SENSOR_COLUMNS`` (RFC 4180)."""
    document, table = sinks["json"], sinks["csv"]
    text = io.TextIOWrapper(table, encoding="utf-8", newline="", write_through=True)
    rows = csv.writer(text, lineterminator="\r\n")
    rows.writerow(SENSOR_COLUMNS)
    name = json.dumps(city.name, ensure_ascii=False)
    document.write(f'{{\n "city": {name},\n "sensors": ['.encode())
    written = 0
    for row in _rows(city):
        entry = json.dumps(row, indent=1, sort_keys=True, ensure_ascii=False)
        document.write(("\n" if not written else ",\n").encode())
        # indented by its lines (json writes "\n" only between them; textwrap would also
        # break at U+2028, U+2029 or U+0085 inside a string)
        document.write(("  " + entry.replace("\n", "\n  ")).encode())
        rows.writerow([row[c] for c in SENSOR_COLUMNS])
        written += 1
    document.write(b"\n ]\n}\n" if written else b"]\n}\n")
    text.detach()  # the sink stays its owner's to close
