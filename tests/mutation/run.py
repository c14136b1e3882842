"""``make mutation``: mutation testing of the privacy cores.

For each module of ``modules.toml``, every mutant ``operators.py`` makes of it is run against
the unit tests that guard it; a mutant the tests pass with *survived*. A survivor listed in
``equivalent.toml`` (a change nothing can observe, each with its reason) is set aside; any
other fails the run, as does a module scoring under 95 % of its non-equivalent mutants, or a
listed mutant that no longer survives (the list would hide nothing, or the wrong thing).

How: the library and the tests' third-party imports are loaded once; each mutant runs in a
child forked from that process, which forgets the project's own modules, imports the mutated
module from memory (nothing on disk changes) and runs ``pytest -x`` on the module's tests —
two children at a time (``--jobs``); a test is interrupted past a limit of CPU time, set
from what it took on the unchanged module (counted as killed: a mutant that loops forever is
caught in seconds, and a machine others share does not pass for a loop), and a child past
its module's timeout of wall time is killed. The report of survivors, by module, is
printed and written to ``out/mutation/report.md``.

    python tests/mutation/run.py                       # every module (make mutation)
    python tests/mutation/run.py --module core/noise.py
    python tests/mutation/run.py --module core/noise.py --list
    python tests/mutation/run.py --module core/noise.py --only "bernoulli_exp"
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import signal
import sys
import time
import tomllib
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PACKAGE = ROOT / "layers" / "citypipe" / "python" / "citypipe"
REPORT = ROOT / "out" / "mutation" / "report.md"
FIRST_PARTY = ("citypipe", "citypipe_local", "citypipe_bridge")
TIMED_OUT = 124  # a child's exit code when a test ran past its limit
MIN_TEST_SECONDS = 3.0  # the least CPU time a test may take under a mutant before it is stopped
LIMIT_FACTOR = 5  # and the most, in times what it took on the unchanged module
PASSING_SCORE = 0.95

# this tree's packages first (a venv's editable install may point at another checkout), as
# the tests' pytest configuration does for tests/unit
for path in (ROOT / "tests" / "unit", ROOT / "tools", ROOT / "bridge", PACKAGE.parent, HERE):
    sys.path.insert(0, str(path))
from operators import Mutant, mutants, scopes  # noqa: E402


@dataclass(frozen=True)
class Module:
    """A module mutated: its path under ``citypipe/``, the tests run against each mutant
    (in order: the quickest to fail first), the top-level names mutated (all by default)."""

    path: str
    tests: tuple[str, ...]
    include: tuple[str, ...] | None = None
    timeout: float | None = None  # seconds a mutant may take; from the baseline by default

    @property
    def name(self) -> str:
        return "citypipe." + self.path.removesuffix(".py").replace("/", ".")

    @property
    def file(self) -> Path:
        return PACKAGE / self.path

    def mutants(self) -> list[Mutant]:
        source = self.file.read_text()
        if self.include is not None:
            unknown = sorted(set(self.include) - set(scopes(source)))
            if unknown:
                raise SystemExit(f"modules.toml: {self.path} names no {unknown}")
        return mutants(source, self.include)


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed | timeout | survived
    seconds: float


@dataclass
class Score:
    module: Module
    outcomes: list[Outcome]
    equivalent: dict[str, str]  # ident -> why, as listed
    seconds: float
    partial: bool = False  # --only: some mutants were not run
    problems: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def survivors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "survived"]

    @property
    def unexplained(self) -> list[Outcome]:
        return [o for o in self.survivors if o.mutant.ident not in self.equivalent]

    @property
    def listed(self) -> int:
        return sum(1 for o in self.survivors if o.mutant.ident in self.equivalent)

    @property
    def non_equivalent(self) -> int:
        return len(self.outcomes) - self.listed

    @property
    def killed(self) -> int:
        return self.count("killed") + self.count("timeout")

    @property
    def score(self) -> float:
        return self.killed / self.non_equivalent if self.non_equivalent else 1.0

    def check(self) -> None:
        if self.unexplained:
            self.problems.append(f"{len(self.unexplained)} survivor(s) neither killed nor listed")
        if self.score < PASSING_SCORE:
            self.problems.append(f"score {self.score:.1%} under {PASSING_SCORE:.0%}")
        if self.partial:
            return
        status = {o.mutant.ident: o.status for o in self.outcomes}
        for ident in self.equivalent:
            if ident not in status:
                self.problems.append(f"listed as equivalent, but no such mutant: {ident}")
            elif status[ident] != "survived":
                self.problems.append(f"listed as equivalent, but {status[ident]}: {ident}")


def load_modules() -> list[Module]:
    config = tomllib.loads((HERE / "modules.toml").read_text())
    return [
        Module(
            path,
            tuple(entry["tests"]),
            tuple(entry["include"]) if "include" in entry else None,
            entry.get("timeout"),
        )
        for path, entry in config["modules"].items()
    ]


def load_equivalents() -> dict[str, dict[str, str]]:
    """module path -> mutant ident -> why it is equivalent."""
    listed: dict[str, dict[str, str]] = {}
    for entry in tomllib.loads((HERE / "equivalent.toml").read_text()).get("equivalent", []):
        module, ident, why = entry["module"], entry["mutant"], entry["why"].strip()
        if not why:
            raise SystemExit(f"equivalent.toml: {module}: {ident}: say why it is equivalent")
        if ident in listed.setdefault(module, {}):
            raise SystemExit(f"equivalent.toml: {module}: {ident}: listed twice")
        listed[module][ident] = why
    return listed


# --- the child: one mutant, one pytest run ---------------------------------------------------


class _Served(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports one module from a source in memory (the mutant), as if it were on disk."""

    def __init__(self, name: str, source: str, origin: Path) -> None:
        self.name, self.source, self.origin = name, source, origin

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=str(self.origin))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.__file__ = str(self.origin)
        exec(compile(self.source, str(self.origin), "exec"), module.__dict__)


