"""A loopback HTTPS emulator of the Azure ML REST surface the adapter uses, for the *real*
``azure.ai.ml.MLClient`` (issue 13, item 2).

Public API (tests and ``benchmarks/azure_timeline.py``)::

    with start_with_azurite(folder, clock=VirtualClock(overlap_window=0.05)) as emu:  # or start_emulator()
        os.environ.update(emu.actions_environment())   # or emu.sdk_environment(): the cloud only
        ws = AzureWorkspace.from_target(sleep=emu.clock.sleep, clock=emu.clock.monotonic,
                                        wall_clock=emu.clock.now)   # the unchanged adapter
        client = emu.ml_client()           # or the real MLClient directly (cloud= kwargs)
        emu.arm_url, emu.ca_bundle, emu.authority, emu.id_token_request_url, emu.clock
        emu.settings["online.deployment_seconds"] = 425   # route modules' knobs (see each module)
        emu.exchanges, emu.requests_to("/deployments/blue", "PUT")   # what the SDK really sent

``start_emulator`` makes a test CA (``tls``), starts the server (``server``) with every route
module of ``routes/`` (one per resource group: add a module to add routes), trusts the CA
process-wide (``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``) and installs the virtual clock
(``clock.VirtualClock.install``) unless ``install_clock=False``. Everything is undone on exit.

How the SDK is pointed here - a custom cloud, the SDK's own mechanism for sovereign clouds
(azure-ai-ml 1.35 ``_ml_client.py``: ``MLClient(..., cloud=NAME, cloud_metadata={...})`` calls
``_azure_environments._add_cloud_to_environments``; ``_get_cloud_information_from_metadata`` then
makes the ARM credential scope ``{resource_manager}/.default`` and ``_get_base_url_from_metadata``
the base URL of every operation). See ``Emulator.cloud_metadata``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.azure_emulator.clock import VirtualClock
from tests.azure_emulator.routes.identity import DEFAULT_CLIENT_ID, DEFAULT_REQUEST_TOKEN
from tests.azure_emulator.server import Emulator, Exchange, Workspace
from tests.azure_emulator.tls import TestCA, make_ca

CLOUD_NAME = "MlopsEmulatorCloud"


class RunningEmulator(Emulator):
    """An ``Emulator`` with the client-side helpers."""

    ca_bundle: Path
    folder: Path
    """A temporary folder that lives as long as the emulator (certificates, logs)."""

    @property
    def cloud_name(self) -> str:
        return f"{CLOUD_NAME}{self.port}"

    @property
    def cloud_metadata(self) -> dict[str, str]:
        """The ``cloud_metadata`` dict ``MLClient`` takes (keys of ``_azure_environments.EndpointURLS``).
        ``aml_resource_id`` stays ``https://ml.azure.com``: the ML data-plane scope tokens are asked for."""
        return {"azure_portal": "https://portal.azure.com/", "resource_manager": self.arm_url,
                "active_directory": self.authority + "/", "aml_resource_id": "https://ml.azure.com/",
                "storage_endpoint": self.setting("datastore.endpoint", "core.windows.net"),
                "registry_discovery_endpoint": self.base_url + "/"}

    @property
    def cloud_metadata_url(self) -> str:
        """``ARM_CLOUD_METADATA_URL`` for the SDK (``routes/cloud.py``)."""
        return f"{self.base_url}/metadata/endpoints?api-version=2019-05-01"

    def sdk_environment(self) -> dict[str, str]:
        """The variables that point an *unchanged* ``MLClient`` and azure-identity credential at this
        emulator, as a sovereign cloud is configured (``routes/cloud.py``)."""
        return {"ARM_CLOUD_METADATA_URL": self.cloud_metadata_url, "AZURE_AUTHORITY_HOST": self.authority}

    def client_kwargs(self) -> dict[str, Any]:
        return {"cloud": self.cloud_name, "cloud_metadata": self.cloud_metadata}

    def credential(self, *, func: Any = None) -> Any:
        """A ``ClientAssertionCredential`` against this emulator's Entra ID: ``func`` returns the
        assertion (default: a fresh GitHub ID token each call, as in Actions)."""
        from azure.identity import ClientAssertionCredential

        return ClientAssertionCredential(self.workspace.tenant_id, DEFAULT_CLIENT_ID, func or self.github_id_token,
                                         authority=self.authority)

    def github_id_token(self) -> str:
        """What a step gets from ``$ACTIONS_ID_TOKEN_REQUEST_URL&audience=api://AzureADTokenExchange``."""
        import json
        import urllib.request

        request = urllib.request.Request(f"{self.id_token_request_url}&audience=api://AzureADTokenExchange",
                                         headers={"Authorization": f"bearer {DEFAULT_REQUEST_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the emulator's https URL
            return json.loads(response.read())["value"]

    def actions_environment(self) -> dict[str, str]:
        """The variables a GitHub job with ``id-token: write`` has after ``azure/login`` (OIDC)."""
        ws = self.workspace
        return {"ACTIONS_ID_TOKEN_REQUEST_URL": self.id_token_request_url,
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": DEFAULT_REQUEST_TOKEN, "GITHUB_ACTIONS": "true",
                "AZURE_CLIENT_ID": DEFAULT_CLIENT_ID, "AZURE_TENANT_ID": ws.tenant_id,
                "AZURE_SUBSCRIPTION_ID": ws.subscription_id, "AZURE_RESOURCE_GROUP": ws.resource_group,
                "AZUREML_WORKSPACE": ws.name, **self.sdk_environment()}

    def ml_client(self, credential: Any = None, **kwargs: Any) -> Any:
        from azure.ai.ml import MLClient

        ws = self.workspace
        return MLClient(credential or self.credential(), subscription_id=ws.subscription_id,
                        resource_group_name=ws.resource_group, workspace_name=ws.name,
                        **{**self.client_kwargs(), **kwargs})


@contextmanager
def start_emulator(*, install_clock: bool = True, clock: VirtualClock | None = None,
                   settings: dict[str, Any] | None = None, folder: Path | None = None,
                   ca: TestCA | None = None) -> Iterator[RunningEmulator]:
    """Start an emulator (see the module docstring). ``ca``: reuse a test CA (e.g. one a
    session-wide Azurite already has a certificate of)."""
    with tempfile.TemporaryDirectory(prefix="azure-emulator-") as tmp:
        ca = ca or make_ca(Path(folder or tmp))
        emu = RunningEmulator(ca, clock=clock)
        emu.ca_bundle = ca.ca_bundle
        emu.folder = Path(folder or tmp)
        emu.settings.update(settings or {})
        saved = {name: os.environ.get(name) for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
        os.environ["REQUESTS_CA_BUNDLE"] = os.environ["SSL_CERT_FILE"] = str(ca.ca_bundle)
        emu.start()
        try:
            if install_clock:
                with emu.clock.install():
                    yield emu
            else:
                yield emu
        finally:
            emu.stop()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


AZURITE_CERT_HOSTS = ("127.0.0.1", "localhost", "*.blob.localhost", "*.blob.core.localhost")
"""The names Azurite's certificate must cover (see ``storage_suffix``)."""


def storage_suffix(azurite: Any) -> str:
    """``core.localhost:{port}``: the cloud's storage suffix. azure-storage-blob takes the account
    name of a shared-key (or SAS) client from a host ``{account}.blob.core.{...}`` only
    (``_shared/base_client.py``: ``parsed_url.netloc.split(f".{service}.core.")``; without ``core.``
    a key-based datastore fails with "Unable to determine account name for shared key
    credential."), as every real cloud's suffix has it (``core.windows.net``,
    ``core.chinacloudapi.cn``). ``*.localhost`` resolves to loopback (RFC 6761; ``azurite.py``)."""
    return f"core.localhost:{azurite.port}"


def use_azurite(emu: RunningEmulator, azurite: Any, *, key_based: bool = True) -> None:
    """Point the workspace's default datastore at a running Azurite (``tests.azure_emulator.azurite``):
    its account, the cloud's storage suffix that makes the SDK's ``https://{account}.blob.{suffix}``
    land there, and the datastore's credentials (``key_based``: ``listSecrets`` answers the account key;
    else identity-based, ``listSecrets`` is 400 as recorded). Call before ``ml_client()``."""
    emu.settings.update({"datastore.account": azurite.account_name, "datastore.endpoint": storage_suffix(azurite),
                         "datastore.credentials": "AccountKey" if key_based else "None",
                         "datastore.secret": azurite.account_key if key_based else "",
                         # what the service side itself holds of its storage account (SAS for code uploads)
                         "storage.account_url": f"https://{azurite.account_name}.blob.{storage_suffix(azurite)}",
                         "storage.account_key": azurite.account_key})
    # Azure creates the workspace's blob container with the workspace; here it is made once per emulator
    from azure.storage.blob import BlobServiceClient

    account_url = f"https://{azurite.account_name}.blob.{storage_suffix(azurite)}"
    with BlobServiceClient(account_url, credential={"account_name": azurite.account_name,
                                                    "account_key": azurite.account_key}) as service:
        service.create_container(blob_container(emu))


@contextmanager
def start_with_azurite(folder: Path, **options: Any) -> Iterator[RunningEmulator]:
    """``start_emulator`` plus its own Azurite (``tests.azure_emulator.azurite``, certificate from the
    emulator's CA, ``*.localhost`` resolved to loopback) as the workspace's blob storage - everything a
    release on the real client needs (e.g. ``benchmarks/azure_timeline.py``). ``options`` go to
    ``start_emulator`` (``clock=VirtualClock(overlap_window=0.05)``, ``settings=...``)."""
    from tests.azure_emulator.azurite import resolve_localhost_names, start_azurite

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca = make_ca(folder)
    cert, key = ca.issue_pem(folder, *AZURITE_CERT_HOSTS)
    azurite = start_azurite(folder / "azurite", cert, key)
    try:
        with resolve_localhost_names(), start_emulator(ca=ca, folder=folder, **options) as emu:
            use_azurite(emu, azurite)
            yield emu
    finally:
        azurite.stop()


def blob_container(emu: Emulator) -> str:
    return f"azureml-blobstore-{emu.workspace.workspace_id}"


__all__ = ["Emulator", "Exchange", "RunningEmulator", "TestCA", "VirtualClock", "Workspace", "start_emulator",
           "start_with_azurite", "use_azurite"]
