"""The pure cores: domain types in, domain types out. No cloud SDK, no adapter, no
Powertools, no file, process, clock or collector of their own: bytes are handed in, and
streamed bytes go to sinks the caller opened (import contracts in pyproject.toml).

``decode`` (every route's bytes to payloads), ``formats/`` (hub payloads to readings),
``ingest`` (readings to pseudonymous observations), ``anonymize`` (privacy policy),
``aggregate`` (mergeable partials), ``disclosure`` (what of a day's cells may be published:
the one way into the open formats), ``publish/`` (a theme's day as CSV, Parquet, GeoJSON
and NGSI-LD; the DCAT-AP catalogue, the data package, the portal), ``codecs`` and
``columnar`` (JSON Lines and Parquet bytes; only the columnar stages import pyarrow).
"""
