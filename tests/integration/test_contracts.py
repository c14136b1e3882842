"""One contract suite per port, run against every backend of that port.

The in-memory fakes the unit tests rely on must behave like the real services, so the same
tests run on the fakes, on the embedded moto server and on LocalStack.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from citypipe.adapters.clients import s3_client, secretsmanager_client
from citypipe.adapters.keys import FileKeyStore, ObjectKeyStore, SecretsManagerKeyStore
from citypipe.adapters.s3 import S3ObjectStore
from citypipe.adapters.sqs import SqsQueue
from citypipe.adapters.tokens import (
    FileWebhookTokens,
    ObjectWebhookTokens,
    SecretsManagerWebhookTokens,
)
from citypipe.domain.errors import BackendRefusedError, KeyDestroyedError, NotFoundError
from citypipe.ports import (
    Body,
    FileBody,
    KeyStore,
    ObjectStore,
    Queue,
    ReceivedMessage,
    WebhookTokens,
    md5_etag,
    token_digest,
)
from citypipe.settings import BackendSettings
from citypipe_local.backends import Endpoint
from citypipe_local.fakes import (
    InMemoryKeyStore,
    InMemoryObjectStore,
    InMemoryQueue,
    InMemoryWebhookTokens,
)
from citypipe_local.stack import Clients, make_clients

LOCALSTACK = [pytest.mark.localstack, pytest.mark.xdist_group("localstack")]
BACKENDS = ["memory", "embedded", pytest.param("localstack", marks=LOCALSTACK)]


def unique(what: str) -> str:
    """A name no other test (or earlier run on a long-lived LocalStack) uses."""
    return f"ct-{what}-{uuid.uuid4().hex[:12]}"


def clients_for(request: pytest.FixtureRequest, backend: str) -> Clients:
    """Only now start (or find) the backend, so memory-only runs start no server."""
    endpoint: Endpoint = request.getfixturevalue(backend)
    return make_clients(endpoint.settings)


# --- ObjectStore ------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Iterator[tuple[ObjectStore, str]]:
    """An object store and a fresh, empty bucket in it."""
    bucket = unique("bucket")
    if request.param == "memory":
        yield InMemoryObjectStore([bucket]), bucket
        return
    clients = clients_for(request, request.param)
    clients.s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    s3_store = S3ObjectStore(clients.s3)
    yield s3_store, bucket
    for info in s3_store.list(bucket):
        s3_store.delete(bucket, info.key)
    clients.s3.delete_bucket(Bucket=bucket)


def test_get_returns_what_put_wrote(store: tuple[ObjectStore, str]) -> None:
    objects, bucket = store

    etag = objects.put(bucket, "a/b.json", b'{"x": 1}', "application/json")

    got = objects.get(bucket, "a/b.json")
    assert (got.key, got.etag, got.body) == ("a/b.json", etag, b'{"x": 1}')
    assert etag == md5_etag(b'{"x": 1}')


def test_a_missing_bucket_is_refused_not_taken_for_a_missing_object(
    store: tuple[ObjectStore, str],
) -> None:
    # A missing bucket is a deployment problem: failing loudly, never "input missing"
    objects, _ = store

    with pytest.raises(BackendRefusedError) as refused:
        objects.get(unique("no-such-bucket"), "k")
    assert refused.value.code == "NoSuchBucket"


def test_head_describes_an_object_and_is_none_when_missing(
    store: tuple[ObjectStore, str],
) -> None:
    objects, bucket = store
    etag = objects.put(bucket, "k", b"12345")

    info = objects.head(bucket, "k")

    assert info is not None
    assert (info.key, info.etag, info.size) == ("k", etag, 5)
    assert objects.head(bucket, "missing") is None
    assert objects.exists(bucket, "k")
    assert not objects.exists(bucket, "missing")


def test_get_of_a_missing_key_raises_not_found(store: tuple[ObjectStore, str]) -> None:
    objects, bucket = store

    with pytest.raises(NotFoundError):
        objects.get(bucket, "missing")


def test_list_is_sorted_by_key_and_filtered_by_prefix(store: tuple[ObjectStore, str]) -> None:
    objects, bucket = store
    for key in ["clean/b", "raw/z", "clean/a", "clean/c/d", "cleaner/x"]:
        objects.put(bucket, key, key.encode())

    everything = [o.key for o in objects.list(bucket)]
    clean = [(o.key, o.size) for o in objects.list(bucket, "clean/")]

    assert everything == ["clean/a", "clean/b", "clean/c/d", "cleaner/x", "raw/z"]
    assert clean == [("clean/a", 7), ("clean/b", 7), ("clean/c/d", 9)]
    assert list(objects.list(bucket, "nothing/")) == []


def test_list_and_head_say_when_an_object_was_written(store: tuple[ObjectStore, str]) -> None:
    objects, bucket = store
    before = datetime.now(UTC) - timedelta(minutes=5)
    objects.put(bucket, "k", b"v")

    [listed] = objects.list(bucket)
    headed = objects.head(bucket, "k")

    assert headed is not None
    for info in (listed, headed):
        assert info.modified is not None
        assert before < info.modified < datetime.now(UTC) + timedelta(minutes=5)


def test_delete_removes_an_object_and_a_missing_key_is_fine(
    store: tuple[ObjectStore, str],
) -> None:
    objects, bucket = store
    objects.put(bucket, "k", b"v")

    objects.delete(bucket, "k")
    objects.delete(bucket, "never-written")

    assert objects.head(bucket, "k") is None
    assert list(objects.list(bucket)) == []


@pytest.fixture(params=["bytes", "file"])
def body(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[bytes], Body]:
    """Bodies as bytes, or as local files (export's open files): the same semantics."""
    if request.param == "bytes":
        return lambda data: data
    return lambda data: a_file(tmp_path, uuid.uuid4().hex, data)


def test_put_if_absent_first_writer_wins(
    store: tuple[ObjectStore, str], body: Callable[[bytes], Body]
) -> None:
    objects, bucket = store

    first = objects.put_if_absent(bucket, "out", body(b"first"))
    second = objects.put_if_absent(bucket, "out", body(b"second"))

    assert first.created
    assert first.etag == md5_etag(b"first")
    assert not second.created
    assert second.etag == first.etag
    assert objects.get(bucket, "out").body == b"first"


def test_put_or_replace_writes_nothing_when_bytes_are_equal(
    store: tuple[ObjectStore, str], body: Callable[[bytes], Body]
) -> None:
    objects, bucket = store
    original = objects.put_or_replace(bucket, "day.csv", body(b"a,b\n1,2\n"))

    again = objects.put_or_replace(bucket, "day.csv", body(b"a,b\n1,2\n"))

    assert original.created
    assert not again.created
    assert again.etag == original.etag


def test_put_or_replace_replaces_when_bytes_differ(
    store: tuple[ObjectStore, str], body: Callable[[bytes], Body]
) -> None:
    objects, bucket = store
    original = objects.put_or_replace(bucket, "day.csv", body(b"a,b\n1,2\n"))

    replaced = objects.put_or_replace(bucket, "day.csv", body(b"a,b\n1,2\n3,4\n"))

    assert replaced.created
    assert replaced.etag != original.etag
    assert replaced.etag == md5_etag(b"a,b\n1,2\n3,4\n")
    assert objects.get(bucket, "day.csv").body == b"a,b\n1,2\n3,4\n"


def a_file(tmp_path: Path, name: str, body: bytes) -> FileBody:
    path = tmp_path / name
    path.write_bytes(body)
    return FileBody.of(path)


def test_a_body_put_from_a_file_is_the_files_bytes(
    store: tuple[ObjectStore, str], tmp_path: Path
) -> None:
    objects, bucket = store
    body = bytes(range(256)) * 5000  # 1.28 MB: more than one chunk of the file's digests
    file = a_file(tmp_path, "day.parquet", body)

    etag = objects.put(bucket, "day.parquet", file)

    assert (file.size, file.md5, file.sha256) == (
        len(body), md5_etag(body), hashlib.sha256(body).hexdigest()
    )  # fmt: skip
    assert etag == md5_etag(body)
    assert objects.get(bucket, "day.parquet").body == body


# --- Queue ------------------------------------------------------------------------------


@dataclass
class QueueBackend:
    """A Queue adapter plus the one thing the port leaves to provisioning: creating queues."""

    queue: Queue
    create: Callable[[str, int, str | None, int], None]


@pytest.fixture(params=BACKENDS)
def queues(request: pytest.FixtureRequest) -> Iterator[QueueBackend]:
    if request.param == "memory":
        fake = InMemoryQueue()
        yield QueueBackend(fake, fake.create)
        return
    sqs = clients_for(request, request.param).sqs
    adapter = SqsQueue(sqs)
    created: list[str] = []

    def create(name: str, visibility_s: int, dlq: str | None, max_receive_count: int) -> None:
        attributes = {"VisibilityTimeout": str(visibility_s)}
        if dlq:
            redrive = {
                "deadLetterTargetArn": adapter.arn(dlq),
                "maxReceiveCount": max_receive_count,
            }
            attributes["RedrivePolicy"] = json.dumps(redrive)
        created.append(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])  # type: ignore[arg-type]

    yield QueueBackend(adapter, create)
    for url in reversed(created):
        sqs.delete_queue(QueueUrl=url)


