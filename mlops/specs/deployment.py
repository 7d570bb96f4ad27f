"""The deployment templates (``endpoints/online/deployment.yml``, ``endpoints/batch/deployment.yml``):
Azure CLI v2 files that the release fills in with the slot name, the registered model, the pinned
environment and a staged code folder, into the port's ``OnlineDeploymentSpec`` /
``BatchDeploymentSpec``. Every value is checked when built (``ConfigError`` names the file and the key)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.errors import ConfigError
from mlops.workspace.port import (
    AssetRef,
    BatchDeploymentSpec,
    BatchRetrySettings,
    OnlineDeploymentSpec,
    ProbeSettings,
    RequestSettings,
)
from mlops.yaml_fields import get_int, get_mapping, get_str, get_str_mapping


def online_deployment_spec(data: Mapping[str, Any], file: Path, *, endpoint_name: str, name: str, model: AssetRef,
                           environment: AssetRef, code_path: Path, scoring_script: str,
                           tags: Mapping[str, str] | None = None,
                           environment_variables: Mapping[str, str] | None = None) -> OnlineDeploymentSpec:
    """The online template ``data`` (read from ``file``) with the slot name, model, pinned environment and
    staged code filled in; ``environment_variables`` win over the template's (e.g. the pickle trust of
    this model)."""
    where = str(file)
    return OnlineDeploymentSpec(
        endpoint_name=endpoint_name,
        name=name,
        model=model,
        environment=environment,
        code_path=code_path,
        scoring_script=scoring_script,
        instance_type=str(data.get("instance_type", "Standard_DS3_v2")),
        instance_count=get_int(data, "instance_count", where, default=1, minimum=1),
        environment_variables={**get_str_mapping(data, "environment_variables", where),
                               **dict(environment_variables or {})},
        request_settings=request_settings(data.get("request_settings"), where),
        liveness_probe=probe_settings(data.get("liveness_probe"), where, "liveness_probe"),
        readiness_probe=probe_settings(data.get("readiness_probe"), where, "readiness_probe"),
        tags={**get_str_mapping(data, "tags", where), **(tags or {})},
    )


def batch_deployment_spec(data: Mapping[str, Any], file: Path, *, endpoint_name: str, name: str, model: AssetRef,
                          environment: AssetRef, code_path: Path, scoring_script: str,
                          tags: Mapping[str, str] | None = None,
                          environment_variables: Mapping[str, str] | None = None) -> BatchDeploymentSpec:
    """The batch template ``data`` (read from ``file``) with the deployment name, model, pinned
    environment and staged code filled in; ``environment_variables`` win over the template's."""
    where = str(file)
    retry = data.get("retry_settings") or {}
    resources = data.get("resources") or {}
    return BatchDeploymentSpec(
        endpoint_name=endpoint_name,
        name=name,
        model=model,
        environment=environment,
        code_path=code_path,
        scoring_script=scoring_script,
        compute=str(data.get("compute", "cpu-cluster")).removeprefix("azureml:"),
        instance_count=get_int(resources, "instance_count", where, default=1, minimum=1, prefix="resources."),
        max_concurrency_per_instance=get_int(data, "max_concurrency_per_instance", where, default=1, minimum=1),
        mini_batch_size=get_int(data, "mini_batch_size", where, default=10, minimum=1),
        retry_settings=BatchRetrySettings(
            max_retries=get_int(retry, "max_retries", where, default=3, minimum=0, prefix="retry_settings."),
            timeout=get_int(retry, "timeout", where, default=30, minimum=1, prefix="retry_settings."),
        ),
        error_threshold=get_int(data, "error_threshold", where, default=-1, minimum=-1),
        output_action=data.get("output_action", "append_row"),
        output_file_name=str(data.get("output_file_name", "predictions.csv")),
        environment_variables={**get_str_mapping(data, "environment_variables", where),
                               **dict(environment_variables or {})},
        tags={**get_str_mapping(data, "tags", where), **(tags or {})},
        description=str(data.get("description", "") or ""),
        logging_level=str(data.get("logging_level", "info") or "info"),
    )


def code_configuration(data: Mapping[str, Any], file: Path) -> tuple[Path, str]:
    code = get_mapping(data, "code_configuration", str(file))
    code_dir = (file.parent / get_str(code, "code", str(file), "code_configuration.")).resolve()
    script = get_str(code, "scoring_script", str(file), "code_configuration.")
    if not (code_dir / script).is_file():
        raise ConfigError(f"scoring script {code_dir / script} does not exist", file=str(file),
                          key="code_configuration.scoring_script")
    return code_dir, script


def request_settings(data: object, where: str) -> RequestSettings:
    if data is None:
        return RequestSettings()
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", file=where, key="request_settings")
    defaults = RequestSettings()
    return RequestSettings(**{
        name: get_int(data, name, where, default=getattr(defaults, name), minimum=1, prefix="request_settings.")
        for name in ("request_timeout_ms", "max_concurrent_requests_per_instance", "max_queue_wait_ms")})


def probe_settings(data: object, where: str, key: str) -> ProbeSettings:
    if data is None:
        return ProbeSettings()
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", file=where, key=key)
    defaults = ProbeSettings()
    return ProbeSettings(**{
        name: get_int(data, name, where, default=getattr(defaults, name), minimum=0, prefix=f"{key}.")
        for name in ("initial_delay", "period", "timeout", "success_threshold", "failure_threshold")})
