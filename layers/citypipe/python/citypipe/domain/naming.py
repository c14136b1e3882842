"""Every name of a city stack, made here and nowhere else: buckets, queues and object keys.

One object, ``StackNames``, holds a city's slug and the deployment's name prefix and makes
every name from them; what names no city (an input's identity, the parts of a key) are the
functions below it. Keys say what they hold and come from the input's identity, so a retry
writes the same key. Data keys are Hive-style partitions, readable by DuckDB/Athena/Trino
without a catalogue: ``<zone>/<city>/date=YYYY-MM-DD/<source>/<input-id>.<ext>``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from citypipe.domain.errors import TerminalError
from citypipe.domain.model import Function, Zone
from citypipe.domain.themes import OpenFormat

BUCKET_NAME_MAX = 63  # S3's limit
SCRUBBED = "scrubbed"


@dataclass(frozen=True)
class StackNames:
    """The names of one city's stack: its resources, ``<prefix><slug>-<what>``, and every
    object key in them (keys hold the slug, never the prefix: a stack moved to another
    account keeps its keys)."""

    slug: str
    prefix: str = ""

    # --- resources ---------------------------------------------------------------------------

    def bucket(self, zone: Zone) -> str:
        return f"{self.prefix}{self.slug}-{zone.value}"

    def queue(self, function: Function) -> str:
        return f"{self.prefix}{self.slug}-{function.value}"

    def dlq(self, function: Function) -> str:
        return f"{self.queue(function)}-dlq"

    def iot_failures(self) -> str:
        """What AWS IoT rules failed to get ingested (AWS only): Lambda's records of events
        that failed their tries, and the rules' error action (decision 0085)."""
        return f"{self.queue(Function.INGEST)}-iot-failures"

    def keys_bucket(self) -> str:
        """The private, unversioned bucket of the daily pseudonymization secrets."""
        return f"{self.prefix}{self.slug}-keys"

    def access_log_bucket(self) -> str:
        """Where the cloud writes the keys bucket's access log (AWS: S3 server access logs)."""
        return f"{self.prefix}{self.slug}-logs"

    # --- the data zones: raw, clean, aggregates ------------------------------------------------

    def data_key(self, zone: Zone, at: datetime, source: str, ident: str, ext: str) -> str:
        """``<zone>/<city>/date=YYYY-MM-DD/<source>/<input-id>.<ext>`` (Hive-style)."""
        return f"{zone.value}/{self.slug}/{partition(at)}/{source}/{ident}.{ext}"

    def next_key(self, zone: Zone, input_key: str, ident: str, ext: str) -> str:
        """The key of what a stage makes of a data object: same partition, the next zone."""
        return f"{zone.value}/{self.slug}/{partition_of(input_key)}/{ident}.{ext}"

    def aggregates_prefix(self, day: str | None = None) -> str:
        """Every partial (``day`` None) or one day's: ``aggregates/<city>/date=<day>/``."""
        base = f"{Zone.AGGREGATES.value}/{self.slug}/date="
        return base if day is None else f"{base}{day}/"

    def clean_day_prefix(self, day: str) -> str:
        return f"{Zone.CLEAN.value}/{self.slug}/date={day}/"

    # --- the edge: hub payloads as received ----------------------------------------------------

    def inbox_key(self, fmt: str, name: str) -> str:
        """Where a city's own system drops a file for ingest: ``inbox/<city>/<format>/<name>``
        (a CSV drop's name starts with its mapping: ``csv/<mapping>/<file>.csv``)."""
        return f"inbox/{self.slug}/{fmt}/{name}"

    def journal_prefix(self, owner: str) -> str:
        """A long-running edge's journal (the MQTT bridge ``owner``), in the raw bucket:
        ``bridge/<city>/<owner>/`` (the raw zone's 24 hours apply)."""
        return f"bridge/{self.slug}/{owner}/"

    def journal_entry_key(self, owner: str, at: datetime, ident: str) -> str:
        """One batch in the journal, named by when it was begun (key order is time order)
        and the batch's identity."""
        return f"{self.journal_prefix(owner)}{at:%Y%m%dT%H%M%S%fZ}-{ident}.json.gz"

    def buffer_prefix(self) -> str:
        """The manifests of the webhook's batches, in the raw bucket: ``buffer/<city>/`` (the
        raw zone's 24 hours apply)."""
        return f"buffer/{self.slug}/"

    def buffer_hour_prefix(self, at: datetime) -> str:
        """The manifests of the batches written in ``at``'s hour: ``buffer/<city>/<hour>/``."""
        return f"{self.buffer_prefix()}{at:%Y%m%dT%H}/"

    def buffer_manifest_key(self, at: datetime, ident: str) -> str:
        """One batch's manifest (``service.buffer``), named by when it was written (key order
        is time order) and the batch's identity."""
        return f"{self.buffer_hour_prefix(at)}{at:%Y%m%dT%H%M%S%fZ}-{ident}.json"

    # --- the stack's secrets -------------------------------------------------------------------

    def secret_keys_prefix(self, secret_prefix: str) -> str:
        """Secrets Manager: the daily pseudonymization secrets, ``<prefix>/<city>/keys/<day>``."""
        return f"{secret_prefix}/{self.slug}/keys"

    def secret_tokens_prefix(self, secret_prefix: str) -> str:
        """Secrets Manager: the digests of the webhook tokens, one secret per source."""
        return f"{secret_prefix}/{self.slug}/webhook-tokens"

    def webhook_token_secret(self, secret_prefix: str, source: str) -> str:
        """The secret holding the digests of a source's webhook tokens (never the tokens)."""
        return f"{self.secret_tokens_prefix(secret_prefix)}/{source}"

    # In the keys bucket (``keys_bucket``): the object stores of every cloud.

    def key_object_prefix(self) -> str:
        """The daily secrets: ``secrets/<city>/<day>.key``."""
        return f"secrets/{self.slug}/"

    def noise_secret_object(self) -> str:
        """The release secret seeding the noise of published people counts; outside
        ``secrets/`` (never destroyed with the daily secrets)."""
        return self.lasting_secret_object("noise")

    def lasting_secret_object(self, name: str) -> str:
        """A secret never destroyed with the daily ones, ``<name>/<city>.key``: the release
        secret (``noise``), the opt-outs' key (``optout``)."""
        return f"{name}/{self.slug}.key"

    def optout_prefix(self) -> str:
        """Residents' opt-outs, one empty object each named by the address's HMAC under the
        opt-outs' key (``service.optout``): ``optouts/<city>/<digest>``."""
        return f"optouts/{self.slug}/"

    def optout_rate_prefix(self, hour: datetime | None = None) -> str:
        """The city's opt-out requests of an hour, one empty object each (``service.optout.
        hour_slot``): ``optout-rate/<city>/<YYYY-MM-DDTHH>/``; all hours' without one."""
        if hour is None:
            return f"optout-rate/{self.slug}/"
        return f"optout-rate/{self.slug}/{hour.astimezone(UTC):%Y-%m-%dT%H}/"

    def key_horizon_object(self) -> str:
        """How far the secrets were destroyed; outside ``secrets/`` (it never expires)."""
        return f"horizon/{self.slug}"

    def webhook_tokens_object_prefix(self) -> str:
        return f"webhook-tokens/{self.slug}/"

    def webhook_token_object(self, source: str) -> str:
        """The digests of a source's webhook tokens (never the tokens)."""
        return f"{self.webhook_tokens_object_prefix()}{source}.json"

    # --- polled sources (``service.poll``), in the keys bucket -----------------------------------

    def api_key_object(self, name: str) -> str:
        """A polled API's key, by the name the city file gives it: ``api-keys/<city>/<name>``."""
        return f"api-keys/{self.slug}/{name}"

    def api_key_secret(self, secret_prefix: str, name: str) -> str:
        """Secrets Manager: a polled API's key, ``<prefix>/<city>/api-keys/<name>``."""
        return f"{secret_prefix}/{self.slug}/api-keys/{name}"

    def poll_prefix(self) -> str:
        """The poller's state: ``poll/<city>/`` (cursors and back-offs, never data)."""
        return f"poll/{self.slug}/"

    def cursor_prefix(self, source: str, device: str) -> str:
        """A polled device's cursor: one object a position, the latest the one in force."""
        return f"{self.poll_prefix()}{source}/cursors/{device}/"

    def cursor_key(self, source: str, device: str, position: datetime) -> str:
        """A cursor's position, in its key: key order is time order."""
        return f"{self.cursor_prefix(source, device)}{position:%Y%m%dT%H%M%SZ}.json"

    def backoff_key(self, source: str, api: str) -> str:
        """Until when an API asked a source's poller to wait (its 429's Retry-After)."""
        return f"{self.poll_prefix()}{source}/backoff/{api}.json"

    # --- quarantine ----------------------------------------------------------------------------

    def quarantine_key(self, function: Function, ident: str) -> str:
        return f"quarantine/{self.slug}/{function.value}/{ident}.jsonl.gz"

    def quarantined_messages_prefix(self, function: Function) -> str:
        return f"quarantine/{self.slug}/{function.value}/messages/"

    def quarantined_message_key(self, function: Function, body: str) -> str:
        """A queue message that was no claim check at all (poison), keyed by its content."""
        ident = hashlib.sha256(body.encode()).hexdigest()[:24]
        return f"{self.quarantined_messages_prefix(function)}{ident}.jsonl.gz"

    # --- audit ---------------------------------------------------------------------------------

    def lineage_prefix(self, function: Function | None = None) -> str:
        base = f"lineage/{self.slug}/"
        return base if function is None else f"{base}{function.value}/"

    def lineage_key(self, function: Function, ident: str) -> str:
        return f"{self.lineage_prefix(function)}{ident}.json"

    def key_destruction_prefix(self) -> str:
        return f"keys/{self.slug}/destroyed/"

    def key_destruction_key(self, at: datetime) -> str:
        """The audit record of a run of the hourly job that destroyed secrets."""
        return f"{self.key_destruction_prefix()}{at:%Y-%m-%dT%H}.json"

    def epsilon_prefix(self, day: str | None = None) -> str:
        """The ε ledger: every release of a people dataset, per day."""
        base = f"epsilon/{self.slug}/"
        return base if day is None else f"{base}date={day}/"

    def epsilon_charge_key(self, day: str, dataset: str) -> str:
        """The one release of a dataset's day: taken by a conditional put, so two exports
        can never both release it."""
        return f"{self.epsilon_prefix(day)}{dataset}.json"

    def claims_prefix(self, day: str | None = None) -> str:
        """Every reading's claim (``day`` None), or one day's: ``claims/<city>/date=<day>/``."""
        base = f"claims/{self.slug}/date="
        return base if day is None else f"{base}{day}/"

    def claim_key(self, source: str, sensor: str, quantity: str, observed_at: str) -> str:
        """A reading's claim: taken by the first batch that writes the reading (a
        conditional put), found by every later one that holds it again."""
        return f"{self.claims_prefix(observed_at[:10])}{source}/{sensor}/{quantity}/{observed_at}"

    def scrub_prefix(self) -> str:
        return f"scrubbed/{self.slug}/"

    def scrub_record_key(self, ident: str) -> str:
        """The audit record of one clean object rewritten without pseudonyms."""
        return f"{self.scrub_prefix()}objects/{ident}.json"

    def scrub_days_prefix(self) -> str:
        return f"{self.scrub_prefix()}days/"

    def scrub_day_key(self, day: str) -> str:
        """The audit record that a clean day holds no pseudonym and will hold none."""
        return f"{self.scrub_days_prefix()}{day}.json"

    def withdrawals_prefix(self) -> str:
        return f"partners/{self.slug}/withdrawals/"

    def withdrawal_key(self, partner: str) -> str:
        """A partner's withdrawal of its permission, written once."""
        return f"{self.withdrawals_prefix()}{partner}.json"

    def withdrawal_runs_prefix(self, partner: str | None = None) -> str:
        base = f"partners/{self.slug}/withdrawn/"
        return base if partner is None else f"{base}{partner}/"

    def withdrawal_run_key(self, partner: str, at: datetime) -> str:
        """What one run of a withdrawal purged and published again."""
        return f"{self.withdrawal_runs_prefix(partner)}{at:%Y%m%dT%H%M%S%fZ}.json"

    def withdrawal_plans_prefix(self, partner: str) -> str:
        return f"partners/{self.slug}/planned/{partner}/"

    def withdrawal_plan_key(self, partner: str, at: datetime) -> str:
        """A run of a withdrawal, written before it deletes anything: a run that stopped
        half-way is finished from it (its run record, at the same time, says it is done)."""
        return f"{self.withdrawal_plans_prefix(partner)}{at:%Y%m%dT%H%M%S%fZ}.json"

    def metadata_marker_key(self, ident: str) -> str:
        """A part of the open zone's metadata was built from the inputs ``ident`` names
        (the residents' part: its files' digests; the catalogue's: the publication records)
        and which etags the build wrote, in the order it wrote them."""
        return f"published/{self.slug}/metadata/{ident}.json"

    # --- the open zone -------------------------------------------------------------------------
    #
    # Everything published lives under ``open/<city>/``, the one prefix anyone may read (the
    # AWS template, local provisioning and Scaleway grant nothing else): the portal at its
    # root (``open/<city>/index.html``) links everything relative to itself. A theme's day is
    # one Hive-style partition holding a file per format, at keys that never change: a later
    # version of a day replaces its files at the same keys (the history is in the day's
    # publication record and the catalogue).

    def open_prefix(self) -> str:
        """Everything published, the one prefix anyone may read: ``open/<city>/``."""
        return f"{Zone.OPEN.value}/{self.slug}/"

    def portal_key(self) -> str:
        """The portal page, at the root of the city's open zone."""
        return f"{self.open_prefix()}index.html"

    def open_day_prefix(self, theme: str, day: str) -> str:
        """``open/<city>/<theme>/date=<day>/``: a theme's day, every format."""
        return f"{self.open_prefix()}{theme}/date={day}/"

    def open_file_key(self, theme: str, fmt: OpenFormat, day: str) -> str:
        """``open/<city>/<theme>/date=<day>/<theme>_<day>.<ext>``."""
        return f"{self.open_day_prefix(theme, day)}{theme}_{day}.{fmt.extension}"

    def publications_prefix(self) -> str:
        return f"{self.open_prefix()}versions/"

    def publication_key(self, theme: str, day: str) -> str:
        """A theme's day as published: version, counts, files and their hashes, history."""
        return f"{self.publications_prefix()}{theme}/{theme}_{day}.json"

    def catalog_key(self, ext: str = "jsonld") -> str:
        """The DCAT-AP catalogue: ``jsonld`` or ``ttl``."""
        return f"{self.open_prefix()}catalog.{ext}"

    def catalog_page_key(self, month: str) -> str:
        """A month of the catalogue (``YYYY-MM``): every distribution of its days, one page
        of the catalogue's Hydra paging (``catalog.jsonld`` is the first)."""
        return f"{self.open_prefix()}catalog/{month}.jsonld"

    def dataset_page_key(self, dataset: str) -> str:
        """A dataset's page, at the dataset's URI: ``open/<city>/datasets/<theme>`` (an HTML
        object without an extension, so the URI names the dataset, not a file)."""
        return f"{self.open_prefix()}datasets/{dataset}"

    def register_key(self, document: str, ext: str) -> str:
        """The transparency register and the record of processing: ``open/<city>/register/``."""
        return f"{self.open_prefix()}register/{document}.{ext}"

    def sensor_page_key(self) -> str:
        """The sensor register as a page, an anchor per sensor (its register entry)."""
        return f"{self.open_prefix()}register/sensors.html"

    def notice_key(self, sensor: str) -> str:
        """A sensor's printable notice (GDPR Article 13), to mount next to the device."""
        return f"{self.open_prefix()}register/notices/{sensor}.html"

    def optout_page_key(self) -> str:
        """The residents' opt-out page: a form and how many opted out."""
        return f"{self.open_prefix()}optout.html"

    def rights_page_key(self) -> str:
        """What a rights request can and cannot find (docs/rights.md, generated)."""
        return f"{self.open_prefix()}rights.html"

    def datapackage_key(self) -> str:
        return f"{self.open_prefix()}datapackage.json"

    def asset_key(self, name: str) -> str:
        """The portal's stylesheet and icon."""
        return f"{self.open_prefix()}assets/{name}"


