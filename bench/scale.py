"""A city 100 times the example, extrapolated from measured days: ``docs/scale.md``'s tables.

Inputs are the days `make bench` (x1, x4: ``bench/results.json``) and `make bench-big`
(x14: ``bench/big.json``) measured, per stage: CPU seconds, invocations and object-store
calls; and each provider's documented limits and list prices (cited in the doc). The
arithmetic is here, once; ``docs/scale.md`` shows its output between its markers and a
test (``tests/unit/test_scale_doc.py``) fails when the doc and this arithmetic part.

    python bench/scale.py     # prints the tables docs/scale.md holds
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCALE = 100  # the metropolis: 100 times the example city's day
PEAK = 3.0  # its peak hour: 3 times the mean rate
DAY_S = 86_400
DAYS_A_MONTH = 30
STAGES = ("edge", "ingest", "anonymize", "aggregate", "export")
PUT_CLASS = {"PutObject", "ListObjectsV2", "CopyObject", "DeleteObject"}
GET_CLASS = {"GetObject", "HeadObject"}
SQS_CALLS = {
    "SendMessageBatch", "SendMessage", "ReceiveMessage", "DeleteMessageBatch", "DeleteMessage",
    "GetQueueAttributes", "GetQueueUrl",
}  # fmt: skip

# Documented limits (docs/scale.md cites each page)
S3_PUT_PER_PREFIX_S = 3_500
S3_GET_PER_PREFIX_S = 5_500
SCW_REQUESTS_PER_BUCKET_S = 1_000
LAMBDA_TIMEOUT_S = 900
STACK_EXPORT_TIMEOUT_S = 600  # the export's in serverless.yml: raise it to 900 for a big city
SCW_FUNCTION_TIMEOUT_S = 900  # the export function's in infra/scaleway/serverless.yml
SCW_MAX_INSTANCES = 50  # per function, one request at a time each
# A function's share of a vCPU at its memory: Lambda a full vCPU at 1,769 MB; Scaleway
# 560 mvCPU at 1,024 MB. Every stage runs at 1,024 MB but Scaleway's export (2,048 MB).
AWS_VCPU = {stage: 1024 / 1769 for stage in STAGES}
SCW_VCPU = {stage: 0.56 for stage in STAGES} | {"export": 1.12}
# List prices, as bench/run.py and docs/deploy.md
AWS_GB_S, AWS_REQUEST = 0.0000133334, 0.20 / 1e6
AWS_PUT, AWS_GET, AWS_SQS = 0.0054 / 1000, 0.00043 / 1000, 0.40 / 1e6
SCW_GB_S, SCW_REQUEST = 1.20 / 100_000, 0.15 / 1e6
GB_S_PER_CPU_S = {"aws": 1.769, "scaleway": 1.829}
# The city file read at every cold start, as bench/city_file.py measured it on 2026-12-07
# (15:24 UTC, the shared 2-core machine; medians of three fresh interpreters): devices in
# the registry -> load_city's CPU seconds, the process's first read, and the resident MB
# the city holds once read and its lookups built (as a warm container holds it), for the
# city.json a package ships (decision 0114), then for the YAML a local run (and so every
# replay `make bench` measures) reads.
CITY_FILE_LOAD = {
    1: (340, 0.009, 1.2, 0.033, 2.7),
    4: (1_360, 0.017, 3.6, 0.085, 7.2),
    14: (4_760, 0.049, 10.9, 0.311, 23.2),
    100: (34_000, 0.423, 74.6, 3.950, 153.9),
}

# The day's people release in export (its device spill and count: decision 0117), as
# bench/people_day.py measured it on 2026-12-07 (17:37 UTC, the shared 2-core machine,
# quiet; medians of three fresh interpreters, the memory above a baseline read once what
# loading freed was given back). Day -> phones, contributions, clean objects, CPU s (spill
# and count), MB above the process's own at its peak, MB on scratch disk. The x4 day is
# the one make bench replays (its sensors four times the x1 day's, its phones the same);
# the copies are the x1 day's, each copy's phones pseudonyms of their own. The CPU follows
# the contributions, which the measured days grow, not the phones: their line through x4
# and x14 holds it. The memory grows with the phones, and the device spill with the
# contributions; the measured days show neither (their phones stay, and their spill's
# bytes are the partials').
PEOPLE_DAY = {
    "x1": (18_573, 109_143, 10, 0.206, 41.6, 5.02),
    "x4": (19_987, 394_589, 36, 0.944, 51.9, 18.09),
    "x1 copied 4 times": (74_292, 436_572, 40, 0.836, 56.9, 20.02),
    "x100": (1_857_300, 10_914_300, 1_000, 22.269, 743.9, 500.0),
}
# Scratch disk, MB (1e6 bytes). AWS writes Lambda's /tmp in MB (512 by default, up to
# 10,240); taken as decimal, the lower reading. Scaleway's 1,024 MiB is the root folder's,
# fixed, and may hold the function's own files: the library's ~110 MB unzipped
# (docs/deploy.md) is taken out of it.
LAMBDA_TMP_MB = 512
# lz4 on the export's spills, as Scaleway's export writes them (CITYPIPE_EXPORT__COMPRESS_
# SPILLS, decision 0118): how many times smaller it made them, and the CPU s it added per
# MB spilled (uncompressed), as the same bench/people_day.py run measured them on the x4
# day: its partials spilled and read back (34.21 -> 12.83 MB, 0.396 -> 0.674 CPU s) and
# its people release's devices spilled and counted (18.09 -> 7.11 MB, 1.002 -> 1.373).
LZ4 = {
    "partials": (34.21 / 12.83, (0.674 - 0.396) / 34.21),
    "devices": (18.09 / 7.11, (1.373 - 1.002) / 18.09),
}
STACK_TMP_MB = 2_048  # the export's in serverless.yml (ephemeralStorageSize)
LIBRARY_MB = 110  # the layer unzipped (docs/deploy.md), as a Scaleway function's files
SCW_TMP_MB = 2**30 / 1e6 - LIBRARY_MB


def measured() -> dict[float, dict[str, Any]]:
    """Each measured day by its size: x1 and x4 from make bench, x14 from make bench-big."""
    days: dict[float, dict[str, Any]] = {}
    for name in ("results.json", "big.json"):
        for size in json.loads((ROOT / "bench" / name).read_text())["sizes"]:
            if size["scale"] >= 1:
                days[size["scale"]] = size
    return days


def peak_at_scale(days: dict[float, dict[str, Any]], function: str | None = None) -> float:
    """A deployed function's highest peak (MB) at x``SCALE`` (``function``'s, else the
    highest of all), estimated: the biggest measured day's, whose workers held that day's
    city read from the YAML, less that, plus the x``SCALE`` city read from its city.json
    (its batches are the same size; the city is what grows)."""
    biggest = max(days)
    yaml_held, json_held = CITY_FILE_LOAD[int(biggest)][4], CITY_FILE_LOAD[SCALE][2]
    peaks = days[biggest]["peak_rss_mb"]
    peak = peaks[function] if function else max(peaks.values())
    return float(peak) - yaml_held + json_held


def people_extra(size: float) -> dict[str, float]:
    """What the people release holds at x``size`` beyond what the measured days show:
    memory for the phones beyond the x1 day's, on the line from its phones to x100's
    (``PEOPLE_DAY``), and its whole device spill on disk, on the line from the x1 day's
    contributions to x100's. Its CPU is in the measured days' line already."""
    low, high = PEOPLE_DAY["x1"], PEOPLE_DAY[f"x{SCALE}"]
    share = (size - 1) / (SCALE - 1)
    return {"mb": share * (high[4] - low[4]), "disk_mb": low[5] + share * (high[5] - low[5])}


def export_peak_at_scale(days: dict[float, dict[str, Any]]) -> float:
    """Export's peak (MB) at x``SCALE``: ``peak_at_scale``'s, plus the people release's
    memory for the metropolis's phones (``people_extra``)."""
    return peak_at_scale(days, "export") + people_extra(SCALE)["mb"]


