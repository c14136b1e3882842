"""The rehearsal of a deployment: what `make package` and `make package-scaleway` build,
unpacked into empty folders, runs a simulated hour of the city, then answers the webhook's
and the open-data API's requests (``citypipe_local.public``, decision 119); its open data
and its answers must equal a run of the source tree on the same input and keys.

    python -m citypipe_local.rehearse --city infra/cities/velden.yaml --cloud aws
    python -m citypipe_local.rehearse --city infra/cities/velden-scaleway.yaml --cloud scaleway

**AWS**: the Lambda layer and the function zip, packaged by osls as `make package` does,
unpacked as Lambda unpacks them (``/opt`` and ``/var/task``); behind them the oldest SDK
the docs support (``infra/lambda-runtime-sdk.txt``: the layer leaves the SDK to the
runtime); each function's handler as the template names it (the webhook is ``ingest``'s,
the API ``api``). **Scaleway**: the namespace zip `make package-scaleway` builds, unpacked
(its ``package/`` holds every dependency); each function's handler as its
``serverless.yml`` names it (the webhook ``ingest-webhook``'s, the API ``api``). Each
function runs in a bare Python of the runtime's version (3.12) whose path holds those
folders and the standard library only (``citypipe_local.bare``), on the embedded backend.

The artefacts are built for this machine: the same recipe, the same pins and the same
trimming with this machine's wheel tags, since the clouds' (arm64 for Lambda, musl for
Scaleway) cannot be loaded here. That their binaries link is checked where they are built
(``package.missing_libraries``); what the rehearsal proves is the rest, for the paths it
runs — that the artefacts hold the modules, files and city file those paths need, that
the handlers are where the deployments say, and that they run on the runtime's SDK (what
it does not run is listed in ``docs/deploy.md``).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

import yaml

from citypipe.domain.city import ConfigError
from citypipe.domain.city_checks import checked_city
from citypipe.domain.model import Function
from citypipe.entrypoints.events import DRAIN_CRON_BODY
from citypipe.service.edge import Route
from citypipe.service.optout_http import OPTOUT_PATH
from citypipe_local.bare import Runtime
from citypipe_local.package import (
    ROOT,
    PackagingError,
    build_layer,
    host_platforms,
    package_stack,
    service_copy,
)
from citypipe_local.public import packs, public_answers, uplinks
from citypipe_local.pythons import find_python
from citypipe_local.replay import ReplayOptions, replay
from citypipe_local.runner import PUBLIC
from citypipe_local.scaleway_package import build_zip
from citypipe_local.simulate import simulate

Cloud = Literal["aws", "scaleway"]
RUNTIME_PYTHON = (3, 12)  # Lambda's python3.12, Scaleway's python312
RUNTIME_SDK = ROOT / "infra" / "lambda-runtime-sdk.txt"
# Scaleway's function of each public entry point (``runner.PUBLIC``): its serverless.yml's
SCALEWAY_PUBLIC = {"webhook": "ingest-webhook", "api": "api"}
PREFIX = "rehearsal-"  # Scaleway's names must have one (bucket names are global)


def unzip(archive: Path, target: Path) -> Path:
    """``archive`` into an empty ``target``, as the platform unpacks it."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(target)
    return target


