"""The reference set, from ``CITYPIPE_REFERENCE_DIR`` only: without it every test here
fails (never skips), so ``make conformance`` cannot pass without having checked anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FOLDERS = ("dcat-ap", "smart-data-models", "payloads")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Official DCAT-AP shapes, Smart Data Models schemas and hub payloads (README.md says
    where to get them): the directory ``CITYPIPE_REFERENCE_DIR`` names, no default."""
    setting = os.environ.get("CITYPIPE_REFERENCE_DIR", "").strip()
    if not setting:
        pytest.fail(
            "CITYPIPE_REFERENCE_DIR is not set: make conformance needs the reference set "
            "(tests/conformance/README.md)"
        )
    directory = Path(setting)
    missing = [f for f in FOLDERS if not (directory / f).is_dir()]
    if missing:
        pytest.fail(f"the reference set at {directory} lacks {missing} (CITYPIPE_REFERENCE_DIR)")
    return directory
