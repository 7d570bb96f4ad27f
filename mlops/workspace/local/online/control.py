"""The host's control channel, shared by the host (``host.py``) and its client (``client.py``): where
the client finds the host (``host.json``), how it proves itself (the token header), where each
deployment's log lands, and the JSON forms of the desired-state dataclasses (``desired_state.py``)
that travel over it (loopback, token-guarded).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlops.workspace.local.online.desired_state import DeploymentRuntime, DeploymentStatus, EndpointRuntime
from mlops.workspace.port import ProbeSettings, RequestSettings

INFO_FILE = "host.json"
"""In the workspace folder, mode 0600: the running host's pid, control port and control token."""
TOKEN_HEADER = "X-Mlops-Host-Token"


def deployment_log_path(workspace_dir: Path, endpoint: str, deployment: str) -> Path:
    return workspace_dir / "logs" / endpoint / f"{deployment}.log"


def endpoint_to_json(endpoint: EndpointRuntime) -> dict[str, Any]:
    data = asdict(endpoint)
    data["traffic"] = dict(endpoint.traffic)
    data["mirror_traffic"] = dict(endpoint.mirror_traffic)
    for deployment, source in zip(data["deployments"], endpoint.deployments, strict=True):
        deployment["environment_variables"] = dict(source.environment_variables)
    return data


def _deployment_from_json(data: dict[str, Any]) -> DeploymentRuntime:
    return DeploymentRuntime(
        name=data["name"],
        python=data["python"],
        code_dir=data["code_dir"],
        scoring_script=data["scoring_script"],
        model_dir=data["model_dir"],
        environment_variables={str(k): str(v) for k, v in (data.get("environment_variables") or {}).items()},
        instance_count=int(data.get("instance_count", 1)),
        request_settings=RequestSettings(**(data.get("request_settings") or {})),
        liveness_probe=ProbeSettings(**(data.get("liveness_probe") or {})),
        readiness_probe=ProbeSettings(**(data.get("readiness_probe") or {})),
        generation=str(data.get("generation", "")),
    )


def endpoint_from_json(data: dict[str, Any]) -> EndpointRuntime:
    return EndpointRuntime(
        name=data["name"],
        port=int(data["port"]),
        primary_key=data["primary_key"],
        secondary_key=data["secondary_key"],
        auth_mode=data.get("auth_mode", "key"),
        traffic={str(k): int(v) for k, v in (data.get("traffic") or {}).items()},
        mirror_traffic={str(k): int(v) for k, v in (data.get("mirror_traffic") or {}).items()},
        deployments=tuple(_deployment_from_json(d) for d in data.get("deployments") or ()),
    )


def status_to_json(status: DeploymentStatus) -> dict[str, Any]:
    return asdict(status)


def status_from_json(data: dict[str, Any]) -> DeploymentStatus:
    return DeploymentStatus(name=data["name"], state=data["state"], ready_instances=int(data["ready_instances"]),
                            restarts=int(data["restarts"]), error=data.get("error", ""))
