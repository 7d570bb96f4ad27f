"""Fixtures of the wire suite: the Azure ML emulator (TLS, virtual clock) with Azurite as the
workspace's blob storage, and no way out of loopback.

Every test here talks to ``tests.azure_emulator`` through the real azure-ai-ml client; non-loopback
connections are turned into failures so a URL that escaped the emulator's cloud (a hard-coded
``management.azure.com``, instance discovery at ``login.microsoftonline.com``) fails loudly.
One test CA and one Azurite serve the whole session (each emulator's workspace has its own
container, ``azureml-blobstore-{workspaceId}``); every test gets its own emulator.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.workspace.azure import AzureWorkspace
from mlops.workspace.port import BatchEndpointSpec, EnvironmentSpec, OnlineEndpointSpec
from tests.azure.conftest import Specs
from tests.azure_emulator import AZURITE_CERT_HOSTS, RunningEmulator, TestCA, start_emulator, use_azurite
from tests.azure_emulator.azure_cli import install_azure_cli
from tests.azure_emulator.azurite import Azurite, resolve_localhost_names, start_azurite
from tests.azure_emulator.tls import make_ca

IMDS = "169.254.169.254"
"""The managed-identity endpoint ``DefaultAzureCredential`` probes (refused here, as a GitHub-hosted
runner has no usable managed identity)."""


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Connections leave loopback never: they are refused (an ``OSError``, so a credential chain moves
    on as it does where nothing listens) and any attempt other than the IMDS probe fails the test."""
    real_connect = socket.socket.connect
    escapes: list[object] = []

    def loopback_only(self, address):  # noqa: ANN001
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
            escapes.append(address)
            raise ConnectionRefusedError(f"a wire test tried to connect to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    yield
    unexpected = [a for a in escapes if not (isinstance(a, tuple) and a[0] == IMDS)]
    assert not unexpected, f"connections left loopback: {unexpected}"


@pytest.fixture(scope="session")
def wire_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("wire-ca"))


@pytest.fixture(scope="session")
def azurite(wire_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    folder: Path = tmp_path_factory.mktemp("azurite")
    cert, key = wire_ca.issue_pem(folder, *AZURITE_CERT_HOSTS)
    server = start_azurite(folder, cert, key)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emulator(wire_ca: TestCA, azurite: Azurite) -> Iterator[RunningEmulator]:
    with resolve_localhost_names(), start_emulator(ca=wire_ca) as emu:
        use_azurite(emu, azurite)
        yield emu


@pytest.fixture
def actions(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunningEmulator:
    """A GitHub job after ``azure/login`` (OIDC): the ID-token request variables, ``AZURE_*``, the
    cloud (``ARM_CLOUD_METADATA_URL``, ``AZURE_AUTHORITY_HOST``) and an ``az`` logged in with one
    federated token (``tests.azure_emulator.azure_cli``) first on ``PATH``."""
    for name, value in emulator.actions_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", f"{install_azure_cli(tmp_path / 'az-cli', emulator)}:{os.environ.get('PATH', '')}")
    return emulator


@pytest.fixture
def workspace(actions: RunningEmulator) -> AzureWorkspace:
    """The adapter as the CLI builds it (``AzureWorkspace.from_target`` from the ``AZURE_*`` variables),
    on the virtual clock: its waits and the SDK's pollers take no real time."""
    clock = actions.clock
    return AzureWorkspace.from_target(sleep=clock.sleep, clock=clock.monotonic, wall_clock=clock.now)


@pytest.fixture
def specs(tmp_path: Path) -> Specs:
    """The specs of ``tests/azure`` (its ``Specs``), with a scoring script the emulator never runs."""
    conda = tmp_path / "conda.yml"
    conda.write_text("name: tcn-inference\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n"
                     "  - pip:\n      - azureml-inference-server-http==1.4.0\n")
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("def init():\n    pass\n\n\ndef run(raw):\n    return raw\n")
    return Specs(root=tmp_path, code=code,
                 environment=EnvironmentSpec(name="tcn-inference", conda_file=conda,
                                             image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"),
                 endpoint=OnlineEndpointSpec(name="tcn-forecast", auth_mode="key", tags={"team": "forecasting"}),
                 batch_endpoint=BatchEndpointSpec(name="tcn-forecast-batch", description="nightly forecast"))
