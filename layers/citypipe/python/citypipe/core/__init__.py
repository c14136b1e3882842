"""The pure cores: domain types in, domain types out. No cloud SDK, no adapter, no
Powertools, no I/O beyond the bytes handed in (import contracts in pyproject.toml).

``formats/`` (hub payloads to readings), ``ingest`` (readings to observations),
``anonymize`` (privacy policy), ``aggregate`` (mergeable partials), ``export``
(disclosure control, CSV), ``dcat`` (the catalogue), ``codecs`` and ``columnar``
(JSON Lines and Parquet bytes; only the columnar stages import pyarrow).
"""
