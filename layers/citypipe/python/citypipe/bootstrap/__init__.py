"""The composition roots: settings -> adapters -> one app per function.

Each function has its own root (``bootstrap.ingest``, ``.anonymize``, ``.aggregate``,
``.export``) that builds only what it uses: ``build(...)`` from ports (what tests call
with fakes) and ``cold_start()`` from the environment's settings, once per container.
This module holds what they share; it imports no pyarrow and no DataSketches, so
ingest's cold start loads neither.
"""

from __future__ import annotations

from citypipe.adapters.clients import s3_client, sqs_client
from citypipe.adapters.s3 import S3ObjectStore
from citypipe.adapters.sqs import SqsQueue
from citypipe.domain.city import City, load_city, require_endpoint_region, require_region
from citypipe.domain.model import Function
from citypipe.domain.naming import StackNames
from citypipe.entrypoints.sqs import ClaimCheckConsumer
from citypipe.ports import SystemClock
from citypipe.service.kernel import Core, Deps
from citypipe.service.stage import run_stage
from citypipe.settings import Settings


def city_from(settings: Settings) -> City:
    """The city file, and the residency guard, for Object Storage and Queues each: on AWS
    (no custom endpoint) a function starts only in its city's region; with a custom
    endpoint, the endpoint says where data goes (Scaleway's and AWS's name their region;
    an emulator on this machine is no region; any other host is refused in a cloud)."""
    city = load_city(settings.stack.city_file)
    local = settings.stack.deployment == "local"
    for name in ("storage", "queues"):
        service = settings.service(name)
        if service.endpoint_url is None:
            require_region(city, service.region, "function start-up")
        else:
            require_endpoint_region(city, service.endpoint_url, "function start-up", local=local)
    return city


def deps_from(settings: Settings) -> Deps:
    """The stack every function works on: the city, its names, S3 and SQS."""
    city = city_from(settings)
    return Deps(
        city=city,
        names=StackNames(city.slug, settings.stack.name_prefix),
        store=S3ObjectStore(s3_client(settings.service("storage"))),
        queue=SqsQueue(sqs_client(settings.service("queues"))),
        clock=SystemClock(),
    )


def stage_consumer(function: Function, deps: Deps, core: Core) -> ClaimCheckConsumer:
    return ClaimCheckConsumer(
        function, deps, lambda message: run_stage(function, message, deps, core)
    )
