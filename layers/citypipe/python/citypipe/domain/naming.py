"""Every name of a city stack, made here and nowhere else: buckets, queues and object keys.

Keys say what they hold and come from the input's identity, so a retry writes the same
key. Data keys are Hive-style partitions, readable by DuckDB/Athena/Trino without a
catalogue: ``<zone>/<city>/date=YYYY-MM-DD/<source>/<input-id>.<ext>``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from citypipe.domain.errors import TerminalError
from citypipe.domain.model import Function, Zone
from citypipe.domain.themes import OpenFormat


@dataclass(frozen=True)
class StackNames:
    """Every resource of a city stack is named ``<prefix><city>-<what>``."""

    city: str
    prefix: str = ""

    def bucket(self, zone: Zone) -> str:
        return f"{self.prefix}{self.city}-{zone.value}"

    def queue(self, function: Function) -> str:
        return f"{self.prefix}{self.city}-{function.value}"

    def dlq(self, function: Function) -> str:
        return f"{self.queue(function)}-dlq"

    def keys_bucket(self) -> str:
        """The private, unversioned bucket of the daily pseudonymization secrets."""
        return f"{self.prefix}{self.city}-keys"


def deployment_prefix(account: str, region: str) -> str:
    """The name prefix of a stack deployed to a cloud account: bucket names are global, so
    ``<account>-<region>-<city>-<zone>`` keeps them unique per account and region."""
    return f"{account}-{region}-"


BUCKET_NAME_MAX = 63  # S3's limit


def input_id(*parts: str) -> str:
    """A short stable id from an input's identity (key + etag, or a content hash)."""
    return InputId(*parts).value()


class InputId:
    """``input_id`` of parts given a few at a time (a day's cells, a chunk at a time)."""

    def __init__(self, *parts: str) -> None:
        self._digest = hashlib.sha256()
        self._empty = True
        self.add(*parts)

    def add(self, *parts: str) -> None:
        for part in parts:
            self._digest.update((part if self._empty else "\x1f" + part).encode())
            self._empty = False

    def value(self) -> str:
        return self._digest.hexdigest()[:24]


# --- the data zones: raw, clean, aggregates ---------------------------------------------------


def partition(at: datetime) -> str:
    """A day: an object holds a batch's readings of one source and one (observation) day,
    so objects hold many readings (the hourly partitions of earlier releases made small
    files); Parquet's row-group statistics still let readers skip by ``observed_at``."""
    return f"date={at:%Y-%m-%d}"


def data_key(zone: Zone, city: str, at: datetime, source: str, ident: str, ext: str) -> str:
    """``<zone>/<city>/date=YYYY-MM-DD/<source>/<input-id>.<ext>`` (Hive-style)."""
    return f"{zone.value}/{city}/{partition(at)}/{source}/{ident}.{ext}"


def partition_of(key: str) -> str:
    """``date=../<source>`` of a data key, for the next stage's key (a key of an earlier
    release, with ``hour=`` after ``date=``, goes to its day)."""
    parts = key.split("/")
    if len(parts) == 6 and parts[3].startswith("hour="):
        del parts[3]
    if len(parts) != 5 or not parts[2].startswith("date="):
        raise TerminalError("invalid_key", f"{key!r} is not <zone>/<city>/date=/<source>/<id>")
    return "/".join(parts[2:4])


def next_key(zone: Zone, city: str, input_key: str, ident: str, ext: str) -> str:
    """The key of what a stage makes of a data object: same partition, the next zone."""
    return f"{zone.value}/{city}/{partition_of(input_key)}/{ident}.{ext}"


def aggregates_prefix(city: str, day: str | None = None) -> str:
    """Every partial (``day`` None) or one day's: ``aggregates/<city>/date=<day>/``."""
    base = f"{Zone.AGGREGATES.value}/{city}/date="
    return base if day is None else f"{base}{day}/"


def day_of(key: str, prefix: str) -> str:
    """The ``YYYY-MM-DD`` of a key found under a prefix ending in ``date=``."""
    return key[len(prefix) :].split("/", 1)[0]


# --- the edge: hub payloads as received ----------------------------------------------------