def _forget_the_project() -> None:
    """Drop every module of the repository (library, tooling, tests) from the import cache;
    third-party ones (pyarrow, pydantic, hypothesis...) stay loaded."""
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        mine = name.split(".")[0] in FIRST_PARTY or (
            origin is not None
            and Path(origin).resolve().is_relative_to(ROOT)
            and ".venv" not in Path(origin).parts
        )
        if mine:
            del sys.modules[name]


def _pytest_args(tests: Sequence[str]) -> list[str]:
    return [*tests, "-x", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts="]


class _TestTooLong(Exception):
    pass


class _PerTestLimit:
    """A pytest plugin: each test interrupted past its limit of CPU time — ``LIMIT_FACTOR``
    times what it took on the unchanged module, ``MIN_TEST_SECONDS`` at least — so a mutant
    that loops forever is caught in seconds, not at the module's timeout. CPU time, not wall
    time: a test waiting for a core another process holds is not looping. Records what each
    test took (the baseline's measure)."""

    def __init__(self, limits: dict[str, float]) -> None:
        self.limits = limits
        self.took: dict[str, float] = {}
        self.fired = False

    def _alarm(self, signum: int, frame: object) -> None:
        self.fired = True
        raise _TestTooLong("over its limit")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        limit = self.limits.get(item.nodeid, self.limits.get("*", MIN_TEST_SECONDS))
        previous = signal.signal(signal.SIGPROF, self._alarm)
        signal.setitimer(signal.ITIMER_PROF, limit)
        started = time.process_time()
        try:
            return (yield)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, previous)
            self.took[item.nodeid] = time.process_time() - started


