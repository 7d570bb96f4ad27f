"""Fixtures shared by every test.

* No test can reach a real Azure tenant: credentials variables are cleared for every test.
* Processes a test starts are tracked and killed (by pid, never by name) when it ends; their
  output is printed when the test fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.processes import stop_process_group

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "github_dau"

_CREDENTIAL_PREFIXES = ("AZURE_", "MSI_", "IDENTITY_", "AZUREML_", "ARM_")


@pytest.fixture(autouse=True)
def _no_cloud_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_CREDENTIAL_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MLOPS_WORKSPACE", raising=False)


@pytest.fixture
def dau_data() -> Path:
    """The public GitHub DAU data beside the checkout; the test skips when it is absent."""
    if not (SHARED_DATA / "train.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Start processes for a test; all are killed (process group, by pid) at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp = tmp_path
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self, args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
              name: str = "proc") -> subprocess.Popen:
        log = self._tmp / f"{name}-{len(self.started)}.log"
        handle = log.open("wb")
        proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        self.started.append((proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {log.name} ---\n{log.read_text(errors='replace')[-5000:]}"
                         for _, log in self.started if log.exists())

    def stop_all(self) -> None:
        for proc, _ in self.started:
            stop_process_group(proc, grace=10)


@pytest.fixture
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        sys.stderr.write(procs.logs())


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ARG001
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``mlops ARGS`` as a user would (a real process); returns the completed process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mlops", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, input=input if input is not None else "")
