"""docs/scale.md against its arithmetic: the tables are bench/scale.py's output on the
measured days (bench/results.json, bench/big.json), and the figures its prose quotes are
those tables' figures."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from repo import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import scale  # bench/ is scripts, not a package

DOC = (ROOT / "docs" / "scale.md").read_text()


def test_the_docs_tables_are_the_arithmetic_on_the_measured_days() -> None:
    begin, end = "<!-- bench/scale.py: begin -->\n", "<!-- bench/scale.py: end -->"
    shown = DOC[DOC.index(begin) + len(begin) : DOC.index(end)]
    assert shown == scale.tables()


def test_the_metropolis_is_a_hundred_times_the_measured_example_day() -> None:
    days = scale.measured()
    city = scale.metropolis(days)
    assert city["readings"] == 100 * days[1.0]["readings"]
    assert 74e6 < city["readings"] < 76e6  # "about 75 M readings a day" (issue 22)
    # the extrapolation's premise: a stage that costs no more per reading at x14 than at x4
    # (5 % for the machine's noise) is x14 scaled by readings, an upper bound; one that
    # costs more is extrapolated by its line through x4 and x14, and the doc names it
    quoted = " ".join(DOC.split())
    for stage in ("edge", "anonymize", "aggregate"):
        x4, x14 = (scale.per_million(days[s], stage) for s in (4.0, 14.0))
        assert f"{stage} {x4:.1f} and {x14:.1f}" in quoted, stage
        if x14 > x4 * (1 + scale.NOISE):
            assert stage in scale.growing(days), stage
            assert f"{stage} {x4:.1f} and {x14:.1f}, beyond it" in quoted, stage
            x100 = city["stages"][stage]["cpu_s"] / city["readings"] * 1e6
            assert x100 > x14, stage  # its line grows past x14's rate


def _export_s(city: dict[str, Any], vcpu: dict[str, float]) -> float:
    return float(city["stages"]["export"]["cpu_s"] / vcpu["export"])


Figure = Callable[[dict[str, Any], dict[float, dict[str, Any]]], float]


@pytest.mark.parametrize(
    ("quoted", "number", "figure"),
    [
        (
            "day's 0.7 PUT-class requests a second to ~32",
            32,
            lambda c, d: scale.rates(c)["webhook_puts"],
        ),
        ("made ~7,600 a second", 7600, lambda c, d: scale.rates(c)["messages_peak"] * 6),
        ("~$1,980 a month on AWS", 1980, lambda c, d: scale.monthly(c)["webhook_aws"]["total"]),
        ("~€185 on\n   Scaleway", 185, lambda c, d: scale.monthly(c)["webhook_scaleway"]["total"]),
        ("against ~$4.5 and ~€0.77 batched", 4.5, lambda c, d: scale.monthly(c)["aws"]["total"]),
        (
            "against ~$4.5 and ~€0.77 batched",
            0.77,
            lambda c, d: scale.monthly(c)["scaleway"]["total"],
        ),
        ("batched\n   day's 0.7 PUT-class", 0.7, lambda c, d: scale.rates(c)["puts"]),
        ("1,260 requests a second", 1260, lambda c, d: scale.rates(c)["messages_peak"]),
        ("~67 CPU-s at x100", 67, lambda c, d: c["stages"]["export"]["cpu_s"]),
        (
            "~116 s on a",
            116,
            lambda c, d: _export_s(c, scale.AWS_VCPU),
        ),
        (
            "~80 s on Scaleway's 2,048 MB export, its\n   spills compressed",
            80,
            lambda c, d: (
                (c["stages"]["export"]["cpu_s"] + c["scaleway"]["export_lz4_cpu_s"])
                / scale.SCW_VCPU["export"]
            ),
        ),
        ("at x782", 782, lambda c, d: scale.export_limit_scale(d)),
        ("(1.86 M phones", 1.86, lambda c, d: scale.PEOPLE_DAY["x100"][0] / 1e6),
        ("10.9 M\n  contributions", 10.9, lambda c, d: scale.PEOPLE_DAY["x100"][1] / 1e6),
        ("in 1,000 clean objects", 1000, lambda c, d: scale.PEOPLE_DAY["x100"][2]),
        ("The x4 day (20 k phones", 20, lambda c, d: scale.PEOPLE_DAY["x4"][0] / 1e3),
        ("395 k\n    contributions) took", 395, lambda c, d: scale.PEOPLE_DAY["x4"][1] / 1e3),
        ("contributions) took 0.94 CPU-s", 0.94, lambda c, d: scale.PEOPLE_DAY["x4"][3]),
        (
            "four times (74 k phones",
            74,
            lambda c, d: scale.PEOPLE_DAY["x1 copied 4 times"][0] / 1e3,
        ),
        (
            "437 k\n    contributions)",
            437,
            lambda c, d: scale.PEOPLE_DAY["x1 copied 4 times"][1] / 1e3,
        ),
        ("took 0.84.", 0.84, lambda c, d: scale.PEOPLE_DAY["x1 copied 4 times"][3]),
        ("702 MB more at x100 than at x1", 702, lambda c, d: scale.people_extra(100)["mb"]),
        (
            "~380 bytes a phone",
            380,
            lambda c, d: (
                (scale.PEOPLE_DAY["x100"][4] - scale.PEOPLE_DAY["x1"][4])
                * 1e6
                / (scale.PEOPLE_DAY["x100"][0] - scale.PEOPLE_DAY["x1"][0])
            ),
        ),
        ("scratch disk: 500 MB at x100", 500, lambda c, d: scale.people_extra(100)["disk_mb"]),
        ("~1,988 MB at x100", 1988, lambda c, d: scale.fullest_mb(d, 100)),
        ("(1,488 of partials", 1488, lambda c, d: scale.scratch_mb(d, 100)["partials"]),
        ("500 of\n   devices;", 500, lambda c, d: scale.scratch_mb(d, 100)["devices"]),
        ("the files are 14)", 14, lambda c, d: scale.scratch_mb(d, 100)["files"]),
        ("`/tmp` would be full at x27", 27, lambda c, d: scale.filled_at(d, scale.LAMBDA_TMP_MB)),
        ("and is full at\n     x103", 103, lambda c, d: scale.filled_at(d, scale.STACK_TMP_MB)),
        ("it would be full at x49", 49, lambda c, d: scale.filled_at(d, scale.SCW_TMP_MB)),
        ("~754 MB at x100", 754, lambda c, d: scale.fullest_mb(d, 100, compressed=True)),
        (
            "full at x127, for",
            127,
            lambda c, d: scale.filled_at(d, scale.SCW_TMP_MB, compressed=True),
        ),
        ("~22 CPU-s more", 22, lambda c, d: scale.lz4_cpu_s(d, 100)),
        (
            "(~89 CPU-s, ~80 s of its 900)",
            89,
            lambda c, d: c["stages"]["export"]["cpu_s"] + scale.lz4_cpu_s(d, 100),
        ),
        (
            "(~89 CPU-s, ~80 s of its 900)",
            80,
            lambda c, d: (
                (c["stages"]["export"]["cpu_s"] + scale.lz4_cpu_s(d, 100))
                / scale.SCW_VCPU["export"]
            ),
        ),
        ("~930 MB at the export's peak", 930, lambda c, d: scale.export_peak_at_scale(d)),
        ("702 of it the people", 702, lambda c, d: scale.people_extra(100)["mb"]),
        (
            "LocalStack spent 104 s of wall time",
            104,
            lambda c, d: d[14.0]["replay_s"],
        ),
        (
            "for 157 CPU-s of functions",
            157,
            lambda c, d: sum(
                u["cpu_s"] for name, u in d[14.0]["usage"].items() if name in scale.STAGES
            ),
        ),
        ("~76 instances at once", 76, lambda c, d: scale.rates(c)["messages_peak"] * 0.06),
        ("0.42 at x100", 0.42, lambda c, d: scale.CITY_FILE_LOAD[100][1]),
        ("0.049 at x14", 0.049, lambda c, d: scale.CITY_FILE_LOAD[14][1]),
        ("0.009 CPU-s at x1", 0.009, lambda c, d: scale.CITY_FILE_LOAD[1][1]),
        ("the YAML took 4.0 s", 4.0, lambda c, d: scale.CITY_FILE_LOAD[100][3]),
        ("holds 75 MB of each container's", 75, lambda c, d: scale.CITY_FILE_LOAD[100][2]),
        ("(the YAML's 154 MB)", 154, lambda c, d: scale.CITY_FILE_LOAD[100][4]),
        ("the YAML's city (23 MB at x14)", 23, lambda c, d: scale.CITY_FILE_LOAD[14][4]),
        (
            "8.6 times the CPU",
            8.6,
            lambda c, d: scale.CITY_FILE_LOAD[100][1] / scale.CITY_FILE_LOAD[14][1],
        ),
        (
            "for 7.1 times the devices",
            7.1,
            lambda c, d: scale.CITY_FILE_LOAD[100][0] / scale.CITY_FILE_LOAD[14][0],
        ),
        (
            "that is ~0.73 s before a container's first reading",
            0.73,
            lambda c, d: scale.CITY_FILE_LOAD[100][1] / scale.AWS_VCPU["edge"],
        ),
        ("the edge's 189 MB", 189, lambda c, d: max(d[max(d)]["peak_rss_mb"].values())),
        ("makes ~240 MB", 240, lambda c, d: scale.peak_at_scale(d)),
        (
            "anonymize 2.6 CPU-s per million at x100",
            2.6,
            lambda c, d: c["stages"]["anonymize"]["cpu_s"] / c["readings"] * 1e6,
        ),
        (
            "Anonymize cost 11 % more at x14",
            11,
            lambda c, d: (
                100
                * (
                    scale.per_million(d[14.0], "anonymize") / scale.per_million(d[4.0], "anonymize")
                    - 1
                )
            ),
        ),
    ],
)
def test_the_prose_quotes_the_tables_figures(quoted: str, number: float, figure: Figure) -> None:
    assert " ".join(quoted.split()) in " ".join(DOC.split())  # as read, whatever the wrapping
    days = scale.measured()
    value = figure(scale.metropolis(days), days)
    assert abs(value - number) / number < 0.05, (quoted, value)


def test_batched_the_peak_is_far_below_every_documented_limit() -> None:
    city = scale.metropolis(scale.measured())
    rates = scale.rates(city)
    assert rates["puts"] < scale.SCW_REQUESTS_PER_BUCKET_S / 100
    # buffered, the webhook's batches stay far below both limits too; its instances do not
    assert rates["webhook_puts"] < scale.SCW_REQUESTS_PER_BUCKET_S / 10
    assert rates["messages_peak"] * 0.06 > scale.SCW_MAX_INSTANCES


def test_the_docs_header_names_the_measured_days_dates_and_loads() -> None:
    """The header says when and under what load the days were measured."""
    import json

    for name, backend in (("results.json", "embedded backend"), ("big.json", "LocalStack")):
        run = json.loads((ROOT / "bench" / name).read_text())
        loads = [load for size in run["sizes"] if size["scale"] >= 1 for load in size["load"]]
        quoted = f"{backend}, {run['date'][:10]}, load {min(loads):.1f}\u2013{max(loads):.1f})"
        assert quoted in " ".join(DOC.split()), quoted


def test_the_bridges_batches_are_an_eighth_of_the_replays() -> None:
    from citypipe.service.bridge import Limits
    from citypipe_local.replay import ReplayOptions

    times = ReplayOptions().batch_payloads / Limits.messages
    assert times == 8 and "8\n   times as many batches" in DOC
    puts = scale.rates(scale.metropolis(scale.measured()))["puts"] * times
    assert "~5.5 PUT-class requests a second" in DOC and abs(puts - 5.5) < 0.5
    assert "0.55 % of Scaleway's 1,000 a bucket" in DOC
    assert abs(puts / scale.SCW_REQUESTS_PER_BUCKET_S - 0.0055) < 0.0005


def test_the_measured_days_keep_the_examples_phones_and_the_people_day_adds_a_citys() -> None:
    """The scaled days add sensors, not people: the people release's growth with a city's
    phones is measured apart (bench/people_day.py), on 100 copies of the x1 day's."""
    from citypipe_local.simulate.world import POPULATION

    assert POPULATION == 20_000 and "the simulator's 20,000 phones" in " ".join(DOC.split())
    assert "scale=min(scale, 1.0)" in (ROOT / "bench" / "run.py").read_text()
    day = scale.PEOPLE_DAY
    x1, x4, x100 = day["x1"], day["x4"], day["x100"]
    assert x1[0] <= x4[0] <= POPULATION  # the phones seen in a day: some of the population
    assert day["x1 copied 4 times"][:3] == (4 * x1[0], 4 * x1[1], 4 * x1[2])
    assert x100[:3] == (100 * x1[0], 100 * x1[1], 100 * x1[2])  # copies, phones their own
    # "its CPU follows the contributions, not the phones": four times the phones and about
    # as many contributions cost no more than the x4 day
    assert day["x1 copied 4 times"][3] <= x4[3] * 1.1
    assert "x100 has 46 times those objects times phones" in " ".join(DOC.split())
    assert round(x100[2] * x100[0] / (200 * 200_000)) == 46
    deploy = " ".join((ROOT / "docs" / "deploy.md").read_text().split())
    days = scale.measured()
    lambda_full = scale.filled_at(days, scale.LAMBDA_TMP_MB)
    stack_full = scale.filled_at(days, scale.STACK_TMP_MB)
    scaleway_full = scale.filled_at(days, scale.SCW_TMP_MB)
    assert f"it fills at about {lambda_full:.0f} times the example" in deploy
    assert "devices are spilled beside the partials too, and removed before the files" in deploy
    assert f"`serverless.yml`, up to 10,240), full at about {stack_full:.0f} times" in deploy
    assert f"full at about {scaleway_full:.0f} times the example" in deploy
    compressed_full = scale.filled_at(days, scale.SCW_TMP_MB, compressed=True)
    assert f"full at about {compressed_full:.0f} times the example" in deploy
    assert f"({x1[5]:.0f} MB at x1, growing with the city's" in deploy.replace("( 5", "(5")
    assert f"ephemeralStorageSize: {scale.STACK_TMP_MB}\n" in (ROOT / "serverless.yml").read_text()


