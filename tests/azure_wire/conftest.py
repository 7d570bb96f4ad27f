"""Fixtures of the wire suite: the Azure ML emulator (TLS, virtual clock) with Azurite as the
workspace's blob storage, and no way out of loopback.

Every test here talks to ``tests.azure_emulator`` through the real azure-ai-ml client; non-loopback
connections are turned into failures so a URL that escaped the emulator's cloud (a hard-coded
``management.azure.com``, instance discovery at ``login.microsoftonline.com``) fails loudly.
One test CA and one Azurite serve the whole session (each emulator's workspace has its own
container, ``azureml-blobstore-{workspaceId}``); every test gets its own emulator.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.azure_emulator import AZURITE_CERT_HOSTS, RunningEmulator, TestCA, start_emulator, use_azurite
from tests.azure_emulator.azurite import Azurite, resolve_localhost_names, start_azurite
from tests.azure_emulator.tls import make_ca


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect

    def loopback_only(self, address):  # noqa: ANN001
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
            raise AssertionError(f"a wire test tried to connect to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)


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
