"""The page `make bench` writes: a run replaces the figures between the page's markers and
keeps the rest — the history of earlier measurements — byte for byte (``bench/page.py``,
called by ``bench/run.py``; tested here without a ten-minute run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from page import BEGIN, END, splice  # noqa: E402  (bench/ is scripts, not a package)

HISTORY = "\n## History\n\n### 0071. Export streams a day\n\nx14 1,541 → 216 MB.\n"
OLD_RUN = "# Benchmarks\n\nWritten by `make bench` on 2026-11-26 07:44 UTC.\n"
NEW_RUN = "# Benchmarks\n\nWritten by `make bench` on 2026-12-01 09:00 UTC.\n"


def page(run: str = OLD_RUN, history: str = HISTORY, before: str = "") -> str:
    return f"{before}{BEGIN}\n{run.rstrip()}\n{END}\n{history}"


def test_a_run_replaces_the_generated_part() -> None:
    # Given a page written by an earlier run
    # When a new run splices its figures in
    spliced = splice(page(), NEW_RUN)
    # Then the page holds the new run's figures, not the old ones
    assert "2026-12-01 09:00 UTC" in spliced
    assert "2026-11-26" not in spliced


def test_the_history_after_the_end_marker_is_kept_byte_for_byte() -> None:
    # Given a page whose history follows the generated part
    # When a new run splices its figures in
    spliced = splice(page(), NEW_RUN)
    # Then everything after the end marker is what it was
    assert spliced.split(END, 1)[1] == "\n" + HISTORY


def test_text_before_the_begin_marker_is_kept() -> None:
    # Given a page with a note above the generated part
    before = "<!-- do not edit between the markers -->\n"
    # When a new run splices its figures in
    spliced = splice(page(before=before), NEW_RUN)
    # Then the note is still first
    assert spliced.startswith(before + BEGIN + "\n# Benchmarks")


def test_splicing_the_same_run_twice_changes_nothing() -> None:
    # Given a page a run has just written
    once = splice(page(), NEW_RUN)
    # When the same figures are spliced in again
    # Then the page is the same bytes
    assert splice(once, NEW_RUN) == once


def test_no_page_yet_gives_the_generated_part_between_markers() -> None:
    # Given no docs/benchmarks.md
    # When a run writes it
    # Then the page is its figures between the markers, ready for a history
    assert splice(None, NEW_RUN) == f"{BEGIN}\n{NEW_RUN.rstrip()}\n{END}\n"


def test_a_page_without_markers_is_an_earlier_runs_and_is_replaced() -> None:
    # Given a page written before the markers existed (all of it generated)
    # When a run splices its figures in
    spliced = splice(OLD_RUN, NEW_RUN)
    # Then the old figures are gone and the new ones stand between markers
    assert spliced == f"{BEGIN}\n{NEW_RUN.rstrip()}\n{END}\n"


@pytest.mark.parametrize(
    "damaged",
    [
        pytest.param(f"{BEGIN}\n{OLD_RUN}{HISTORY}", id="no end marker"),
        pytest.param(f"{OLD_RUN}{END}\n{HISTORY}", id="no begin marker"),
        pytest.param(f"{END}\n{OLD_RUN}{BEGIN}\n{HISTORY}", id="end before begin"),
        pytest.param(page() + page(), id="markers twice"),
    ],
)
def test_a_page_with_damaged_markers_is_refused_not_overwritten(damaged: str) -> None:
    # Given a page whose markers do not bound one generated part
    # When a run splices its figures in
    # Then it is refused: a guess could overwrite the history
    with pytest.raises(ValueError, match="markers"):
        splice(damaged, NEW_RUN)


def test_generated_text_holding_a_marker_is_refused() -> None:
    # Given figures that would themselves hold a marker
    # When they are spliced in
    # Then they are refused: the next run could not find the page's part
    with pytest.raises(ValueError, match="markers"):
        splice(page(), f"{NEW_RUN}{END}\n")


def test_the_committed_page_keeps_its_history_through_a_run() -> None:
    # Given docs/benchmarks.md as committed: a run's figures, then the history
    committed = (ROOT / "docs" / "benchmarks.md").read_text()
    history = committed.split(END, 1)[1]
    assert "\n## History\n" in history
    # When a new run splices its figures in
    spliced = splice(committed, NEW_RUN)
    # Then the history is the same bytes and the old figures are gone
    assert spliced.split(END, 1)[1] == history
    assert spliced.split(BEGIN, 1)[1].split(END, 1)[0] == f"\n{NEW_RUN.rstrip()}\n"
