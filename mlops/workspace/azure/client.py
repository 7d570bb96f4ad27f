"""Construction: the workspace target, the credential, ``MLClient``, and the adapter composed of its operation groups."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from azure.ai.ml import MLClient

from mlops.errors import (
    UsageError,
)
from mlops.workspace import AzureTarget, azure_monitor
from mlops.workspace.azure.assets import AssetOps
from mlops.workspace.azure.batch import BatchOps
from mlops.workspace.azure.credential import make_credential
from mlops.workspace.azure.lock import LockOps
from mlops.workspace.azure.online import OnlineOps

_ENV_SUBSCRIPTION = "AZURE_SUBSCRIPTION_ID"
_ENV_RESOURCE_GROUP = "AZURE_RESOURCE_GROUP"
_ENV_WORKSPACE = "AZUREML_WORKSPACE"


def target_from_environment(environ: Mapping[str, str] | None = None) -> AzureTarget:
    """The workspace named by ``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``, ``AZUREML_WORKSPACE``."""
    environ = os.environ if environ is None else environ
    values = {name: environ.get(name, "").strip() for name in (_ENV_SUBSCRIPTION, _ENV_RESOURCE_GROUP, _ENV_WORKSPACE)}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise UsageError(
            f"no Azure ML workspace given: pass --workspace azureml://subscriptions/<id>/resourceGroups/<rg>/"
            f"workspaces/<name> or set {', '.join(missing)}"
        )
    return AzureTarget(values[_ENV_SUBSCRIPTION], values[_ENV_RESOURCE_GROUP], values[_ENV_WORKSPACE])


class AzureWorkspace(AssetOps, OnlineOps, BatchOps, LockOps):
    """``Workspace`` on an Azure ML workspace through ``MLClient`` (see the package docstring): the
    operation groups of ``assets``, ``online``, ``batch`` and ``lock`` on the boundary of ``calls``."""

    # construction ----------------------------------------------------------------------------
    @classmethod
    def from_target(cls, target: AzureTarget | None = None, **options: Any) -> AzureWorkspace:
        """An adapter for ``target`` (or the ``AZURE_*`` variables) with ``credential.make_credential``
        (a fresh GitHub OIDC token each time one is needed in Actions, else ``DefaultAzureCredential``).
        No token is requested here: the credential is asked on the first operation."""
        target = target or target_from_environment()
        credential = options.pop("credential", None) or make_credential()
        client = MLClient(credential, subscription_id=target.subscription_id,
                          resource_group_name=target.resource_group, workspace_name=target.workspace)
        uri = (f"azureml://subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}"
               f"/workspaces/{target.workspace}")
        log_workspace_id = options.pop("log_workspace_id", None) or os.environ.get(azure_monitor.LOG_WORKSPACE_ENV)
        logs_client = options.pop("logs_client", None)
        if log_workspace_id and logs_client is None:
            from azure.monitor.query import LogsQueryClient

            logs_client = LogsQueryClient(credential)
        return cls(client, uri=uri, credential=credential, logs_client=logs_client,
                   log_workspace_id=log_workspace_id, **options)

    @classmethod
    def from_environment(cls, **options: Any) -> AzureWorkspace:
        return cls.from_target(target_from_environment(), **options)
