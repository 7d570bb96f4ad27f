"""Workspaces: the ``Workspace`` port and ``connect(uri)``, which picks the adapter.

* ``local:`` or ``local:PATH`` - the embedded workspace under ``PATH`` (default ``.mlops`` in the
  current folder): ``mlops.workspace.local``.
* ``azureml://subscriptions/<id>/resourceGroups/<rg>/workspaces/<name>`` - Azure ML:
  ``mlops.workspace.azure`` (the only package that imports the Azure SDK clients).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mlops.errors import UsageError
from mlops.workspace.port import Workspace

DEFAULT_URI = "local:"
LOCAL_DEFAULT_DIR = ".mlops"

_AZUREML_URI = re.compile(
    r"^azureml://subscriptions/(?P<subscription_id>[^/]+)/resourceGroups/(?P<resource_group>[^/]+)"
    r"/workspaces/(?P<workspace>[^/]+)/?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AzureTarget:
    subscription_id: str
    resource_group: str
    workspace: str


def parse_local_uri(uri: str) -> Path:
    """``local:`` -> ``./.mlops``; ``local:PATH`` -> ``PATH`` (absolute)."""
    path = uri.removeprefix("local:")
    return Path(path or LOCAL_DEFAULT_DIR).expanduser().resolve()


def parse_azureml_uri(uri: str) -> AzureTarget:
    match = _AZUREML_URI.match(uri)
    if not match:
        raise UsageError(
            f"workspace URI {uri!r} is not of the form "
            "azureml://subscriptions/<id>/resourceGroups/<rg>/workspaces/<name>"
        )
    return AzureTarget(**match.groupdict())


def resolve_uri(uri: str | None) -> str:
    """The workspace URI from the flag, else ``MLOPS_WORKSPACE``, else ``local:``."""
    return uri or os.environ.get("MLOPS_WORKSPACE") or DEFAULT_URI


def runs_on_this_machine(uri: str) -> bool:
    """Whether the workspace's deployments and batch jobs run on this machine's cores (the local
    workspace) - so they compete with each other and with the load test - rather than on compute of
    their own (Azure ML: each deployment's instances, the batch cluster)."""
    return uri.startswith("local:")


def connect(uri: str | None = None) -> Workspace:
    """Return the adapter for ``uri`` (see the module docstring). Raises ``UsageError`` for an unknown scheme."""
    uri = resolve_uri(uri)
    if uri.startswith("local:"):
        from mlops.workspace.local import LocalWorkspace

        return LocalWorkspace(parse_local_uri(uri))
    if uri.lower().startswith("azureml://"):
        from mlops.workspace.azure import AzureWorkspace

        return AzureWorkspace.from_target(parse_azureml_uri(uri))
    raise UsageError(f"unknown workspace URI {uri!r}: expected 'local:[PATH]' or 'azureml://subscriptions/...'")


__all__ = ["Workspace", "connect", "runs_on_this_machine", "parse_local_uri", "parse_azureml_uri", "resolve_uri", "AzureTarget"]
