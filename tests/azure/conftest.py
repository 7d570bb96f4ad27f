"""Fixtures for the Azure adapter tests: a fake MLClient, specs on disk, and no way out.

Besides the suite-wide clearing of ``AZURE_*`` variables, every test here runs with
``DefaultAzureCredential.get_token`` and non-loopback socket connections turned into failures,
so a bug that reached for a real tenant fails loudly instead of hanging or leaking.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops.workspace.port import (
    AssetRef,
    BatchDeploymentSpec,
    BatchEndpointSpec,
    EnvironmentSpec,
    OnlineDeploymentSpec,
    OnlineEndpointSpec,
)
from tests.azure.fake_mlclient import Rig, make_workspace


@pytest.fixture(autouse=True)
def _no_tenant(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    from azure.identity import DefaultAzureCredential

    asked: list[tuple] = []

    def refuse_token(self, *scopes, **kwargs):  # noqa: ANN001, ARG001
        asked.append(scopes)
        raise AssertionError(f"DefaultAzureCredential was asked for a token {scopes} in a test")

    # azure-core asks through get_token_info when the credential has it (azure-identity >= 1.19)
    monkeypatch.setattr(DefaultAzureCredential, "get_token", refuse_token)
    monkeypatch.setattr(DefaultAzureCredential, "get_token_info", refuse_token)
    real_connect = socket.socket.connect

    def loopback_only(self, address):  # noqa: ANN001
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
            raise AssertionError(f"a test tried to connect to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    return asked


@pytest.fixture
def rig() -> Rig:
    return make_workspace()


@dataclass
class Specs:
    root: Path
    environment: EnvironmentSpec
    endpoint: OnlineEndpointSpec
    batch_endpoint: BatchEndpointSpec
    code: Path

    def model_dir(self, label: str) -> Path:
        folder = self.root / f"model-{label}"
        folder.mkdir(exist_ok=True)
        (folder / "model.pt").write_bytes(f"weights {label}".encode())
        (folder / "meta.json").write_text(json.dumps({"label": label}))
        return folder

    def deployment(self, name: str, model: AssetRef, environment: AssetRef, **overrides) -> OnlineDeploymentSpec:
        return OnlineDeploymentSpec(endpoint_name=self.endpoint.name, name=name, model=model,
                                    environment=environment, code_path=self.code, scoring_script="score.py",
                                    **overrides)

    def batch_deployment(self, name: str, model: AssetRef, environment: AssetRef, **overrides) -> BatchDeploymentSpec:
        return BatchDeploymentSpec(endpoint_name=self.batch_endpoint.name, name=name, model=model,
                                   environment=environment, code_path=self.code, scoring_script="batch_score.py",
                                   **overrides)


@pytest.fixture
def specs(tmp_path: Path) -> Specs:
    conda = tmp_path / "conda.yml"
    conda.write_text("name: tcn-inference\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n"
                     "  - pip:\n      - azureml-inference-server-http==1.4.0\n      - torch==2.13.0\n"
                     "      - azureml-core==1.61.0.post4\n      - azureml-dataset-runtime[fuse]==1.62.0.post1\n")
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("def init():\n    pass\n\ndef run(raw):\n    return raw\n")
    (code / "batch_score.py").write_text("def init():\n    pass\n\ndef run(mini_batch):\n    return []\n")
    return Specs(
        root=tmp_path,
        environment=EnvironmentSpec(name="tcn-inference", image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
                                    conda_file=conda, description="TCN serving"),
        endpoint=OnlineEndpointSpec(name="tcn-forecast", auth_mode="key", description="DAU forecast",
                                    tags={"team": "forecasting"}),
        batch_endpoint=BatchEndpointSpec(name="tcn-forecast-batch", description="nightly forecast"),
        code=code,
    )


