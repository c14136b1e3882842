"""AWS IoT Core: LoRaWAN uplinks (``WirelessMetadata.LoRaWAN``, ``Fport`` or ``FPort``), the
same with a decoder's ``transformed_message`` beside the ``lns_message``, and an IoT rule's
SELECT output: a device's plain JSON, whose device is only the MQTT topic it arrived on.

IoT Core for LoRaWAN delivers the frame in binary (``PayloadData``): a reading needs a
decoder (a rule's transformation), else the uplink is rejected as ``not_decoded``. Time: the
uplink's ``Timestamp`` (unreadable: ``invalid_time``), else arrival; a rule's plain JSON has
no time citypipe reads: arrival.
"""

from __future__ import annotations

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

# The names of IoT Core for LoRaWAN's uplink and a decoding rule's wrapper (the AWS IoT
# Wireless reference); a rule's plain JSON and ``payload``'s are the device's (the registry's).
SCHEMA = frozenset(
    {
        "WirelessDeviceId", "PayloadData", "WirelessMetadata", "LoRaWAN", "ADR", "Bandwidth",
        "ClassB", "CodeRate", "DataRate", "DevAddr", "DevEui", "FCnt", "FOptLen", "FPort",
        "Fport", "Frequency", "Gateways", "GatewayEui", "Rssi", "Snr", "MIC", "MType", "Major",
        "Modulation", "PolarizationInversion", "SpreadingFactor", "Timestamp",
        "PayloadDecoderName", "transformed_message", "lns_message", "payload",
    }
)  # fmt: skip


def _lorawan(message: Any) -> dict[str, Any]:
    meta = message.get("WirelessMetadata") if isinstance(message, dict) else None
    lorawan = meta.get("LoRaWAN") if isinstance(meta, dict) else None
    return lorawan if isinstance(lorawan, dict) else {}


def parse(document: Any, ctx: Context) -> list[Reading | Rejection]:
    doc = obj(document, "an IoT Core message")
    if "transformed_message" in doc or "lns_message" in doc:
        transformed = doc.get("transformed_message")
        transformed = transformed if isinstance(transformed, dict) else {}
        meta = _lorawan(doc.get("lns_message"))
        dev_eui = transformed.get("DevEui") or meta.get("DevEui")
        if not isinstance(dev_eui, str) or not dev_eui:
            return [Rejection("missing_device_id", "no DevEui", "lns_message")]
        stamp = ("lns_message.WirelessMetadata.LoRaWAN.Timestamp", meta.get("Timestamp"))
        at = hub_time(ctx.received_at, stamp)
        if isinstance(at, Rejection):
            return [at]
        return decoded_readings(
            "lorawan", dev_eui, transformed.get("payload"), at, "transformed_message.payload"
        )
    if "WirelessMetadata" in doc or "PayloadData" in doc:
        return [
            Rejection(
                "not_decoded",
                "a LoRaWAN frame in binary (PayloadData): decode it in the IoT rule",
                "PayloadData",
            )
        ]
    if not ctx.topic:
        return [Rejection("missing_device_id", "a rule's output names its device by topic: none")]
    return decoded_readings("aws-iot", ctx.topic, doc, ctx.received_at, "")


FORMAT = Format("aws-iot", 2, "aws-iot", parse, SCHEMA, "AWS IoT Core (LoRaWAN, rule output)")
