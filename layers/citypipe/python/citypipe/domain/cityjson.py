"""A city as a deployment ships it: the city file checked, then its data merged (the file it
``extends`` and its registry file resolved) and written as one JSON document.

People write YAML, and local runs read it (``domain.cityfile``). A deployed function reads
the JSON its package wrote: PyYAML is never imported at its cold start (its import and the
duplicate-key-refusing parse were a tenth of ingest's cold start; the decision record of
the JSON city). The standard library's parser reads it (orjson is faster by ~0.2 ms for the
example city, but the hub format adapters, which import the city's model, may not import
orjson), refusing a key written twice as the YAML reader does. The data is validated by the
same ``parse_city`` as the YAML's; its problems are named by key, without a line: lines
are the YAML's, and the package checked it before writing the JSON.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from citypipe.domain.problems import ConfigError, Loc, Problem, dotted

SUFFIX = ".json"


def is_city_json(path: Path) -> bool:
    """Whether ``path`` is a city as a package ships it (else: YAML, as people write it)."""
    return path.suffix == SUFFIX


class _KeyTwice(ValueError):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise _KeyTwice
    return mapping


def read_city_json(path: Path) -> dict[str, Any]:
    """A packaged city's data. Unreadable, not JSON, not an object, or a key written twice
    in one object: a ``ConfigError`` naming the file (and each such key)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        problem = Problem(str(path), None, "", f"cannot be read: {exc.strerror}")
        raise ConfigError([problem]) from None
    try:
        data = json.loads(text, object_pairs_hook=_unique)
    except _KeyTwice:
        raise ConfigError(
            _duplicates(str(path), json.loads(text, object_pairs_hook=_Pairs))
        ) from None
    except ValueError as exc:  # JSONDecodeError, or text that is not UTF-8
        raise ConfigError([Problem(str(path), None, "", f"not JSON: {exc}")]) from None
    if not isinstance(data, dict):
        message = "a packaged city is a JSON object (slug: …, sources: …, zones: …)"
        raise ConfigError([Problem(str(path), None, "", message)])
    return data


class _Pairs(list[tuple[str, Any]]):
    """An object's members as written, duplicates kept (read again only to name them)."""


def _duplicates(file: str, root: Any) -> list[Problem]:
    """Every key written twice in an object of the document, at its path."""
    found = []
    todo: list[tuple[Loc, Any]] = [((), root)]
    while todo:
        loc, node = todo.pop()
        if isinstance(node, list) and not isinstance(node, _Pairs):
            todo += [((*loc, i), item) for i, item in enumerate(node)]
            continue
        seen: set[str] = set()
        for key, value in node if isinstance(node, _Pairs) else ():
            if key in seen:
                problem = "appears twice in one object"
                found.append(Problem(file, None, dotted((*loc, key)), problem))
            seen.add(key)
            todo.append(((*loc, key), value))
    return sorted(found, key=lambda p: p.key)


def _jsonable(file: str, loc: Loc, value: Any) -> Any:
    """``value`` as JSON writes it: a date as ISO text (the model reads it back as a
    date), a set (YAML's ``!!set``) as a sorted list; anything else JSON has no form for
    (``!!binary``, a key that is not text or a number) refused at its key."""
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str | int | float | bool):
                raise _no_json_form(file, (*loc, str(key)), key)
        return {key: _jsonable(file, (*loc, str(key)), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(file, (*loc, i), item) for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        return sorted((_jsonable(file, loc, item) for item in value), key=str)
    if isinstance(value, date):  # a datetime too
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise _no_json_form(file, loc, value)


def _no_json_form(file: str, loc: Loc, value: object) -> ConfigError:
    message = f"a {type(value).__name__} has no JSON form: write it as text, a number or a list"
    return ConfigError([Problem(file, None, dotted(loc), message)])


def city_json(city_file: Path) -> bytes:
    """A YAML city file's data merged as ``load_city`` reads it (``extends`` and the registry
    file resolved), as JSON. Dates are written as ISO text, which the city's model reads
    back as dates; the packager (``citypipe_local.package.write_city_json``) refuses a JSON
    that does not read back as the same city."""
    from citypipe.domain.cityfile import read_city  # the writer alone reads YAML

    data = _jsonable(str(city_file), (), read_city(city_file))
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
