"""The project's own hub payloads (``events/hubs/<format>/<variant>``, events/README.md):
what each must give, the identifiers each carries, and the city that registers their
devices. Written from each format's public documentation with Velden's ids and values;
used by tests/unit/test_hub_fixtures.py (what the edge reads) and
test_hub_fixture_privacy.py (what it keeps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from citypipe.core.decode import csv_payloads
from citypipe.core.formats import FORMATS
from citypipe.core.ingest import Normalized, normalize
from citypipe.core.pseudonyms import day_keys
from citypipe.domain.city import City, parse_city
from citypipe_local.fakes import InMemoryKeyStore

HUBS = Path(__file__).resolve().parents[2] / "events" / "hubs"
REGISTRY = HUBS / "registry.yaml"
NOW_ISO = "2026-06-02T11:33:20.000000Z"  # unit_support.NOW: when a payload without time arrived

Obs = tuple[str, str, float, str]  # (sensor, quantity, value, observed_at)


@dataclass(frozen=True)
class Expect:
    """What a payload gives as it arrives (no MQTT topic, no HTTP header): its raw records
    in order, and its refused readings (or the payload refused whole) by reason."""

    observations: list[Obs] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    quarantined: int | None = None  # rows kept in quarantine; default: one if any refusal

    @property
    def quarantine_rows(self) -> int:
        if self.quarantined is not None:
            return self.quarantined
        return 1 if self.refused else 0


def obs(sensor: str, at: str, *values: tuple[str, float]) -> list[Obs]:
    """The observations of one sensor at one time, in order."""
    return [(sensor, quantity, value, at) for quantity, value in values]


T_TTS = "2026-06-01T08:15:02.236915Z"  # uplink_message.received_at, to the microsecond
T_MQTT = "2026-06-01T08:30:41.905000Z"  # no received_at at all: the gateway's time
T_BUTTON = "2026-06-01T09:02:47.480512Z"
T_SOIL = "2026-06-01T07:45:18.224371Z"
T_WX = "2026-06-01T10:10:05.312000Z"
T_CS3 = "2026-06-01T11:05:44.618300Z"  # legacy JSON v3: no publishedAt, the gateway's time
T_CS3_PB = "2026-06-01T11:06:02.158342Z"
T_PUMP = "2026-06-01T09:30:00.250000Z"

EXPECTED: dict[str, Expect] = {
    # --- The Things Stack v3: webhook and MQTT uplinks (the same JSON) ---------------------
    "tts-v3/webhook-uplink.json": Expect(
        obs("tts-aq-01", T_TTS, ("air.no2", 23.5), ("air.pm10", 17.25), ("air.pm25", 9.5))
    ),
    "tts-v3/mqtt-uplink.json": Expect(
        obs("tts-aq-02", T_MQTT, ("air.no2", 27.0), ("air.pm10", 11.75), ("air.pm25", 6.25))
    ),
    # no payload formatter: frm_payload only
    "tts-v3/mqtt-uplink-no-formatter.json": Expect(refused={"not_decoded": 1}),
    "tts-v3/webhook-uplink-battery-nanoseconds.json": Expect(
        obs("tts-button-01", T_BUTTON, ("weather.humidity", 48.5), ("weather.temperature", 22.75))
    ),
    # a comma missing before "received_at", as a published example once had it: not JSON
    "tts-v3/webhook-uplink-missing-comma.json": Expect(refused={"invalid_json": 1}),
    "tts-v3/join-accept.json": Expect(refused={"not_an_uplink": 1}),
    # --- ChirpStack v4 up events, ChirpStack v3 uplinks ---------------------------------------
    "chirpstack-v4/up-numbers-as-strings.json": Expect(
        obs(
            "cs-soil-01",
            T_SOIL,
            ("soil.temperature", 14.6),
            ("soil.moisture", 27.31),
            ("soil.conductivity", 412.0),
        )
    ),
    # not registered (a test board the city does not read): every field refused
    "chirpstack-v4/up-unregistered-device-gps-time.json": Expect(refused={"unknown_device": 4}),
    "chirpstack-v4/up-measurement-lists.json": Expect(
        obs(
            "cs-weather-01",
            T_WX,
            ("weather.temperature", 18.3),
            ("weather.humidity", 61.0),
            ("weather.illuminance", 41250.0),
            ("weather.uv_index", 3.1),
            ("weather.wind_speed", 2.6),
            ("weather.wind_direction", 226.0),
            ("weather.precipitation", 0.4),
            ("weather.pressure", 101270.0),
        )
    ),
    "chirpstack-v4/join.json": Expect(refused={"not_an_uplink": 1}),
    "chirpstack-v3/up-json-v3-legacy.json": Expect(
        obs("cs3-aq-21", T_CS3, ("air.no2", 32.25), ("air.pm10", 15.5), ("air.pm25", 7.25))
    ),
    # the Protocol Buffers JSON mapping: devEUI in base64, the decoded object as a JSON string
    # in objectJSON
    "chirpstack-v3/up-protobuf-json.json": Expect(
        obs("cs3-aq-22", T_CS3_PB, ("air.no2", 26.0), ("air.pm10", 14.5), ("air.pm25", 6.5))
    ),
    # --- AWS IoT Core ---------------------------------------------------------------------
    # the frame in binary (PayloadData): a decoder in the IoT rule is needed
    "aws-iot/lorawan-uplink-gateways.json": Expect(refused={"not_decoded": 1}),
    "aws-iot/lorawan-uplink-decoder-name.json": Expect(refused={"not_decoded": 1}),
    "aws-iot/lorawan-transformed-and-lns.json": Expect(
        obs(
            "iot-th-01",
            "2026-06-01T09:35:03.000000Z",
            ("weather.temperature", 17.4),
            ("weather.humidity", 71.25),
        )
    ),
    # a rule's output names its device only by the topic (test_hub_fixtures sends one)
    "aws-iot/rule-device-json.json": Expect(refused={"missing_device_id": 1}),
    # --- SenML (RFC 8428) -----------------------------------------------------------------
    "senml/base-fields-relative-time.json": Expect(
        [
            ("pump-west-3", "energy.voltage", 229.4, T_PUMP),
            ("pump-west-3", "energy.current", 3.2, "2026-06-01T09:29:15.250000Z"),
            ("pump-west-3", "energy.current", 3.4, "2026-06-01T09:29:30.250000Z"),
            ("pump-west-3", "energy.current", 3.5, "2026-06-01T09:29:45.250000Z"),
            ("pump-west-3", "energy.current", 3.1, T_PUMP),
            ("pump-west-3", "energy.voltage", 229.9, "2026-06-01T09:31:00.250000Z"),
        ]
    ),
    # no time at all: when the pack was received
    "senml/multiple-datapoints-no-time.json": Expect(
        obs("pump-zuid-4", NOW_ISO, ("energy.voltage", 231.2), ("energy.current", 0.8))
    ),
    # a moving node: its track (lat, lon) and battery (%EL) are no readings
    "senml/measurements-lat-lon.json": Expect(
        [
            ("mobile-climate-5", "weather.humidity", 64.5, "2026-06-01T11:20:00.000000Z"),
            ("mobile-climate-5", "weather.humidity", 64.75, "2026-06-01T11:21:00.000000Z"),
            ("mobile-climate-5", "weather.humidity", 65.25, "2026-06-01T11:22:00.000000Z"),
        ]
    ),
    # vs, vb, vd: fields the profile ignores
    "senml/string-boolean-data-values.json": Expect(
        obs("room-climate-6", NOW_ISO, ("weather.temperature", 21.25))
    ),
    "senml/collection-ipv6-base-names.json": Expect(
        obs(
            "coap-node-11",
            "2026-06-01T12:45:00.000000Z",
            ("weather.temperature", 19.5),
            ("weather.humidity", 58.0),
        )
        + obs(
            "coap-node-12",
            "2026-06-01T12:45:00.000000Z",
            ("weather.temperature", 20.75),
            ("weather.humidity", 55.5),
        )
    ),
    # a must-understand field (its name ends in "_"): the pack is refused whole
    "senml/must-understand-field.json": Expect(refused={"unsupported_extension": 1}),
    # --- NGSI-LD notifications ------------------------------------------------------------
    "ngsi-ld/notification-key-values.json": Expect(
        obs(
            "ngsi-aq-71",
            "2026-06-01T10:00:00.000000Z",
            ("air.no2", 27.4),
            ("air.pm10", 19.8),
            ("air.pm25", 11.2),
        )
    ),
    "ngsi-ld/notification-normalized.json": Expect(
        obs("ngsi-aq-72", "2026-06-01T10:15:00.000000Z", ("air.no2", 31.6), ("air.pm10", 22.1))
    ),
    # a Property without observedAt: the entity's dateObserved, a typed DateTime literal
    "ngsi-ld/notification-normalized-datetime-value.json": Expect(
        obs("ngsi-aq-72", "2026-06-01T10:30:00.000000Z", ("air.no2", 29.9))
    ),
    # --- Sensor.Community (airRohr) -------------------------------------------------------
    "sensor-community/push-sds011-bme280.json": Expect(
        obs(
            "airrohr-301",
            NOW_ISO,
            ("air.pm10", 14.37),
            ("air.pm25", 6.9),
            ("weather.temperature", 18.62),
            ("weather.pressure", 101284.5),
            ("weather.humidity", 63.41),
        )
    ),
    # no esp8266id: the chip id comes in the X-Sensor header (test_hub_fixtures sends one)
    "sensor-community/push-no-esp8266id.json": Expect(refused={"missing_device_id": 1}),
    # --- the Sensor.Community API (polled: service.poll) ---------------------------------------
    # two measurements of one SDS011; a third with a time of another spelling
    "sensor-community-api/sensor-measurements.json": Expect(
        obs(
            "airrohr-api-401",
            "2026-06-01T09:57:25.000000Z",
            ("air.pm10", 14.37),
            ("air.pm25", 6.9),
        )
        + obs(
            "airrohr-api-401",
            "2026-06-01T09:59:50.000000Z",
            ("air.pm10", 15.02),
            ("air.pm25", 7.11),
        ),
        refused={"invalid_time": 1},
    ),
    # --- Telraam --------------------------------------------------------------------------
    "telraam/traffic-report-hourly.json": Expect(
        obs(
            "telraam-4711",
            "2026-06-01T07:00:00.000000Z",
            ("traffic.heavy_vehicles", 24.6238030096),
            ("traffic.vehicles", 331.9835841313),
            ("traffic.bicycles", 148.9740082079),
            ("traffic.pedestrians", 56.634746922),
        )
        + obs(
            "telraam-4711",
            "2026-06-01T08:00:00.000000Z",
            ("traffic.heavy_vehicles", 30.9677419355),
            ("traffic.vehicles", 412.8110599078),
            ("traffic.bicycles", 201.6589861751),
            ("traffic.pedestrians", 84.0552995392),
        )
    ),
    # --- Cisco Meraki Scanning API --------------------------------------------------------
    "meraki/scanning-v2-devicesseen.json": Expect(
        [
            ("meraki-ap-01", "people.presence", 1.0, "2026-06-01T10:02:31.000000Z"),
            ("meraki-ap-01", "people.presence", 1.0, "2026-06-01T10:03:05.000000Z"),
        ]
    ),
    # without data.apMac (and numbers as strings): no access point to count the clients at
    "meraki/scanning-v2-no-apmac-strings.json": Expect(refused={"missing_device_id": 2}),
    # v3: a client is counted at its latestRecord's nearest access point; a client with
    # recent locations only names no nearest access point, and is refused
    "meraki/scanning-v3-wifi.json": Expect(
        [("meraki-ap-02", "people.presence", 1.0, "2026-06-01T10:11:40.000000Z")],
        {"missing_device_id": 1},
    ),
    # --- CSV drops (the city file's loop-export mapping) ------------------------------------
    "csv/loop-export.csv": Expect(
        [
            ("loop-901", "traffic.vehicles", 118.0, "2026-06-01T07:00:00.000000Z"),
            ("loop-901", "traffic.bicycles", 34.0, "2026-06-01T07:00:00.000000Z"),
            ("loop-901", "traffic.vehicles", 126.0, "2026-06-01T07:15:00.000000Z"),
            ("loop-901", "traffic.bicycles", 29.0, "2026-06-01T07:15:00.000000Z"),
            ("loop-902", "traffic.vehicles", 87.0, "2026-06-01T07:00:00.000000Z"),
        ],
        {"invalid_csv": 1, "invalid_time": 1},
        quarantined=2,  # each row of a drop is a payload of its own
    ),
}

# Identifiers the payloads carry, to be found nowhere once the edge has read them: device,
# join and gateway EUIs, DevAddrs, device and gateway names, tenant, device and gateway
# positions, URNs, IPv6 and IPv4 addresses, host names, MACs, SSIDs and user ids that name
# people, the Meraki secret, network and floor plan ids, chip ids, segments, stations.
IDENTIFIERS = (
    "70B3D5E75E0F1001", "70B3D5E75E0F0000", "260B3A11", "B827EBFFFE61A0C1", "velden-gw-stadhuis",
    "51.43186", "51.43322", "aq-centrum-01", "lamppost-1187", "70B3D5E75E0F1002", "260B7C42",
    "aq-noord-02", "B827EBFFFE61A0C2", "70B3D5E75E0F1003", "260B7C43", "aq-noord-03",
    "70B3D5E75E0F1004", "260B1D04", "B827EBFFFE61A0C3", "velden-gw-stadskantoor",
    "EC656E0000102A7F", "velden.eu1.cloud.thethings.industries",
    "70b3d5e75e0f2001", "01f3a2b7", "SOIL-VLD-0201-SN48817", "b827ebfffe61a0c4",
    "b827ebfffe61a0c5", "51.41402", "51.40655", "0c1f4e2a-7d3b-4a61-8e5f-92b4c6d7e8f1",
    "70b3d5e75e0f2002", "01f3a2c8", "ADC-VLD-0202", "b827ebfffe61a0c6", "b827ebfffe61a0c7",
    "b827ebfffe61a0c8", "51.45188", "51.44013", "51.45711", "70b3d5e75e0f2003", "01f3a2d9",
    "WX-VLD-OOST-SN20417", "70b3d5e75e0f2101", "b827ebfffe61a0c9", "velden-gw-watertoren",
    "aq-west-21", "51.42977", "cLPV514PIQI=", "uCfr//5hoMk=", "AfOi6g==", "aq-west-22",
    "3c9f1e2a-6b7d-4e8f-a0b1-c2d3e4f5a6b7", "260c4a19", "70b3d5e75e0f3002", "b827ebfffe61a0ca",
    "b827ebfffe61a0cb", "7d4e2b1c-9a8f-4c3d-b2e1-f0a9b8c7d6e5", "70b3d5e75e0f3001",
    "urn:dev:mac:70b3d5fffe0f4001", "70b3d5fffe0f4002", "70b3d5fffe0f4003", "70b3d5fffe0f4004",
    "51.43017", "5.45012", "2001:db8:7e1d:4::11", "2001:db8:7e1d:4::12",
    "urn:ngsi-ld:AirQualityObserved:velden-oost-0071", "velden-oost-0072",
    "urn:ngsi-ld:Device:velden-aqs-0071", "velden-aqs-0072", "51.43061", "51.42719",
    "3141592", "9000004711", "37987", "37988", "61234", "51.4020", "5.4870",
    "e0:55:3d:f1:0a:01", "e0:55:3d:f1:0a:02", "e0:55:3d:f1:0a:03", "f2:6b:1c:4e:90:3a",
    "3a:91:d7:05:b2:6e", "6e:02:b4:8a:c1:57", "b6:3f:29:e0:7d:14", "ca:7e:51:0b:2f:88",
    "5e:c3:88:12:a9:d4", "10.42.7.23", "anouks-telefoon", "10.42.7.31", "Anouk de Vries iPhone",
    "fe80::1c2b:7aff:fe10:4d9e", "2001:db8:7e1d:9::4a", "10.42.7.58", "10.42.8.17",
    "10.42.8.40", "anouk.devries@velden.example", "velden-scanning-2026",
    "L_715827882569875601", "g_115292150460684201", "51.4329113", "51.4318772", "51.4328416",
    "VLD-TC-901", "VLD-TC-902",
)  # fmt: skip

# Identifiers a payload carries in another spelling than the ones searched (base64)
DECODED = {
    "chirpstack-v3/up-protobuf-json.json": ("70b3d5e75e0f2102", "b827ebfffe61a0c9", "01f3a2ea"),
}


def format_of(name: str) -> str:
    """A payload's format: the name of its folder (the webhook route's last segment)."""
    return name.split("/", maxsplit=1)[0]


def hub_city(city: City) -> City:
    """The example city with the payloads' devices registered in place of its own."""
    data = city.model_dump(mode="json")
    data["registry"] = yaml.safe_load(REGISTRY.read_text("utf-8"))
    return parse_city(data)


def source_of(city: City, name: str) -> str:
    """The source a payload's devices belong to (its hub's webhook token is that source's);
    any source for a payload refused whole."""
    expected = EXPECTED[name]
    if not expected.observations:
        return next(iter(city.sources))
    device = city.registry.devices[expected.observations[0][0]]
    return city.registry.profiles[device.profile].source


def read_csv_drop(city: City, body: bytes, now: float) -> Normalized:
    """A CSV drop of the city file's loop-export mapping through the edge's normalization
    path, each row a payload of its own, received at ``now``."""
    payloads = csv_payloads(city, body, "loop-export", now)
    keys = day_keys(InMemoryKeyStore(), city.slug)
    return normalize(city, FORMATS["csv"], payloads, now=now, key_for=keys)
