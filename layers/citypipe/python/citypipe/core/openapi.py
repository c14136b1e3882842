"""The open-data API's OpenAPI 3.0 description (``GET /features/api``): every path, parameter
and answer ``core.api`` serves, the bounds of ``domain.limits`` included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from citypipe.core.api import CSV, GEOJSON, JSON
from citypipe.domain.city import City
from citypipe.domain.limits import API_DEFAULT_LIMIT, API_MAX_LIMIT
from citypipe.domain.themes import Theme


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {JSON.media_type: {"schema": schema or {"type": "object"}}},
    }


def _parameter(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
        **({"style": "form", "explode": False} if where == "query" else {}),
    }


EXCEPTION = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
}
ERRORS = {
    "400": _json("a parameter the API does not take, or a bad value: which, and why", EXCEPTION),
    "404": _json("no such resource", EXCEPTION),
    "500": _json("the server failed", EXCEPTION),
}


def _metadata(summary: str) -> dict[str, Any]:
    f = _parameter("f", "query", {"type": "string", "enum": ["json"]}, "the format: json")
    return {
        "get": {
            "summary": summary,
            "parameters": [f],
            "responses": {"200": _json(summary), **ERRORS},
        }
    }


def _features(summary: str, item: bool) -> dict[str, Any]:
    formats = [GEOJSON, JSON, CSV]
    content = {
        f.media_type.split(";")[0]: {"schema": {"type": "string" if f is CSV else "object"}}
        for f in formats
    }
    parameters = [
        _parameter("collectionId", "path", {"type": "string"}, "a dataset: a published theme"),
        _parameter(
            "f",
            "query",
            {"type": "string", "enum": [f.name for f in formats]},
            "the format (else Accept)",
        ),
    ]
    if item:
        parameters.append(
            _parameter("featureId", "path", {"type": "string"}, "<window start>~<zone>~<quantity>")
        )
    else:
        parameters += [
            _parameter(
                "limit",
                "query",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": API_MAX_LIMIT,
                    "default": API_DEFAULT_LIMIT,
                },
                f"features a page holds (more: {API_MAX_LIMIT}); a page may hold fewer, and "
                "a next link",
            ),
            _parameter(
                "bbox",
                "query",
                {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
                "minLon,minLat,maxLon,maxLat (CRS84): the zones whose bounding box meets it",
            ),
            _parameter(
                "datetime",
                "query",
                {"type": "string"},
                "an RFC 3339 instant or interval (start/end, .. open): the windows that meet it",
            ),
            _parameter(
                "cursor",
                "query",
                {"type": "string"},
                "where a page starts: as a next link gives it",
            ),
            _parameter("zone", "query", {"type": "string"}, "one zone's rows"),
            _parameter(
                "quantity", "query", {"type": "string"}, "one quantity's rows (air.no2, ...)"
            ),
        ]
    return {
        "get": {
            "summary": summary,
            "parameters": parameters,
            "responses": {"200": {"description": summary, "content": content}, **ERRORS},
        }
    }  # fmt: skip


def openapi(root: str, city: City, themes: Sequence[Theme]) -> dict[str, Any]:
    """The description, its server the API's root as this request reached it."""
    collections = ", ".join(t.slug for t in themes) or "none yet"
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{city.name} open sensor data",
            "version": "1.0.0",
            "description": (
                "OGC API - Features, Part 1: Core, over the published open data (the open "
                f"zone only). Collections: {collections}."
            ),
            "license": {"name": city.licence, "url": city.licence},
            "contact": {"name": city.publisher.name, "email": city.publisher.email},
        },
        "servers": [{"url": root}],
        "paths": {
            "/": _metadata("the landing page"),
            "/conformance": _metadata("the conformance classes the API implements"),
            "/api": _metadata("this description"),
            "/collections": _metadata("the datasets"),
            "/collections/{collectionId}": {
                "get": {
                    **_metadata("a dataset")["get"],
                    "parameters": [
                        _parameter("collectionId", "path", {"type": "string"}, "a dataset"),
                        *_metadata("")["get"]["parameters"],
                    ],
                }
            },
            "/collections/{collectionId}/items": _features("a dataset's published rows", False),
            "/collections/{collectionId}/items/{featureId}": _features("one published row", True),
        },
    }
