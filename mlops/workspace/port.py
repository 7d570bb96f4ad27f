"""The ``Workspace`` port: what the release logic needs from Azure ML, shaped by the domain.

Two adapters implement it: ``mlops.workspace.local`` (the embedded default, real processes on
this machine) and ``mlops.workspace.azure`` (``MLClient``). ``mlops.release`` talks only to this
protocol. Entities are plain frozen dataclasses; specs are the typed form of the Azure CLI v2
YAML files under ``endpoints/`` and ``environments/`` (``mlops.specs`` parses them).

Rules every adapter honours (DESIGN.md section 3):

* ``set_traffic`` takes the *whole* traffic map; callers read, modify, write. Adapters never
  reset traffic when they create or update an endpoint.
* ``create_online_deployment`` returns only when the deployment is ``Succeeded``; a deployment
  that fails to start raises ``DeploymentFailedError`` with its log tail and takes no traffic.
* A new deployment gets 0% traffic.
* Every deployment references a pinned environment ``name:version`` and model ``name:version``.

Errors are the classes of ``mlops.errors`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

Progress = Callable[[str], None]
"""A sink for one-line progress messages (the CLI writes them to stderr)."""


def no_progress(_message: str) -> None:
    """A ``Progress`` that drops everything."""


# ---------------------------------------------------------------------------------------------
# References and entities


@dataclass(frozen=True, order=True)
class AssetRef:
    """A pinned ``name:version`` reference to a model or environment."""

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"

    @classmethod
    def parse(cls, text: str) -> AssetRef:
        """Parse ``name:version`` (an ``azureml:`` prefix is accepted). ``name@latest`` is not pinned
        and must be resolved through the workspace first (``Workspace.get_model``)."""
        body = text.removeprefix("azureml:")
        name, sep, version = body.rpartition(":")
        if not sep or not name or not version:
            raise ValueError(f"expected a pinned reference 'name:version', got {text!r}")
        return cls(name, version)


@dataclass(frozen=True)
class Model:
    name: str
    version: str
    content_hash: str
    """sha256 over the model folder's files (relative paths and bytes), tagged on the asset."""
    path: str
    """Where the registered files are: a local folder, or the asset's datastore URI on Azure."""
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> AssetRef:
        return AssetRef(self.name, self.version)


@dataclass(frozen=True)
class Environment:
    name: str
    version: str
    content_hash: str
    """sha256 over the spec (image + conda file): the same spec never builds twice."""
    image: str
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> AssetRef:
        return AssetRef(self.name, self.version)


DeploymentState = Literal["Creating", "Updating", "Succeeded", "Failed", "Deleting"]


class JobStatus(StrEnum):
    """A batch job's status. Members are strings (``JobStatus.COMPLETED == "Completed"``), so JSON
    documents, records and messages read exactly as before. Azure ML's many job states map onto
    these five (``mlops.workspace.azure_decisions.job_status``)."""

    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def finished(self) -> bool:
        """The job ended and will not change any more: the one definition of the terminal set."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED)


@dataclass(frozen=True)
class OnlineDeployment:
    endpoint_name: str
    name: str
    model: AssetRef
    environment: AssetRef
    state: DeploymentState
    instance_count: int = 1
    error: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    """The spec's tags, e.g. ``mlops.code_hash``: what the release compares to tell "nothing to release"."""


@dataclass(frozen=True)
class OnlineEndpoint:
    name: str
    scoring_uri: str
    auth_mode: str = "key"
    traffic: Mapping[str, int] = field(default_factory=dict)
    mirror_traffic: Mapping[str, int] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointKeys:
    primary_key: str
    secondary_key: str

    def __repr__(self) -> str:  # keys are never printed by accident
        return "EndpointKeys(primary_key=***, secondary_key=***)"


@dataclass(frozen=True)
class BatchDeployment:
    endpoint_name: str
    name: str
    model: AssetRef
    environment: AssetRef
    state: DeploymentState
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchEndpoint:
    name: str
    default_deployment: str | None
    scoring_uri: str = ""


@dataclass(frozen=True)
class BatchJob:
    name: str
    endpoint_name: str
    deployment_name: str
    status: JobStatus
    """Given as a member or its string (``"Completed"``); always a ``JobStatus`` once built."""
    mini_batches_total: int = 0
    mini_batches_done: int = 0
    mini_batches_failed: int = 0
    error: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", JobStatus(self.status))

    @property
    def finished(self) -> bool:
        """Completed, Failed or Canceled (``JobStatus.finished``)."""
        return self.status.finished


@dataclass(frozen=True)
class Trial:
    """One child job (trial) of an AutoML job."""

    name: str
    status: JobStatus
    score: float | None
    """The primary metric's value (AutoML's ``score`` property)."""
    algorithm: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", JobStatus(self.status))