def inbox_key(city: str, fmt: str, name: str) -> str:
    """Where a city's own system drops a file for ingest: ``inbox/<city>/<format>/<name>``
    (a CSV drop's name starts with its mapping: ``csv/<mapping>/<file>.csv``)."""
    return f"inbox/{city}/{fmt}/{name}"


def edge_key(fmt: str, ident: str) -> str:
    """The name a batch written by the edge goes by in lineage (webhook, bridge, replay):
    it was never stored as received."""
    return f"edge/{fmt}/{ident}"


def journal_prefix(city: str, owner: str) -> str:
    """A long-running edge's journal (the MQTT bridge ``owner``), in the raw bucket:
    ``bridge/<city>/<owner>/`` (the raw zone's 24 hours apply)."""
    return f"bridge/{city}/{owner}/"


def journal_key(city: str, owner: str, at: datetime, ident: str) -> str:
    """One batch in the journal, named by when it was begun (key order is time order) and
    the batch's identity."""
    return f"{journal_prefix(city, owner)}{at:%Y%m%dT%H%M%S%fZ}-{ident}.json.gz"


# --- the stack's secrets --------------------------------------------------------------------


def key_secrets_prefix(prefix: str, city: str) -> str:
    """Where the daily pseudonymization secrets live: ``<prefix>/<city>/keys/<day>``."""
    return f"{prefix}/{city}/keys"


def webhook_tokens_prefix(prefix: str, city: str) -> str:
    return f"{prefix}/{city}/webhook-tokens"


# In the keys bucket (``StackNames.keys_bucket``): the object stores of every cloud.


def key_object_prefix(city: str) -> str:
    """The daily secrets: ``secrets/<city>/<day>.key``."""
    return f"secrets/{city}/"


def noise_secret_object(city: str) -> str:
    """The release secret seeding the noise of published people counts; outside
    ``secrets/`` (never destroyed with the daily secrets)."""
    return f"noise/{city}.key"


def key_horizon_object(city: str) -> str:
    """How far the secrets were destroyed; outside ``secrets/`` (it never expires)."""
    return f"horizon/{city}"


def webhook_tokens_object_prefix(city: str) -> str:
    return f"webhook-tokens/{city}/"


def webhook_token_object(city: str, source: str) -> str:
    """The digests of a source's webhook tokens (never the tokens)."""
    return f"{webhook_tokens_object_prefix(city)}{source}.json"


def webhook_token_secret(prefix: str, city: str, source: str) -> str:
    """The secret holding the digests of a source's webhook tokens (never the tokens)."""
    return f"{webhook_tokens_prefix(prefix, city)}/{source}"


# --- quarantine and audit ------------------------------------------------------------------


def quarantine_key(city: str, function: Function, ident: str) -> str:
    return f"quarantine/{city}/{function.value}/{ident}.jsonl.gz"


def quarantined_messages_prefix(city: str, function: Function) -> str:
    return f"quarantine/{city}/{function.value}/messages/"


def quarantined_message_key(city: str, function: Function, body: str) -> str:
    """A queue message that was no claim check at all (poison), keyed by its content."""
    ident = hashlib.sha256(body.encode()).hexdigest()[:24]
    return f"{quarantined_messages_prefix(city, function)}{ident}.jsonl.gz"


def key_destruction_prefix(city: str) -> str:
    return f"keys/{city}/destroyed/"


def key_destruction_key(city: str, at: datetime) -> str:
    """The audit record of a run of the hourly job that destroyed secrets."""
    return f"{key_destruction_prefix(city)}{at:%Y-%m-%dT%H}.json"


def epsilon_prefix(city: str, day: str | None = None) -> str:
    """The ε ledger: every release of a people dataset, per day."""
    base = f"epsilon/{city}/"
    return base if day is None else f"{base}date={day}/"


def epsilon_charge_key(city: str, day: str, dataset: str, release: str) -> str:
    return f"{epsilon_prefix(city, day)}{dataset}/{release}.json"