def receive_all(queue: Queue, name: str, expected: int, timeout_s: float = 10) -> list[str]:
    """Bodies received until ``expected`` arrived (SQS may return fewer than asked)."""
    bodies: list[str] = []
    deadline = time.monotonic() + timeout_s
    while len(bodies) < expected and time.monotonic() < deadline:
        batch = queue.receive(name, 10)
        assert len(batch) <= 10
        bodies += [m.body for m in batch]
        queue.delete(name, [m.receipt_handle for m in batch])
    return bodies


def wait_for_redrive(
    queue: Queue, name: str, dlq: str, timeout_s: float = 15
) -> tuple[list[ReceivedMessage], list[ReceivedMessage]]:
    """Poll the source queue (SQS moves a message that has used up its receives when a
    receive finds it visible again) until something arrives in ``dlq``: (redelivered, dead)."""
    redelivered: list[ReceivedMessage] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        redelivered += queue.receive(name)
        if dead := queue.receive(dlq):
            return redelivered, dead
        time.sleep(0.2)
    return redelivered, []


def test_send_chunks_more_than_ten_bodies(queues: QueueBackend) -> None:
    name = unique("q")
    queues.create(name, 30, None, 0)
    bodies = [json.dumps({"n": n}) for n in range(23)]

    sent = queues.queue.send(name, bodies)

    assert sent == 23
    assert queues.queue.depth(name) == (23, 0)


