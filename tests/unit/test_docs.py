"""The docs end, and stand alone: every link between them resolves, nothing points outside
the repository, every decision record has a status and a row in the index."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from repo import ROOT

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")
RECORDS = sorted((ROOT / "docs" / "decisions").glob("[0-9][0-9][0-9][0-9]-*.md"))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_of_a_doc_resolves(doc: Path) -> None:
    broken = [
        target
        for target, _ in LINK.findall(doc.read_text())
        if "://" not in target and not target.startswith("mailto:")
        and not (doc.parent / target).exists()
    ]  # fmt: skip
    assert broken == []


def test_nothing_in_the_repository_points_outside_it() -> None:
    # Only CI may point at the reference set beside the clone (make conformance reads it)
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = [
        name
        for name in tracked
        if not name.startswith(".ci/")
        and (ROOT / name).is_file()
        and re.search(r"\.\./shared|shared/(ARCHITECTURE|STYLE|reference)", _text(ROOT / name))
    ]
    assert outside == []


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except (UnicodeDecodeError, OSError):
        return ""


def test_every_decision_record_has_a_status_and_a_row_in_the_index() -> None:
    index = (ROOT / "docs" / "decisions" / "README.md").read_text()
    for record in RECORDS:
        status = re.search(
            r"^Status: (accepted|rejected|superseded by \[?\d{4})", record.read_text(), re.M
        )
        assert status, record.name
        assert f"]({record.name})" in index, record.name


def test_the_records_are_numbered_without_a_gap_but_those_the_index_names() -> None:
    numbers = sorted(int(record.name[:4]) for record in RECORDS)
    assert "Numbers 59 and 97 were never assigned; no other number is missing." in " ".join(
        (ROOT / "docs" / "decisions" / "README.md").read_text().split()
    )
    assert sorted(set(range(1, numbers[-1] + 1)) - set(numbers)) == [59, 97]


def test_the_index_names_ten_records_to_read_first() -> None:
    index = (ROOT / "docs" / "decisions" / "README.md").read_text()
    first = index.split("## Read these ten first")[1].split("\n## ")[0]
    assert len(re.findall(r"^\d+\. \[\d{4}", first, re.M)) == 10
