"""The Things Stack v3 uplinks: webhook bodies and MQTT ``v3/{app}@{tenant}/devices/{dev}/up``
messages (the same JSON). Readings are ``uplink_message.decoded_payload``'s fields; the
device is ``end_device_ids.dev_eui``. Time: when the network received the uplink
(``uplink_message.received_at``, else the top-level ``received_at``, the gateway's
``settings.time`` or ``rx_metadata[].time``; MQTT messages lack some of them; none: arrival).
A time sent that cannot be read refuses the uplink (``invalid_time``).
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

# The names of The Things Stack's uplink, join-accept and location messages (its public
# message reference); ``decoded_payload``'s are the codec's (the city's registry names them).
SCHEMA = frozenset(
    {
        "end_device_ids", "device_id", "application_ids", "application_id", "dev_eui",
        "join_eui", "dev_addr", "correlation_ids", "received_at", "uplink_message",
        "join_accept", "session_key_id", "f_port", "f_cnt", "frm_payload", "decoded_payload",
        "decoded_payload_warnings", "normalized_payload", "normalized_payload_warnings",
        "rx_metadata", "gateway_ids", "gateway_id", "eui", "time", "timestamp", "rssi",
        "channel_rssi", "signal_rssi", "snr", "frequency_offset", "location", "locations",
        "latitude", "longitude", "altitude", "accuracy", "source", "uplink_token",
        "channel_index", "gps_time", "settings", "data_rate", "lora", "bandwidth",
        "spreading_factor", "coding_rate", "frequency", "consumed_airtime", "version_ids",
        "brand_id", "model_id", "hardware_version", "firmware_version", "band_id",
        "network_ids", "net_id", "ns_id", "tenant_id", "cluster_id", "cluster_address",
        "tenant_address", "simulated", "confirmed", "packet_broker", "attributes",
        "last_battery_percentage", "value", "user", "device_channel_index",
        "gateway_channel_index", "primary",
    }
)  # fmt: skip


def parse(document: Any, ctx: Context) -> list[Reading | Rejection]:
    doc = obj(document, "a TTS message")
    ids = doc.get("end_device_ids")
    dev_eui = ids.get("dev_eui") if isinstance(ids, dict) else None
    if not isinstance(dev_eui, str) or not dev_eui:
        return [Rejection("missing_device_id", "no end_device_ids.dev_eui", "end_device_ids")]
    up = doc.get("uplink_message")
    if not isinstance(up, dict):
        return [Rejection("not_an_uplink", "no uplink_message (a join, ack or other event)")]
    settings = up.get("settings")
    settings = settings if isinstance(settings, dict) else {}
    rx = up.get("rx_metadata")
    gateway = rx[0] if isinstance(rx, list) and rx and isinstance(rx[0], dict) else {}
    at = hub_time(
        ctx.received_at,
        ("uplink_message.received_at", up.get("received_at")),
        ("received_at", doc.get("received_at")),
        ("uplink_message.settings.time", settings.get("time")),
        ("uplink_message.rx_metadata[0].time", gateway.get("time")),
        ("uplink_message.rx_metadata[0].received_at", gateway.get("received_at")),
    )
    if isinstance(at, Rejection):
        return [at]
    return decoded_readings(
        "lorawan", dev_eui, up.get("decoded_payload"), at, "uplink_message.decoded_payload"
    )


FORMAT = Format("tts-v3", 2, "lorawan", parse, SCHEMA, "The Things Stack v3 uplink")