def runtime_sdk(target: Path) -> Path:
    """The SDK a Lambda runtime carries, at the oldest version the functions support."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--require-hashes", "--no-compile", "--target", str(target),
         "-r", str(RUNTIME_SDK)],
        check=True,
    )  # fmt: skip
    return target


def runtime_python() -> str:
    return find_python(RUNTIME_PYTHON, RUNTIME_PYTHON, "the rehearsal (the functions' runtime)")


# What a deployment chooses for a function that a rehearsal keeps (its other CITYPIPE_
# settings, the stack's names, endpoints and keys, are the rehearsal's own): Scaleway's
# export compresses its spills (decision 0118)
DEPLOYMENT_CHOICES = ("CITYPIPE_EXPORT__",)


def deployed_environment(declared: Mapping[str, Any]) -> dict[str, str]:
    """What a deployment sets in its functions' environment besides the cloud's endpoints
    and keys and citypipe's stack settings: pydantic's plugin switch, the deployment's
    ``DEPLOYMENT_CHOICES``. The artefacts run with it."""
    return {
        name: value
        for name, value in declared.items()
        if isinstance(value, str)
        and (name.startswith(DEPLOYMENT_CHOICES) or not name.startswith(("CITYPIPE_", "AWS_")))
    }


def aws_runtime(city_file: Path, work: Path) -> Runtime:
    """The Lambda artefacts of ``city_file`` built, packaged by osls and unpacked."""
    python = runtime_python()
    service = service_copy(work / "service", city_file)
    layer = service / "layer"
    build_layer(layer, host_platforms(), "{}.{}".format(*RUNTIME_PYTHON))
    packaged = package_stack(service / "infra" / "cities" / city_file.name, None, layer, service)
    task = unzip(packaged.directory / "citypipe.zip", work / "var" / "task")
    opt = unzip(packaged.directory / "library.zip", work / "opt")
    sdk = runtime_sdk(work / "var" / "runtime")
    resources = json.loads(packaged.template.read_text())["Resources"]
    functions = {
        f: resources[f"{f.value.capitalize()}LambdaFunction"]["Properties"] for f in Function
    }
    api = resources["ApiLambdaFunction"]["Properties"]
    ingest = functions[Function.INGEST]
    problems = aws_wiring(resources)
    if problems:
        raise PackagingError("; ".join(problems))
    variables = ingest["Environment"]["Variables"]
    return Runtime(
        python,
        "aws",
        (task, opt / "python", sdk),
        task,
        {f: p["Handler"] for f, p in functions.items()},
        variables["CITYPIPE_STACK__CITY_FILE"],
        {f: float(p["Timeout"]) for f, p in functions.items()},
        deployed_environment(variables),
        {  # the webhook is ingest's HTTP API route
            "webhook": (ingest["Handler"], float(ingest["Timeout"])),
            "api": (api["Handler"], float(api["Timeout"])),
        },
    )


def scaleway_runtime(city_file: Path, work: Path) -> Runtime:
    """The Scaleway namespace zip of ``city_file`` built and unpacked."""
    python = runtime_python()
    built = build_zip(city_file, PREFIX, work / "build", host_platforms())
    root = unzip(built.zip, work / "namespace")
    declared = yaml.safe_load((built.directory / "serverless.yml").read_text())
    functions = {f: declared["functions"][f.value] for f in Function}
    public = {name: declared["functions"][f] for name, f in SCALEWAY_PUBLIC.items()}
    problems = scaleway_wiring(declared["functions"])
    if problems:
        raise PackagingError("; ".join(problems))
    variables = declared["provider"]["env"]
    return Runtime(
        python,
        "scaleway",
        (root, root / "package"),
        root,
        {f: d["handler"] for f, d in functions.items()},
        variables["CITYPIPE_STACK__CITY_FILE"],
        {f: _seconds(d["timeout"]) for f, d in functions.items()},
        deployed_environment(variables),
        {name: (d["handler"], _seconds(d["timeout"])) for name, d in public.items()},
    )


# The AWS template's function each public route reaches (its logical id), by path prefix
AWS_ROUTES = {
    "/ingest/": "IngestLambdaFunction",
    "/optout": "IngestLambdaFunction",
    "/features": "ApiLambdaFunction",
}
LIBRARY_LAYER = {"Ref": "LibraryLambdaLayer"}


def aws_wiring(resources: dict[str, Any]) -> list[str]:
    """What in a packaged template would make its functions run otherwise than here: a
    function without the library's layer (here every function has it on its path), an
    HTTP API route that reaches another function than its entry point's (``AWS_ROUTES``)."""
    functions = of_type(resources, "AWS::Lambda::Function")
    problems = [
        f"{name} has not the library's layer"
        for name, r in functions.items()
        if LIBRARY_LAYER not in r["Properties"].get("Layers", [])
    ]
    integrations = {
        name: r["Properties"]["IntegrationUri"]["Fn::GetAtt"][0]
        for name, r in of_type(resources, "AWS::ApiGatewayV2::Integration").items()
    }
    for route in of_type(resources, "AWS::ApiGatewayV2::Route").values():
        key = route["Properties"]["RouteKey"]
        target = integrations.get(route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"])
        path = key.split(" ", 1)[1]
        wanted = next((f for p, f in AWS_ROUTES.items() if path.startswith(p)), None)
        if target != wanted:
            problems.append(f"{key} reaches {target}, not {wanted}")
    return problems


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    """A template's resources of one CloudFormation type, by logical id."""
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def scaleway_wiring(functions: dict[str, Any]) -> list[str]:
    """What in a Scaleway ``serverless.yml`` would run a function otherwise than the
    rehearsal runs it: the public entry points answer anyone (behind their own checks),
    every other function only its triggers; ingest's queue is drained by its CRON, with no
    queue trigger (the local runner fires that CRON: decision 121)."""
    exposed = sorted(n for n, d in functions.items() if d.get("privacy") == "public")
    wanted = sorted(SCALEWAY_PUBLIC.values())
    problems = [] if exposed == wanted else [f"public functions {exposed}, not {wanted}"]
    events = functions.get(Function.INGEST.value, {}).get("events") or []
    inputs = [e["schedule"].get("input") for e in events if "schedule" in e]
    if DRAIN_CRON_BODY not in inputs or any("sqs" in e for e in events):
        problems.append("ingest: its queue drained by its CRON, no queue trigger (decision 121)")
    return problems


def _seconds(timeout: str | int) -> float:
    """A Scaleway ``timeout`` (``300s``) in seconds."""
    return float(str(timeout).rstrip("s"))


@dataclass(frozen=True)
class Rehearsal:
    cloud: Cloud
    from_source: Path  # the source tree's run: its ``out``
    from_artefacts: Path  # the artefacts' run
    differences: list[str]  # open-zone files that differ, or exist in one run only
    balanced: bool  # both runs' books balance
    invocations: dict[str, int]  # what each function's artefacts answered
    published: int  # the artefacts' run's published data files (Parquet)
    # the public entry points' answers (``citypipe_local.public``) that differ between the
    # runs, and the artefacts' answers
    answered_differently: list[str] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    posted: int = 0  # SenML packs of the captures to post to the webhook (none: none to post)
    posted_published: bool = False  # the packs' day (``dated``) in the artefacts' open zone
    ruled: int = 0  # IoT Core uplinks of the captures to hand to ingest as its rule does (AWS)
    ruled_written: int = 0  # batches the artefacts' edge wrote by the IoT rule's route

    @property
    def passed(self) -> bool:
        """Both runs balance, publish the same files and answer the same on the public
        entry points, and it was the artefacts that ran: every function and entry point
        answered from them — the API with its pages, the webhook with a refusal and with
        readings accepted, which the books count — and something was published (else an
        empty hour would pass)."""
        ran = all(self.invocations.get(name, 0) > 0 for name in (*Function, *PUBLIC))
        equal = not self.differences and not self.answered_differently
        answered = all(self.answered().values())
        return self.balanced and equal and ran and answered and self.published > 0

    def answered(self) -> dict[str, bool]:
        """Whether the artefacts' API served every request, and features (the day's Parquet
        read); whether their webhook refused every token no source has, took the opt-out,
        and accepted every pack there was to post, handed to the buffer (the books count
        them); whether their ingest accepted every IoT rule's uplink there was to hand it;
        and whether the packs' day was published."""
        api = self.answers.get("api", {})
        refusals = self.answers.get("refused", {})
        posted = self.answers.get("posted", {}).values()
        ruled = self.answers.get("iot", {}).values()
        return {
            "served": bool(api) and all(a["status"] == 200 for a in api.values()),
            "features": any(a["returned"] for a in api.values()),
            "refused": bool(refusals) and all(a["status"] == 401 for a in refusals.values()),
            "opted_out": self.answers.get("optout", {}).get(OPTOUT_PATH, {}).get("status") == 202,
            "accepted": len(posted) == self.posted
            and all(a["accepted"] and a["buffered"] for a in posted),
            "iot": len(ruled) == self.ruled
            and all(a["accepted"] and not a["duplicates"] for a in ruled)
            and self.ruled_written == self.ruled,
            "published": self.posted_published or not (self.posted or self.ruled),
        }


def differences(left: Path, right: Path) -> list[str]:
    """Relative paths of the files that differ between two trees, or exist in one only."""
    found: list[str] = []

    def walk(comparison: filecmp.dircmp[str], prefix: str) -> None:
        found.extend(prefix + n for n in comparison.left_only + comparison.right_only)
        found.extend(prefix + n for n in comparison.funny_files)
        _, mismatch, errors = filecmp.cmpfiles(
            comparison.left, comparison.right, comparison.common_files, shallow=False
        )
        found.extend(prefix + n for n in mismatch + errors)
        for name, sub in comparison.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right), "")
    return sorted(found)


