"""A city's files: YAML read with every key written once, the ``extends`` chain, the registry
files, and — only when something is wrong — where each key was written (``CityMap``).

The happy path is libyaml's safe loader and nothing else (a local run reads its city at
every worker's start); composing the files again to find a key's line happens on an error,
or when a city is checked (``domain.city_checks``). A deployed function never imports this
module: it reads the JSON its package wrote from these files (``domain.cityjson``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.constructor import ConstructorError
from yaml.error import Mark, MarkedYAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from citypipe.domain.problems import ConfigError, Loc, Located, Problem, dotted

if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:  # libyaml's where PyYAML's wheel has it (it does on Linux): ten times faster
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"


class DuplicateKeyError(ConstructorError):
    """A mapping with a key written twice."""


class UniqueKeyLoader(_SafeLoader):
    """The safe loader, refusing a key written twice in one mapping: YAML itself keeps the
    last one without a word (a device registered twice is one device, silently)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], Mark] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.tag == _MERGE:
                continue
            if (key.tag, key.value) in seen:
                raise DuplicateKeyError(
                    "while constructing a mapping",
                    seen[key.tag, key.value],
                    f"found the key {key.value!r} twice",
                    key.start_mark,
                )
            seen[key.tag, key.value] = key.start_mark
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> Any:
    """A YAML file's data. Every failure is a ``ConfigError`` naming the file: unreadable,
    not YAML (at its line), or a key written twice (each such key, with both lines)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = Problem(str(path), None, "", f"cannot be read: {exc.strerror}")
        raise ConfigError([problem]) from None
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a safe loader)
    except DuplicateKeyError:
        raise ConfigError(_duplicates(str(path), yaml.compose(text, Loader=_SafeLoader))) from None
    except yaml.YAMLError as exc:
        raise ConfigError([_not_yaml(str(path), exc)]) from None


def _not_yaml(file: str, exc: yaml.YAMLError) -> Problem:
    if not isinstance(exc, MarkedYAMLError) or exc.problem_mark is None:
        return Problem(file, None, "", f"not YAML: {exc}")
    message = f"not YAML: {exc.problem}"
    if exc.context:
        where = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{where})"
    return Problem(file, exc.problem_mark.line + 1, "", message)


def _duplicates(file: str, root: Node | None) -> list[Problem]:
    """Every key written twice in a mapping of the document, at its second line."""
    found = []
    todo: list[tuple[Loc, Node | None]] = [((), root)]
    visited: set[int] = set()
    while todo:
        loc, node = todo.pop()
        if node is None or id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, SequenceNode):
            todo += [((*loc, i), item) for i, item in enumerate(node.value)]
            continue
        first: dict[tuple[str, str], int] = {}
        for key, value in node.value if isinstance(node, MappingNode) else ():
            line = key.start_mark.line + 1
            if isinstance(key, ScalarNode) and (key.tag, key.value) in first:
                found.append(
                    Problem(
                        file,
                        line,
                        dotted((*loc, key.value)),
                        f"appears twice (lines {first[key.tag, key.value]} and {line})",
                        "keep one of them: YAML would keep the last one without a word",
                    )
                )
            elif isinstance(key, ScalarNode):
                first[key.tag, key.value] = line
                todo.append(((*loc, key.value), value))
    return sorted(found, key=lambda p: p.line or 0)


# --- the extends chain and the registry files -------------------------------------------


def read_city(path: Path) -> dict[str, Any]:
    """A city file's mapping; ``extends: <file>`` (relative to it) takes every top-level key
    of that file that this one does not set — one city, two clouds, two short files. A
    ``registry`` given as a file name is read relative to the file that names it."""
    return _read(path, ())


def _read(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    data = read_yaml(path)
    if not isinstance(data, dict):
        problem = "a city file is a mapping of keys (slug: …, sources: …, zones: …)"
        raise ConfigError([Problem(str(path), None, "", problem)])
    if isinstance(data.get("registry"), str):
        data["registry"] = read_yaml(_named(path, "registry", data["registry"]))
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise _error_at(path, "extends", "the path of another city file", None)
    target = _named(path, "extends", base)
    chain = (*seen, path.resolve())
    if target.resolve() in chain:
        names = " -> ".join(p.name for p in (*chain, target.resolve()))
        raise _error_at(path, "extends", f"extends itself ({names})", "extend a file once")
    return {**_read(target, chain), **data}


def _named(path: Path, key: str, name: str) -> Path:
    """The file ``path`` names under ``key``, relative to ``path``; refused, at the line
    naming it, where there is none (a city file copied elsewhere without its registry)."""
    target = path.parent / name
    if target.is_file():
        return target
    if Path(name).is_absolute():
        raise _error_at(path, key, f"{name} does not exist", f"give the path of the {key} file")
    raise _error_at(
        path,
        key,
        f"{name} is read relative to {path.parent.resolve()}, and is not there",
        f"copy {name} beside {path.name}, or give a path relative to it",
    )


def _error_at(path: Path, key: str, message: str, fix: str | None) -> ConfigError:
    root = _compose(path)
    entry = _entry(root, key)
    line = None if entry is None else entry[0]
    return ConfigError([Problem(str(path), line, key, message, fix)])


def city_files(path: str | Path) -> list[Path]:
    """Every file a city file is read from: itself, the registry it names, and those of
    the file it extends — what a deployment must ship beside the code."""
    path = Path(path)
    data = read_yaml(path)
    found = [path]
    if isinstance(data, dict) and isinstance(data.get("registry"), str):
        found.append(path.parent / data["registry"])
    if isinstance(data, dict) and isinstance(data.get("extends"), str):
        found += city_files(path.parent / data["extends"])
    return found


# --- where a key was written --------------------------------------------------------------


def _compose(path: Path) -> Node | None:
    try:
        return yaml.compose(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except (OSError, yaml.YAMLError):
        return None


def _entry(node: Node | None, part: str | int) -> tuple[int, Node] | None:
    """The line and value of a mapping's key, or of a sequence's item."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == str(part):
                return key.start_mark.line + 1, value
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None


