"""The pure cores: domain types in, domain types out. No cloud SDK, no adapter, no
Powertools, no I/O beyond the bytes handed in (import contracts in pyproject.toml).

``formats/`` (hub payloads to readings), ``ingest`` (readings to observations),
``anonymize`` (privacy policy), ``aggregate`` (mergeable partials), ``disclosure``
(what of a day's cells may be published: the one way into the open formats),
``publish/`` (a theme's day as CSV, Parquet, GeoJSON and NGSI-LD; the DCAT-AP catalogue,
the data package, the portal), ``codecs`` and ``columnar`` (JSON Lines and Parquet bytes;
only the columnar stages import pyarrow).
"""
