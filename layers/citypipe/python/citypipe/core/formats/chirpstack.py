"""ChirpStack uplink events: v4 ``up`` events (``deviceInfo.devEui``, ``time``, ``object``)
and v3 JSON uplinks (``devEUI`` in hex or base64, ``publishedAt``, ``object``), from the
HTTP integration or MQTT ``application/{id}/device/{devEui}/event/up``. Readings are the
codec's ``object`` fields (numbers often as strings, shapes codec-specific); v3's Protocol
Buffers JSON sends the object as a string, ``objectJSON``. Time: ``time`` (v4) or
``publishedAt`` (v3), else the first gateway's ``rxInfo[].time``, else arrival; a time sent
that cannot be read refuses the uplink (``invalid_time``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from citypipe.core.formats.common import (
    Context,
    Format,
    Reading,
    Rejection,
    decoded_readings,
    hub_time,
    obj,
)

# The names of ChirpStack v4's up and join events and v3's uplinks (their integration
# references); ``object``'s are the codec's (the city's registry names them).
SCHEMA = frozenset(
    {
        "deduplicationId", "time", "deviceInfo", "tenantId", "tenantName", "applicationId",
        "applicationName", "deviceProfileId", "deviceProfileName", "deviceName", "devEui",
        "deviceClassEnabled", "tags", "devAddr", "adr", "dr", "fCnt", "fPort", "confirmed",
        "data", "object", "rxInfo", "gatewayId", "uplinkId", "nsTime", "timeSinceGpsEpoch",
        "rssi", "snr", "channel", "rfChain", "board", "antenna", "location", "latitude",
        "longitude", "altitude", "source", "accuracy", "context", "metadata",
        "region_config_id", "region_common_name", "crcStatus", "txInfo", "frequency",
        "modulation", "lora", "bandwidth", "spreadingFactor", "codeRate",
        "polarizationInversion", "regionConfigId", "relayRxInfo",
        # v3
        "applicationID", "devEUI", "gatewayID", "uplinkID", "name", "loRaSNR",
        "confirmedUplink", "publishedAt", "deviceProfileID", "timeSinceGPSEpoch",
        "fineTimestampType", "loRaModulationInfo", "objectJSON",
    }
)  # fmt: skip


def _rx_time(rx: Any) -> tuple[str, Any]:
    """The first gateway's time, where a gateway has one (GPS): its path and value."""
    if isinstance(rx, list):
        for index, item in enumerate(rx):
            if isinstance(item, dict) and item.get("time") is not None:
                return f"rxInfo[{index}].time", item["time"]
    return "rxInfo", None


def parse_v4(document: Any, ctx: Context) -> list[Reading | Rejection]:
    doc = obj(document, "a ChirpStack event")
    info = doc.get("deviceInfo")
    dev_eui = info.get("devEui") if isinstance(info, dict) else None
    if not isinstance(dev_eui, str) or not dev_eui:
        return [Rejection("missing_device_id", "no deviceInfo.devEui", "deviceInfo")]
    if "fCnt" not in doc and "object" not in doc and "data" not in doc:
        return [Rejection("not_an_uplink", "not an up event (join, status, ack, log ...)")]
    at = hub_time(ctx.received_at, ("time", doc.get("time")), _rx_time(doc.get("rxInfo")))
    if isinstance(at, Rejection):
        return [at]
    return decoded_readings("lorawan", dev_eui, doc.get("object"), at, "object")


def _dev_eui_v3(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 16:
        return value
    try:  # protobuf JSON (the json_v3 marshaler) writes bytes in base64
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return value


def _object_v3(doc: dict[str, Any]) -> tuple[Any, str] | Rejection:
    """A v3 uplink's decoded object and its path: ``object`` (the legacy ``json_v3``
    marshaler), else ``objectJSON``, the object as a JSON string (the Protocol Buffers JSON
    marshaler; empty without a codec)."""
    text = doc.get("objectJSON")
    if doc.get("object") is not None or not isinstance(text, str) or not text:
        return doc.get("object"), "object"
    try:  # the standard library's parser (adapters are pure), strict as orjson: no NaN
        return json.loads(text, parse_constant=_not_json), "objectJSON"
    except ValueError:
        return Rejection("invalid_json", "objectJSON is not JSON", "objectJSON")


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def parse_v3(document: Any, ctx: Context) -> list[Reading | Rejection]:
    doc = obj(document, "a ChirpStack v3 uplink")
    dev_eui = _dev_eui_v3(doc.get("devEUI"))
    if dev_eui is None:
        return [Rejection("missing_device_id", "no devEUI", "devEUI")]
    at = hub_time(
        ctx.received_at, ("publishedAt", doc.get("publishedAt")), _rx_time(doc.get("rxInfo"))
    )
    decoded = _object_v3(doc)
    if isinstance(at, Rejection):
        return [at]
    if isinstance(decoded, Rejection):
        return [decoded]
    return decoded_readings("lorawan", dev_eui, decoded[0], at, decoded[1])


FORMAT_V4 = Format("chirpstack-v4", 2, "lorawan", parse_v4, SCHEMA, "ChirpStack v4 up event")
FORMAT_V3 = Format("chirpstack-v3", 2, "lorawan", parse_v3, SCHEMA, "ChirpStack v3 uplink")
