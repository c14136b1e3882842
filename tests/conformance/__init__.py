"""The checks against the third-party reference set (``make conformance``): official
DCAT-AP 3.0.1 and HVD SHACL shapes, FIWARE Smart Data Models schemas and real hub payloads,
read from ``CITYPIPE_REFERENCE_DIR`` and never copied into this repository (README.md).

A package, so its conftest is ``conformance.conftest`` and never shadows ``tests/conftest.py``
for the helpers that import from it."""
