"""Azurite, Microsoft's Azure Storage emulator, as the workspace's blob storage for the wire tests.

Installed by ``make azurite`` (pinned in ``tools/azurite/package-lock.json``) into ``.tools/azurite``;
``start_azurite`` runs its blob service alone (``azurite-blob``) on a free loopback port with a
temporary folder, over HTTPS with a certificate of the emulator's test CA, and ``stop`` ends it by
its process group - never by name.

**How the SDK addresses storage, and the one thing emulated below it.** azure-ai-ml 1.35 never
reads the datastore's ``endpoint``/``protocol`` to build the account URL: ``_artifact_utilities.
get_datastore_info`` formats ``STORAGE_ACCOUNT_URLS["AzureBlob"] = "https://{}.blob.{}"`` with the
datastore's ``accountName`` and the *cloud's* storage suffix (``_get_storage_endpoint_from_metadata``
-> the cloud metadata's ``suffixes.storage``), and ``BlobStorageClient`` takes the account name back
from the URL's first label. So the SDK always sends ``https://{account}.blob.{suffix}/{container}/...``
(virtual-host style), which is what Azurite calls a *production-style URL*: its blob middleware
(``extractStoragePartsFromPath``) takes the account from the host's first label when the host is
not an IP address and holds a dot. The emulator's cloud therefore declares the storage suffix
``localhost:{port}`` (``STORAGE_SUFFIX``), and the SDK's account URL becomes
``https://devstoreaccount1.blob.localhost:{port}``.

What no loopback server can answer by itself is the *name*: glibc (``/etc/nsswitch.conf``: ``files
dns``) does not resolve ``devstoreaccount1.blob.localhost``, although RFC 6761 section 6.3 says
"name resolution APIs and libraries SHOULD recognize localhost names as special and SHOULD always
return the IP loopback address" (systemd-resolved and browsers do). ``resolve_localhost_names``
adds exactly that rule to ``socket.getaddrinfo`` in the test process - the call urllib3 (under
azure-core's requests transport, under azure-storage-blob) makes to open every connection - and
nothing else: the TLS handshake (SNI and certificate check for the real host name), HTTP, Azurite's
own SAS/OAuth checks all run unchanged.

Azurite's default account and key (``devstoreaccount1``) are the well-known, published development
credentials (https://learn.microsoft.com/azure/storage/common/storage-use-azurite#well-known-storage-account-and-key),
not a secret.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development key (see the module docstring)."""

REPO = Path(__file__).resolve().parents[2]
AZURITE_BIN = REPO / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
_LISTENING = re.compile(r"listens on (https?)://([\d.]+):(\d+)")


def blob_host(port: int, account: str = ACCOUNT_NAME) -> str:
    return f"{account}.blob.localhost:{port}"


def storage_suffix(port: int) -> str:
    """The cloud metadata's ``suffixes.storage`` that makes the SDK's ``https://{account}.blob.{suffix}``
    land on Azurite."""
    return f"localhost:{port}"


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    port: int
    folder: Path
    log_path: Path
    account_name: str = ACCOUNT_NAME
    account_key: str = ACCOUNT_KEY
    _stopped: bool = field(default=False, repr=False)

    @property
    def storage_suffix(self) -> str:
        return storage_suffix(self.port)

    @property
    def account_url(self) -> str:
        """The URL the SDK builds (``https://{account}.blob.{suffix}``)."""
        return f"https://{blob_host(self.port, self.account_name)}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


class AzuriteMissing(RuntimeError):
    pass


def start_azurite(folder: Path, cert_pem: Path, key_pem: Path, *, timeout: float = 60.0) -> Azurite:
    """Start ``azurite-blob`` on ``127.0.0.1``, a free port, HTTPS with ``cert_pem``/``key_pem``,
    data in ``folder``; returns once it says it listens (raises with its log otherwise)."""
    if not AZURITE_BIN.exists():
        raise AzuriteMissing(f"Azurite is not installed ({AZURITE_BIN.relative_to(REPO)} is missing): run "
                             "`make azurite` (make test does it)")
    folder = Path(folder)
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    log_path = folder / "azurite.log"
    command = [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", str(data),
               "--cert", str(cert_pem), "--key", str(key_pem),
               # the SDK's azure-storage-blob may be newer than the emulator's newest API version
               "--skipApiVersionCheck", "--disableTelemetry"]
    log = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               cwd=folder, start_new_session=True)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _LISTENING.search(log_path.read_text(errors="replace"))
        if found:
            return Azurite(process=process, port=int(found.group(3)), folder=folder, log_path=log_path)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    azurite = Azurite(process=process, port=0, folder=folder, log_path=log_path)
    azurite.stop()
    raise RuntimeError(f"Azurite did not start within {timeout:.0f}s:\n{azurite.log_tail()}")


_real_getaddrinfo = socket.getaddrinfo
_patch_lock = threading.Lock()
_patch_depth = 0


def is_localhost_name(host: object) -> bool:
    """RFC 6761 section 6.3: ``localhost`` and every name under ``.localhost``."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def _getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket.getaddrinfo's names
    if is_localhost_name(host):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, port, family, type, proto, flags)


@contextmanager
def resolve_localhost_names() -> Iterator[None]:
    """While active, ``socket.getaddrinfo`` answers every ``*.localhost`` name with 127.0.0.1 (see
    the module docstring for why and which call)."""
    global _patch_depth
    with _patch_lock:
        _patch_depth += 1
        socket.getaddrinfo = _getaddrinfo
    try:
        yield
    finally:
        with _patch_lock:
            _patch_depth -= 1
            if _patch_depth == 0:
                socket.getaddrinfo = _real_getaddrinfo
