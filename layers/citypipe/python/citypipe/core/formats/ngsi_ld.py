"""NGSI-LD notifications (a context broker's subscription POST): ``{"type": "Notification",
"notifiedAt", "data": [entities]}``, entities in key-values or normalized form, the
``@context`` in the body or in a ``Link`` header. An entity array or a single entity is
read too (some brokers' custom endpoints).

Readings are an entity's Properties (normalized: ``value``, ``unitCode``, ``observedAt``;
key-values: plain numbers); a value may be a JSON-LD typed literal (``{"@type":
"DateTime", "@value": "…"}``, a number's). Relationships, GeoProperties (a claimed location
never overrides a registered one), dates and the entity's own attributes are not readings.
Time, each reading its own: the property's ``observedAt``, else the entity's
``dateObserved``/``observedAt`` (a string or a typed DateTime), else the notification's
``notifiedAt``, else arrival; the one a reading is dated by, sent but unreadable, refuses it
(``invalid_time``).
"""

from __future__ import annotations

from typing import Any

from citypipe.core.formats.common import Context, Format, Reading, Rejection, hub_time, obj

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


def _literal(value: Any) -> Any:
    """A JSON-LD typed literal (``{"@type": "DateTime", "@value": "…"}``, a number's) as its
    value; anything else as it is."""
    return value["@value"] if isinstance(value, dict) and "@value" in value else value


def _time_of(attribute: Any) -> Any:
    """The time an entity's time attribute holds: a Property's value (normalized) or the
    attribute itself (key-values), either a string or a typed literal; None: not sent."""
    if isinstance(attribute, dict) and "value" in attribute:
        attribute = attribute["value"]
    return _literal(attribute)


def _entity(entity: Any, index: int, fallback: float | Rejection) -> list[Reading | Rejection]:
    path = f"data[{index}]"
    if not isinstance(entity, dict):
        return [Rejection("invalid_record", "an entity is a JSON object", path)]
    ident = entity.get("id")
    if not isinstance(ident, str) or not ident:
        return [Rejection("missing_device_id", "an entity without id", path)]
    at = hub_time(
        fallback,
        ("dateObserved", _time_of(entity.get("dateObserved"))),
        ("observedAt", _time_of(entity.get("observedAt"))),
        within=path,
    )
    out: list[Reading | Rejection] = []
    undated = False  # an attribute dated by the entity's time, which cannot be read
    for key, attribute in entity.items():
        if key not in NOT_READINGS:
            read = _attribute(ident, key, attribute, at, f"{path}.{key}")
            undated = undated or read is at
            if read is not None and read is not at:
                out.append(read)
    if undated and isinstance(at, Rejection):
        out.append(at)  # the entity refused once, not each attribute (some may be ignored)
    return out


def _attribute(
    ident: str, key: str, attribute: Any, at: float | Rejection, path: str
) -> Reading | Rejection | None:
    """An entity's attribute as a reading: a Property (normalized, its own unit and time),
    a plain value or a typed literal (key-values); None for what holds no reading (a
    Relationship, a GeoProperty). ``at``: the entity's time (or why it has none)."""
    if isinstance(attribute, dict) and "@value" not in attribute:  # normalized
        kind = attribute.get("type")
        if (isinstance(kind, str) and kind in NOT_PROPERTIES) or "object" in attribute:
            return None
        if "value" not in attribute:
            return Rejection("invalid_record", "a Property without value", path)
        when = hub_time(at, ("observedAt", attribute.get("observedAt")), within=path)
        if isinstance(when, Rejection):
            return when
        code = attribute.get("unitCode")
        unit = code if isinstance(code, str) else None
        return Reading("ngsi-ld", ident, key, _literal(attribute["value"]), when, path, unit)
    if isinstance(attribute, str) and attribute.startswith("urn:"):
        return None  # a Relationship in key-values
    if isinstance(at, Rejection):
        return at
    return Reading("ngsi-ld", ident, key, _literal(attribute), at, path)


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
    base = hub_time(ctx.received_at, ("notifiedAt", notified))
    out: list[Reading | Rejection] = []
    for index, entity in enumerate(entities):
        out += _entity(entity, index, base)
    return out


FORMAT = Format("ngsi-ld", 2, "ngsi-ld", parse, SCHEMA, "NGSI-LD notification")