def deployment_prefix(account: str, region: str, generation: int = 1) -> str:
    """The name prefix of a stack deployed to a cloud account: bucket names are global, so
    ``<account>-<region>-<city>-<zone>`` keeps them unique per account and region. A
    ``generation`` after the first (``<account>-<region>-g2-``) names a stack deployed again
    beside the buckets and queues a removed one kept (its audit bucket locked for years)."""
    return f"{account}-{region}-" + (f"g{generation}-" if generation > 1 else "")


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


def partition(at: datetime) -> str:
    """A day: an object holds a batch's readings of one source and one (observation) day,
    so objects hold many readings (the hourly partitions of earlier releases made small
    files); Parquet's row-group statistics still let readers skip by ``observed_at``."""
    return f"date={at:%Y-%m-%d}"


def partition_of(key: str) -> str:
    """``date=../<source>`` of a data key, for the next stage's key (a key of an earlier
    release, with ``hour=`` after ``date=``, goes to its day)."""
    parts = key.split("/")
    if len(parts) == 6 and parts[3].startswith("hour="):
        del parts[3]
    if len(parts) != 5 or not parts[2].startswith("date="):
        raise TerminalError("invalid_key", f"{key!r} is not <zone>/<city>/date=/<source>/<id>")
    return "/".join(parts[2:4])