def rehearse(
    city_file: Path, cloud: Cloud, work: Path, hours: float = 1.0, scale: float = 0.05
) -> Rehearsal:
    """A simulated hour of ``city_file`` run twice on the same keys — by the source tree,
    then by the built artefacts — and the two open zones compared file by file, and the
    answers of their public entry points request by request (``public_answers``: its
    packs dated on the day the rehearsal began, in both runs)."""
    dated = midnight(datetime.now(UTC))
    city = checked_city(city_file)
    runtime = (aws_runtime if cloud == "aws" else scaleway_runtime)(city_file, work / "built")
    recorded = work / "input"
    shutil.rmtree(recorded, ignore_errors=True)
    simulate(city, recorded, hours=hours, seed=11, scale=scale)
    keys = work / "keys"
    shutil.rmtree(keys, ignore_errors=True)
    prefix = PREFIX if cloud == "scaleway" else ""
    options = ReplayOptions(
        keys_dir=keys,
        platform=cloud,
        concurrency=2,
        name_prefix=prefix,
        probe=partial(public_answers, input_dir=recorded, dated=dated),
    )
    source = replay(city_file, recorded, work / "from-source", options)
    artefacts = replay(
        city_file, recorded, work / "from-artefacts", replace(options, runtime=runtime)
    )
    same_day(dated, datetime.now(UTC))
    opened = (work / "from-source" / "open", work / "from-artefacts" / "open")
    return Rehearsal(
        cloud=cloud,
        from_source=work / "from-source",
        from_artefacts=work / "from-artefacts",
        differences=differences(*opened),
        balanced=bool(source["balanced"] and artefacts["balanced"]),
        invocations=artefacts["from_artefacts"]["invocations"],
        published=len(list(opened[1].rglob("*.parquet"))),
        answered_differently=answered_differently(source["public"], artefacts["public"]),
        answers=artefacts["public"],
        posted=len(packs(recorded, city, dated)),
        ruled=len(uplinks(recorded, city, dated)) if cloud == "aws" else 0,
        ruled_written=route_lineages(work / "from-artefacts", Route.IOT_RULE.value),
        posted_published=any(opened[1].rglob(f"date={dated:%Y-%m-%d}/*.parquet")),
    )


