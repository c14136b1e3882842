"""The Things Stack v3: the LoRaWAN monitors dealt to it, as its webhook's uplink messages
(``as:up``), on the city file's topic for them (the device id in its wildcard).

The end device's ids (device id ``vld-aq-<last six of the DevEUI>``, DevEUI and DevAddr in
upper case), the gateway's id and EUI with its registry position, and the payload
decoder's ``decoded_payload`` as JSON numbers. Faults: LoRaWAN's (``lorawan``).
"""

from __future__ import annotations

from citypipe_local.simulate import lorawan
from citypipe_local.simulate.clock import iso_ms
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.lorawan import Uplink
from citypipe_local.simulate.wire import dumps
from citypipe_local.simulate.world import Sensor


def webhook_uplink(day: Day, dev: Sensor, at: int) -> None:
    """An uplink of ``dev`` at ``at``, as The Things Stack's webhook posts it."""
    lorawan.uplink(day, dev, at, _body)


def _body(day: Day, up: Uplink) -> str:
    when = iso_ms(up.at)
    return dumps(
        {
            "end_device_ids": {
                "device_id": up.name,
                "application_ids": {"application_id": "velden-air"},
                "dev_eui": up.dev.eui.upper(),
                "join_eui": "70B3D57ED0000000",
                "dev_addr": up.devaddr.upper(),
            },
            "correlation_ids": [f"as:up:{up.at:x}{up.dev.position:04x}"],
            "received_at": when,
            "uplink_message": {
                "f_port": 2,
                "f_cnt": up.f_cnt,
                "frm_payload": "AQID",
                "decoded_payload": up.decoded,
                "rx_metadata": [
                    {
                        "gateway_ids": {
                            "gateway_id": f"eui-{up.gateway}",
                            "eui": up.gateway.upper(),
                        },
                        "time": when,
                        "rssi": -97,
                        "snr": 7.5,
                        "location": {
                            "latitude": up.lat,
                            "longitude": up.lon,
                            "altitude": 12,
                            "source": "SOURCE_REGISTRY",
                        },
                    }
                ],
                "settings": {
                    "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9}},
                    "frequency": "868100000",
                },
                "received_at": when,
            },
        }
    )
