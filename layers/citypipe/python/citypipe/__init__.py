"""citypipe, the production library: what runs in a city's cloud, and nothing else.

domain/       what citypipe is about: observations, the city file, themes, typed books, names
ports.py      the small interfaces the cores talk through (ObjectStore, Queue, KeyStore, Clock)
core/         pure transforms: hub formats, ingest, anonymize, aggregate, disclosure control,
              publish/ (the open formats, the DCAT-AP catalogue, data package and portal)
service/      the stage machinery: exactly-once effects around each core, housekeeping
adapters/     ports on real backends: S3, SQS, key stores, boto3 clients
entrypoints/  platform events in, one service call, the platform's response out
bootstrap/    one composition root per function

Laptop and CI tooling (CLI, simulator, replay, local runner, emulators) is the separate
``citypipe_local`` package, which imports this one; never the reverse.
"""
