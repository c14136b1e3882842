"""simulate: a deterministic city day, sent the way each of the city's hubs sends it, and the
truth the pipeline must reproduce.

Every registered device of the example city (its device registry) reports through its
hub, in the hub's documented shape and with the hub's identifiers:

- LoRaWAN air quality monitors (every 5 minutes) through The Things Stack v3 webhooks,
  ChirpStack v4 and v3 uplinks and AWS IoT Core (a decoder's ``transformed_message``):
  DevEUIs, DevAddrs, device names, gateway EUIs and positions;
- SenML packs (every minute) named by IPv6 addresses or ``urn:dev:mac:`` EUIs;
- Sensor.Community pushes (every 150 s), the chip id in the body and the header, the
  Wi-Fi MAC in ``X-MAC-ID``;
- NGSI-LD notifications of AirQualityObserved entities (normalized, Link header);
- radar counters' JSON through an AWS IoT rule (the device only in the MQTT topic);
- Telraam hourly reports; a legacy loop controller's CSV exports (drops in the inbox);
- Meraki Scanning API v2 posts (client MACs, the shared secret) and canonical
  observations (MACs in two vendors' spellings).

Each message is one line of ``<format>.jsonl``: ``{"at": arrival (epoch s), "body": the
exact body, "topic"?: MQTT topic, "headers"?: HTTP headers}`` (``body_base64`` for a body
that is not text). The topic is where the hub publishes it on the city's broker: the city
file's topic filter for the device's source and format (``sources.<s>.mqtt``), wildcards
filled with the device as its hub names it. CSV drops are files under ``drops/csv/<mapping>/``.

A small, deterministic fraction of messages is spoiled the ways hubs really fail, each with
the quarantine reason ingest must give it (or, for a hub's resend, the duplicates it must
find). ``truth.json`` holds the ingest ledger, every 15-minute zone cell before
suppression (exact: integer hundredths, distinct devices per sensor and window) and every
identifier emitted. Everything is seeded: the same arguments give byte-identical files.

One module per hub, each with the shape it sends and the ways it fails:

tts.py               The Things Stack v3 webhooks (LoRaWAN)
chirpstack.py        ChirpStack v4 and v3 up events (LoRaWAN)
aws_iot.py           AWS IoT rules: LoRaWAN uplinks and radar counters
lorawan.py           what those four network servers share: the values, faults, radio side
senml.py             SenML packs
ngsi_ld.py           NGSI-LD notifications
sensor_community.py  Sensor.Community pushes
telraam.py           Telraam reports
csv_drop.py          the loop controller's CSV exports (drops)
meraki.py            Meraki Scanning API posts
canonical.py         canonical observations

and the day they share:

run.py      simulate(): the day, minute by minute, in the order every seeded draw depends on
day.py      the state every hub sends through, and the one way to send (generic faults)
world.py    the sensors, phones, sites and gateways, laid out once from the seed
crowd.py    the phones Wi-Fi sensors hear each minute
values.py   what sensors measure, in exact hundredths
clock.py    hour profiles, aggregation windows, timestamps
faults.py   quarantine reasons and which message is spoiled
wire.py     capture files and MQTT topics
truth.py    the ledger, cells and identifiers of truth.json
scaled.py   bigger cities (a city file with copies of every device)
"""

from __future__ import annotations

from citypipe_local.simulate.run import SimulationSummary, simulate
from citypipe_local.simulate.scaled import scaled_city

__all__ = ["SimulationSummary", "scaled_city", "simulate"]