def test_send_keeps_each_batch_within_256_kib(queues: QueueBackend) -> None:
    name = unique("q")
    queues.create(name, 30, None, 0)
    bodies = [letter * 100_000 for letter in "abc"]  # two fit in one batch, three do not

    sent = queues.queue.send(name, bodies)

    assert sent == 3
    assert sorted(receive_all(queues.queue, name, 3)) == bodies


def test_receive_returns_at_most_ten_and_every_body_arrives(queues: QueueBackend) -> None:
    name = unique("q")
    queues.create(name, 30, None, 0)
    bodies = [f"body-{n:02d}" for n in range(23)]
    queues.queue.send(name, bodies)

    first = queues.queue.receive(name, 10)
    queues.queue.delete(name, [m.receipt_handle for m in first])
    rest = receive_all(queues.queue, name, 23 - len(first))

    assert 1 <= len(first) <= 10
    assert sorted([m.body for m in first] + rest) == bodies


def test_received_messages_are_in_flight_until_deleted(queues: QueueBackend) -> None:
    name = unique("q")
    queues.create(name, 30, None, 0)
    queues.queue.send(name, ["a", "b", "c"])

    received = queues.queue.receive(name, 2)
    in_flight = queues.queue.depth(name)
    queues.queue.delete(name, [m.receipt_handle for m in received])

    assert len(received) == 2
    assert received[0].message_id
    assert received[0].attributes["ApproximateReceiveCount"] == "1"
    assert in_flight == (1, 2)
    assert queues.queue.depth(name) == (1, 0)


def test_a_missing_queue_is_refused(queues: QueueBackend) -> None:
    with pytest.raises(BackendRefusedError):
        queues.queue.send(unique("no-such-queue"), ["lost"])


def test_arn_names_the_queue(queues: QueueBackend) -> None:
    name = unique("q")
    queues.create(name, 30, None, 0)

    arn = queues.queue.arn(name)

    assert arn.startswith("arn:aws:sqs:eu-central-1:")
    assert arn.endswith(f":{name}")


