"""AWS IoT Core: what the city's IoT rules send on, for two kinds of device.

- LoRaWAN monitors dealt to AWS IoT Core for LoRaWAN: the rule's message of an uplink, the
  decoder's ``transformed_message`` (the payload, ``WirelessDeviceId``, DevEUI) beside the
  network server's ``lns_message``. Faults: LoRaWAN's (``lorawan``).
- Radar traffic counters (every minute): their own JSON (``{"vehicles": n, "battery": v}``)
  through a rule, the device only in the MQTT topic (``velden/traffic/<thing>/counts``).
  Faults: -1000 vehicles, a truncated body, a resend.
"""

from __future__ import annotations

from citypipe_local.simulate import lorawan
from citypipe_local.simulate.clock import iso
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.faults import DUPLICATE, INVALID_JSON, OUT_OF_RANGE
from citypipe_local.simulate.lorawan import Uplink
from citypipe_local.simulate.values import CENTI
from citypipe_local.simulate.wire import dumps
from citypipe_local.simulate.world import Sensor

COUNTER_FAULTS = (INVALID_JSON, OUT_OF_RANGE, DUPLICATE)


def rule_message(day: Day, dev: Sensor, at: int) -> None:
    """The rule's message of ``dev`` at ``at``: an uplink or a count, by the device's hub."""
    if dev.device.hub == "lorawan":
        lorawan.uplink(day, dev, at, _transformed)
        return
    vehicles = day.values.vehicles(dev, at)
    spoil = day.spoil(COUNTER_FAULTS)
    values = {"vehicles": vehicles * CENTI}
    sent = vehicles
    if spoil == OUT_OF_RANGE:
        day.truth.reject(OUT_OF_RANGE)
        sent, values = -1000, {}
    elif spoil == INVALID_JSON:
        values = {}
    body = f'{{"vehicles":{sent},"battery":3.4}}'
    day.send("aws-iot", dev, at, body, spoil, 1, topic=dev.device.id)
    day.truth.accept(dev, at, values)


def _transformed(day: Day, up: Uplink) -> str:
    wireless_id = f"{up.dev.position:08x}-ed1d-42ad-8cb4-{up.dev.eui[-12:]}"
    day.truth.identifiers.add(wireless_id)
    return dumps(
        {
            "transformed_message": {
                "status": 200,
                "payload": up.decoded,
                "WirelessDeviceId": wireless_id,
                "DevEui": up.dev.eui,
            },
            "lns_message": {
                "WirelessDeviceId": wireless_id,
                "WirelessMetadata": {
                    "LoRaWAN": {
                        "DataRate": 3,
                        "DevEui": up.dev.eui,
                        "FPort": 2,
                        "Frequency": 868100000,
                        "Gateways": [{"GatewayEui": up.gateway, "Rssi": -97, "Snr": 7.5}],
                        "Timestamp": iso(up.at),
                    }
                },
                "PayloadData": "AQID",
            },
        }
    )
