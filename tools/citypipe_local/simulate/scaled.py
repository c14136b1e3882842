"""Bigger cities: a city file ``factor`` times the size of another, every registered device
and ``factor - 1`` copies of it, each copy with a hub id of its own in its hub's spelling.

Simulated at scale 1, such a city is a day ``factor`` times as large (the benchmark's x4
and x14 days); ``citypipe simulate --scale 4`` writes one under ``OUT/city/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from citypipe.domain.cityfile import city_files


def _copy_id(hub: str, ident: str, copy: int) -> str:
    """The hub id of the ``copy``-th copy of a device: unique, in the hub's own spelling, and
    clear of the ids the simulator spoils with (``…ff…`` DevEUIs, ``99…`` chip ids)."""
    if hub == "lorawan":
        return f"{int(ident, 16) + (copy << 20):016x}"
    if hub == "meraki":
        mac = f"{int(ident.replace(':', ''), 16) + (copy << 32):012x}"
        return ":".join(mac[i : i + 2] for i in range(0, 12, 2))
    if hub == "senml" and ident.startswith("urn:dev:mac:"):
        return f"urn:dev:mac:{int(ident[12:], 16) + (copy << 24):016x}"
    if hub == "senml":  # an IPv6 address: a hextet of its own
        head, _, tail = ident.partition("::")
        return f"{head}:c{copy:x}::{tail}"
    if hub in ("sensor-community", "telraam"):
        return str(int(ident) + copy * 100_000_000)
    if hub == "aws-iot":  # the MQTT topic: <city>/<kind>/<thing>/<what>
        parts = ident.split("/")
        parts[2] = f"{parts[2]}-c{copy}"
        return "/".join(parts)
    if hub == "csv":
        return f"{ident}-C{copy}"
    return f"{ident}-c{copy}"  # ngsi-ld entity ids, canonical sensor names


def scaled_city(city_file: Path, factor: int, out: Path) -> Path:
    """A city ``factor`` times the size of ``city_file``'s: every registered device and
    ``factor - 1`` copies of it (same profile, place and hub; a name and hub id of their
    own), in a registry beside a city file that extends the original. Simulate it at scale
    1 for a city day ``factor`` times as large; replay it with that city file."""
    if factor < 1:
        raise ValueError("a scaled city is at least the city itself (factor >= 1)")
    city_file = city_file.resolve()
    registry_file = next(p for p in city_files(city_file) if p != city_file)
    registry = yaml.safe_load(registry_file.read_text(encoding="utf-8"))
    devices: dict[str, Any] = {}
    for name, device in registry["devices"].items():
        devices[name] = device
        for copy in range(1, factor):
            ident = str(device["id"])
            clone_name = f"{name}-c{copy}"
            clone_id = clone_name if ident == name else _copy_id(device["hub"], ident, copy)
            devices[clone_name] = {**device, "id": clone_id}
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{city_file.stem}-x{factor}"
    (out / f"{stem}-devices.yaml").write_text(
        yaml.safe_dump({**registry, "devices": devices}, sort_keys=False), encoding="utf-8"
    )
    scaled = out / f"{stem}.yaml"
    scaled.write_text(
        yaml.safe_dump({"extends": str(city_file), "registry": f"{stem}-devices.yaml"}),
        encoding="utf-8",
    )
    return scaled