def scratch_mb(
    days: dict[float, dict[str, Any]], size: float, compressed: bool = False
) -> dict[str, float]:
    """Export's scratch disk at x``size`` (MB): the day's partials, spilled by window for
    the whole export (their line through x4 and x14); beside them, first the people
    release's devices (``people_extra``), removed once counted, then the day's open files
    (the x14 day's export sent, whatever the size: its cells are zones by windows). The
    spills ``compressed`` (``LZ4``) or not."""
    x1, x4, x14 = days[1.0], days[4.0], days[14.0]
    slope = (x14["spill"]["bytes"] - x4["spill"]["bytes"]) / (x14["readings"] - x4["readings"])
    partials = (x4["spill"]["bytes"] + slope * (size * x1["readings"] - x4["readings"])) / 1e6
    devices = people_extra(size)["disk_mb"]
    if compressed:
        partials, devices = partials / LZ4["partials"][0], devices / LZ4["devices"][0]
    files = x14["usage"]["export"]["bytes_sent"] / 1e6
    return {"partials": partials, "devices": devices, "files": files}


def fullest_mb(days: dict[float, dict[str, Any]], size: float, compressed: bool = False) -> float:
    """The scratch disk at its fullest: the partials, and the devices or the files."""
    disk = scratch_mb(days, size, compressed)
    return disk["partials"] + max(disk["devices"], disk["files"])


