"""A scratch disk that asks for compressed spills (Scaleway's fixed 1 GiB: docs/scale.md)
gets them, the day's partials and the people release's devices alike, and the day's open
files are the very same bytes."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError
from unit_support import DAY, RELEASE_KEYS, devices, no2, put_partial, vehicles, with_store

from citypipe.adapters.scratch import TempScratch
from citypipe.bootstrap.export import export_ports
from citypipe.domain.model import Zone
from citypipe.service.export import ExportPorts, export_day
from citypipe.service.kernel import Deps
from citypipe.settings import Settings
from citypipe_local.fakes import InMemoryObjectStore


def exported(deps: Deps, compressed: bool) -> dict[str, bytes]:
    """A day with people in it exported on a scratch disk compressed or not: its open zone."""
    deps = with_store(deps, InMemoryObjectStore)
    put_partial(deps, "a", no2(0, 21.5), vehicles(5, 14.0), *devices(40))
    put_partial(deps, "b", no2(20, 30.0, zone="noord"), *devices(30, minute=20, first=20))
    ports = ExportPorts(RELEASE_KEYS, TempScratch(compressed=compressed))
    assert export_day(deps, ports, DAY) == "done"
    bucket = deps.names.bucket(Zone.OPEN)
    return {i.key: deps.store.get(bucket, i.key).body for i in deps.store.list(bucket)}


def test_compressed_spills_publish_the_very_same_files(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str | None] = []  # each spill file's compression, as it is opened
    new_stream = pa.ipc.new_stream

    def watched(sink: Any, schema: pa.Schema, *, options: Any = None) -> Any:
        written.append(None if options is None else options.compression)
        return new_stream(sink, schema, options=options)

    monkeypatch.setattr(pa.ipc, "new_stream", watched)
    plain = exported(memory_deps, compressed=False)
    spilled_plain, written[:] = list(written), []
    compressed = exported(memory_deps, compressed=True)
    # the same spill files were written, lz4 where asked, plain where not
    assert spilled_plain and set(spilled_plain) == {None}
    assert written == ["lz4"] * len(spilled_plain)
    # and the same open data came of them, people counts included
    assert plain == compressed
    assert any("people-counts" in key for key in plain)


def test_the_export_compresses_its_spills_where_its_settings_say(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export's composition root gives it a scratch disk that compresses where the
    deployment's variable says so, and one that does not by default."""
    assert export_ports(Settings(), memory_deps).scratch.compressed is False
    monkeypatch.setenv("CITYPIPE_EXPORT__COMPRESS_SPILLS", "true")
    assert export_ports(Settings(), memory_deps).scratch.compressed is True
    monkeypatch.setenv("CITYPIPE_EXPORT__COMPRESS_SPILLS", "tru")
    with pytest.raises(ValidationError, match="compress_spills"):
        Settings()


def test_scaleway_compresses_the_exports_spills_and_aws_gives_it_disk_instead() -> None:
    """Scaleway's scratch is a fixed 1 GiB; Lambda's export is given 2,048 MB of it."""
    import yaml
    from repo import ROOT

    scaleway = yaml.safe_load((ROOT / "infra" / "scaleway" / "serverless.yml").read_text())
    assert scaleway["provider"]["env"]["CITYPIPE_EXPORT__COMPRESS_SPILLS"] == "true"
    assert "CITYPIPE_EXPORT__COMPRESS_SPILLS" not in (ROOT / "serverless.yml").read_text()