def source_of(key: str) -> str:
    """The ``<source>`` of a data key (``<zone>/<city>/date=/<source>/<id>.<ext>``)."""
    return partition_of(key).rsplit("/", 1)[-1]


def day_of(key: str, prefix: str) -> str:
    """The ``YYYY-MM-DD`` of a key found under a prefix ending in ``date=``."""
    return key[len(prefix) :].split("/", 1)[0]


def edge_key(route: str, fmt: str, ident: str) -> str:
    """The name a batch written by the edge goes by in lineage (``edge/<route>/<format>/
    <id>``: webhook, IoT rule, bridge, replay): it was never stored as received."""
    return f"edge/{route}/{fmt}/{ident}"


def scrubbed_key(key: str) -> str:
    """The clean object ``<...>/<id>.parquet`` rewritten without pseudonyms:
    ``<...>/<id>.scrubbed.parquet`` (same partition; the name says it holds none)."""
    stem, _, ext = key.rpartition(".")
    return f"{stem}.{SCRUBBED}.{ext}"


def is_scrubbed(key: str) -> bool:
    return key.endswith(f".{SCRUBBED}.parquet")


def public_address(portal_url: str, key: str) -> str:
    """Where the open zone's ``key`` is read by the public: under the city's portal URL."""
    return f"{portal_url.rstrip('/')}/{key}"