def test_the_exports_scratch_disk_costs_fractions_of_a_cent_a_month() -> None:
    """Lambda bills /tmp past 512 MB by the GB-second: $0.0000000309 in us-east-1 (AWS
    Lambda pricing, 2025; Frankfurt's within a few tenths of it). Ten times that price,
    over the metropolis's export seconds every day, is still under a cent a month."""
    city = scale.metropolis(scale.measured())
    seconds = city["stages"]["export"]["cpu_s"] / scale.AWS_VCPU["export"]
    extra_gb = (scale.STACK_TMP_MB - 512) / 1024
    assert "fractions of a cent a month" in " ".join(DOC.split())
    assert extra_gb * seconds * 30 * 10 * 0.0000000309 < 0.01


def test_decision_118_quotes_the_arithmetic_and_the_measurement_it_rests_on() -> None:
    days = scale.measured()
    city = scale.metropolis(days)
    record = " ".join(
        (ROOT / "docs" / "decisions" / "0118-scaleway-s-export-compresses-its-spills.md")
        .read_text()
        .split()
    )
    cpu = city["stages"]["export"]["cpu_s"] + scale.lz4_cpu_s(days, 100)
    assert f"the spills take ~{scale.fullest_mb(days, 100, compressed=True):,.0f} MB" in record
    full = scale.filled_at(days, scale.SCW_TMP_MB, compressed=True)
    assert f"full at about {full:.0f} times the example" in record
    assert f"~{scale.lz4_cpu_s(days, 100):.0f} CPU-s more: ~{cpu:.0f} CPU-s" in record
    assert f"~{cpu / scale.SCW_VCPU['export']:.0f} s of its 900" in record
    assert f"would be full at about {scale.filled_at(days, scale.SCW_TMP_MB):.0f} times" in record
    assert f"spills at ~{scale.fullest_mb(days, 100):,.0f} MB at x100" in record
    history = " ".join((ROOT / "docs" / "benchmarks.md").read_text().split())
    compressed = scale.fullest_mb(days, 100, compressed=True)
    assert f"the spills then take ~{compressed:,.0f} MB at their fullest" in history
    assert f"until about x{full:.0f}, for ~{scale.lz4_cpu_s(days, 100):.0f} CPU-s more" in history
    assert f"at x100 becomes ~{scale.export_peak_at_scale(days):,.0f} MB" in history
    assert f"~{scale.fullest_mb(days, 100):,.0f} MB at its fullest at x100" in history
    # the table the ratios and costs come from
    assert "| 34.21 MB | 12.83 MB | 0.396 | 0.674 |" in record
    assert "| 18.09 MB | 7.11 MB | 1.002 | 1.373 |" in record
    ratios = [round(scale.LZ4[part][0], 1) for part in ("partials", "devices")]
    assert ratios == [2.7, 2.5] and "~2.7 and ~2.5 times smaller" in record
    costs = [scale.LZ4[part][1] for part in ("partials", "devices")]
    assert f"for ~{costs[0]:.3f} and ~{costs[1]:.2f} CPU-s per MB spilled" in record
    # a small city: its own day's spills, as the committed run measured them
    partials, devices = days[1.0]["spill"]["bytes"] / 1e6, scale.PEOPLE_DAY["x1"][5]
    small = partials * costs[0] + devices * costs[1]
    assert f"pays ~{small:.2f} CPU-s a day for it (the x1 day's {partials:.1f} MB" in record


