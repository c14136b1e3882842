"""NGSI-LD notifications (a context broker's subscription POST): ``{"type": "Notification",
"notifiedAt", "data": [entities]}``, entities in key-values or normalized form, the
``@context`` in the body or in a ``Link`` header. An entity array or a single entity is
read too (some brokers' custom endpoints).

Readings are an entity's Properties (normalized: ``value``, ``unitCode``, ``observedAt``;
key-values: plain numbers). Relationships, GeoProperties (a claimed location never
overrides a registered one), dates and the entity's own attributes are not readings.
Time: the property's ``observedAt``, else the entity's ``dateObserved``/``observedAt``,
else the notification's ``notifiedAt``, else arrival.
"""

from __future__ import annotations

from typing import Any

from citypipe.core.formats.common import Context, Format, Reading, Rejection, first_time, obj

NOT_READINGS = frozenset(
    {
        "id", "type", "@context", "location", "observationSpace", "operationSpace", "address",
        "dateObserved", "observedAt", "dateCreated", "dateModified", "createdAt",
        "modifiedAt", "name", "description", "source", "dataProvider", "owner", "seeAlso",
        "scope",
    }
)  # fmt: skip
NOT_PROPERTIES = frozenset({"Relationship", "GeoProperty", "LanguageProperty"})
# The names NGSI-LD itself defines (ETSI GS CIM 009) and the Smart Data Models' common
# ones; an entity's measured attributes are the city's registry's.
SCHEMA = NOT_READINGS | frozenset(
    {
        "notifiedAt", "subscriptionId", "data", "value", "unitCode", "object", "coordinates",
        "@type", "@value", "datasetId", "instanceId", "languageMap", "refDevice",
    }
)  # fmt: skip


def _time_of(value: Any) -> Any:
    return value.get("value") if isinstance(value, dict) else value


def _entity(entity: Any, index: int, fallback: float) -> list[Reading | Rejection]:
    path = f"data[{index}]"
    if not isinstance(entity, dict):
        return [Rejection("invalid_record", "an entity is a JSON object", path)]
    ident = entity.get("id")
    if not isinstance(ident, str) or not ident:
        return [Rejection("missing_device_id", "an entity without id", path)]
    entity_at = first_time(_time_of(entity.get("dateObserved")), _time_of(entity.get("observedAt")))
    at = fallback if entity_at is None else entity_at
    out: list[Reading | Rejection] = []
    for key, attribute in entity.items():
        if key not in NOT_READINGS:
            read = _attribute(ident, key, attribute, at, f"{path}.{key}")
            if read is not None:
                out.append(read)
    return out


def _attribute(
    ident: str, key: str, attribute: Any, at: float, path: str
) -> Reading | Rejection | None:
    """An entity's attribute as a reading: a Property (normalized, its own unit and time),
    a plain value (key-values); None for what holds no reading (a Relationship, a
    GeoProperty)."""
    if isinstance(attribute, dict):  # normalized
        kind = attribute.get("type")
        if (isinstance(kind, str) and kind in NOT_PROPERTIES) or "object" in attribute:
            return None
        if "value" not in attribute:
            return Rejection("invalid_record", "a Property without value", path)
        code = attribute.get("unitCode")
        observed = first_time(attribute.get("observedAt"))
        when = at if observed is None else observed
        unit = code if isinstance(code, str) else None
        return Reading("ngsi-ld", ident, key, attribute["value"], when, path, unit)
    if isinstance(attribute, str) and attribute.startswith("urn:"):
        return None  # a Relationship in key-values
    return Reading("ngsi-ld", ident, key, attribute, at, path)


def parse(document: Any, ctx: Context) -> list[Reading | Rejection]:
    entities: Any
    if isinstance(document, list):
        entities, notified = document, None
    else:
        doc = obj(document, "an NGSI-LD notification")
        if doc.get("type") == "Notification" or "data" in doc:
            entities, notified = doc.get("data"), doc.get("notifiedAt")
            if not isinstance(entities, list):
                return [Rejection("invalid_payload", "a notification's data is an array", "data")]
        else:
            entities, notified = [doc], None
    fallback = first_time(notified)
    base = ctx.received_at if fallback is None else fallback
    out: list[Reading | Rejection] = []
    for index, entity in enumerate(entities):
        out += _entity(entity, index, base)
    return out


FORMAT = Format("ngsi-ld", 1, "ngsi-ld", parse, SCHEMA, "NGSI-LD notification")
