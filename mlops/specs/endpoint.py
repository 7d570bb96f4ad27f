"""The endpoint specs (``endpoints/online/endpoint.yml``, ``endpoints/batch/endpoint.yml``): Azure CLI v2
files read into the port's ``OnlineEndpointSpec`` / ``BatchEndpointSpec``."""

from __future__ import annotations

from pathlib import Path

from mlops.errors import ConfigError
from mlops.workspace.port import BatchEndpointSpec, OnlineEndpointSpec
from mlops.yaml_fields import get_str, read_yaml


def read_online_endpoint(file: Path, name: str | None = None) -> OnlineEndpointSpec:
    """The online endpoint spec; ``name`` (a flag or ``MLOPS_ENDPOINT``) wins over the file's. Only key
    auth is accepted: the release and the load test authenticate with the endpoint's keys."""
    data = read_yaml(file)
    endpoint = OnlineEndpointSpec(
        name=name or get_str(data, "name", str(file)),
        auth_mode=str(data.get("auth_mode", "key")),
        description=str(data.get("description", "")),
        tags={str(k): str(v) for k, v in (data.get("tags") or {}).items()},
    )
    if endpoint.auth_mode != "key":
        raise ConfigError(f"expected auth_mode: key, got {endpoint.auth_mode!r}", file=str(file), key="auth_mode")
    return endpoint


def read_batch_endpoint(file: Path, name: str | None = None) -> BatchEndpointSpec:
    """The batch endpoint spec; ``name`` (a flag or ``MLOPS_BATCH_ENDPOINT``) wins over the file's."""
    data = read_yaml(file)
    return BatchEndpointSpec(name=name or get_str(data, "name", str(file)),
                             description=str(data.get("description", "")))