def test_the_stacks_own_export_settings_are_the_ones_the_doc_reasons_with() -> None:
    import yaml

    export = yaml.safe_load((ROOT / "serverless.yml").read_text())["functions"]["export"]
    assert export["timeout"] == scale.STACK_EXPORT_TIMEOUT_S
    assert export["ephemeralStorageSize"] == scale.STACK_TMP_MB
    days = scale.measured()
    doc = " ".join(DOC.split())
    limit = scale.export_limit_scale(days, scale.STACK_EXPORT_TIMEOUT_S)
    assert f"The stack gives the export 600 s, reached at x{limit:.0f}" in doc
    deploy = " ".join((ROOT / "docs" / "deploy.md").read_text().split())
    assert f"~{scale.LIBRARY_MB} MB unzipped against a 200 MB budget" in deploy
    assert f"less the library's ~{scale.LIBRARY_MB} MB, in case its files" in deploy
    assert f"Less the library's ~{scale.LIBRARY_MB} MB, in case its files" in doc


def test_the_people_days_figures_quoted_elsewhere_are_bench_people_days() -> None:
    """Decision 0117, the device spill's docstring and docs/benchmarks.md's history quote
    bench/people_day.py's committed run (``scale.PEOPLE_DAY``)."""
    from citypipe.service.export import devices

    day = scale.PEOPLE_DAY
    x1, x4, four, x100 = day["x1"], day["x4"], day["x1 copied 4 times"], day["x100"]
    per_phone = (x100[4] - x1[4]) * 1e6 / (x100[0] - x1[0])

    def read(*path: str) -> str:
        return " ".join((ROOT.joinpath(*path)).read_text().split())

    record = read("docs", "decisions", "0117-the-day-s-devices-numbered-once-each.md")
    assert f"{x4[3]:.2f} CPU-s for the x4 day" in record
    assert f"{four[3]:.2f} for the x1 day copied four times" in record
    assert f"{x1[4]:.0f} MB at the x1 day's {x1[0]:,}, {x100[4]:.0f} MB" in record
    assert f"~{round(per_phone, -1):.0f} bytes a phone" in record
    docstring = " ".join((devices.__doc__ or "").split())
    assert f"held {x1[4]:.0f} MB at the example city's {x1[0]:,} phones" in docstring
    assert f"and {x100[4]:.0f} MB at 1.86 M, ~{round(per_phone, -1):.0f} bytes a phone" in docstring
    history = read("docs", "benchmarks.md")
    export_x4 = scale.measured()[4.0]["usage"]["export"]["cpu_s"]
    assert f"spill and count at {x4[3]:.2f} CPU-s, against its export's {export_x4:.2f}" in history
    assert (
        f"took {x4[3]:.2f} CPU-s (`bench/people_day.py`) of its export's {export_x4:.2f}" in record
    )
    for name, (phones, rows, _, cpu, held, disk) in (
        ("x1", x1), ("x4", x4), ("x1 copied four times", four), ("x1 copied 100 times", x100)
    ):  # fmt: skip
        digits = 1 if name.endswith("100 times") else 2
        row = f"| {name} | {phones:,} | {rows:,} | {cpu:.{digits}f} | {held:.0f} | {disk:.0f} |"
        assert row in history, row