def test_a_message_received_and_not_deleted_is_redriven_to_the_dlq(
    queues: QueueBackend,
) -> None:
    name = unique("q")
    queues.create(f"{name}-dlq", 30, None, 0)
    queues.create(name, 1, f"{name}-dlq", 1)
    queues.queue.send(name, ["poison"])

    first = queues.queue.receive(name)  # received once, never deleted
    redelivered, dead = wait_for_redrive(queues.queue, name, f"{name}-dlq")

    assert [m.body for m in first] == ["poison"]
    assert redelivered == []
    assert [m.body for m in dead] == ["poison"]
    assert queues.queue.depth(name) == (0, 0)


# --- KeyStore ---------------------------------------------------------------------------


CROSS_PROCESS_KEY_STORES = [
    "object-embedded",
    pytest.param("object-localstack", marks=LOCALSTACK),
    "file",
    "secretsmanager-embedded",
    pytest.param("secretsmanager-localstack", marks=LOCALSTACK),
]
SHARED_KEY_STORES = ["object-memory", *CROSS_PROCESS_KEY_STORES]
DAY = date(2026, 6, 2)


def build_key_store(spec: dict[str, Any], memory: InMemoryObjectStore | None = None) -> KeyStore:
    """A key store from a JSON-able description: what another process can build too.
    ``memory``: the object store of an "object-memory" spec (one process's memory)."""
    kind = spec["kind"]
    if kind == "file":
        return FileKeyStore(Path(spec["directory"]))
    backend = BackendSettings.model_validate(spec["backend"]) if "backend" in spec else None
    if kind == "object":
        store: ObjectStore = memory if memory is not None else S3ObjectStore(s3_client(backend))  # type: ignore[arg-type]
        return ObjectKeyStore(store, spec["bucket"], "velden")
    return SecretsManagerKeyStore(secretsmanager_client(backend), spec["prefix"])  # type: ignore[arg-type]


