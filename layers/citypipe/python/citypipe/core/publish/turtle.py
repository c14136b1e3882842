"""Turtle from citypipe's own JSON-LD, without an RDF library in the function.

The catalogue is written as JSON-LD with an inline context of prefixes (no network needed
to read it). This turns that subset of JSON-LD into the same graph in Turtle: node objects
with ``@id`` and ``@type``, nested nodes (blank when they have no ``@id``), language-tagged
and typed literals, strings, integers and booleans, arrays as repeated values. Anything
else raises ``ValueError`` rather than writing a different graph. The tests parse both
with rdflib and check that the graphs are isomorphic.
"""

from __future__ import annotations

import re
from typing import Any

Term = str
PN_LOCAL = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
IRI_UNSAFE = re.compile(r'[\x00-\x20<>"{}|^`\\]')


class _Writer:
    def __init__(self, prefixes: dict[str, str]) -> None:
        self.prefixes = prefixes
        self.subjects: dict[Term, list[tuple[Term, Term]]] = {}
        self.blank = 0

    def iri(self, value: str) -> Term:
        prefix, sep, local = value.partition(":")
        if sep and prefix in self.prefixes and PN_LOCAL.match(local):
            return value  # already a prefixed name
        if sep and prefix in self.prefixes:
            value = self.prefixes[prefix] + local
        return "<" + IRI_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", value) + ">"

    def add(self, subject: Term, predicate: Term, obj: Term) -> None:
        statements = self.subjects.setdefault(subject, [])
        if (predicate, obj) not in statements:
            statements.append((predicate, obj))

    def node(self, data: dict[str, Any]) -> Term:
        if "@value" in data:
            return self.literal(data)
        if "@id" in data:
            subject = self.iri(str(data["@id"]))
        else:
            subject = f"_:b{self.blank}"
            self.blank += 1
        types = data.get("@type", [])
        for kind in types if isinstance(types, list) else [types]:
            self.add(subject, "a", self.iri(kind))
        for key, values in data.items():
            if key.startswith("@"):
                continue
            for value in values if isinstance(values, list) else [values]:
                if value is not None:
                    self.add(subject, self.iri(key), self.value(value))
        return subject

    def value(self, value: Any) -> Term:
        if isinstance(value, dict):
            return self.node(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str):
            return _quoted(value)
        raise ValueError(f"no Turtle for {type(value).__name__} values")

    def literal(self, data: dict[str, Any]) -> Term:
        text = _quoted(str(data["@value"]))
        if "@language" in data:
            return f"{text}@{data['@language']}"
        if "@type" in data:
            return f"{text}^^{self.iri(str(data['@type']))}"
        return text

    def text(self) -> str:
        lines = [f"@prefix {p}: <{iri}> ." for p, iri in self.prefixes.items()]
        for subject, statements in self.subjects.items():
            body = " ;\n    ".join(f"{p} {o}" for p, o in statements)
            lines.append(f"\n{subject}\n    {body} .")
        return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def to_turtle(document: dict[str, Any]) -> str:
    """The graph of a JSON-LD document whose ``@context`` maps prefixes to IRIs."""
    context = document.get("@context", {})
    if not isinstance(context, dict) or not all(isinstance(v, str) for v in context.values()):
        raise ValueError("the context must map prefixes to IRIs")
    writer = _Writer(dict(context))
    writer.node({k: v for k, v in document.items() if k != "@context"})
    return writer.text()
