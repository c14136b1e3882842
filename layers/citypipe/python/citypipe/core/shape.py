"""What quarantine keeps of a refused payload: its shape, never a value (decision 79).

A refused payload is kept so an operator can see why and where it was refused. A deny-list
of identifier keys and patterns kept whatever it did not foresee — a MAC in free text or as
a key, an e-mail, a phone's name, a position, a CSV row — so what is kept is an allow-list:

- a parsed payload: each value's JSON type and length (a string's characters, a number's
  digits as written, an array's items, an object's keys); an object's fields named where
  the name is known (the format's public schema, the city's registry), else by their
  position (``<key 3>``); at most ``MAX_DEPTH`` levels, ``MAX_SHAPE_ITEMS`` items an
  array and ``MAX_SHAPE_NODES`` values in all (the rest is counted, not described);
- anything else (no JSON, no UTF-8, too large, a CSV line of the wrong width): its length,
  whether it is text, its lines and how many of its bytes are letters, digits, spaces,
  punctuation or other.

``schema_path`` names a field the way the shape does: the path a format adapter wrote with
the keys it received becomes known names, positions and indices.
"""

from __future__ import annotations

import string
from collections.abc import Container
from typing import Any

import orjson

from citypipe.domain.limits import MAX_DEPTH, MAX_SHAPE_ITEMS, MAX_SHAPE_NODES

Shape = dict[str, Any]
_TYPES = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string"}
_SIZED = frozenset({"integer", "number", "string"})
_CLASSES = (
    ("letters", string.ascii_letters.encode()),
    ("digits", string.digits.encode()),
    ("spaces", string.whitespace.encode()),
    ("punctuation", string.punctuation.encode()),
)
UNRESOLVED = "<name>"  # a path's rest that names no key of the payload, nor a known name


def _position(index: int) -> str:
    return f"<key {index}>"


class _Shaper:
    """One payload's shape, within a budget of values described."""

    __slots__ = ("known", "left")

    def __init__(self, known: Container[str]) -> None:
        self.known = known
        self.left = MAX_SHAPE_NODES

    def of(self, value: Any, depth: int) -> Shape:
        self.left -= 1
        if isinstance(value, dict):
            return self._object(value, depth)
        if isinstance(value, list):
            return self._array(value, depth)
        kind = _TYPES.get(type(value), "unknown")
        if kind not in _SIZED:
            return {"type": kind}
        return {"type": kind, "length": len(value if kind == "string" else repr(value))}

    def _open(self, depth: int) -> bool:
        """Whether a container's members are described: within the depth and the budget."""
        return depth < MAX_DEPTH and self.left > 0

    def _object(self, value: dict[Any, Any], depth: int) -> Shape:
        node: Shape = {"type": "object", "length": len(value)}
        if self._open(depth):
            fields: Shape = {}
            for index, (key, item) in enumerate(value.items()):
                if self.left <= 0:
                    break
                name = key if key in self.known else _position(index)
                fields[name] = self.of(item, depth + 1)
            node["fields"] = fields
        return node

    def _array(self, value: list[Any], depth: int) -> Shape:
        node: Shape = {"type": "array", "length": len(value)}
        if self._open(depth):
            items = []
            for item in value[:MAX_SHAPE_ITEMS]:
                if self.left <= 0:
                    break
                items.append(self.of(item, depth + 1))
            node["items"] = items
        return node


def shape(document: Any, known: Container[str]) -> Shape:
    """A parsed payload's shape: types and lengths, names in ``known`` kept, other keys
    named by their position; never a value."""
    return _Shaper(known).of(document, 0)


def body_shape(body: bytes | str) -> Shape:
    """What is kept of a body that is not a parsed payload: its length in bytes, whether it
    is text (UTF-8), its lines, and its bytes counted by class; never a byte of it."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    try:
        data.decode("utf-8")
        kind = "text"
    except UnicodeDecodeError:
        kind = "binary"
    classes = {name: len(data) - len(data.translate(None, chars)) for name, chars in _CLASSES}
    classes["other"] = len(data) - sum(classes.values())
    return {"type": kind, "length": len(data), "lines": data.count(b"\n") + 1, "bytes": classes}


def text_shape(text: str, known: Container[str]) -> Shape:
    """A message that may be JSON (a queue's body): its shape if it parses, else its
    bytes'."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return body_shape(text)
    return shape(document, known)


# --- paths -----------------------------------------------------------------------------------


def _index(rest: str) -> tuple[int, str] | None:
    """A path's leading index, ``[3]`` or (as ``flatten`` writes it) ``3``, and the rest."""
    if rest.startswith("["):
        close = rest.find("]")
        digits, after = rest[1:close], rest[close + 1 :]
    else:
        cut = len(rest) - len(rest.lstrip(string.digits))
        digits, after = rest[:cut], rest[cut:]
    if not digits.isdecimal() or not digits.isascii() or after[:1] not in ("", ".", "["):
        return None
    return int(digits), after


def _key(node: dict[Any, Any], rest: str) -> tuple[int, str] | None:
    """The key of ``node`` the path's rest starts with (the longest: keys may hold dots),
    and its position."""
    found: tuple[int, str] | None = None
    for position, key in enumerate(node):
        if (
            isinstance(key, str)
            and rest.startswith(key)
            and rest[len(key) : len(key) + 1] in ("", ".", "[")
            and (found is None or len(key) > len(found[1]))
        ):
            found = (position, key)
    return found


def _step(node: Any, rest: str, known: Container[str]) -> tuple[str, Any, str] | None:
    """One step down the payload: the step as kept, the value it reaches, the path's rest;
    None where the path leaves the payload."""
    if isinstance(node, list):
        index = _index(rest)
        if index is None or index[0] >= len(node):
            return None
        return f"[{index[0]}]", node[index[0]], index[1]
    if isinstance(node, dict):
        key = _key(node, rest)
        if key is None:
            return None
        position, name = key
        return f".{name if name in known else _position(position)}", node[name], rest[len(name) :]
    return None


def schema_path(path: str, document: Any, known: Container[str]) -> str:
    """A rejection's path as quarantine and the sender may see it: each key the payload
    holds named as its shape names it (known, else ``<key n>``), indices as ``[n]``, and
    whatever names no key of the payload (a name an adapter made of a value) kept only if
    it is known, else ``<name>``. ``document``: the parsed payload (None: not parsed)."""
    steps: list[str] = []
    node, rest = document, path.removeprefix(".")
    while rest:
        step = _step(node, rest, known)
        if step is None:
            steps.append(f".{rest if rest in known else UNRESOLVED}")
            break
        kept, node, rest = step
        steps.append(kept)
        rest = rest.removeprefix(".")
    return "".join(steps).removeprefix(".")
