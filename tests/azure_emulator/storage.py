"""The emulator's own access to the workspace's blob storage (Azurite), for server-side work: a
batch job reading the input the SDK uploaded and writing its ``score`` output, as the service does.

The client side (the SDK) reaches Azurite by the production-style URL of ``azurite.py``; here the
emulator uses the path-style URL ``https://127.0.0.1:{port}/devstoreaccount1`` with the account key,
like a service that holds the storage account's keys. Paths arrive as the SDK writes them:
``azureml://subscriptions/.../workspaces/{ws}/datastores/{ds}/paths/{path}``,
``azureml://datastores/{ds}/paths/{path}`` or ``https://{account}.blob.{suffix}/{container}/{path}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_AZUREML_PATH = re.compile(r"^azureml://(?:.*/)?datastores/(?P<ds>[^/]+)/paths/(?P<path>.*)$", re.IGNORECASE)


def container_name(emu: Any) -> str:
    return f"azureml-blobstore-{emu.workspace.workspace_id}"


def locate(uri: str, default_container: str) -> tuple[str, str]:
    """``(container, blob-name prefix)`` of a URI the SDK wrote (pure; table-tested): a datastore path
    is in the default datastore's container; a blob URL names its container first (production style
    ``https://{account}.blob.{suffix}/{container}/{path}``)."""
    found = _AZUREML_PATH.match(uri)
    if found:
        return default_container, unquote(found.group("path")).lstrip("/")
    split = urlsplit(uri)
    if split.scheme in ("http", "https"):
        container, _, rest = unquote(split.path).lstrip("/").partition("/")
        if container:
            return container, rest
    raise ValueError(f"not a datastore path or blob URL: {uri}")


@dataclass
class BlobStore:
    account_url: str
    account_name: str
    account_key: str
    container: str

    def _client(self) -> Any:
        from azure.storage.blob import ContainerClient

        return ContainerClient(self.account_url, self.container,
                               credential={"account_name": self.account_name, "account_key": self.account_key})

    def download_uri(self, uri: str, dest: Path) -> list[Path]:
        container, prefix = locate(uri, self.container)
        client = BlobStore(self.account_url, self.account_name, self.account_key, container)._client()
        files: list[Path] = []
        for blob in client.list_blobs(name_starts_with=prefix):
            relative = blob.name[len(prefix):].lstrip("/") or Path(blob.name).name
            target = Path(dest) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(client.download_blob(blob.name).readall())
            files.append(target)
        return sorted(files)

    def upload_file(self, source: Path, name: str) -> None:
        self._client().upload_blob(name, Path(source).read_bytes(), overwrite=True)

    def names(self, prefix: str = "") -> list[str]:
        return [b.name for b in self._client().list_blobs(name_starts_with=prefix)]


def for_emulator(emu: Any) -> BlobStore | None:
    """The workspace's default datastore as the emulator's settings describe it (``use_azurite``):
    the account, ``datastore.endpoint`` = ``core.localhost:{port}`` (Azurite's port) and the account
    key ``storage.account_key`` (the service holds the keys whatever the datastore's credentials)."""
    from tests.azure_emulator.azurite import ACCOUNT_KEY

    suffix = str(emu.setting("datastore.endpoint", ""))
    port = suffix.rpartition(":")[2]
    if not port.isdigit():
        return None
    account = str(emu.setting("datastore.account", "devstoreaccount1"))
    key = str(emu.setting("storage.account_key", "") or ACCOUNT_KEY)
    return BlobStore(account_url=f"https://127.0.0.1:{port}/{account}", account_name=account,
                     account_key=key or ACCOUNT_KEY, container=container_name(emu))