def route_lineages(out: Path, route: str) -> int:
    """The batches a run's edge wrote that came by ``route``: their lineage records in its
    audit zone (``edge/<route>/…``, ``naming.edge_key``)."""
    marker = f'"edge/{route}/'
    return sum(marker in path.read_text() for path in (out / "audit").rglob("*.json"))


def midnight(now: datetime) -> datetime:
    """The start of ``now``'s day (UTC)."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def same_day(dated: datetime, now: datetime) -> None:
    """A rehearsal ends on the UTC day it began, whose date its packs carry in both runs:
    a city that keeps a single day's key refuses them the next day."""
    if midnight(now) != dated:
        raise RuntimeError(
            f"the rehearsal began on {dated:%Y-%m-%d} (UTC), the day its packs are dated, "
            "and ended on the next: run it again"
        )


def answered_differently(left: dict[str, Any], right: dict[str, Any]) -> list[str]:
    """The requests (``<entry point> <request>``) two runs' entry points answered
    differently, or asked in one run only."""
    asked = {(e, r) for each in (left, right) for e, rs in each.items() for r in rs}
    return sorted(
        f"{entry} {request}"
        for entry, request in asked
        if left.get(entry, {}).get(request) != right.get(entry, {}).get(request)
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="citypipe_local.rehearse", description=__doc__)
    parser.add_argument("--city", type=Path, required=True)
    parser.add_argument("--cloud", choices=["aws", "scaleway"], required=True)
    parser.add_argument("--work", type=Path, default=ROOT / ".build" / "rehearsal")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--scale", type=float, default=0.25)
    args = parser.parse_args(argv)
    try:
        done = rehearse(args.city, args.cloud, args.work / args.cloud, args.hours, args.scale)
    except (ConfigError, PackagingError, RuntimeError) as exc:
        sys.stderr.write(f"error: {' '.join(str(exc).split())}\n")
        raise SystemExit(2) from None
    if not done.passed:
        sys.stderr.write(
            f"rehearsal ({args.cloud}) FAILED: books balanced: {done.balanced}; open-zone "
            f"files differing from the source tree's run: {done.differences[:20]}; answers "
            f"of the public entry points differing: {done.answered_differently[:20]}; "
            f"invocations from the artefacts: {done.invocations}; published: {done.published};"
            f" packs to post: {done.posted}; IoT uplinks to hand over: {done.ruled}; the"
            f" artefacts' answers: {done.answered()}\n"
        )
        raise SystemExit(1)
    sys.stdout.write(
        f"rehearsal ({args.cloud}): the artefacts' open data, and their API's and webhook's "
        f"answers ({done.posted} packs posted, {done.ruled} IoT rule uplinks), equal the "
        "source tree's "
        f"({done.from_artefacts / 'open'})\n"
    )


if __name__ == "__main__":
    main()
