"""ChirpStack v4 and v3: the LoRaWAN monitors dealt to each, as its integration's ``up``
events, on the city file's topic for them (the DevEUI in its wildcard).

v4: ``deviceInfo`` (tenant, application, device name, DevEUI in lower-case hex), the
DevAddr, the gateways' ``rxInfo`` and the codec's ``object``, whose PM2.5 a codec spells as
a string ("12.30"). v3: the DevEUI and gateway ids in base64 (its protobuf JSON), the
``object`` as numbers. Faults: LoRaWAN's (``lorawan``).
"""

from __future__ import annotations

import base64

from citypipe_local.simulate import lorawan
from citypipe_local.simulate.clock import iso_ms
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.lorawan import Uplink
from citypipe_local.simulate.wire import dumps
from citypipe_local.simulate.world import Sensor


def up_v4(day: Day, dev: Sensor, at: int) -> None:
    """An uplink of ``dev`` at ``at``, as ChirpStack v4 publishes it."""
    lorawan.uplink(day, dev, at, _v4)


def up_v3(day: Day, dev: Sensor, at: int) -> None:
    """An uplink of ``dev`` at ``at``, as ChirpStack v3 publishes it."""
    lorawan.uplink(day, dev, at, _v3)


def _v4(day: Day, up: Uplink) -> str:
    when = iso_ms(up.at)
    return dumps(
        {
            "deduplicationId": f"{up.at:08x}-{up.dev.position:04x}-4000-8000-000000000000",
            "time": when,
            "deviceInfo": {
                "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
                "tenantName": "Velden",
                "applicationId": "5bb92de6-49b3-49af-a366-34667f2230be",
                "applicationName": "air",
                "deviceProfileName": "aq-node",
                "deviceName": up.name,
                "devEui": up.dev.eui,
                "tags": {},
            },
            "devAddr": up.devaddr,
            "adr": True,
            "dr": 3,
            "fCnt": up.f_cnt,
            "fPort": 2,
            "confirmed": False,
            "data": "AQID",
            "object": {k: f"{v:.2f}" if k == "pm25" else v for k, v in up.decoded.items()},
            "rxInfo": [
                {
                    "gatewayId": up.gateway,
                    "uplinkId": up.at % 65536,
                    "time": when,
                    "rssi": -97,
                    "snr": 7.5,
                    "location": {"latitude": up.lat, "longitude": up.lon},
                }
            ],
        }
    )


def _v3(day: Day, up: Uplink) -> str:
    when = iso_ms(up.at)
    return dumps(
        {
            "applicationID": "7",
            "applicationName": "air",
            "deviceName": up.name,
            "devEUI": base64.b64encode(bytes.fromhex(up.dev.eui)).decode(),
            "rxInfo": [
                {
                    "gatewayID": base64.b64encode(bytes.fromhex(up.gateway)).decode(),
                    "time": when,
                    "rssi": -97,
                    "loRaSNR": 7.5,
                    "location": {"latitude": up.lat, "longitude": up.lon, "altitude": 12},
                }
            ],
            "adr": True,
            "fCnt": up.f_cnt,
            "fPort": 2,
            "data": "AQID",
            "object": up.decoded,
            "publishedAt": when,
        }
    )
