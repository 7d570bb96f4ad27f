"""The desired state of online endpoints: the seam between the local workspace's store and its host.

The store (SQLite) is the truth. The host process is told the *whole* desired state of an
endpoint (``EndpointRuntime``) and makes it so: it listens on the endpoint's port, starts and
supervises one ``azmlinfsrv`` process per deployment instance, and routes by the traffic,
mirror, header and key rules. After a host crash, the workspace pushes every endpoint again
from the store, so scoring URIs (ports) and keys survive.

``LocalWorkspace`` (``mlops.workspace.local.workspace``) builds these from the store; the host
(``host.py``) consumes them through ``HostClient`` (``client.py``, the control channel of
``control.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlops.workspace.port import DeploymentState, ProbeSettings, RequestSettings


@dataclass(frozen=True)
class DeploymentRuntime:
    """Everything needed to run one online deployment's instances."""

    name: str
    python: str
    """The environment venv's interpreter; the host runs ``python -m azureml_inference_server_http...``
    (or the venv's ``azmlinfsrv``) with it."""
    code_dir: str
    scoring_script: str
    """Relative to ``code_dir``."""
    model_dir: str
    """Exported as ``AZUREML_MODEL_DIR``."""
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    instance_count: int = 1
    request_settings: RequestSettings = field(default_factory=RequestSettings)
    liveness_probe: ProbeSettings = field(default_factory=ProbeSettings)
    readiness_probe: ProbeSettings = field(default_factory=ProbeSettings)
    generation: str = ""
    """Changes whenever the deployment is (re)created or updated, so the host restarts its instances."""


@dataclass(frozen=True)
class EndpointRuntime:
    name: str
    port: int
    """Fixed at endpoint creation and kept in the store: the scoring URI never changes."""
    primary_key: str
    secondary_key: str
    auth_mode: str = "key"
    traffic: Mapping[str, int] = field(default_factory=dict)
    mirror_traffic: Mapping[str, int] = field(default_factory=dict)
    deployments: tuple[DeploymentRuntime, ...] = ()

    def __repr__(self) -> str:  # keys are never printed by accident
        return f"EndpointRuntime(name={self.name!r}, port={self.port}, traffic={dict(self.traffic)!r})"


@dataclass(frozen=True)
class DeploymentStatus:
    name: str
    state: DeploymentState
    ready_instances: int = 0
    restarts: int = 0
    error: str = ""
    """On ``Failed``: why, with the log tail."""


class HostClient(Protocol):
    """How the workspace talks to the long-lived host process of one workspace folder."""

    def ensure_running(self) -> None:
        """Start the host if it is not running (it survives the CLI); return once it answers."""
        ...

    def is_running(self) -> bool: ...

    def apply(self, endpoint: EndpointRuntime, *, timeout: float = 300.0) -> dict[str, DeploymentStatus]:
        """Make the host serve ``endpoint`` exactly as described: start new or changed deployments,
        stop removed ones, switch traffic/mirror/keys atomically (requests in flight finish where
        they started). Returns once every deployment is ``Succeeded`` or ``Failed``."""
        ...

    def remove_endpoint(self, name: str) -> None: ...

    def status(self) -> dict[str, dict[str, DeploymentStatus]]:
        """Endpoint name -> deployment name -> status, as the host sees it now."""
        ...

    def logs(self, endpoint_name: str, deployment_name: str, *, lines: int = 100) -> str: ...

    def deployment_metrics(self, endpoint_name: str, deployment_name: str, since: float,
                           until: float | None = None) -> dict[str, Any]:
        """The router's records of the deployment since ``since`` (see ``traffic_metrics.WindowStats``)."""
        ...

    def stop(self) -> None:
        """Stop the host and every process it started."""
        ...
