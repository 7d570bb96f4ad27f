"""Fixtures of the wire suite: the Azure ML emulator (TLS, virtual clock) and no way out of loopback.

Every test here talks to ``tests.azure_emulator`` through the real azure-ai-ml client; non-loopback
connections are turned into failures so a URL that escaped the emulator's cloud (a hard-coded
``management.azure.com``, instance discovery at ``login.microsoftonline.com``) fails loudly.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.azure_emulator import RunningEmulator, start_emulator


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect

    def loopback_only(self, address):  # noqa: ANN001
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
            raise AssertionError(f"a wire test tried to connect to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator() as emu:
        yield emu