@dataclass(frozen=True)
class TrainingJob:
    """An AutoML job (the parent) and its trials, as ``mlops jobs show`` prints it."""

    name: str
    status: JobStatus
    primary_metric: str
    """AutoML's snake-case name, e.g. ``normalized_root_mean_squared_error``."""
    goal: Literal["minimize", "maximize"] | None
    best_child: str | None
    """AutoML's ``automl_best_child_run_id`` tag (set when the sweep completes)."""
    trials: tuple[Trial, ...] = ()
    created_at: str = ""
    properties: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    error: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", JobStatus(self.status))

    @property
    def finished(self) -> bool:
        """Completed, Failed or Canceled (``JobStatus.finished``)."""
        return self.status.finished

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "status": str(self.status), "primary_metric": self.primary_metric, "goal": self.goal,
                "best_child": self.best_child, "created_at": self.created_at, "error": self.error,
                "trials": [{"name": t.name, "status": str(t.status), "primary_metric_value": t.score,
                            "algorithm": t.algorithm, "metrics": dict(t.metrics), "best": t.name == self.best_child}
                           for t in self.trials]}


@dataclass(frozen=True)
class AutoMLJobRequest:
    """What ``submit_automl_job`` needs: the CLI v2 AutoML spec and what the local sweep adds."""

    spec_file: Path
    name: str | None = None
    data: str | None = None
    """Local workspace only: a CSV (date,count[,holiday]) or ``synthetic`` instead of the spec's
    ``training_data`` asset (a data asset exists only on Azure)."""
    trials: int | None = None
    """Overrides the spec's ``limits.max_trials``."""
    fast: bool = False
    """Local workspace only: tiny trials (a few epochs, small networks) for tests and demos."""


@dataclass(frozen=True)
class DeploymentMetrics:
    """What one deployment served in a window, over *all* its traffic (users' requests routed by the
    split, header-targeted requests, mirrored copies), as the endpoint itself recorded it.

    Local: the router's records. Azure: Azure Monitor's ``AmlOnlineEndpointTrafficLog`` rows of the
    deployment. ``complete`` is False while the window may still be missing data (Azure Monitor's
    ingestion delay, a local host restarted inside the window): judges make that Inconclusive,
    never Passed."""

    endpoint_name: str
    deployment_name: str
    since: float
    """Window start, epoch seconds (UTC)."""
    until: float
    requests: int
    status_codes: Mapping[int, int] = field(default_factory=dict)
    p50_ms: float = float("nan")
    p95_ms: float = float("nan")
    p99_ms: float = float("nan")
    """Latency percentiles of the successful (2xx/3xx) requests."""
    kinds: Mapping[str, int] = field(default_factory=dict)
    """Requests by kind (``routed``, ``targeted``, ``mirrored``) where the source tells them apart."""
    complete: bool = True
    note: str = ""
    """Why the window is incomplete, or where the data came from."""
    source: str = ""

    @property
    def failures(self) -> int:
        """Server-side failures: 5xx, plus the router's 408 (timeout) and 429 (over the concurrency limit)."""
        return sum(count for code, count in self.status_codes.items() if code >= 500 or code in (408, 429))

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def status_classes(self) -> dict[str, int]:
        classes: dict[str, int] = {}
        for code, count in self.status_codes.items():
            key = f"{code // 100}xx" if 200 <= code < 600 else "5xx"
            classes[key] = classes.get(key, 0) + count
        return dict(sorted(classes.items()))


@dataclass(frozen=True)
class ReleaseLock:
    """Who holds the release lock of an endpoint, and since when (ISO 8601 UTC)."""

    endpoint_name: str
    holder: str
    acquired_at: str


# ---------------------------------------------------------------------------------------------
# Specs: the typed form of the YAML files, with the release's overrides applied


