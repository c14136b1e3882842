"""Where the repository's files are, for the tests: its root, the example city, the
real-shaped events and the token a test hub holds. Plain values and functions (helpers, not
fixtures: ``conftest.py`` holds those and is never imported)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CITY_FILE = ROOT / "infra" / "cities" / "velden.yaml"
EVENTS = ROOT / "events"


def load_event(name: str) -> Any:
    """A real-shaped fixture from events/."""
    return json.loads((EVENTS / name).read_text())


def webhook_token(source: str) -> str:
    """The token a test hub holds for a source: the fixtures' for air-quality."""
    fixture = load_event("httpapi_webhook_senml.json")
    if source == fixture["pathParameters"]["source"]:
        return str(fixture["headers"]["x-citypipe-token"])
    return f"cpt-{source}-test-token"
