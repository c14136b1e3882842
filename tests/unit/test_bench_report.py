"""The pages `make bench` writes: a run replaces the figures between the page's markers and
keeps the rest — the history of earlier measurements — byte for byte (``bench/page.py``,
called by ``bench/run.py``; tested here without a ten-minute run); and the committed pages
(docs/benchmarks.md, docs/deploy.md's cost tables and the figures its prose quotes) are the
committed run's (bench/results.json)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from citypipe.service.webhook import webhook_formats

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import run  # noqa: E402  (bench/run.py: the arithmetic, and the pages it writes)
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


# --- the committed pages hold the committed run's figures ------------------------------------


def _committed_results() -> dict[str, Any]:
    results: dict[str, Any] = json.loads((ROOT / "bench" / "results.json").read_text())
    big = ROOT / "bench" / "big.json"
    if big.exists():
        results["big"] = json.loads(big.read_text())
    return results


def _between(page: str, begin: str, end: str) -> str:
    return page.split(begin, 1)[1].split(end, 1)[0].strip("\n") + "\n"


def test_the_benchmarks_page_is_the_committed_runs_figures() -> None:
    """docs/benchmarks.md's generated part is bench/run.py's page of bench/results.json:
    a figure edited by hand, or a run whose results were not committed, fails here."""
    committed = (ROOT / "docs" / "benchmarks.md").read_text()
    assert _between(committed, BEGIN, END) == run.markdown(_committed_results())


def test_the_deploy_guides_cost_tables_are_the_committed_runs_arithmetic() -> None:
    deploy = run.DEPLOY.read_text()
    results = _committed_results()
    assert _between(deploy, *run.AWS_COSTS) == run.aws_cost_table(results)
    assert _between(deploy, *run.SCW_COSTS) == run.scaleway_cost_table(results)


def test_the_readmes_speed_is_the_committed_runs() -> None:
    """The README quotes the committed run's ratios against the floor and says whether the
    targets are met; a run that moved them rewrites it (``make bench``)."""
    results = _committed_results()
    said = _between(run.README.read_text(), *run.README_SPEED)
    assert said == run.readme_speed(results)
    for size in results["sizes"]:
        assert f"**{size['ratio']:.2f}x**" in said and f" at x{size['scale']:g} (target" in said
    # the verdict names the sizes whose target is missed, and only those
    sizes = [
        {"scale": 0.25, "ratio": 3.5},
        {"scale": 1.0, "ratio": 2.5},
        {"scale": 4.0, "ratio": 1.9},
    ]
    said = run.readme_speed(results | {"sizes": sizes})
    assert "**3.50x** the script's time at x0.25 (target 3x), **2.50x** at x1 (target 2x)" in said
    assert "the targets are missed at x0.25 and x1." in said
    fast = [{"scale": s, "ratio": 1.0} for s in run.TARGET_RATIO]
    webhook = results["webhook"] | {"time_ratio": 1.2}
    said = run.readme_speed(results | {"sizes": fast, "webhook": webhook})
    assert ": every target is met." in said and "(goal 1.5x: met)" in said


def test_a_deploy_guide_without_its_markers_is_refused_not_overwritten() -> None:
    with pytest.raises(ValueError, match="no"):
        run.splice_between("# a hand-written page\n", "| a | table |\n", run.AWS_COSTS)


def _webhook() -> dict[str, Any]:
    webhook: dict[str, Any] = _committed_results()["webhook"]
    return webhook


PER_REQUEST_USD = run.AWS["http_request"] + run.AWS["lambda_request"] + run.AWS["sqs_request"]


@pytest.mark.parametrize(
    ("quoted", "holds"),
    [
        ("$1.60 per million requests", lambda w: round(PER_REQUEST_USD * 1e6, 2) == 1.60),
        (
            "6 S3 PUTs a\nrequest ($16.20 per million readings at two readings a request)",
            lambda w: round(6 * 1e6 / 2 * run.AWS["s3_put"], 2) == 16.20,
        ),
        (
            "about $0.76 per million\n  readings",
            lambda w: round(PER_REQUEST_USD * w["requests"] / w["readings"] * 1e6, 2) == 0.76,
        ),
        ("2.1 readings a request", lambda w: round(w["readings"] / w["requests"], 1) == 2.1),
        (
            "more than twice the direct slice",
            lambda w: (
                PER_REQUEST_USD * w["requests"] / w["readings"] * 1e6
                > 2 * w["direct_cost"]["aws_usd"]["total"]
            ),
        ),
        (
            "The direct slice's own cost per million readings is mostly its S3 requests",
            lambda w: w["direct_cost"]["aws_usd"]["s3"] > w["direct_cost"]["aws_usd"]["total"] / 2,
        ),
        (
            "over a hundred times a steady day's batched drops",
            lambda w: (
                PER_REQUEST_USD * w["requests"] / w["readings"] * 1e6
                > 100 * _committed_results()["cost"]["aws_usd"]["total"]
            ),
        ),
        (
            "about €0.07 per million readings",
            lambda w: (
                round(run.SCALEWAY["request"] * w["requests"] / w["readings"] * 1e6, 2) == 0.07
            ),
        ),
        (
            "an order of magnitude\n  above the direct slice",
            lambda w: (
                run.SCALEWAY["request"] * w["requests"] / w["readings"] * 1e6
                >= 10 * w["direct_cost"]["scaleway_eur"]["total"]
            ),
        ),
    ],
)
def test_the_figures_the_deploy_guide_quotes_hold_for_the_committed_run(
    quoted: str, holds: Callable[[dict[str, Any]], bool]
) -> None:
    assert " ".join(quoted.split()) in " ".join(run.DEPLOY.read_text().split())
    assert holds(_webhook())


def test_a_batched_city_of_a_million_readings_a_day_stays_in_scaleways_free_tier() -> None:
    """docs/deploy.md: "A city of a million readings a day in batched drops … stays within
    the monthly free tier of Functions (through the webhook … its invocations alone pass
    the free million requests)"; Scaleway's free tier: 1 M requests, 400,000 GB-s a month."""
    assert "stays within the monthly free tier of Functions" in run.DEPLOY.read_text()
    results, month = _committed_results(), 30  # a million readings a day: 30 M a month
    day = results["cost"]
    assert day["invocations_per_million"] * month < 1_000_000
    assert day["cpu_s_per_million"] * run.GB_S_PER_CPU_S["scaleway"] * month < 400_000
    assert results["webhook"]["cost"]["invocations_per_million"] * month > 1_000_000


