"""citypipe, the production library: what runs in a city's cloud, and nothing else.

domain/       what citypipe is about: observations, the city file, themes, typed books, names,
              limits
ports.py      the small interfaces the services and cores talk through (ObjectStore, Queue,
              KeyStore, WebhookTokens, Scratch, Clock)
core/         pure transforms: decoding, hub formats, ingest, anonymize, aggregate,
              disclosure control, publish/ (the open formats, DCAT-AP, data package, portal)
service/      the stage machinery: exactly-once effects around each core, the edge (one
              entrance for every route), export's rooms, housekeeping
adapters/     ports on real backends: S3, SQS, key stores, boto3 clients
entrypoints/  platform events in, one service call, the platform's response out
bootstrap/    one composition root per function

Laptop and CI tooling (CLI, simulator, replay, local runner, emulators) is the separate
``citypipe_local`` package, which imports this one; never the reverse.
"""