@dataclass(frozen=True)
class EnvironmentSpec:
    """``environments/<name>/environment.yml``: image + conda file."""

    name: str
    image: str
    conda_file: Path
    description: str = ""

    def content_hash(self) -> str:
        """sha256 over the image name and the conda file's bytes: the environment's identity."""
        import hashlib

        digest = hashlib.sha256()
        digest.update(self.image.encode())
        digest.update(b"\0")
        digest.update(self.conda_file.read_bytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class ProbeSettings:
    initial_delay: int = 10
    period: int = 10
    timeout: int = 2
    success_threshold: int = 1
    failure_threshold: int = 30


@dataclass(frozen=True)
class RequestSettings:
    request_timeout_ms: int = 5000
    max_concurrent_requests_per_instance: int = 1
    max_queue_wait_ms: int = 500


@dataclass(frozen=True)
class OnlineEndpointSpec:
    """``endpoints/online/endpoint.yml``."""

    name: str
    auth_mode: str = "key"
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OnlineDeploymentSpec:
    """``endpoints/online/deployment.yml`` with the slot name, model and pinned environment filled in."""

    endpoint_name: str
    name: str
    model: AssetRef
    environment: AssetRef
    code_path: Path
    scoring_script: str
    instance_type: str = "Standard_DS3_v2"
    instance_count: int = 1
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    request_settings: RequestSettings = field(default_factory=RequestSettings)
    liveness_probe: ProbeSettings = field(default_factory=ProbeSettings)
    readiness_probe: ProbeSettings = field(default_factory=ProbeSettings)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchEndpointSpec:
    """``endpoints/batch/endpoint.yml``."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class BatchRetrySettings:
    max_retries: int = 3
    timeout: int = 30
    """Seconds one mini-batch may take."""


@dataclass(frozen=True)
class BatchDeploymentSpec:
    """``endpoints/batch/deployment.yml`` with the name, model and pinned environment filled in."""

    endpoint_name: str
    name: str
    model: AssetRef
    environment: AssetRef
    code_path: Path
    scoring_script: str
    compute: str = "cpu-cluster"
    instance_count: int = 1
    max_concurrency_per_instance: int = 1
    mini_batch_size: int = 10
    retry_settings: BatchRetrySettings = field(default_factory=BatchRetrySettings)
    error_threshold: int = -1
    """How many failed files (mini-batch items) a job tolerates; -1 tolerates all."""
    output_action: Literal["append_row", "summary_only"] = "append_row"
    output_file_name: str = "predictions.csv"
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    logging_level: str = "info"
    """The batch scoring run's log level (``logging_level`` of the YAML: debug, info, warning, ...)."""


# ---------------------------------------------------------------------------------------------
# The port


@runtime_checkable
class Workspace(Protocol):
    """Models, environments, online and batch endpoints. See the module docstring for the rules."""

    uri: str

    # models ---------------------------------------------------------------------------------
    def register_model(self, name: str, path: Path, *, tags: Mapping[str, str] | None = None,
                       progress: Progress = no_progress) -> Model:
        """Register a folder's files as the next version of ``name``; the same bytes (content-hash
        tag) return the existing version and create nothing."""
        ...

    def register_model_from_job(self, name: str, job_name: str, *, tags: Mapping[str, str] | None = None,
                                progress: Progress = no_progress) -> Model:
        """Register the best trial of the AutoML job ``job_name`` (AutoML's own
        ``automl_best_child_run_id``, else the best primary-metric score in its direction): its
        model file, conda file and scoring file, idempotent by content hash. Raises
        ``NotFoundError`` (no such job, no trial with a model) or ``UsageError`` (not an AutoML
        job, not finished)."""
        ...

    # AutoML jobs ----------------------------------------------------------------------------
    def submit_automl_job(self, request: AutoMLJobRequest, *, progress: Progress = no_progress) -> TrainingJob:
        """Submit the AutoML job spec. Azure ML returns at once (the job runs there); the local
        workspace runs its sweep (parent + trials) before returning."""
        ...

    def get_training_job(self, name: str) -> TrainingJob:
        """An AutoML job and its trials. Raises ``NotFoundError``."""
        ...

    def list_training_jobs(self) -> list[TrainingJob]:
        """AutoML jobs (parents only, without their trials), newest first."""
        ...

    def get_model(self, name: str, version: str = "latest") -> Model:
        """``version`` is a version string or ``"latest"``. Raises ``NotFoundError``."""
        ...

    def download_model(self, name: str, version: str, dest: Path) -> Path:
        """Copy the registered files of ``name:version`` under ``dest``; return the folder holding them."""
        ...

    def list_models(self, name: str) -> list[Model]: ...

    # environments ---------------------------------------------------------------------------
    def ensure_environment(self, spec: EnvironmentSpec, *, progress: Progress = no_progress) -> Environment:
        """Find the version whose content-hash tag matches ``spec``, else create (build) the next one."""
        ...

    def get_environment(self, name: str, version: str) -> Environment: ...

    # online ---------------------------------------------------------------------------------
    def list_online_endpoints(self) -> list[OnlineEndpoint]: ...

    def get_online_endpoint(self, name: str) -> OnlineEndpoint | None: ...

    def ensure_online_endpoint(self, spec: OnlineEndpointSpec, *, progress: Progress = no_progress) -> OnlineEndpoint:
        """Create the endpoint if missing. Never changes the traffic of an existing one."""
        ...

    def delete_online_endpoint(self, name: str, *, progress: Progress = no_progress) -> None: ...

    def list_online_deployments(self, endpoint_name: str) -> list[OnlineDeployment]: ...

    def get_online_deployment(self, endpoint_name: str, name: str) -> OnlineDeployment | None: ...

    def create_online_deployment(self, spec: OnlineDeploymentSpec, *,
                                 progress: Progress = no_progress) -> OnlineDeployment:
        """Create (or update) a deployment with 0% traffic; return once it is ``Succeeded``.
        Raises ``DeploymentFailedError`` (with the log tail) if it never becomes ready."""
        ...

    def delete_online_deployment(self, endpoint_name: str, name: str, *, progress: Progress = no_progress) -> None:
        """Delete a deployment. Refused (``RuleViolation``) while it has live or mirrored traffic."""
        ...

    def set_traffic(self, endpoint_name: str, traffic: Mapping[str, int],
                    mirror_traffic: Mapping[str, int] | None = None, *,
                    progress: Progress = no_progress) -> OnlineEndpoint:
        """Replace the whole traffic map (and the mirror map when given; ``None`` keeps it).
        Validated against the Azure rules first (``RuleViolation``, nothing changed); returns once
        the endpoint serves the new split."""
        ...

    def get_keys(self, endpoint_name: str) -> EndpointKeys: ...

    def regenerate_key(self, endpoint_name: str, which: Literal["primary", "secondary"]) -> EndpointKeys: ...

    def invoke(self, endpoint_name: str, body: bytes, *, deployment_name: str | None = None) -> bytes:
        """POST ``body`` to the scoring URI with the endpoint key (and the deployment header when
        given). Returns the response body; an HTTP error raises ``WorkspaceError`` with its text."""
        ...

    def get_logs(self, endpoint_name: str, deployment_name: str, *, lines: int = 100) -> str: ...

    def deployment_metrics(self, endpoint_name: str, deployment_name: str, since: float,
                           until: float | None = None) -> DeploymentMetrics:
        """Requests, status codes and latency percentiles of everything the deployment served from
        ``since`` to ``until`` (epoch seconds; default now), users' traffic and mirrored copies
        included. Never raises for "no data": it returns ``requests=0`` or ``complete=False``."""
        ...

    # batch ----------------------------------------------------------------------------------
    def list_batch_endpoints(self) -> list[BatchEndpoint]: ...

    def get_batch_endpoint(self, name: str) -> BatchEndpoint | None: ...

    def ensure_batch_endpoint(self, spec: BatchEndpointSpec, *, progress: Progress = no_progress) -> BatchEndpoint: ...

    def list_batch_deployments(self, endpoint_name: str) -> list[BatchDeployment]: ...

    def create_batch_deployment(self, spec: BatchDeploymentSpec, *,
                                progress: Progress = no_progress) -> BatchDeployment: ...

    def delete_batch_deployment(self, endpoint_name: str, name: str, *, progress: Progress = no_progress) -> None:
        """Refused (``RuleViolation``) for the endpoint's default deployment."""
        ...

    def set_batch_default(self, endpoint_name: str, deployment_name: str) -> BatchEndpoint: ...

    def invoke_batch(self, endpoint_name: str, input_dir: Path, *,
                     deployment_name: str | None = None) -> BatchJob:
        """Start a job over the files of ``input_dir``; without ``deployment_name`` the endpoint's
        default deployment runs it. Returns at once (status ``Queued`` or ``Running``)."""
        ...

    def get_batch_job(self, job_name: str) -> BatchJob: ...

    @staticmethod
    def batch_job_poll(elapsed: float) -> float:
        """Seconds to wait before the next read of a batch job that has been waited on for
        ``elapsed`` seconds (``mlops.workspace.waiting.wait_for_batch_job``); a function of the time
        waited alone. The adapter knows what a read costs: the local workspace reads SQLite
        (``LOCAL_BATCH_POLL_S``), Azure ML counts every ARM GET against the subscription's read
        limits (azure-ai-ml's own backoff)."""
        ...

    def download_batch_output(self, job_name: str, dest: Path) -> Path:
        """Copy the job's output file into ``dest``; return its path."""
        ...

    def get_batch_job_logs(self, job_name: str, *, lines: int = 100) -> str: ...

    # release lock ---------------------------------------------------------------------------
    def acquire_release_lock(self, endpoint_name: str, holder: str) -> ReleaseLock:
        """Take the endpoint's release lock. Raises ``ConflictError`` naming the holder and its
        start time when another holder has it; the same holder re-acquires (a resumed release)."""
        ...

    def release_release_lock(self, endpoint_name: str, holder: str) -> None: ...

    def get_release_lock(self, endpoint_name: str) -> ReleaseLock | None: ...