def _line(root: Node | None, loc: Loc) -> int | None:
    """The line of the deepest key of ``loc`` the document has (a missing key is placed at
    the mapping that lacks it)."""
    line, node = None, root
    for part in loc:
        entry = _entry(node, part)
        if entry is None:
            break
        line, node = entry
    return line


class CityMap:
    """Where each key of a city was written: every file the city is read from, composed
    (nodes know their lines). A top-level key is the first file's of the ``extends`` chain
    that sets it (the value that wins the merge); ``registry.…`` is the registry file's,
    where the winning ``registry`` names one."""

    def __init__(self, path: str | Path) -> None:
        self._chain: list[tuple[str, Node | None]] = []
        self._registries: dict[str, tuple[str, Node | None]] = {}
        at: Path | None = Path(path)
        seen: set[Path] = set()
        while at is not None and at.resolve() not in seen:
            seen.add(at.resolve())
            root = _compose(at)
            self._chain.append((str(at), root))
            registry, base = _scalar(root, "registry"), _scalar(root, "extends")
            if registry is not None:
                named = at.parent / registry
                self._registries[str(at)] = (str(named), _compose(named))
            at = at.parent / base if base is not None else None

    def locate(self, loc: Loc) -> Located:
        """The file, line and key there of a key of the city (``loc`` as pydantic gives it)."""
        file, root = next(
            (doc for doc in self._chain if loc and _entry(doc[1], loc[0]) is not None),
            self._chain[0],
        )
        if loc[:1] == ("registry",) and file in self._registries:
            file, root = self._registries[file]
            loc = loc[1:]
        return file, _line(root, loc), loc


def _scalar(root: Node | None, key: str) -> str | None:
    entry = _entry(root, key)
    if entry is None or not isinstance(entry[1], ScalarNode) or entry[1].tag != _STR:
        return None
    return str(entry[1].value)
