"""Fixtures for the online host tests: a host per test in a temporary workspace, a tiny scoring
script, and an asyncio load client. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest

from mlops.workspace.local.online.client import LocalHostClient
from mlops.workspace.local.online.desired_state import DeploymentRuntime, EndpointRuntime
from mlops.workspace.port import ProbeSettings, RequestSettings
from tests.conftest import free_port

# init() fails when FAIL_INIT is set and sleeps INIT_SLEEP seconds; run() records every request it receives (one line per request
# in RECORD_DIR/<DEP>.log, so a test can count what reached a deployment), sleeps when asked, answers
# a chosen status when asked, and echoes which deployment it is and the headers it saw.
SCORE_PY = '''\
import json
import os
import time

from azureml_inference_server_http.api.aml_response import AMLResponse


def init():
    if os.environ.get("FAIL_INIT"):
        raise RuntimeError("init failed on purpose")
    time.sleep(float(os.environ.get("INIT_SLEEP", "0")))


def run(raw_data, request_headers):
    deployment = os.environ["DEP"]
    with open(os.path.join(os.environ["RECORD_DIR"], deployment + ".log"), "a") as record:
        record.write(raw_data.replace("\\n", " ") + "\\n")
    data = json.loads(raw_data)
    if data.get("sleep"):
        time.sleep(data["sleep"])
    if data.get("status"):
        return AMLResponse({"reason": "asked for " + str(data["status"])}, data["status"], json_str=True)
    return {"dep": deployment, "target_header": request_headers.get("Azureml-Model-Deployment"),
            "authorization": request_headers.get("Authorization"), "pid": os.getpid()}
'''

FAST_PROBE = ProbeSettings(initial_delay=0, period=1, timeout=2, failure_threshold=20)
PRIMARY = "primary-key-for-tests"
SECONDARY = "secondary-key-for-tests"


@dataclass
class Setup:
    root: Path
    host: LocalHostClient
    code_dir: Path
    record_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/score"

    def deployment(self, name: str, *, instance_count: int = 1, max_concurrent: int = 4, timeout_ms: int = 5000,
                   env: dict[str, str] | None = None, generation: str = "1",
                   readiness: ProbeSettings = FAST_PROBE, liveness: ProbeSettings = FAST_PROBE) -> DeploymentRuntime:
        return DeploymentRuntime(
            name=name, python=sys.executable, code_dir=str(self.code_dir), scoring_script="score.py",
            model_dir=str(self.code_dir),
            environment_variables={"DEP": name, "RECORD_DIR": str(self.record_dir), **(env or {})},
            instance_count=instance_count,
            request_settings=RequestSettings(request_timeout_ms=timeout_ms,
                                             max_concurrent_requests_per_instance=max_concurrent),
            liveness_probe=liveness, readiness_probe=readiness, generation=generation)

    def endpoint(self, deployments: tuple[DeploymentRuntime, ...], traffic: dict[str, int], *,
                 mirror: dict[str, int] | None = None, primary: str = PRIMARY,
                 secondary: str = SECONDARY) -> EndpointRuntime:
        return EndpointRuntime(name="ep-test", port=self.port, primary_key=primary, secondary_key=secondary,
                               traffic=traffic, mirror_traffic=mirror or {}, deployments=deployments)

    def received(self, deployment: str) -> int:
        path = self.record_dir / f"{deployment}.log"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "ws" / "logs").rglob("*.log")):
            parts.append(f"--- {path.relative_to(self.root)} ---\n{path.read_text(errors='replace')[-6000:]}")
        return "\n".join(parts)


@pytest.fixture
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "score.py").write_text(SCORE_PY)
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    host = LocalHostClient(tmp_path / "ws")
    result = Setup(tmp_path, host, code_dir, record_dir, free_port())
    try:
        yield result
    finally:
        host.stop()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            sys.stderr.write(result.logs())


def auth(key: str = PRIMARY, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json", **extra}


@dataclass
class LoadResult:
    statuses: Counter = field(default_factory=Counter)
    served_by: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    worker_pids: set[int] = field(default_factory=set)
    """The ``pid`` score.py reported: which instance workers served."""

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


async def _load(url: str, headers: dict[str, str], body: bytes, concurrency: int, *, count: int | None,
                stop: threading.Event | None, result: LoadResult) -> None:
    issued = 0

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker() -> None:
            nonlocal issued
            while (count is None or issued < count) and (stop is None or not stop.is_set()):
                issued += 1
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        text = await response.text()
                        result.statuses[response.status] += 1
                        result.served_by.append(response.headers.get("azureml-model-deployment", ""))
                        if response.status != 200:
                            result.failures.append(f"{response.status}: {text[:200]}")
                        elif '"pid"' in text:
                            result.worker_pids.add(json.loads(text)["pid"])
                except aiohttp.ClientError as exc:
                    result.statuses["error"] += 1
                    result.failures.append(repr(exc))

        await asyncio.gather(*(worker() for _ in range(concurrency)))


T = TypeVar("T")


def settled(read: Callable[[], T], *, done: Callable[[T], bool] = lambda value: True, quiet: float = 0.5,
            timeout: float = 60.0) -> T:
    """Wait on a condition, not for a fixed time: poll ``read()`` until ``done(value)`` holds and the
    value has not changed for ``quiet`` seconds - the work the router does in the background
    (mirrored copies, answered after the client's response) has finished however busy the machine
    is - and return it; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while True:
        time.sleep(0.05)
        now_value, now = read(), time.monotonic()
        if now_value != value:
            value, since = now_value, now
        elif done(value) and now - since >= quiet:
            return value
        assert now < deadline, f"not settled within {timeout:g}s: last {value!r}"


def load(url: str, *, count: int, concurrency: int = 4, headers: dict[str, str] | None = None,
         body: bytes = b'{"x": 1}') -> LoadResult:
    """Send ``count`` requests with ``concurrency`` keep-alive clients; wait for all."""
    result = LoadResult()
    asyncio.run(_load(url, headers or auth(), body, concurrency, count=count, stop=None, result=result))
    return result


class BackgroundLoad:
    """Continuous load in a thread until ``stop()``; ``result`` counts every response."""

    def __init__(self, url: str, *, concurrency: int = 4, headers: dict[str, str] | None = None) -> None:
        self.result = LoadResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(_load(
            url, headers or auth(), b'{"x": 1}', concurrency, count=None, stop=self._stop, result=self.result),),
            daemon=True)

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def wait_for(self, total: int, timeout: float = 60.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while self.result.total < total:
            assert time.monotonic() < deadline, f"load stalled at {self.result.total} requests"
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