def _child(module: Module, source: str, log: str, limits: dict[str, float]) -> NoReturn:
    code = 3
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.setpgid(0, 0)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        _forget_the_project()
        sys.meta_path.insert(0, _Served(module.name, source, module.file))
        from hypothesis import settings

        # the same examples every run (the score is reproducible), none kept on disk
        settings.register_profile("mutation", database=None, derandomize=True, deadline=None)
        settings.load_profile("mutation")
        limit = _PerTestLimit(limits)
        for test in module.tests:  # one file at a time: the next is not even collected
            code = int(pytest.main(_pytest_args([test]), plugins=[limit]))
            if code != 0:
                break
        if limit.fired:
            code = TIMED_OUT
        if log != os.devnull:  # the baseline: what each test took
            Path(f"{log}.json").write_text(json.dumps(limit.took))
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _warm(modules: Sequence[Module]) -> None:
    """Load every third-party module the tests import, once, in the parent: collecting the
    tests imports them; the project's own modules are then forgotten."""
    tests = sorted({test for module in modules for test in module.tests})
    with _silenced():
        code = pytest.main(["--collect-only", *_pytest_args(tests)])
    if code != 0:
        raise SystemExit(f"collecting {tests} failed ({code}): run them with pytest")
    _forget_the_project()


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


# --- the parent: children two at a time ------------------------------------------------------


@dataclass
class _Running:
    mutant: Mutant
    started: float


@dataclass
class _Pool:
    """Children running a module's mutants, ``jobs`` at a time, each killed past
    ``timeout``; each test in them limited to ``limits`` (by test id)."""

    module: Module
    timeout: float
    jobs: int
    limits: dict[str, float] = field(default_factory=dict)
    log: str = os.devnull  # where a child's output goes
    quiet: bool = False
    running: dict[int, _Running] = field(default_factory=dict)
    done: dict[str, Outcome] = field(default_factory=dict)

    def run(self, todo: Sequence[Mutant]) -> list[Outcome]:
        pending = list(reversed(todo))
        try:
            while pending or self.running:
                while pending and len(self.running) < self.jobs:
                    self._start(pending.pop())
                if not self._reap(len(todo)):
                    self._expire(len(todo))
                    time.sleep(0.02)
        finally:  # interrupted: no child outlives the run
            for pid in self.running:
                self._kill(pid)
        return [self.done[m.ident] for m in todo]

    def _start(self, mutant: Mutant) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(self.module, mutant.source, self.log, self.limits)
        self.running[pid] = _Running(mutant, time.monotonic())

    def _reap(self, total: int) -> bool:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if not pid:
            return False
        run = self.running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        state = {0: "survived", TIMED_OUT: "timeout"}.get(code, "killed")
        self._record(Outcome(run.mutant, state, time.monotonic() - run.started), total)
        return True

    def _expire(self, total: int) -> None:
        now = time.monotonic()
        for pid, run in list(self.running.items()):
            if now - run.started > self.timeout:
                self._kill(pid)
                del self.running[pid]
                self._record(Outcome(run.mutant, "timeout", now - run.started), total)

    @staticmethod
    def _kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    def _record(self, outcome: Outcome, total: int) -> None:
        self.done[outcome.mutant.ident] = outcome
        if not self.quiet:
            mark = {"killed": ".", "timeout": "T", "survived": "S"}[outcome.status]
            count = len(self.done)
            print(mark, end="\n" if count % 50 == 0 or count == total else "", flush=True)


def _baseline(module: Module, jobs: int) -> tuple[float, dict[str, float]]:
    """The module's tests on the unchanged module, run as a mutant is: they must pass. The
    seconds they took, and each test's limit (from what it took)."""
    original = Mutant("unchanged", 0, module.file.read_text())
    log = str(REPORT.parent / f"baseline-{module.path.replace('/', '-')}.log")
    started = time.monotonic()
    pool = _Pool(module, timeout=600, jobs=jobs, log=log, quiet=True, limits={"*": 600.0})
    (outcome,) = pool.run([original])
    if outcome.status != "survived":
        raise SystemExit(f"{module.path}: its tests fail on the unchanged module: see {log}")
    took: dict[str, float] = json.loads(Path(f"{log}.json").read_text())
    limits = {test: max(MIN_TEST_SECONDS, LIMIT_FACTOR * s) for test, s in took.items()}
    return time.monotonic() - started, limits