def _spec(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> dict[str, Any]:
    if kind == "file":
        return {"kind": "file", "directory": str(tmp_path / "keys")}
    store_kind, backend = kind.split("-", 1)
    if backend == "memory":
        return {"kind": "object", "bucket": "keys"}
    endpoint: Endpoint = request.getfixturevalue(backend)
    spec: dict[str, Any] = {"kind": store_kind, "backend": endpoint.settings.model_dump()}
    if store_kind == "object":
        spec["bucket"] = unique("keys")
        make_clients(endpoint.settings).s3.create_bucket(
            Bucket=spec["bucket"], CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
    else:
        spec["prefix"] = f"citypipe-test/{uuid.uuid4().hex[:12]}"
    return spec


def _memory_for(spec: dict[str, Any]) -> InMemoryObjectStore | None:
    return (
        InMemoryObjectStore(["keys"])
        if "backend" not in spec and spec["kind"] == "object"
        else None
    )


@pytest.fixture(params=SHARED_KEY_STORES)
def key_store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    spec = _spec(request, request.param, tmp_path)
    yield spec
    if spec["kind"] == "secretsmanager":  # LocalStack outlives the test: leave no secret
        # destroyed by name, around the tests' days (2026-05/06)
        build_key_store(spec).destroy_before(date(2026, 7, 1))


@pytest.fixture(params=CROSS_PROCESS_KEY_STORES)
def cross_process_spec(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return _spec(request, request.param, tmp_path)


@pytest.fixture
def key_stores(key_store_spec: dict[str, Any]) -> Callable[[], KeyStore]:
    """A factory of key stores over one shared backend: each call is another container,
    a new instance that shares nothing with the others but the backend."""
    memory = _memory_for(key_store_spec)
    return lambda: build_key_store(key_store_spec, memory)


@pytest.fixture(params=["memory", *SHARED_KEY_STORES])
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> KeyStore:
    """One key store instance (one container), the in-memory fake included."""
    if request.param == "memory":
        return InMemoryKeyStore()
    spec = _spec(request, request.param, tmp_path)
    return build_key_store(spec, _memory_for(spec))


def test_two_processes_asking_for_the_same_new_day_at_once_get_the_same_secret(
    cross_process_spec: dict[str, Any],
) -> None:
    # Given two processes (two containers) that ask for a day nobody asked for yet, at once
    start_at = time.time() + 2.0
    code = (
        "import json, sys, time; from datetime import date; "
        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "from test_contracts import build_key_store; "
        "spec = json.loads(sys.argv[1]); store = build_key_store(spec); "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
        "print(store.daily_secret(date(2026, 6, 2)).hex())"
    )
    args = [sys.executable, "-c", code, json.dumps(cross_process_spec), str(start_at)]
    processes = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    # When both have their answer
    answers = [p.communicate(timeout=60)[0].strip() for p in processes]
    # Then they agree on the 32 bytes, and so does a third container asking later
    assert all(p.returncode == 0 for p in processes)
    assert answers[0] == answers[1]
    assert len(bytes.fromhex(answers[0])) == 32
    assert build_key_store(cross_process_spec).daily_secret(DAY).hex() == answers[0]


def test_same_day_gives_the_same_32_bytes_in_every_container(
    key_stores: Callable[[], KeyStore],
) -> None:
    container_a, container_b = key_stores(), key_stores()

    from_a = container_a.daily_secret(date(2026, 6, 2))
    from_b = container_b.daily_secret(date(2026, 6, 2))

    assert len(from_a) == 32
    assert from_a == from_b
    assert container_a.daily_secret(date(2026, 6, 2)) == from_a


def test_a_secret_is_stable_within_a_container(keys: KeyStore) -> None:
    first = keys.daily_secret(date(2026, 6, 2))

    assert len(first) == 32
    assert keys.daily_secret(date(2026, 6, 2)) == first


def test_different_days_have_different_secrets(keys: KeyStore) -> None:
    assert keys.daily_secret(date(2026, 6, 1)) != keys.daily_secret(date(2026, 6, 2))


def test_destroy_before_removes_older_days_only(key_stores: Callable[[], KeyStore]) -> None:
    keys = key_stores()
    days = [date(2026, 5, 30), date(2026, 5, 31), date(2026, 6, 1), date(2026, 6, 2)]
    before = {day: keys.daily_secret(day) for day in days}

    destroyed = keys.destroy_before(date(2026, 6, 1))

    later = key_stores()  # a container that never saw the old secrets
    assert destroyed == 2
    assert later.daily_secret(date(2026, 6, 1)) == before[date(2026, 6, 1)]
    assert later.daily_secret(date(2026, 6, 2)) == before[date(2026, 6, 2)]
    with pytest.raises(KeyDestroyedError):  # destroyed for good, never re-created
        later.daily_secret(date(2026, 5, 30))
    assert keys.destroy_before(date(2026, 6, 1)) == 0


def test_destroying_an_earlier_horizon_does_not_revive_later_days(
    key_stores: Callable[[], KeyStore],
) -> None:
    keys = key_stores()
    keys.destroy_before(date(2026, 6, 1))

    keys.destroy_before(date(2026, 5, 1))

    with pytest.raises(KeyDestroyedError):
        key_stores().daily_secret(date(2026, 5, 31))


def test_a_destroyed_day_stays_destroyed_in_the_container_that_destroyed_it(
    keys: KeyStore,
) -> None:
    kept = keys.daily_secret(date(2026, 6, 1))
    keys.daily_secret(date(2026, 5, 31))

    assert keys.destroy_before(date(2026, 6, 1)) == 1

    assert keys.daily_secret(date(2026, 6, 1)) == kept
    with pytest.raises(KeyDestroyedError):
        keys.daily_secret(date(2026, 5, 31))


def test_destroying_up_to_tomorrow_leaves_no_secret_to_read(keys: KeyStore) -> None:
    # Given the secrets of three days, the last one today's (as a run leaves them)
    days = [date(2026, 5, 31), date(2026, 6, 1), date(2026, 6, 2)]
    for day in days:
        keys.daily_secret(day)
    # When the end of the run destroys everything before the day after tomorrow
    keys.destroy_before(date(2026, 6, 4))
    # Then none of them, nor any day up to tomorrow, can be read or made again
    for day in [*days, date(2026, 6, 3)]:
        with pytest.raises(KeyDestroyedError):
            keys.daily_secret(day)


def test_the_noise_secret_is_shared_and_outlives_the_daily_secrets(
    key_stores: Callable[[], KeyStore],
) -> None:
    # Given the release secret as one container made it, and a day's secret
    first = key_stores()
    noise = first.noise_secret()
    first.daily_secret(date(2026, 6, 1))
    # When every daily secret is destroyed
    first.destroy_before(date(2026, 6, 3))
    # Then every container still reads the same 32 bytes of the release secret, which is
    # no daily secret
    later = key_stores()
    assert len(noise) == 32
    assert later.noise_secret() == noise
    with pytest.raises(KeyDestroyedError):
        later.daily_secret(date(2026, 6, 1))


def test_secrets_manager_destroys_by_name_within_its_lookback(embedded: Endpoint) -> None:
    # Given a day's secret and a store that never destroyed anything (no horizon yet)
    client = secretsmanager_client(embedded.settings)
    prefix = f"citypipe-test/{uuid.uuid4().hex[:12]}"
    keys = SecretsManagerKeyStore(client, prefix)
    keys.daily_secret(date(2026, 5, 1))
    # When the hourly job destroys the days before 1 June (no ListSecrets: by name)
    destroyed = keys.destroy_before(date(2026, 6, 1))
    # Then that secret is gone from the backend itself
    assert destroyed == 1
    with pytest.raises(ClientError):
        client.get_secret_value(SecretId=f"{prefix}/2026-05-01")


# --- WebhookTokens ------------------------------------------------------------------------


@pytest.fixture(
    params=[
        "memory", "file", "secretsmanager-embedded", "object-memory", "object-embedded",
        pytest.param("object-localstack", marks=LOCALSTACK),
    ]
)  # fmt: skip
def tokens(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WebhookTokens]:
    if request.param == "memory":
        yield InMemoryWebhookTokens()
        return
    if request.param == "file":
        yield FileWebhookTokens(tmp_path / "tokens")
        return
    if request.param.startswith("object-"):
        yield ObjectWebhookTokens(*_token_bucket(request, request.param), "velden")
        return
    endpoint: Endpoint = request.getfixturevalue("embedded")
    client = secretsmanager_client(endpoint.settings)
    yield SecretsManagerWebhookTokens(client, f"citypipe-test-{uuid.uuid4().hex[:8]}", "velden")


def _token_bucket(request: pytest.FixtureRequest, kind: str) -> tuple[ObjectStore, str]:
    bucket = unique("keys")
    if kind == "object-memory":
        return InMemoryObjectStore([bucket]), bucket
    clients = clients_for(request, kind.removeprefix("object-"))
    clients.s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    return S3ObjectStore(clients.s3), bucket


def test_the_keys_bucket_holds_a_tokens_digest_and_never_the_token(
    request: pytest.FixtureRequest,
) -> None:
    # Given a token minted into the keys bucket of an embedded stack
    store, bucket = _token_bucket(request, "object-embedded")
    token = ObjectWebhookTokens(store, bucket, "velden").mint("air-quality")
    # When the object is read as anyone with access to the bucket would
    body = store.get(bucket, "webhook-tokens/velden/air-quality.json").body
    # Then it holds the SHA-256 of the token, not the token
    assert token_digest(token).encode() in body
    assert token.encode() not in body


def test_a_minted_token_is_verified_for_its_source_only(tokens: WebhookTokens) -> None:
    token = tokens.mint("air-quality")

    assert tokens.verify("air-quality", token)
    assert not tokens.verify("traffic-counters", token)
    assert not tokens.verify("air-quality", token[:-1])


def test_a_store_keeps_digests_never_tokens(tokens: WebhookTokens) -> None:
    token = tokens.mint("air-quality")

    assert tokens._digests("air-quality") == [token_digest(token)]


def test_a_source_without_a_token_refuses_every_token(tokens: WebhookTokens) -> None:
    assert not tokens.verify("wifi-counters", "anything")


def test_minting_again_keeps_the_previous_token_until_revoked(tokens: WebhookTokens) -> None:
    first = tokens.mint("air-quality")
    second = tokens.mint("air-quality")
    assert tokens.verify("air-quality", first)
    assert tokens.verify("air-quality", second)

    third = tokens.mint("air-quality", revoke_previous=True)

    assert not tokens.verify("air-quality", first)
    assert not tokens.verify("air-quality", second)
    assert tokens.verify("air-quality", third)
