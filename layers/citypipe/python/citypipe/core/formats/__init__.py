"""Hub payload formats: one adapter module each, all on one normalization path
(``core.ingest``). An adapter is versioned (``Format.version``); quarantine rows and
lineage name the adapter and version that read a payload.

The names are the webhook routes' last segment (``POST /ingest/{source}/{format}``) and
the inbox folders (``inbox/<city>/<format>/``).
"""

from __future__ import annotations

from citypipe.core.formats import (
    aws_iot,
    canonical,
    chirpstack,
    csv_drop,
    meraki,
    ngsi_ld,
    senml,
    sensor_community,
    sensor_community_api,
    telraam,
    tts,
)
from citypipe.core.formats.common import Context, Format, Reading, Rejection

FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        tts.FORMAT,
        chirpstack.FORMAT_V4,
        chirpstack.FORMAT_V3,
        aws_iot.FORMAT,
        senml.FORMAT,
        ngsi_ld.FORMAT,
        sensor_community.FORMAT,
        sensor_community_api.FORMAT,
        meraki.FORMAT,
        telraam.FORMAT,
        csv_drop.FORMAT,
        canonical.FORMAT,
    )
}

__all__ = ["FORMATS", "Context", "Format", "Reading", "Rejection"]
