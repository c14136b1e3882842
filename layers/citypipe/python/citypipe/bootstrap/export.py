"""export's composition root: S3, SQS, the city file, the key store (the release secret
seeds the noise; the hourly job destroys old secrets) and the machine's scratch space."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from citypipe.adapters.scratch import TempScratch
from citypipe.bootstrap import deps_from
from citypipe.bootstrap.keys import key_store_from
from citypipe.domain.model import Function
from citypipe.entrypoints.apps import FunctionApp
from citypipe.entrypoints.sqs import ClaimCheckConsumer
from citypipe.service.kernel import Deps
from citypipe.settings import Settings

if TYPE_CHECKING:
    from citypipe.service.export import ExportPorts


def build(deps: Deps, ports: ExportPorts) -> FunctionApp:
    # pyarrow and the publication code: loaded by the composition root, not the import
    from citypipe.entrypoints.schedule import scheduled
    from citypipe.service.export import export_request

    return FunctionApp(
        consumer=ClaimCheckConsumer(
            Function.EXPORT, deps, lambda m: export_request(deps, ports, m)
        ),
        schedule=lambda event: scheduled(deps, ports, event),
    )


def export_ports(settings: Settings, deps: Deps) -> ExportPorts:
    """What export needs beyond the stack, as the settings say: the key store, and the
    machine's scratch space (its spills compressed where the deployment says so: a fixed
    small disk, decision 0118)."""
    from citypipe.service.export import ExportPorts

    scratch = TempScratch(compressed=settings.export.compress_spills)
    return ExportPorts(key_store_from(settings, deps), scratch)


@cache
def cold_start() -> FunctionApp:
    settings = Settings()
    deps = deps_from(settings)
    return build(deps, export_ports(settings, deps))