def filled_at(
    days: dict[float, dict[str, Any]], limit_mb: float, compressed: bool = False
) -> float:
    """The city size (times the example) whose scratch disk at its fullest reaches
    ``limit_mb``: partials and devices (both lines) where the devices outweigh the files."""

    def spills(size: float) -> float:
        disk = scratch_mb(days, size, compressed)
        return disk["partials"] + disk["devices"]

    size = 1 + (limit_mb - spills(1)) / (spills(2) - spills(1))
    disk = scratch_mb(days, size, compressed)
    if disk["devices"] < disk["files"]:
        raise ValueError("the files outweigh the devices there: not a line")
    return size


def lz4_cpu_s(days: dict[float, dict[str, Any]], size: float) -> float:
    """The CPU s lz4 adds to the day's export at x``size`` (``LZ4``)."""
    disk = scratch_mb(days, size)
    return sum(disk[part] * LZ4[part][1] for part in ("partials", "devices"))


def webhook_extra() -> dict[str, float]:
    """Per million readings, what the buffered webhook (a request per hub message, decision
    0090) cost beyond the same slice replayed directly, as ``make bench`` measured it (its
    webhook path): USD at AWS prices, EUR at Scaleway's, PUT-class requests. The slice's own
    fixed costs (its export's metadata) are in both and cancel out."""
    path = json.loads((ROOT / "bench" / "results.json").read_text())["webhook"]
    hook, direct = path["cost"], path["direct_cost"]
    return {
        "usd": hook["aws_usd"]["total"] - direct["aws_usd"]["total"],
        "eur": hook["scaleway_eur"]["total"] - direct["scaleway_eur"]["total"],
        "puts": hook["s3_puts_per_million"] - direct["s3_puts_per_million"],
    }


def calls(usage: dict[str, Any], kinds: set[str]) -> int:
    return sum(n for op, n in usage.get("operations", {}).items() if op in kinds)


def per_million(day: dict[str, Any], stage: str) -> float:
    return float(day["usage"][stage]["cpu_s"]) / day["readings"] * 1e6


NOISE = 0.05  # this machine's: a stage's cost per reading at x4 and x14 within it is flat


def growing(days: dict[float, dict[str, Any]]) -> list[str]:
    """The stages (export aside) that cost more per reading at x14 than at x4 beyond the
    machine's noise: x14 scaled by readings would not bound them at x100, so they are
    extrapolated by the line through x4 and x14, as export is."""
    return [
        stage
        for stage in STAGES
        if stage != "export"
        and per_million(days[14.0], stage) > per_million(days[4.0], stage) * (1 + NOISE)
    ]


def metropolis(days: dict[float, dict[str, Any]]) -> dict[str, Any]:
    """The x100 day, stage by stage: CPU and calls from the largest day measured (x14)
    scaled by readings (where the per-reading rates of x4 and x14 agree: it is linear),
    export's CPU and that of a stage ``growing`` with size by the line through x4 and x14
    (a fixed part and a part per reading)."""
    x1, x4, x14 = days[1.0], days[4.0], days[14.0]
    readings = SCALE * x1["readings"]
    payloads = SCALE * x1["payloads"]
    grow = readings / x14["readings"]
    stages: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        usage = x14["usage"][stage]
        cpu = usage["cpu_s"] * grow
        if stage == "export" or stage in growing(days):
            slope = (usage["cpu_s"] - x4["usage"][stage]["cpu_s"]) / (
                x14["readings"] - x4["readings"]
            )
            cpu = x4["usage"][stage]["cpu_s"] + slope * (readings - x4["readings"])
        invocations = 1 if stage == "export" else usage["invocations"] * grow
        stages[stage] = {
            "cpu_s": cpu,
            "invocations": invocations,
            "puts": calls(usage, PUT_CLASS) * grow,
            "gets": calls(usage, GET_CLASS) * grow,
            "sqs": calls(usage, SQS_CALLS) * grow,
        }
    runner = x14["usage"]["runner"]  # the event source mapping's polls, as the replay's
    stages["runner"] = {
        "cpu_s": 0.0,
        "invocations": 0.0,
        "puts": 0.0,
        "gets": 0.0,
        "sqs": calls(runner, SQS_CALLS) * grow,
    }
    # what Scaleway's export spends beyond it, its spills compressed (decision 0118)
    scaleway = {"export_lz4_cpu_s": lz4_cpu_s(days, SCALE)}
    return {"readings": readings, "payloads": payloads, "stages": stages, "scaleway": scaleway}