def score_module(
    module: Module, listed: dict[str, str], jobs: int, only: Sequence[str] | None
) -> Score:
    started = time.monotonic()
    todo = module.mutants()
    if only:
        todo = [m for m in todo if any(text in m.ident for text in only)]
    print(f"{module.path}: {len(todo)} mutants, tests {' '.join(module.tests)}", flush=True)
    base, limits = _baseline(module, jobs)
    # a backstop in wall time, for a mutant that blocks without computing: generous, since
    # the machine may be shared (a loop is caught by each test's limit of CPU time)
    timeout = module.timeout or max(60.0, 10 * base + 30)
    print(f"  baseline {base:.1f} s, timeout {timeout:.0f} s", flush=True)
    outcomes = _Pool(module, timeout, jobs, limits).run(todo)
    result = Score(module, outcomes, listed, time.monotonic() - started, partial=bool(only))
    result.check()
    return result


# --- the report --------------------------------------------------------------------------------


def _diff(module: Module, mutant: Mutant) -> str:
    before = module.file.read_text().splitlines()
    after = mutant.source.splitlines()
    lines = difflib.unified_diff(before, after, "", "", n=0, lineterm="")
    return "\n".join(line for line in lines if not line.startswith(("---", "+++")))


def _entry(module: Module, mutant: Mutant) -> str:
    """A survivor as an entry of equivalent.toml, to fill in if it truly is one."""
    ident = json.dumps(mutant.ident, ensure_ascii=False)
    return f'[[equivalent]]\nmodule = "{module.path}"\nmutant = {ident}\nwhy = """\n"""'


def report(scores: Sequence[Score], seconds: float) -> str:
    lines = ["# Mutation testing of the privacy cores", ""]
    lines += [
        "| module | mutants | killed | of which timeouts | equivalent | survived | score | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.module.path} | {len(s.outcomes)} | {s.killed} | {s.count('timeout')} | "
            f"{s.listed} | {len(s.unexplained)} | {s.killed}/{s.non_equivalent} = "
            f"{s.score:.1%} | {s.seconds:.0f} s |"
        )
    lines += ["", f"Total: {seconds / 60:.1f} minutes.", ""]
    for s in scores:
        if not (s.problems or s.unexplained):
            continue
        lines += [f"## {s.module.path}", ""]
        lines += [f"- {problem}" for problem in s.problems]
        for outcome in s.unexplained:
            mutant = outcome.mutant
            lines += ["", f"### line {mutant.line}: {mutant.ident}", "", "```diff"]
            lines += [_diff(s.module, mutant), "```", "", "```toml", _entry(s.module, mutant)]
            lines += ["```"]
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", help="a module of modules.toml (repeat)")
    parser.add_argument("--jobs", type=int, default=2, help="children at a time (2)")
    parser.add_argument(
        "--only", action="append", help="run only the mutants whose name holds this (repeat)"
    )
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--show", help="print the diff of the mutants whose name holds this")
    args = parser.parse_args(argv)
    modules = load_modules()
    if args.module:
        unknown = set(args.module) - {m.path for m in modules}
        if unknown:
            parser.error(f"not in modules.toml: {sorted(unknown)}")
        modules = [m for m in modules if m.path in args.module]
    if args.list or args.show is not None:
        for module in modules:
            for mutant in module.mutants():
                if args.list:
                    print(f"{module.path}:{mutant.line}: {mutant.ident}")
                elif args.show is not None and args.show in mutant.ident:
                    print(f"{module.path}:{mutant.line}: {mutant.ident}\n{_diff(module, mutant)}")
        return 0
    equivalents = load_equivalents()
    unknown = set(equivalents) - {m.path for m in load_modules()}
    if unknown:
        raise SystemExit(f"equivalent.toml names modules not mutated: {sorted(unknown)}")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _warm(modules)
    scores = [
        score_module(module, equivalents.get(module.path, {}), args.jobs, args.only)
        for module in modules
    ]
    text = report(scores, time.monotonic() - started)
    REPORT.write_text(text)
    print()
    print(text)
    print(f"(written to {REPORT.relative_to(ROOT)})")
    return 1 if any(s.problems for s in scores) else 0


def _terminated(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminated)
    sys.exit(main())
