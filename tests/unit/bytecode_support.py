"""The runtime's bytecode in a shipped tree, read as the runtime reads it (PEP 552): beside
each ``pkg/mod.py``, ``pkg/__pycache__/mod.cpython-312.pyc`` whose header starts with 3.12's
magic number, then a flags word (little-endian) of 0b01: hash-based, the source never
checked against it (0b11 would be checked-hash; 0, a timestamp and size the runtime
compares with the source's), then the source's hash as it was compiled: since the runtime
never checks it, a source changed after compiling would silently run its old bytecode.
Read independently of ``citypipe_local.package``, which writes it."""

from __future__ import annotations

import _imp
import subprocess
from collections.abc import Callable, Collection
from pathlib import Path, PurePosixPath

from citypipe_local.package import runtime_interpreter

PYTHON = "3.12"  # Lambda's python3.12, Scaleway's python312
TAG = "cpython-312"
UNCHECKED_HASH = 0b01


def magic_number(python: str = PYTHON) -> bytes:
    """The magic number of the bytecode ``python``'s interpreters read (this machine's)."""
    code = "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"
    out = subprocess.run(
        [runtime_interpreter(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return bytes.fromhex(out.strip())


def source_hash(source: bytes, magic: bytes) -> bytes:
    """PEP 552's hash of a source, keyed by the magic number of the interpreter that reads
    it (SipHash-1-3 in 3.11 as in 3.12: this interpreter computes 3.12's)."""
    return bytes(_imp.source_hash(int.from_bytes(magic, "little"), source))


def bytecode_problems(
    names: Collection[str], read: Callable[[str], bytes], magic: bytes
) -> list[str]:
    """What is wrong with the bytecode among the files ``names`` (paths with ``/``; a zip's
    members or a folder's files): a module without its ``TAG`` bytecode, bytecode of
    another interpreter or without a source, a header other than ``magic``, unchecked
    hash and its source's hash. ``read(name)``: the file's bytes."""
    files = set(names)
    problems = []
    for name in sorted(files):
        path = PurePosixPath(name)
        if path.suffix == ".py":
            expected = path.parent / "__pycache__" / f"{path.stem}.{TAG}.pyc"
            if str(expected) not in files:
                problems.append(f"{name}: no {expected.name}")
        elif path.suffix == ".pyc":
            stem, _, tag = path.stem.rpartition(".")
            source = path.parent.parent / f"{stem}.py"
            if path.parent.name != "__pycache__" or tag != TAG:
                problems.append(f"{name}: not {TAG} bytecode in a __pycache__")
            elif str(source) not in files:
                problems.append(f"{name}: no {source.name} beside it")
            else:
                problems += _header_problems(name, read(name)[:16], read(str(source)), magic)
    return problems


def _header_problems(name: str, head: bytes, source: bytes, magic: bytes) -> list[str]:
    problems = []
    if head[:4] != magic:
        problems.append(f"{name}: magic {head[:4].hex()}, not {magic.hex()}")
    flags = int.from_bytes(head[4:8], "little")
    if flags != UNCHECKED_HASH:
        problems.append(f"{name}: flags {flags:#04b}, not unchecked-hash")
    elif head[8:16] != source_hash(source, magic):
        problems.append(f"{name}: compiled from another source than the one shipped")
    return problems


def folder_bytecode_problems(root: Path, magic: bytes) -> list[str]:
    names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    return bytecode_problems(names, lambda name: (root / name).read_bytes(), magic)
