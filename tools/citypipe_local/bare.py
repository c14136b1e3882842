"""The functions run from their deployment artefacts: each in a bare interpreter whose
import path holds the unpacked artefacts and nothing else (``bare_runtime.py``), invoked
by the local runner as the functions of the source tree are (``Invoker``'s contract).

What the replay's hubs do — the edge a bridge runs — stays on the source tree: it is not
in the functions' artefacts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from citypipe.domain.model import Function
from citypipe.settings import Settings
from citypipe_local.runner import (
    InvocationCrashedError,
    Invoker,
    LambdaContext,
    Platform,
    settings_environment,
)

RUNTIME = Path(__file__).with_name("bare_runtime.py")
# What a function's runtime has in its environment besides the deployment's variables
PASSED_ENV = frozenset({"PATH", "LANG", "LC_ALL", "TMPDIR", "TZ"})


@dataclass(frozen=True)
class Runtime:
    """Where the artefacts were unpacked and how a platform runs them: ``python`` (the
    runtime's version), the import path in front of its standard library, the working
    directory (Lambda's ``/var/task``), each function's handler as the deployment names it,
    the city file's path there, and what else the deployment sets in a function's
    environment (pydantic's plugin switch: not citypipe's settings, endpoints or keys);
    ``public``: the handler and timeout of each public entry point (``runner.PUBLIC``: the
    webhook, the API) as the deployment names them."""

    python: str
    platform: Platform
    path: tuple[Path, ...]
    cwd: Path
    handlers: dict[Function, str]
    city_file: str
    timeout_s: dict[Function, float]
    environment: Mapping[str, str] = field(default_factory=dict)
    public: Mapping[str, tuple[str, float]] = field(default_factory=dict)


def function_environment(settings: Settings, runtime: Runtime) -> dict[str, str]:
    """The deployment's variables, as a function of the artefacts reads them: the city
    file at its place in the zip, and the deployment's own environment."""
    environment = settings_environment(settings)
    stack = json.loads(environment["CITYPIPE_STACK"])
    environment["CITYPIPE_STACK"] = json.dumps(stack | {"city_file": runtime.city_file})
    region = settings.backend.region or ""
    passed = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    deployed = dict(runtime.environment)
    return passed | deployed | environment | {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}


@dataclass
class _Container:
    process: subprocess.Popen[str]
    answers: IO[str]


class BareFunction:
    """One function's containers (``name``: a function, or a public entry point, whose
    ``handler`` the deployment names): up to ``size`` bare interpreters, started on demand,
    each running one invocation at a time and keeping its cold-started handler."""

    def __init__(
        self, runtime: Runtime, name: str, handler: str, size: int, env: dict[str, str], logs: Path
    ) -> None:
        self.runtime, self.name, self.handler, self.size, self.env, self.logs = (
            runtime, name, handler, size, env, logs
        )  # fmt: skip
        self._idle: list[_Container] = []
        self._all: list[_Container] = []
        self._available = threading.Condition()
        self.invocations = 0

    def _start(self) -> _Container:
        read, write = os.pipe()
        runtime = self.runtime
        with self.logs.open("ab") as logs:
            process = subprocess.Popen(
                [runtime.python, "-I", "-S", str(RUNTIME), str(write), self.handler,
                 runtime.platform, *map(str, runtime.path)],
                stdin=subprocess.PIPE, stdout=logs, stderr=logs, pass_fds=(write,),
                env=self.env, cwd=runtime.cwd, text=True,
            )  # fmt: skip
        os.close(write)
        return _Container(process, os.fdopen(read, encoding="utf-8"))

    def _take(self) -> _Container:
        with self._available:
            while not self._idle and len(self._all) >= self.size:
                self._available.wait()
            if self._idle:
                return self._idle.pop()
            container = self._start()
            self._all.append(container)
            return container

    def _give_back(self, container: _Container, alive: bool) -> None:
        with self._available:
            if alive:
                self._idle.append(container)
            else:
                self._all.remove(container)
            self._available.notify()

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        container = self._take()
        assert container.process.stdin is not None
        try:
            container.process.stdin.write(json.dumps(request, default=str) + "\n")
            container.process.stdin.flush()
            line = container.answers.readline()
        except OSError:
            line = ""
        if not line:
            container.process.wait(10)
            self._give_back(container, alive=False)
            raise InvocationCrashedError(
                f"{self.name}: its runtime exited ({container.process.returncode}); see {self.logs}"
            )
        self._give_back(container, alive=True)
        with self._available:
            self.invocations += 1
        answer = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(f"{self.name}: {answer['error']}")
        value: dict[str, Any] = answer["value"]
        return value

    def close(self) -> None:
        with self._available:
            containers, self._all, self._idle = self._all, [], []
        for container in containers:
            with contextlib.suppress(OSError):
                assert container.process.stdin is not None
                container.process.stdin.close()
        for container in containers:
            try:
                container.process.wait(10)
            except subprocess.TimeoutExpired:
                container.process.kill()
                container.process.wait()
            container.answers.close()


class BareInvoker(Invoker):
    """``Invoker`` whose functions run from the artefacts (``Runtime``); the replay's edge
    workers are the source tree's, as a bridge's are."""

    def __init__(self, settings: Settings, workers: int, logs: Path, runtime: Runtime) -> None:
        super().__init__(settings, workers, logs)
        self.runtime = runtime
        env = function_environment(settings, runtime)
        self.functions = {
            f: BareFunction(runtime, f.value, runtime.handlers[f], workers, env, logs)
            for f in Function
        }
        self.public = {
            name: BareFunction(runtime, name, handler, workers, env, logs)
            for name, (handler, _) in runtime.public.items()
        }

    def invoke(
        self, function: Function, platform: Platform, event: dict[str, Any], context: Any
    ) -> dict[str, Any]:
        return self._call(
            self.functions[function], self.runtime.timeout_s[function], platform, event, context
        )

    def invoke_public(
        self, name: str, platform: Platform, event: dict[str, Any], context: Any
    ) -> dict[str, Any]:
        if name not in self.public:
            raise ValueError(f"the artefacts name no handler of the public entry point {name!r}")
        return self._call(self.public[name], self.runtime.public[name][1], platform, event, context)

    def _call(
        self,
        runs: BareFunction,
        timeout_s: float,
        platform: Platform,
        event: dict[str, Any],
        context: Any,
    ) -> dict[str, Any]:
        if platform != self.runtime.platform:
            raise ValueError(f"the artefacts are {self.runtime.platform}'s, not {platform}'s")
        request: dict[str, Any] = {"event": event, "timeout_s": timeout_s}
        if isinstance(context, LambdaContext):
            fields = dataclasses.asdict(context)  # Lambda's context, less the local clock's
            request["context"] = {k: v for k, v in fields.items() if k not in ("started",)}
        else:
            request["context"] = context
        return runs.call(request)

    @property
    def invocations(self) -> dict[str, int]:
        """The invocations each function's artefacts answered (and each public entry
        point's)."""
        runs = [*self.functions.values(), *self.public.values()]
        return {each.name: each.invocations for each in runs}

    def close(self) -> None:
        super().close()
        for runs in [*self.functions.values(), *self.public.values()]:
            runs.close()