def _f(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def inputs_table(days: dict[float, dict[str, Any]]) -> list[str]:
    lines = [
        "| day | readings | hub messages | stage | CPU s | CPU s per million readings "
        "| invocations | PUT-class | GET-class | peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scale, day in sorted(days.items()):
        for stage in STAGES:
            usage = day["usage"][stage]
            lines.append(
                f"| x{scale:g} | {_f(day['readings'])} | {_f(day['payloads'])} | {stage} | "
                f"{usage['cpu_s']:.2f} | {per_million(day, stage):.2f} | "
                f"{usage['invocations']} | {calls(usage, PUT_CLASS)} | "
                f"{calls(usage, GET_CLASS)} | {day['peak_rss_mb'][stage]:.0f} |"
            )
    return lines


def stage_table(city: dict[str, Any]) -> list[str]:
    lines = [
        "| stage | invocations a day | CPU s a day | CPU s an invocation | AWS: s an "
        "invocation (0.58 vCPU) | concurrency at peak (AWS) | Scaleway: s an invocation "
        "| concurrency at peak (Scaleway) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for stage in STAGES:
        s = city["stages"][stage]
        each = s["cpu_s"] / s["invocations"]
        # Scaleway's export compresses its spills (decision 0118): its own CPU
        extra = city["scaleway"]["export_lz4_cpu_s"] if stage == "export" else 0.0
        aws_s, scw_s = each / AWS_VCPU[stage], (each + extra) / SCW_VCPU[stage]
        busy = s["cpu_s"] / DAY_S * PEAK  # CPU seconds a second at the peak
        scw_busy = (s["cpu_s"] + extra) / DAY_S * PEAK
        lines.append(
            f"| {stage} | {_f(s['invocations'])} | {_f(s['cpu_s'])} | {each:.2f} | "
            f"{aws_s:.2f} | {busy / AWS_VCPU[stage]:.3f} | {scw_s:.2f} | "
            f"{scw_busy / SCW_VCPU[stage]:.3f} |"
        )
    return lines


def rates(city: dict[str, Any]) -> dict[str, float]:
    """Object-store requests a second at the peak, every stage's in one prefix (the worst
    case: the stages write different buckets and prefixes), and with the buffered webhook's
    batches besides."""
    stages = city["stages"].values()
    puts = sum(s["puts"] for s in stages) / DAY_S * PEAK
    gets = sum(s["gets"] for s in stages) / DAY_S * PEAK
    messages_peak = city["payloads"] / DAY_S * PEAK
    return {
        "puts": puts,
        "gets": gets,
        "messages_peak": messages_peak,
        "webhook_puts": puts + city["readings"] / DAY_S * PEAK * webhook_extra()["puts"] / 1e6,
    }


def rates_table(city: dict[str, Any]) -> list[str]:
    r = rates(city)
    return [
        "| at the peak hour (3x the mean), a second | batched (as measured) | a buffered "
        "webhook request per hub message | AWS S3, per prefix | Scaleway, per bucket |",
        "|---|---|---|---|---|",
        f"| hub messages | {_f(r['messages_peak'])} | {_f(r['messages_peak'])} | | |",
        f"| PUT-class requests | {r['puts']:.2f} | {_f(r['webhook_puts'])} | "
        f"{_f(S3_PUT_PER_PREFIX_S)} | {_f(SCW_REQUESTS_PER_BUCKET_S)} (all requests) |",
        f"| GET-class requests | {r['gets']:.2f} | | {_f(S3_GET_PER_PREFIX_S)} | |",
    ]


def monthly(city: dict[str, Any]) -> dict[str, dict[str, float]]:
    stages = city["stages"].values()
    cpu = sum(s["cpu_s"] for s in stages) * DAYS_A_MONTH
    invocations = sum(s["invocations"] for s in stages) * DAYS_A_MONTH
    puts = sum(s["puts"] for s in stages) * DAYS_A_MONTH
    gets = sum(s["gets"] for s in stages) * DAYS_A_MONTH
    sqs = sum(s["sqs"] for s in stages) * DAYS_A_MONTH
    aws = {
        "compute": cpu * GB_S_PER_CPU_S["aws"] * AWS_GB_S,
        "invocations": invocations * AWS_REQUEST,
        "s3": puts * AWS_PUT + gets * AWS_GET,
        "sqs": sqs * AWS_SQS,
    }
    scw_cpu = cpu + city["scaleway"]["export_lz4_cpu_s"] * DAYS_A_MONTH
    scw = {
        "compute": scw_cpu * GB_S_PER_CPU_S["scaleway"] * SCW_GB_S,
        "invocations": invocations * SCW_REQUEST,
    }
    millions, extra = city["readings"] * DAYS_A_MONTH / 1e6, webhook_extra()
    return {
        "aws": aws | {"total": sum(aws.values())},
        "scaleway": scw | {"total": sum(scw.values())},
        "webhook_aws": {"total": sum(aws.values()) + millions * extra["usd"]},
        "webhook_scaleway": {"total": sum(scw.values()) + millions * extra["eur"]},
        "usage": {"cpu_s": cpu, "invocations": invocations, "puts": puts, "gets": gets},
    }


def cost_table(city: dict[str, Any]) -> list[str]:
    m, extra = monthly(city), webhook_extra()
    aws, scw = m["aws"], m["scaleway"]
    return [
        "| a month (30 days) | compute | invocations | object store | queues | total |",
        "|---|---|---|---|---|---|",
        f"| AWS, batched (USD) | {aws['compute']:.2f} | {aws['invocations']:.2f} | "
        f"{aws['s3']:.2f} | {aws['sqs']:.2f} | **{aws['total']:.2f}** |",
        f"| Scaleway, batched (EUR) | {scw['compute']:.2f} | {scw['invocations']:.2f} | "
        f"not billed | not billed | **{scw['total']:.2f}** |",
        f"| AWS, a buffered webhook request per hub message (USD: batched, plus the "
        f"measured webhook path's ${extra['usd']:.2f} per million readings) | | | | | "
        f"**{_f(m['webhook_aws']['total'])}** |",
        f"| Scaleway, the same (EUR: batched, plus €{extra['eur']:.3f} per million "
        f"readings) | | | | | **{_f(m['webhook_scaleway']['total'])}** |",
    ]


def export_limit_scale(
    days: dict[float, dict[str, Any]], timeout_s: float = LAMBDA_TIMEOUT_S
) -> float:
    """The city size (times the example) whose day's export takes ``timeout_s`` (Lambda's
    900 s) at 1,024 MB, on the line through x4 and x14."""
    x4, x14 = days[4.0], days[14.0]
    slope = (x14["usage"]["export"]["cpu_s"] - x4["usage"]["export"]["cpu_s"]) / (
        x14["readings"] - x4["readings"]
    )
    cpu = timeout_s * AWS_VCPU["export"]
    readings = x4["readings"] + (cpu - x4["usage"]["export"]["cpu_s"]) / slope
    return float(readings / days[1.0]["readings"])


def export_line(city: dict[str, Any], days: dict[float, dict[str, Any]]) -> str:
    cpu = city["stages"]["export"]["cpu_s"]
    scw_cpu = cpu + city["scaleway"]["export_lz4_cpu_s"]
    aws, scw = cpu / AWS_VCPU["export"], scw_cpu / SCW_VCPU["export"]
    return (
        f"The day's export: {cpu:.1f} CPU s at x{SCALE} (the line through x4 and x14), "
        f"{aws:.0f} s on a 1,024 MB Lambda function against its {LAMBDA_TIMEOUT_S} s limit "
        f"({aws / LAMBDA_TIMEOUT_S:.0%}); {scw_cpu:.1f} CPU s on Scaleway, its spills "
        f"compressed, {scw:.0f} s on its 2,048 MB export against "
        f"its {SCW_FUNCTION_TIMEOUT_S} s ({scw / SCW_FUNCTION_TIMEOUT_S:.0%}). On that line "
        f"the export reaches Lambda's limit at 1,024 MB at x{export_limit_scale(days):.0f} "
        f"(the {STACK_EXPORT_TIMEOUT_S} s the stack gives it at "
        f"x{export_limit_scale(days, STACK_EXPORT_TIMEOUT_S):.0f})."
    )


def export_room_line(city: dict[str, Any], days: dict[float, dict[str, Any]]) -> str:
    """Export's memory and scratch disk at x``SCALE``, against the functions' own."""
    disk = scratch_mb(days, SCALE)
    scw_cpu = city["stages"]["export"]["cpu_s"] + city["scaleway"]["export_lz4_cpu_s"]
    return (
        f"Its memory at x{SCALE}: ~{export_peak_at_scale(days):,.0f} MB at its peak (the x14 "
        f"day's, its city read from the YAML out and x{SCALE}'s city.json in, and "
        f"{people_extra(SCALE)['mb']:.0f} for the people release's phones), of the 1,024 MB "
        f"it has on Lambda and 2,048 on Scaleway. Its scratch disk at x{SCALE}: "
        f"~{fullest_mb(days, SCALE):,.0f} MB at its fullest (the day's partials, "
        f"{disk['partials']:,.0f} on their line through x4 and x14, and the people release's "
        f"devices, {disk['devices']:.0f}, removed before the day's files, {disk['files']:.0f}, "
        f"are written), against the {STACK_TMP_MB:,} MB of /tmp the stack gives it on Lambda "
        f"(filled at x{filled_at(days, STACK_TMP_MB):.0f}; Lambda's default {LAMBDA_TMP_MB} at "
        f"x{filled_at(days, LAMBDA_TMP_MB):.0f}). A Scaleway function's fixed 1 GiB, less its "
        f"own files, would be filled at x{filled_at(days, SCW_TMP_MB):.0f}: there the export "
        f"compresses its spills (lz4), ~{fullest_mb(days, SCALE, compressed=True):,.0f} MB at "
        f"x{SCALE} (filled at x{filled_at(days, SCW_TMP_MB, compressed=True):.0f}), for "
        f"{lz4_cpu_s(days, SCALE):.0f} CPU s more: {scw_cpu:.0f} CPU s, "
        f"{scw_cpu / SCW_VCPU['export']:.0f} s of its {SCW_FUNCTION_TIMEOUT_S}."
    )


def people_table() -> list[str]:
    lines = [
        "| day | phones | contributions | clean objects | CPU s, spill and count "
        "| MB at its peak | MB on scratch disk |",
        "|---|---|---|---|---|---|---|",
    ]
    for day, (phones, rows, objects, cpu, held, disk) in PEOPLE_DAY.items():
        lines.append(
            f"| {day} | {_f(phones)} | {_f(rows)} | {_f(objects)} | {cpu:.2f} | {held:.1f} | "
            f"{disk:.1f} |"
        )
    return lines


def city_file_table() -> list[str]:
    lines = [
        "| city | devices registered | CPU s to read the city file (each cold start) "
        "| MB it holds, its lookups built | the YAML a local run reads: CPU s, MB |",
        "|---|---|---|---|---|",
    ]
    for scale, (devices, cpu, held, yaml_cpu, yaml_held) in CITY_FILE_LOAD.items():
        lines.append(
            f"| x{scale} | {_f(devices)} | {cpu:.3f} | {held:.1f} | "
            f"{yaml_cpu:.3f}, {yaml_held:.1f} |"
        )
    return lines


def tables() -> str:
    days = measured()
    city = metropolis(days)
    parts = [
        f"x{SCALE}: {_f(city['readings'])} readings and {_f(city['payloads'])} hub messages "
        f"a day ({SCALE} x the x1 day's), {city['readings'] / DAY_S:,.0f} readings a second "
        f"on average, {city['readings'] / DAY_S * PEAK:,.0f} at the peak.",
        "",
        "### Measured",
        "",
        *inputs_table(days),
        "",
        "### Per stage, x100",
        "",
        *stage_table(city),
        "",
        export_line(city, days),
        "",
        export_room_line(city, days),
        "",
        "### Object-store requests",
        "",
        *rates_table(city),
        "",
        "### Cost",
        "",
        *cost_table(city),
        "",
        "### The city file",
        "",
        *city_file_table(),
        "",
        "### The people release",
        "",
        *people_table(),
    ]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(tables(), end="")
