"""Fixtures of the local workspace tests: environments, scoring code and an in-memory host.

* ``tiny_env_spec`` - a spec whose conda file installs only ``six``: builds in a few seconds into a
  session-private venv cache (so the build itself is exercised on every run).
* ``serving_env_spec`` - ``tests/local/serving-env``: only ``azureml-inference-server-http``, the
  smallest environment a real deployment runs in. It is built in the machine-wide cache (keyed by
  content hash), so only the first run on a machine pays for it.
* ``FakeHost`` - a ``HostClient`` kept in memory, for the adapter's own logic (store, rules,
  repair) without processes; the end-to-end tests use the real host.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from mlops.specs.environment import load_environment_spec
from mlops.workspace.local.online.desired_state import DeploymentStatus, EndpointRuntime
from mlops.workspace.port import EnvironmentSpec

HERE = Path(__file__).resolve().parent
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

SCORE_OK = textwrap.dedent('''
    import json, os

    def init():
        global NAME
        NAME = os.environ.get("DEPLOYMENT_LABEL", "unnamed")
        print("init done", flush=True)

    def run(raw_data):
        data = json.loads(raw_data)
        return {"served_by": NAME, "echo": data, "model_files": sorted(os.listdir(os.environ["AZUREML_MODEL_DIR"]))}
''')

SCORE_BROKEN_INIT = textwrap.dedent('''
    def init():
        print("loading the model...", flush=True)
        raise RuntimeError("model.pt is corrupt: cannot load weights")

    def run(raw_data):
        return raw_data
''')


@pytest.fixture(scope="session")
def tiny_venv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("venv-cache")


@pytest.fixture(scope="session")
def tiny_env_spec(tmp_path_factory: pytest.TempPathFactory) -> EnvironmentSpec:
    folder = tmp_path_factory.mktemp("tiny-env")
    (folder / "conda.yml").write_text(f"dependencies:\n  - python={PYTHON}\n  - pip:\n      - six==1.17.0\n")
    (folder / "environment.yml").write_text("name: tiny\nimage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n"
                                            "conda_file: conda.yml\n")
    return load_environment_spec(folder / "environment.yml")


@pytest.fixture(scope="session")
def serving_env_spec() -> EnvironmentSpec:
    return load_environment_spec(HERE / "serving-env" / "environment.yml")


def write_code(folder: Path, score: str = SCORE_OK) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "score.py").write_text(score)
    return folder


def write_model(folder: Path, content: bytes = b"weights") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pt").write_bytes(content)
    return folder


class FakeHost:
    """A ``HostClient`` in memory: records what it is told; ``fail`` names deployments whose init fails."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.running = False
        self.endpoints: dict[str, EndpointRuntime] = {}
        self.applied: list[EndpointRuntime] = []
        self.fail = set(fail)
        self.starts = 0

    def ensure_running(self) -> None:
        if not self.running:
            self.starts += 1
        self.running = True

    def is_running(self) -> bool:
        return self.running

    def apply(self, endpoint: EndpointRuntime, *, timeout: float = 300.0) -> dict[str, DeploymentStatus]:
        self.ensure_running()
        self.endpoints[endpoint.name] = endpoint
        self.applied.append(endpoint)
        return {d.name: DeploymentStatus(d.name, "Failed", error="init() raised RuntimeError")
                if d.name in self.fail else DeploymentStatus(d.name, "Succeeded", ready_instances=d.instance_count)
                for d in endpoint.deployments}

    def remove_endpoint(self, name: str) -> None:
        self.endpoints.pop(name, None)

    def status(self) -> dict[str, dict[str, DeploymentStatus]]:
        return {name: {d.name: DeploymentStatus(d.name, "Succeeded") for d in ep.deployments}
                for name, ep in self.endpoints.items()} if self.running else {}

    def logs(self, endpoint_name: str, deployment_name: str, *, lines: int = 100) -> str:
        return f"log of {endpoint_name}/{deployment_name}\nRuntimeError: model.pt is corrupt"

    def stop(self) -> None:
        self.running = False
        self.endpoints.clear()

    def crash(self) -> None:
        """What ``kill -9`` does to the real host: everything it served is gone."""
        self.stop()