def scrubbed_key(key: str) -> str:
    """The clean object ``<...>/<id>.parquet`` rewritten without pseudonyms:
    ``<...>/<id>.scrubbed.parquet`` (same partition; the name says it holds none)."""
    stem, _, ext = key.rpartition(".")
    return f"{stem}.{SCRUBBED}.{ext}"


SCRUBBED = "scrubbed"


def is_scrubbed(key: str) -> bool:
    return key.endswith(f".{SCRUBBED}.parquet")


def clean_day_prefix(city: str, day: str) -> str:
    return f"{Zone.CLEAN.value}/{city}/date={day}/"


def source_of(key: str) -> str:
    """The ``<source>`` of a data key (``<zone>/<city>/date=/<source>/<id>.<ext>``)."""
    return partition_of(key).rsplit("/", 1)[-1]


def scrub_prefix(city: str) -> str:
    return f"scrubbed/{city}/"


def scrub_record_key(city: str, ident: str) -> str:
    """The audit record of one clean object rewritten without pseudonyms."""
    return f"{scrub_prefix(city)}objects/{ident}.json"


def scrub_days_prefix(city: str) -> str:
    return f"{scrub_prefix(city)}days/"


def scrub_day_key(city: str, day: str) -> str:
    """The audit record that a clean day holds no pseudonym and will hold none."""
    return f"{scrub_days_prefix(city)}{day}.json"


def lineage_prefix(city: str, function: Function | None = None) -> str:
    base = f"lineage/{city}/"
    return base if function is None else f"{base}{function.value}/"


def lineage_key(city: str, function: Function, ident: str) -> str:
    return f"{lineage_prefix(city, function)}{ident}.json"


# --- the open zone -------------------------------------------------------------------------
#
# Everything published lives under ``open/<city>/``, the one prefix anyone may read (the
# AWS template, local provisioning and Scaleway grant nothing else): the portal at its root
# (``open/<city>/index.html``) links everything relative to itself. A theme's day is one
# Hive-style partition holding a file per format
# (``read_parquet('.../air-quality/*/*.parquet', hive_partitioning = true)``), at keys that
# never change: a later version of a day replaces its files at the same keys
# (the history is in the day's publication record and the catalogue).


def open_prefix(city: str) -> str:
    """Everything published, the one prefix anyone may read: ``open/<city>/``."""
    return f"{Zone.OPEN.value}/{city}/"


def portal_key(city: str) -> str:
    """The portal page, at the root of the city's open zone."""
    return f"{open_prefix(city)}index.html"


def open_day_prefix(city: str, theme: str, day: str) -> str:
    """``open/<city>/<theme>/date=<day>/``: a theme's day, every format."""
    return f"{open_prefix(city)}{theme}/date={day}/"


def open_file_key(city: str, theme: str, fmt: OpenFormat, day: str) -> str:
    """``open/<city>/<theme>/date=<day>/<theme>_<day>.<ext>``."""
    return f"{open_day_prefix(city, theme, day)}{theme}_{day}.{fmt.extension}"


def publications_prefix(city: str) -> str:
    return f"{open_prefix(city)}versions/"


def publication_key(city: str, theme: str, day: str) -> str:
    """A theme's day as published: version, counts, files and their hashes, history."""
    return f"{publications_prefix(city)}{theme}/{theme}_{day}.json"


def metadata_marker_key(city: str, ident: str) -> str:
    """In the audit zone: the catalogue, data package and portal were built from the
    publication records named by ``ident`` (and which etags the build wrote)."""
    return f"published/{city}/metadata/{ident}.json"


def catalog_key(city: str, ext: str = "jsonld") -> str:
    """The DCAT-AP catalogue: ``jsonld`` or ``ttl``."""
    return f"{open_prefix(city)}catalog.{ext}"


def register_key(city: str, document: str, ext: str) -> str:
    """The transparency register and the record of processing: ``open/<city>/register/``."""
    return f"{open_prefix(city)}register/{document}.{ext}"


def datapackage_key(city: str) -> str:
    return f"{open_prefix(city)}datapackage.json"


def asset_key(city: str, name: str) -> str:
    """The portal's stylesheet and icon."""
    return f"{open_prefix(city)}assets/{name}"