def test_exports_peak_memory_the_deploy_guide_quotes_is_the_committed_runs() -> None:
    results = _committed_results()
    runs = [*results["sizes"], *results["big"]["sizes"], results["memory"]]
    peaks = [run["peak_rss_mb"]["export"] for run in runs]
    quoted = f"({min(peaks):.0f}\u2013{max(peaks):.0f} MB at its peak in the committed runs"
    assert quoted in " ".join((ROOT / "docs" / "deploy.md").read_text().split())
    assert max(peaks) < 200


def test_exports_disk_the_deploy_guide_quotes_is_the_committed_runs() -> None:
    """docs/deploy.md: export's spill per partial row, for the example city's day, four and
    fourteen times it, and how big a city Lambda's default /tmp holds: the spill (which grows
    faster than the readings: extrapolated on its line through x4 and x14) and the day's
    files, which export writes beside it before either goes."""
    results = _committed_results()
    sizes = {s["scale"]: s for s in [*results["sizes"], *results["big"]["sizes"]]}
    one, fourteen = sizes[1.0], sizes[14.0]
    rows = sum(s["spill"]["partial_rows"] for s in sizes.values())
    per_row = sum(s["spill"]["bytes"] for s in sizes.values()) / rows
    mb = {scale: sizes[scale]["spill"]["bytes"] / 1e6 for scale in (1.0, 4.0, 14.0)}
    quoted = (
        f"(~{per_row:.0f} bytes a partial row: {mb[1.0]:.1f} MB for the example city's day, "
        f"{mb[4.0]:.0f} MB at four times it and {mb[14.0]:.0f} MB at fourteen times it"
    )
    guide = " ".join((ROOT / "docs" / "deploy.md").read_text().split())
    assert quoted in guide
    assert mb[14.0] / 14 > mb[4.0] / 4 > mb[1.0]  # "more than the readings grow"
    # how big a city /tmp holds, with the people release's devices beside the spill: the
    # arithmetic of docs/scale.md (tests/unit/test_scale_doc.py), on the same runs
    assert fourteen["usage"]["export"]["bytes_sent"] and one["spill"]["bytes"]
    assert "it fills at about" in guide and "[`docs/scale.md`](scale.md)" in guide


def test_each_formats_core_is_judged_against_the_target_by_name() -> None:
    """The page says which formats' normalization runs below the target, by name: a mix
    of formats above it would hide the ones below."""
    at = run.TARGET_CORE
    formats = {
        "canonical": {"payloads": 10, "readings": 10, "cpu_s": 0.1, "readings_per_cpu_s": at - 1},
        "senml": {"payloads": 10, "readings": 50, "cpu_s": 0.1, "readings_per_cpu_s": at},
    }
    lines = run.core_format_lines(formats)
    assert f"NOT met: canonical {at - 1:,})" in lines[0]
    assert "senml" not in lines[0] and any(line.startswith("| senml |") for line in lines)
    formats["canonical"]["readings_per_cpu_s"] = at
    assert "every format; met)" in run.core_format_lines(formats)[0]
    assert run.core_format_lines(None) == []  # a run from before the formats were measured


def test_the_committed_run_judges_every_format_of_the_captures() -> None:
    core = _committed_results()["ingest_core"]
    formats = core.get("formats")
    assert formats is not None, "make bench measures each format's core (bench/run.py)"
    # every format a hub posts or publishes (the polled API's answers are no capture; CSV
    # drops are ingest's, not the edge's)
    assert set(formats) == set(webhook_formats()) - {"sensor-community-api"}
    assert sum(f["payloads"] for f in formats.values()) == core["payloads"]


def test_each_cores_figure_is_its_best_round_of_whole_passes() -> None:
    """A round normalizes its batch again and again until it has spent its CPU time; the
    figure is the best round's readings over its time, and a pass's readings are one
    pass's, however many passes a round made."""
    now = [0.0]
    # the warm-up pass first (the cheapest: counted, it would be the best), then five rounds,
    # the third the best
    costs = {"slow": [0.1, 0.3, 0.3, 0.25, 0.3, 0.3], "fast": [0.07] * 16}

    def clock() -> float:
        return now[0]

    def core(name: str, readings: int) -> Callable[[], int]:
        def one_pass() -> int:
            now[0] += costs[name].pop(0)
            return readings

        return one_pass

    best = run._best_rounds({"slow": (10, core("slow", 100)), "fast": (5, core("fast", 7))}, clock)
    assert best["slow"]["readings"] == 100 and best["slow"]["payloads"] == 10
    assert best["slow"]["readings_per_cpu_s"] == 400  # the round of 0.25 s: not the first
    assert best["fast"]["readings"] == 7  # three passes a round: still one pass's readings
    assert not costs["slow"] and not costs["fast"]  # one warm-up pass, then the rounds
    assert best["fast"]["readings_per_cpu_s"] == 100
    assert best["fast"]["cpu_s"] == pytest.approx(0.07)
