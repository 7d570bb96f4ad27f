"""The Azure ML adapter: the ``Workspace`` port on ``azure.ai.ml.MLClient``.

This is the only module that imports the Azure SDK clients (``azure.ai.ml``, ``azure.identity``,
``azure.core``, ``azure.monitor.query``). Pure decisions (versions, states, lock format, AutoML best trial, error kinds)
live in ``mlops.workspace.azure_decisions``; this module does the I/O and translates every SDK
exception into ``mlops.errors`` at the boundary (``_call``), with the fix in the message.

How it maps the port onto Azure ML, and the traps it avoids:

* **Workspace** from ``azureml://subscriptions/<id>/resourceGroups/<rg>/workspaces/<name>`` or
  ``AZURE_SUBSCRIPTION_ID`` / ``AZURE_RESOURCE_GROUP`` / ``AZUREML_WORKSPACE``; the credential is
  ``DefaultAzureCredential`` (``azure/login`` OIDC in Actions, ``az login`` on a laptop, managed
  identity). Nothing touches the network until the first operation.
* **Models** are registered with an explicit next version and the tag ``mlops.content_hash``; the
  same bytes return the existing version. ``register_model_from_job`` takes the best trial of an
  AutoML job by its primary metric and registers its ``outputs/model.pt`` (or ``model.pkl``),
  conda file and scoring file as one folder.
* **Environments** are content-addressed the same way (image + conda file). Azure builds the
  image the first time a deployment uses a version (minutes); every deployment references the
  pinned ``azureml:name:version``, so an unchanged spec never triggers a rebuild.
* **Online endpoints are only ever written read-modify-write**: a PUT of an endpoint object with
  empty ``traffic`` zeroes the live traffic, so every update starts from ``get``. Traffic and mirror
  updates wait until the endpoint *reports* the new split. Deployment creation waits on the LRO;
  a failure fetches the container logs (inference server, then storage initializer) into
  ``DeploymentFailedError``. HTTP 409 "operation in progress" and 429 are retried with backoff.
* **Invoking** posts the raw body ourselves with the endpoint key. The SDK's ``invoke`` re-parses
  the body as JSON and, in azure-ai-ml 1.35, mutates the class-level ``DEFAULT_HEADER`` dict, so an
  ``azureml-model-deployment`` header (and the key) leaks into every later call in the process.
  For the same reason batch invokes always name their deployment (the endpoint's default is
  resolved first): the leaked header would otherwise silently target the last deployment named.
* **Batch**: ``ModelBatchDeployment`` with ``ModelBatchDeploymentSettings`` (instance count goes
  to ``resources``); ``invoke(deployment_name=..., input=Input(type="uri_folder", path=<local dir>))``
  (the SDK uploads the folder); the output is the job's ``score`` output; the default deployment
  is set read-modify-write on the endpoint's ``defaults.deployment_name``.
* **Deployment metrics** come from Azure Monitor: ``LogsQueryClient.query_workspace`` on the
  ``AmlOnlineEndpointTrafficLog`` table of the Log Analytics workspace ``MLOPS_LOG_ANALYTICS_WORKSPACE_ID``
  (the queries, the ingestion delay and why not platform metrics: ``mlops.workspace.azure_monitor``).
  Without that workspace the metrics are reported incomplete, so no health check can pass on them.
* **Release lock**: the tag ``mlops.release-lock = holder@time`` on the online endpoint, written
  read-modify-write and verified by reading it back. Azure ML endpoints expose no etag to the SDK,
  so two writers within the same second can both believe they won; in GitHub Actions the
  workflow's ``concurrency`` group is the primary guard and this tag is the second line that also
  protects against a laptop release. A missing endpoint is created (empty, no deployments) to hold it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from azure.ai.ml import Input, MLClient
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import (
    BatchEndpoint as AzBatchEndpoint,
)
from azure.ai.ml.entities import (
    BatchRetrySettings as AzBatchRetrySettings,
)
from azure.ai.ml.entities import (
    CodeConfiguration,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    OnlineRequestSettings,
)
from azure.ai.ml.entities import (
    Environment as AzEnvironment,
)
from azure.ai.ml.entities import (
    Model as AzModel,
)
from azure.ai.ml.entities import (
    ProbeSettings as AzProbeSettings,
)
from azure.ai.ml.exceptions import MlException, ValidationException
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from mlops.errors import (
    AuthError,
    ConflictError,
    DeploymentFailedError,
    MlopsError,
    NotFoundError,
    RuleViolation,
    UsageError,
    WorkspaceError,
)
from mlops.workspace import AzureTarget, automl, azure_monitor, rules
from mlops.workspace import azure_decisions as decide
from mlops.workspace.automl import AUTOML_CHILD_TAG, AUTOML_METRIC_TAG, AUTOML_PARENT_TAG, AUTOML_SCORE_TAG
from mlops.workspace.azure_decisions import CONTENT_HASH_TAG, RELEASE_LOCK_TAG
from mlops.workspace.port import (
    AutoMLJobRequest,
    BatchDeployment,
    BatchDeploymentSpec,
    BatchEndpoint,
    BatchEndpointSpec,
    BatchJob,
    DeploymentMetrics,
    EndpointKeys,
    Environment,
    EnvironmentSpec,
    JobStatus,
    Model,
    OnlineDeployment,
    OnlineDeploymentSpec,
    OnlineEndpoint,
    OnlineEndpointSpec,
    ProbeSettings,
    Progress,
    ReleaseLock,
    TrainingJob,
    Trial,
    no_progress,
)

T = TypeVar("T")

HttpPost = Callable[[str, bytes, Mapping[str, str], float], tuple[int, bytes]]
"""``(url, body, headers, timeout) -> (status, response body)``: how ``invoke`` reaches a scoring URI."""

AML_SCOPE = "https://ml.azure.com/.default"
LRO_PROGRESS_EVERY = 30.0
"""Seconds between progress lines while a long-running operation (deployment: often 5-15 min) runs."""
BATCH_OUTPUT_NAME = "score"
"""The named output of a batch scoring job (azure-ai-ml's ``BATCH_JOB_CHILD_RUN_OUTPUT_NAME``)."""

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


def _urllib_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the endpoint's https URI
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tags(entity: Any) -> dict[str, str]:
    return dict(getattr(entity, "tags", None) or {})


def _probe(settings: ProbeSettings) -> AzProbeSettings:
    return AzProbeSettings(initial_delay=settings.initial_delay, period=settings.period, timeout=settings.timeout,
                           success_threshold=settings.success_threshold, failure_threshold=settings.failure_threshold)


def _batch_default(endpoint: Any) -> str | None:
    defaults = getattr(endpoint, "defaults", None)
    if defaults is None:
        return None
    if isinstance(defaults, dict):  # as the adapter or a YAML sets it
        return defaults.get("deployment_name") or defaults.get("deploymentName") or None
    return getattr(defaults, "deployment_name", None) or None  # the REST model ``get`` returns


class AzureWorkspace:
    """``Workspace`` on an Azure ML workspace through ``MLClient`` (see the module docstring).

    ``sleep``, ``clock`` and ``http_post`` are the adapter's only other contacts with the world;
    tests pass fakes so retries and waits take no time and nothing leaves the machine.
    """

    def __init__(self, ml_client: MLClient, *, uri: str | None = None, credential: Any = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 http_post: HttpPost = _urllib_post, lro_timeout: float = 3600.0,
                 settle_timeout: float = 600.0, poll_interval: float = 5.0, retry_attempts: int = 8,
                 retry_base: float = 5.0, invoke_timeout: float = 90.0, logs_client: Any = None,
                 log_workspace_id: str | None = None, wall_clock: Callable[[], float] = time.time,
                 ingestion_delay_s: float = azure_monitor.INGESTION_DELAY_S, wait_for_ingestion: bool = True) -> None:
        self._ml = ml_client
        self._logs = logs_client
        """``azure.monitor.query.LogsQueryClient`` (or a fake with its ``query_workspace`` signature)."""
        self._log_workspace_id = log_workspace_id
        self._wall = wall_clock
        self._ingestion_delay_s = ingestion_delay_s
        self._wait_for_ingestion = wait_for_ingestion
        self._credential = credential
        self.uri = uri or (f"azureml://subscriptions/{ml_client.subscription_id}/resourceGroups/"
                           f"{ml_client.resource_group_name}/workspaces/{ml_client.workspace_name}")
        self._sleep = sleep
        self._clock = clock
        self._http_post = http_post
        self._lro_timeout = lro_timeout
        self._settle_timeout = settle_timeout
        self._poll_interval = poll_interval
        self._retry_attempts = retry_attempts
        self._retry_base = retry_base
        self._invoke_timeout = invoke_timeout
        self._batch_jobs: dict[str, tuple[str, str]] = {}

    # construction ----------------------------------------------------------------------------
    @classmethod
    def from_target(cls, target: AzureTarget | None = None, **options: Any) -> AzureWorkspace:
        """An adapter for ``target`` (or the ``AZURE_*`` variables) with ``DefaultAzureCredential``.
        No token is requested here: the credential is asked on the first operation."""
        from azure.identity import DefaultAzureCredential

        target = target or target_from_environment()
        credential = DefaultAzureCredential()
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

    # the boundary ----------------------------------------------------------------------------
    def _translate(self, what: str, exc: BaseException, attempts: int = 1) -> MlopsError:
        if isinstance(exc, MlopsError):
            return exc
        if isinstance(exc, ClientAuthenticationError):
            return decide.translate("auth", what, str(exc), status=getattr(exc, "status_code", None))
        if isinstance(exc, ResourceNotFoundError):
            return decide.translate("not_found", what, str(exc), status=404)
        if isinstance(exc, ResourceExistsError):
            return decide.translate("conflict", what, str(exc), status=409, attempts=attempts)
        if isinstance(exc, HttpResponseError):
            status = exc.status_code
            return decide.translate(decide.classify_status(status), what, str(exc.message or exc),
                                    status=status, attempts=attempts)
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
            return decide.translate("network", what, str(exc))
        if isinstance(exc, ValidationException):
            return decide.translate("invalid", what, str(exc))
        if isinstance(exc, MlException):
            return decide.translate("other", what, str(exc))
        raise exc

    def _call(self, what: str, fn: Callable[..., T], *args: Any, progress: Progress = no_progress,
              retry: bool = True, **kwargs: Any) -> T:
        """Run one SDK call; retry 409/429 with backoff (unless ``retry`` is off: creating an asset
        version that exists is a lasting conflict, not a busy resource); translate every SDK error."""
        delays = decide.backoff_delays(self._retry_attempts if retry else 1, base=self._retry_base)
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(*args, **kwargs)
            except HttpResponseError as exc:
                status = 409 if isinstance(exc, ResourceExistsError) else exc.status_code
                delay = next(delays, None) if decide.is_retryable_status(status) else None
                if delay is None:
                    raise self._translate(what, exc, attempts=attempt) from exc
                progress(f"{what}: Azure reports HTTP {status} (operation in progress or throttled); "
                         f"retrying in {delay:.0f}s")
                self._sleep(delay)
            except (ClientAuthenticationError, ServiceRequestError, ServiceResponseError, MlException) as exc:
                raise self._translate(what, exc, attempts=attempt) from exc

    def _lro(self, what: str, start: Callable[[], Any], *, progress: Progress = no_progress,
             failed: Callable[[str], MlopsError] | None = None) -> Any:
        """Start a long-running operation (a start refused with 409/429 is retried) and wait for it,
        with a progress line every ``LRO_PROGRESS_EVERY`` seconds. A failure *while waiting* means
        Azure accepted the request and the operation itself failed: ``failed(reason)`` builds the
        error then (e.g. ``DeploymentFailedError`` with the logs); else it is translated as usual."""
        poller = self._call(what, start, progress=progress)
        started = self._clock()
        try:
            while not poller.done():
                elapsed = self._clock() - started
                if elapsed >= self._lro_timeout:
                    raise WorkspaceError(f"{what}: still running after {self._lro_timeout:.0f}s; check it in Azure "
                                         "ML studio and re-run the command (it is idempotent)")
                poller.wait(timeout=min(LRO_PROGRESS_EVERY, self._lro_timeout - elapsed))
                if not poller.done():
                    progress(f"{what}: in progress ({self._clock() - started:.0f}s)")
            return poller.result()
        except (HttpResponseError, ClientAuthenticationError, ServiceRequestError, ServiceResponseError,
                MlException) as exc:
            error = self._translate(what, exc)
            if failed is not None and not isinstance(error, (AuthError, ConflictError)):
                raise failed(str(exc)) from exc
            raise error from exc

    def _wait_until(self, what: str, check: Callable[[], bool]) -> None:
        deadline = self._clock() + self._settle_timeout
        while not check():
            if self._clock() >= deadline:
                raise WorkspaceError(f"{what}: Azure did not report the change within {self._settle_timeout:.0f}s")
            self._sleep(self._poll_interval)

    def _list(self, what: str, fn: Callable[..., Iterable[T]], *args: Any, **kwargs: Any) -> list[T]:
        """List, treating "the parent does not exist" as empty."""
        try:
            return self._call(what, lambda: list(fn(*args, **kwargs)))
        except NotFoundError:
            return []

    def _get_or_none(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        try:
            return self._call(what, fn, *args, **kwargs)
        except NotFoundError:
            return None

    # models ----------------------------------------------------------------------------------
    def _model(self, entity: Any) -> Model:
        tags = _tags(entity)
        return Model(name=entity.name, version=str(entity.version), content_hash=tags.get(CONTENT_HASH_TAG, ""),
                     path=str(getattr(entity, "path", "") or ""), tags=tags)

    def register_model(self, name: str, path: Path, *, tags: Mapping[str, str] | None = None,
                       progress: Progress = no_progress) -> Model:
        from mlops.workspace.hashing import content_hash

        rules.check_asset_name("model", name)
        path = Path(path)
        if not path.exists():
            raise UsageError(f"model path {path} does not exist")
        digest = content_hash(path)
        versions = self._list(f"list versions of model {name}", self._ml.models.list, name=name)
        found = decide.version_with_hash(((str(m.version), _tags(m)) for m in versions), digest)
        if found is not None:
            progress(f"model {name}:{found} already holds these files (sha256 {digest[:12]}); nothing registered")
            return self.get_model(name, found)
        version = decide.next_version(str(m.version) for m in versions)
        entity = AzModel(name=name, version=version, path=str(path), type=AssetTypes.CUSTOM_MODEL,
                         tags={**dict(tags or {}), CONTENT_HASH_TAG: digest},
                         description="registered by mlops")
        progress(f"registering model {name}:{version} from {path} (uploading)")
        created = self._call(f"register model {name}:{version}", self._ml.models.create_or_update, entity,
                             progress=progress, retry=False)
        return self._model(created)

    def get_model(self, name: str, version: str = "latest") -> Model:
        what = f"get model {name}:{version}"
        if version == "latest":
            return self._model(self._call(what, self._ml.models.get, name=name, label="latest"))
        return self._model(self._call(what, self._ml.models.get, name=name, version=version))

    def list_models(self, name: str) -> list[Model]:
        models = [self._model(m) for m in self._list(f"list model {name}", self._ml.models.list, name=name)]
        order = {v: i for i, v in enumerate(decide.sort_versions(m.version for m in models))}
        return sorted(models, key=lambda m: order[m.version])

    def _automl_parent(self, job_name: str) -> tuple[Any, str]:
        """The parent job and its primary metric's name, or the error that says why it gives no model."""
        parent = self._call(f"get AutoML job {job_name}", self._ml.jobs.get, job_name)
        properties = dict(getattr(parent, "properties", None) or {})
        metric = automl.metric_name(getattr(parent, "primary_metric", None) or properties.get("primary_metric"))
        problem = decide.automl_job_problem(job_name, getattr(parent, "status", None), metric)
        if problem is not None:
            raise problem
        return parent, metric

    def _automl_children(self, job_name: str) -> list[automl.ChildRun | None]:
        # jobs.list(parent_job_name=...) yields None for a child whose REST object did not parse
        return [
            None if child is None else
            automl.ChildRun(name=child.name, status=decide._enum_text(child.status),
                            properties=dict(getattr(child, "properties", None) or {}), tags=_tags(child))
            for child in self._list(f"list trials of AutoML job {job_name}", self._ml.jobs.list,
                                    parent_job_name=job_name)
        ]

    def register_model_from_job(self, name: str, job_name: str, *, tags: Mapping[str, str] | None = None,
                                progress: Progress = no_progress) -> Model:
        """Register the best trial of the AutoML job ``job_name`` as model ``name``.

        The trial is AutoML's own choice (the parent's ``automl_best_child_run_id`` tag), else the
        completed child with the best ``score`` by the primary metric's direction (see
        ``azure_decisions.choose_best_child``). The child's default artifacts are downloaded
        (``jobs.download``: ``artifacts/outputs/...``), and ``outputs/model.pt`` (or ``model.pkl``),
        the conda environment file and the scoring file are registered together as one folder,
        tagged with the parent, the child, the metric and the score. The same files -> the same version.
        """
        parent, metric = self._automl_parent(job_name)
        properties = dict(getattr(parent, "properties", None) or {})
        best = automl.choose_best_child(job_name, metric, self._automl_children(job_name), parent_tags=_tags(parent),
                                        settings_json=properties.get("AMLSettingsJsonString"))
        for warning in best.warnings:
            progress(f"warning: {warning}")
        progress(f"AutoML job {job_name}: best trial {best.name} ({best.reason}; {metric} {best.score})")
        with tempfile.TemporaryDirectory(prefix="mlops-automl-") as tmp:
            download = Path(tmp) / "download"
            self._call(f"download outputs of trial {best.name}", self._ml.jobs.download, best.name,
                       download_path=str(download), progress=progress)
            files = {p.relative_to(download).as_posix(): p for p in download.rglob("*") if p.is_file()}
            picked = automl.pick_automl_files(files)
            stage = Path(tmp) / "model"
            stage.mkdir()
            for relative in (picked.model, picked.conda_file, picked.scoring_file):
                shutil.copy2(files[relative], stage / files[relative].name)
            job_tags = {AUTOML_PARENT_TAG: job_name, AUTOML_CHILD_TAG: best.name, AUTOML_METRIC_TAG: metric,
                        AUTOML_SCORE_TAG: "" if best.score is None else repr(best.score)}
            return self.register_model(name, stage, tags={**job_tags, **dict(tags or {})}, progress=progress)

    def download_model(self, name: str, version: str, dest: Path) -> Path:
        """``models.download`` puts the files under ``dest/<name>/`` (a registered folder one level
        deeper, under the folder's own name: azure-ai-ml's ``ModelOperations.download``); returns
        ``dest/<name>``."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        self._call(f"download model {name}:{version}", self._ml.models.download, name=name, version=version,
                   download_path=str(dest))
        folder = dest / name
        return folder if folder.is_dir() else dest

    # AutoML jobs -----------------------------------------------------------------------------
    def _trial(self, child: Any) -> Trial:
        properties = {str(k): str(v) for k, v in (getattr(child, "properties", None) or {}).items()}
        return Trial(name=child.name, status=decide.job_status(child.status),
                     score=automl.parse_score(properties["score"]) if "score" in properties else None,
                     algorithm=properties.get("run_algorithm", ""), properties=properties)

    def _training_job(self, job: Any, children: Iterable[Any] = ()) -> TrainingJob:
        properties = {str(k): str(v) for k, v in (getattr(job, "properties", None) or {}).items()}
        metric = automl.metric_name(getattr(job, "primary_metric", None) or properties.get("primary_metric"))
        try:
            goal = automl.metric_goal(metric, properties.get("AMLSettingsJsonString")) if metric else None
        except UsageError:
            goal = None
        tags = _tags(job)
        return TrainingJob(name=job.name, status=decide.job_status(job.status), primary_metric=metric, goal=goal,
                           best_child=tags.get(automl.AUTOML_BEST_CHILD_TAG),
                           trials=tuple(self._trial(c) for c in children if c is not None and "score" in
                                        (getattr(c, "properties", None) or {})),
                           created_at=str((getattr(job, "creation_context", None) and
                                           getattr(job.creation_context, "created_at", "")) or ""),
                           properties=properties, tags=tags)

    def submit_automl_job(self, request: AutoMLJobRequest, *, progress: Progress = no_progress) -> TrainingJob:
        """``load_job`` the CLI v2 spec (the SDK validates it) and ``jobs.create_or_update`` it."""
        from azure.ai.ml import load_job

        if request.data:
            raise UsageError("--data is for the local workspace: on Azure ML the spec's training_data (an MLTable "
                             "data asset) is what the job trains on")
        if not Path(request.spec_file).is_file():
            raise UsageError(f"AutoML job spec {request.spec_file} does not exist")
        try:
            job = load_job(str(request.spec_file))
        except (ValidationException, MlException) as exc:
            raise self._translate(f"load AutoML job spec {request.spec_file}", exc) from exc
        if getattr(job, "type", "") != "automl":
            raise UsageError(f"{request.spec_file}: expected an AutoML job spec (type: automl)")
        if request.name:
            job.name = request.name
        if request.trials:
            job.limits.max_trials = request.trials
        progress(f"submitting AutoML job from {request.spec_file} (experiment {job.experiment_name}, "
                 f"compute {job.compute})")
        created = self._call(f"submit AutoML job {request.spec_file}", self._ml.jobs.create_or_update, job,
                             progress=progress, retry=False)
        studio = getattr(created, "studio_url", "") or ""
        progress(f"AutoML job {created.name} submitted ({decide._enum_text(created.status)})"
                 + (f": {studio}" if studio else ""))
        return self._training_job(created)

    def get_training_job(self, name: str) -> TrainingJob:
        job = self._call(f"get job {name}", self._ml.jobs.get, name)
        children = self._list(f"list trials of job {name}", self._ml.jobs.list, parent_job_name=name)
        return self._training_job(job, children)

    def list_training_jobs(self) -> list[TrainingJob]:
        jobs = self._list("list jobs", self._ml.jobs.list)
        return [self._training_job(job) for job in jobs if job is not None and getattr(job, "type", "") == "automl"]

    # environments ----------------------------------------------------------------------------
    def _environment(self, entity: Any) -> Environment:
        tags = _tags(entity)
        return Environment(name=entity.name, version=str(entity.version), content_hash=tags.get(CONTENT_HASH_TAG, ""),
                           image=str(getattr(entity, "image", "") or ""), tags=tags)

    def ensure_environment(self, spec: EnvironmentSpec, *, progress: Progress = no_progress) -> Environment:
        rules.check_asset_name("environment", spec.name)
        digest = spec.content_hash()
        for attempt in (1, 2):
            versions = self._list(f"list versions of environment {spec.name}", self._ml.environments.list,
                                  name=spec.name)
            found = decide.version_with_hash(((str(e.version), _tags(e)) for e in versions), digest)
            if found is not None:
                progress(f"environment {spec.name}:{found} matches the spec (sha256 {digest[:12]}); reused")
                return self.get_environment(spec.name, found)
            version = decide.next_version(str(e.version) for e in versions)
            entity = AzEnvironment(name=spec.name, version=version, image=spec.image,
                                   conda_file=str(spec.conda_file), description=spec.description or None,
                                   tags={CONTENT_HASH_TAG: digest})
            try:
                created = self._call(f"create environment {spec.name}:{version}",
                                     self._ml.environments.create_or_update, entity, progress=progress, retry=False)
            except ConflictError:
                if attempt == 2:
                    raise
                continue  # someone created that version meanwhile: look again
            progress(f"environment {spec.name}:{version} created; Azure builds its image when a deployment "
                     "first uses it (several minutes), and every later deployment reuses the pinned version")
            return self._environment(created)
        raise AssertionError("unreachable")

    def get_environment(self, name: str, version: str) -> Environment:
        return self._environment(self._call(f"get environment {name}:{version}", self._ml.environments.get,
                                            name=name, version=version))

    # online endpoints ------------------------------------------------------------------------
    def _online_endpoint(self, entity: Any) -> OnlineEndpoint:
        return OnlineEndpoint(name=entity.name, scoring_uri=str(getattr(entity, "scoring_uri", "") or ""),
                              auth_mode=str(getattr(entity, "auth_mode", "key") or "key"),
                              traffic=decide.nonzero(entity.traffic),
                              mirror_traffic=decide.nonzero(entity.mirror_traffic), tags=_tags(entity))

    def _get_endpoint_entity(self, name: str) -> Any:
        return self._call(f"get online endpoint {name}", self._ml.online_endpoints.get, name=name)

    def _write_endpoint(self, what: str, entity: Any, progress: Progress) -> None:
        """The only PUT of an online endpoint. Callers pass an object read with ``get`` (so its
        traffic and mirror travel with it) or a brand-new endpoint."""
        self._lro(what, lambda: self._ml.online_endpoints.begin_create_or_update(entity), progress=progress)

    def list_online_endpoints(self) -> list[OnlineEndpoint]:
        return [self._online_endpoint(e) for e in self._list("list online endpoints", self._ml.online_endpoints.list)]

    def get_online_endpoint(self, name: str) -> OnlineEndpoint | None:
        entity = self._get_or_none(f"get online endpoint {name}", self._ml.online_endpoints.get, name=name)
        return None if entity is None else self._online_endpoint(entity)

    def ensure_online_endpoint(self, spec: OnlineEndpointSpec, *, progress: Progress = no_progress) -> OnlineEndpoint:
        rules.check_endpoint_name(spec.name)
        entity = self._get_or_none(f"get online endpoint {spec.name}", self._ml.online_endpoints.get, name=spec.name)
        if entity is None:
            progress(f"creating online endpoint {spec.name} (auth mode {spec.auth_mode})")
            new = ManagedOnlineEndpoint(name=spec.name, auth_mode=spec.auth_mode, description=spec.description or None,
                                        tags=dict(spec.tags))
            self._write_endpoint(f"create online endpoint {spec.name}", new, progress)
            return self._online_endpoint(self._get_endpoint_entity(spec.name))
        if spec.auth_mode and str(entity.auth_mode).lower() != spec.auth_mode.lower():
            progress(f"note: endpoint {spec.name} uses auth mode {entity.auth_mode}, the spec says {spec.auth_mode}; "
                     "left unchanged")
        merged = {**_tags(entity), **dict(spec.tags)}
        if merged != _tags(entity) or (spec.description and spec.description != entity.description):
            entity.tags = merged  # read-modify-write: traffic and mirror are the ones just read
            entity.description = spec.description or entity.description
            self._write_endpoint(f"update tags of online endpoint {spec.name}", entity, progress)
            return self._online_endpoint(self._get_endpoint_entity(spec.name))
        return self._online_endpoint(entity)

    def delete_online_endpoint(self, name: str, *, progress: Progress = no_progress) -> None:
        progress(f"deleting online endpoint {name}")
        self._lro(f"delete online endpoint {name}", lambda: self._ml.online_endpoints.begin_delete(name=name),
                  progress=progress)

    # online deployments ----------------------------------------------------------------------
    def _online_deployment(self, entity: Any) -> OnlineDeployment:
        return OnlineDeployment(endpoint_name=entity.endpoint_name, name=entity.name,
                                model=decide.parse_asset_id(str(entity.model)),
                                environment=decide.parse_asset_id(str(entity.environment)),
                                state=decide.deployment_state(getattr(entity, "provisioning_state", None)),
                                instance_count=int(getattr(entity, "instance_count", 1) or 1),
                                tags=dict(getattr(entity, "tags", None) or {}))

    def _deployment_entities(self, endpoint_name: str) -> list[Any]:
        return self._list(f"list deployments of online endpoint {endpoint_name}", self._ml.online_deployments.list,
                          endpoint_name=endpoint_name)

    def list_online_deployments(self, endpoint_name: str) -> list[OnlineDeployment]:
        return [self._online_deployment(d) for d in self._deployment_entities(endpoint_name)]

    def get_online_deployment(self, endpoint_name: str, name: str) -> OnlineDeployment | None:
        entity = self._get_or_none(f"get deployment {name} of online endpoint {endpoint_name}",
                                   self._ml.online_deployments.get, name=name, endpoint_name=endpoint_name)
        return None if entity is None else self._online_deployment(entity)

    def _deployment_failed(self, endpoint_name: str, name: str, reason: str) -> DeploymentFailedError:
        tail = ""
        for container in (None, "storage-initializer"):
            kwargs = {"container_type": container} if container else {}
            try:
                tail = self._call(f"get logs of deployment {name}", self._ml.online_deployments.get_logs,
                                  name=name, endpoint_name=endpoint_name, lines=100, **kwargs)
            except WorkspaceError as exc:
                tail = f"(logs unavailable: {exc})"
            if tail and tail.strip():
                break
        return DeploymentFailedError(
            f"deployment {name} on online endpoint {endpoint_name} did not become ready: {reason}. It takes no "
            f"traffic. More: az ml online-deployment get-logs --endpoint-name {endpoint_name} --name {name} "
            "[--container storage-initializer]", log_tail=(tail or "").strip())

    def create_online_deployment(self, spec: OnlineDeploymentSpec, *,
                                 progress: Progress = no_progress) -> OnlineDeployment:
        rules.check_endpoint_name(spec.endpoint_name)
        rules.check_deployment_name(spec.endpoint_name, spec.name)
        self._get_endpoint_entity(spec.endpoint_name)  # NotFoundError names the missing endpoint
        existing = [d.name for d in self._deployment_entities(spec.endpoint_name)]
        rules.check_deployment_count(spec.endpoint_name, existing, spec.name)
        rs = spec.request_settings
        entity = ManagedOnlineDeployment(
            name=spec.name, endpoint_name=spec.endpoint_name,
            model=decide.asset_reference(spec.model), environment=decide.asset_reference(spec.environment),
            code_configuration=CodeConfiguration(code=str(spec.code_path), scoring_script=spec.scoring_script),
            instance_type=spec.instance_type, instance_count=spec.instance_count,
            environment_variables=dict(spec.environment_variables) or None,
            request_settings=OnlineRequestSettings(
                request_timeout_ms=rs.request_timeout_ms,
                max_concurrent_requests_per_instance=rs.max_concurrent_requests_per_instance,
                max_queue_wait_ms=rs.max_queue_wait_ms),
            liveness_probe=_probe(spec.liveness_probe), readiness_probe=_probe(spec.readiness_probe),
            tags=dict(spec.tags) or None,
        )
        what = f"create deployment {spec.name} on online endpoint {spec.endpoint_name}"
        progress(f"{what} (model {spec.model}, environment {spec.environment}, {spec.instance_count} x "
                 f"{spec.instance_type}); waiting for it to become ready")
        self._lro(what, lambda: self._ml.online_deployments.begin_create_or_update(entity), progress=progress,
                  failed=lambda reason: self._deployment_failed(spec.endpoint_name, spec.name, reason))
        created = self._call(f"get deployment {spec.name}", self._ml.online_deployments.get, name=spec.name,
                             endpoint_name=spec.endpoint_name)
        result = self._online_deployment(created)
        if result.state != "Succeeded":
            raise self._deployment_failed(spec.endpoint_name, spec.name,
                                          f"provisioning state {result.state}")
        return result

    def delete_online_deployment(self, endpoint_name: str, name: str, *, progress: Progress = no_progress) -> None:
        endpoint = self._get_endpoint_entity(endpoint_name)
        rules.check_deployment_deletion(endpoint_name, name, decide.nonzero(endpoint.traffic),
                                        decide.nonzero(endpoint.mirror_traffic))
        progress(f"deleting deployment {name} of online endpoint {endpoint_name}")
        self._lro(f"delete deployment {name} of online endpoint {endpoint_name}",
                  lambda: self._ml.online_deployments.begin_delete(name=name, endpoint_name=endpoint_name),
                  progress=progress)

    def set_traffic(self, endpoint_name: str, traffic: Mapping[str, int],
                    mirror_traffic: Mapping[str, int] | None = None, *,
                    progress: Progress = no_progress) -> OnlineEndpoint:
        entity = self._get_endpoint_entity(endpoint_name)
        deployments = [self._online_deployment(d) for d in self._deployment_entities(endpoint_name)]
        mirror = dict(mirror_traffic) if mirror_traffic is not None else decide.nonzero(entity.mirror_traffic)
        rules.check_traffic(endpoint_name, dict(traffic), mirror, [d.name for d in deployments],
                            failed=[d.name for d in deployments if d.state == "Failed"])
        # read-modify-write: the object just read carries tags, auth mode and (when not given) the mirror
        entity.traffic = {name: int(value) for name, value in traffic.items()}
        entity.mirror_traffic = {name: int(value) for name, value in mirror.items()}
        split = ", ".join(f"{n}={v}%" for n, v in sorted(traffic.items())) or "none"
        progress(f"endpoint {endpoint_name}: setting traffic {split}"
                 + (f"; mirror {decide.nonzero(mirror) or 'off'}" if mirror_traffic is not None else ""))
        self._write_endpoint(f"update traffic of online endpoint {endpoint_name}", entity, progress)
        latest: list[Any] = []

        def reported() -> bool:
            latest[:] = [self._get_endpoint_entity(endpoint_name)]
            return (decide.traffic_reported(latest[0].traffic, traffic)
                    and decide.traffic_reported(latest[0].mirror_traffic, mirror))

        self._wait_until(f"traffic of online endpoint {endpoint_name}", reported)
        return self._online_endpoint(latest[0])

    def get_keys(self, endpoint_name: str) -> EndpointKeys:
        keys = self._call(f"get keys of online endpoint {endpoint_name}", self._ml.online_endpoints.get_keys,
                          name=endpoint_name)
        if getattr(keys, "primary_key", None) is None:
            raise UsageError(f"online endpoint {endpoint_name} does not use key auth (auth_mode: key), so it has "
                             "no keys; invoke uses a token instead")
        return EndpointKeys(primary_key=keys.primary_key, secondary_key=keys.secondary_key)

    def regenerate_key(self, endpoint_name: str, which: Literal["primary", "secondary"]) -> EndpointKeys:
        if which not in ("primary", "secondary"):
            raise UsageError(f"key must be 'primary' or 'secondary', got {which!r}")
        self._lro(f"regenerate the {which} key of online endpoint {endpoint_name}",
                  lambda: self._ml.online_endpoints.begin_regenerate_keys(name=endpoint_name, key_type=which))
        return self.get_keys(endpoint_name)

    def _bearer(self, endpoint_name: str, auth_mode: str) -> str:
        if auth_mode.lower() == "aad_token":
            if self._credential is None:
                raise AuthError(f"online endpoint {endpoint_name} uses aad_token auth and no credential is configured")
            return self._call("get a Microsoft Entra token for Azure ML", self._credential.get_token, AML_SCOPE).token
        keys = self._call(f"get keys of online endpoint {endpoint_name}", self._ml.online_endpoints.get_keys,
                          name=endpoint_name)
        return getattr(keys, "primary_key", None) or getattr(keys, "access_token", "")

    def invoke(self, endpoint_name: str, body: bytes, *, deployment_name: str | None = None) -> bytes:
        entity = self._get_endpoint_entity(endpoint_name)
        headers = {"Content-Type": "application/json",
                   "Authorization": f"Bearer {self._bearer(endpoint_name, str(entity.auth_mode or 'key'))}"}
        if deployment_name:
            headers["azureml-model-deployment"] = deployment_name
        try:
            status, payload = self._http_post(entity.scoring_uri, body, headers, self._invoke_timeout)
        except OSError as exc:
            raise WorkspaceError(f"invoke online endpoint {endpoint_name}: cannot reach {entity.scoring_uri}: {exc}") from exc
        if status >= 400:
            text = payload.decode("utf-8", "replace")[:2000]
            target = f" (deployment {deployment_name})" if deployment_name else ""
            raise WorkspaceError(f"invoke online endpoint {endpoint_name}{target}: HTTP {status}: {text}")
        return payload

    def deployment_metrics(self, endpoint_name: str, deployment_name: str, since: float,
                           until: float | None = None) -> DeploymentMetrics:
        """The deployment's rows of ``AmlOnlineEndpointTrafficLog`` in [since, until) (see
        ``azure_monitor``): waits out the rest of the ingestion delay first (once), then two queries."""
        now = self._wall()
        until = now if until is None else min(until, now)
        if not self._log_workspace_id or self._logs is None:
            return azure_monitor.unconfigured(endpoint_name, deployment_name, since, until)
        remaining = self._ingestion_delay_s - (now - until)
        if self._wait_for_ingestion and remaining > 0:
            self._sleep(remaining)
            now = self._wall()
        codes_query, latency_query = azure_monitor.traffic_log_queries(endpoint_name, deployment_name)
        timespan = (datetime.fromtimestamp(since, UTC), datetime.fromtimestamp(until, UTC))
        tables: list[tuple[list[str], list[Any]] | None] = []
        partial = ""
        for query in (codes_query, latency_query):
            result = self._call(f"query {azure_monitor.TRAFFIC_LOG_TABLE} of {endpoint_name}/{deployment_name}",
                                self._logs.query_workspace, self._log_workspace_id, query, timespan=timespan)
            data = list(getattr(result, "tables", None) or getattr(result, "partial_data", None) or [])
            error = getattr(result, "partial_error", None)
            if error is not None:
                partial = str(getattr(error, "message", error))
            tables.append((list(data[0].columns), [list(row) for row in data[0].rows]) if data else ([], []))
        return azure_monitor.metrics_from_tables(endpoint_name, deployment_name, since, until, now,
                                                 codes=tables[0], latency=tables[1], partial=partial,
                                                 ingestion_delay_s=self._ingestion_delay_s)

    def get_logs(self, endpoint_name: str, deployment_name: str, *, lines: int = 100) -> str:
        return self._call(f"get logs of deployment {deployment_name} on online endpoint {endpoint_name}",
                          self._ml.online_deployments.get_logs, name=deployment_name, endpoint_name=endpoint_name,
                          lines=lines)

    # batch -----------------------------------------------------------------------------------
    def _batch_endpoint(self, entity: Any) -> BatchEndpoint:
        return BatchEndpoint(name=entity.name, default_deployment=_batch_default(entity),
                             scoring_uri=str(getattr(entity, "scoring_uri", "") or ""))

    def _batch_deployment(self, entity: Any) -> BatchDeployment:
        return BatchDeployment(endpoint_name=entity.endpoint_name, name=entity.name,
                               model=decide.parse_asset_id(str(entity.model)),
                               environment=decide.parse_asset_id(str(entity.environment)),
                               state=decide.deployment_state(getattr(entity, "provisioning_state", None)),
                               tags=dict(getattr(entity, "tags", None) or {}))

    def _get_batch_entity(self, name: str) -> Any:
        return self._call(f"get batch endpoint {name}", self._ml.batch_endpoints.get, name=name)

    def list_batch_endpoints(self) -> list[BatchEndpoint]:
        return [self._batch_endpoint(e) for e in self._list("list batch endpoints", self._ml.batch_endpoints.list)]

    def get_batch_endpoint(self, name: str) -> BatchEndpoint | None:
        entity = self._get_or_none(f"get batch endpoint {name}", self._ml.batch_endpoints.get, name=name)
        return None if entity is None else self._batch_endpoint(entity)

    def ensure_batch_endpoint(self, spec: BatchEndpointSpec, *, progress: Progress = no_progress) -> BatchEndpoint:
        rules.check_endpoint_name(spec.name)
        entity = self._get_or_none(f"get batch endpoint {spec.name}", self._ml.batch_endpoints.get, name=spec.name)
        if entity is not None:
            return self._batch_endpoint(entity)
        progress(f"creating batch endpoint {spec.name}")
        new = AzBatchEndpoint(name=spec.name, description=spec.description or None)
        self._lro(f"create batch endpoint {spec.name}", lambda: self._ml.batch_endpoints.begin_create_or_update(new),
                  progress=progress)
        return self._batch_endpoint(self._get_batch_entity(spec.name))

    def list_batch_deployments(self, endpoint_name: str) -> list[BatchDeployment]:
        return [self._batch_deployment(d) for d in self._list(
            f"list deployments of batch endpoint {endpoint_name}", self._ml.batch_deployments.list,
            endpoint_name=endpoint_name)]

    def create_batch_deployment(self, spec: BatchDeploymentSpec, *,
                                progress: Progress = no_progress) -> BatchDeployment:
        rules.check_endpoint_name(spec.endpoint_name)
        rules.check_deployment_name(spec.endpoint_name, spec.name)
        self._get_batch_entity(spec.endpoint_name)
        entity = ModelBatchDeployment(
            name=spec.name, endpoint_name=spec.endpoint_name,
            model=decide.asset_reference(spec.model), environment=decide.asset_reference(spec.environment),
            code_configuration=CodeConfiguration(code=str(spec.code_path), scoring_script=spec.scoring_script),
            compute=spec.compute, tags=dict(spec.tags) or None,
            settings=ModelBatchDeploymentSettings(
                mini_batch_size=spec.mini_batch_size, instance_count=spec.instance_count,
                max_concurrency_per_instance=spec.max_concurrency_per_instance,
                output_action=spec.output_action, output_file_name=spec.output_file_name,
                retry_settings=AzBatchRetrySettings(max_retries=spec.retry_settings.max_retries,
                                                    timeout=spec.retry_settings.timeout),
                error_threshold=spec.error_threshold,
                environment_variables=dict(spec.environment_variables) or None),
        )
        what = f"create deployment {spec.name} on batch endpoint {spec.endpoint_name}"
        progress(f"{what} (model {spec.model}, environment {spec.environment}, compute {spec.compute})")
        self._lro(what, lambda: self._ml.batch_deployments.begin_create_or_update(entity), progress=progress,
                  failed=lambda reason: DeploymentFailedError(f"{what} failed: {reason}"))
        created = self._call(f"get batch deployment {spec.name}", self._ml.batch_deployments.get, name=spec.name,
                             endpoint_name=spec.endpoint_name)
        result = self._batch_deployment(created)
        if result.state != "Succeeded":
            raise DeploymentFailedError(f"{what}: provisioning state {result.state}")
        return result

    def delete_batch_deployment(self, endpoint_name: str, name: str, *, progress: Progress = no_progress) -> None:
        rules.check_batch_deployment_deletion(endpoint_name, name, _batch_default(self._get_batch_entity(endpoint_name)))
        progress(f"deleting deployment {name} of batch endpoint {endpoint_name}")
        self._lro(f"delete deployment {name} of batch endpoint {endpoint_name}",
                  lambda: self._ml.batch_deployments.begin_delete(name=name, endpoint_name=endpoint_name),
                  progress=progress)

    def set_batch_default(self, endpoint_name: str, deployment_name: str) -> BatchEndpoint:
        self._call(f"get deployment {deployment_name} of batch endpoint {endpoint_name}",
                   self._ml.batch_deployments.get, name=deployment_name, endpoint_name=endpoint_name)
        entity = self._get_batch_entity(endpoint_name)  # read-modify-write
        defaults = getattr(entity, "defaults", None)
        if defaults is None:
            entity.defaults = {"deployment_name": deployment_name}
        elif isinstance(defaults, dict):
            defaults["deployment_name"] = deployment_name
        else:
            defaults.deployment_name = deployment_name
        self._lro(f"set default deployment of batch endpoint {endpoint_name}",
                  lambda: self._ml.batch_endpoints.begin_create_or_update(entity))
        latest: list[Any] = []

        def reported() -> bool:
            latest[:] = [self._get_batch_entity(endpoint_name)]
            return _batch_default(latest[0]) == deployment_name

        self._wait_until(f"default deployment of batch endpoint {endpoint_name}", reported)
        return self._batch_endpoint(latest[0])

    def invoke_batch(self, endpoint_name: str, input_dir: Path, *, deployment_name: str | None = None) -> BatchJob:
        input_dir = Path(input_dir).resolve()
        if not input_dir.is_dir() or not any(p.is_file() for p in input_dir.rglob("*")):
            raise UsageError(f"batch input {input_dir} must be a folder holding at least one file")
        endpoint = self._get_batch_entity(endpoint_name)
        deployment = deployment_name or _batch_default(endpoint)
        if not deployment:
            raise RuleViolation(f"batch endpoint {endpoint_name} has no default deployment: name one with "
                                "--deployment or set the default first")
        job = self._call(f"invoke batch endpoint {endpoint_name}", self._ml.batch_endpoints.invoke,
                         endpoint_name=endpoint_name, deployment_name=deployment,
                         input=Input(type=AssetTypes.URI_FOLDER, path=str(input_dir)))
        self._batch_jobs[job.name] = (endpoint_name, deployment)
        return BatchJob(name=job.name, endpoint_name=endpoint_name, deployment_name=deployment,
                        status=decide.job_status(job.status))

    def get_batch_job(self, job_name: str) -> BatchJob:
        job = self._call(f"get batch job {job_name}", self._ml.jobs.get, job_name)
        properties = dict(getattr(job, "properties", None) or {})
        tags = _tags(job)
        endpoint, deployment = self._batch_jobs.get(job_name, ("", ""))
        status = decide.job_status(job.status)
        error = ""
        if status is JobStatus.FAILED:
            error = f"batch job {job_name} failed; see 'mlops batch logs {job_name}' or the job in Azure ML studio"
        return BatchJob(name=job_name,
                        endpoint_name=endpoint or properties.get("azureml.endpointname", ""),
                        deployment_name=deployment or properties.get("azureml.deploymentname")
                        or tags.get("azureml.deploymentname", ""),
                        status=status, error=error)

    def download_batch_output(self, job_name: str, dest: Path) -> Path:
        job = self.get_batch_job(job_name)
        if job.status is not JobStatus.COMPLETED:
            raise WorkspaceError(f"batch job {job_name} is {job.status}: its output exists once it is Completed")
        output_name = ""
        if job.endpoint_name and job.deployment_name:
            deployment = self._get_or_none(f"get batch deployment {job.deployment_name}", self._ml.batch_deployments.get,
                                           name=job.deployment_name, endpoint_name=job.endpoint_name)
            # ``get`` returns a BatchDeployment, whose output_file_name is a top-level attribute
            output_name = str(getattr(deployment, "output_file_name", "") or "")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="mlops-batch-") as tmp:
            self._call(f"download output of batch job {job_name}", self._ml.jobs.download, job_name,
                       download_path=tmp, output_name=BATCH_OUTPUT_NAME)
            files = sorted(p for p in Path(tmp).rglob("*") if p.is_file())
            wanted = [p for p in files if p.name == (output_name or "predictions.csv")] or files
            if not wanted:
                raise NotFoundError(f"batch job {job_name} has no '{BATCH_OUTPUT_NAME}' output file")
            target = dest / wanted[0].name
            shutil.copy2(wanted[0], target)
        return target

    def get_batch_job_logs(self, job_name: str, *, lines: int = 100) -> str:
        """The tails of the scoring step's logs (``logs/job_error.txt``, ``job_result.txt``, the
        user logs): the batch job is a pipeline whose child step ran the scoring script."""
        children = self._list(f"list steps of batch job {job_name}", self._ml.jobs.list, parent_job_name=job_name)
        parts: list[str] = []
        with tempfile.TemporaryDirectory(prefix="mlops-batch-logs-") as tmp:
            for child in children or [self._call(f"get batch job {job_name}", self._ml.jobs.get, job_name)]:
                target = Path(tmp) / child.name
                self._call(f"download logs of {child.name}", self._ml.jobs.download, child.name,
                           download_path=str(target))
                for log in sorted(target.rglob("*.txt")):
                    text = log.read_text(errors="replace").splitlines()
                    if text:
                        parts.append(f"--- {log.relative_to(target).as_posix()} ---")
                        parts.extend(text[-lines:])
        return "\n".join(parts[-lines * 4:]) if parts else f"(no logs found for batch job {job_name})"

    # release lock ----------------------------------------------------------------------------
    def get_release_lock(self, endpoint_name: str) -> ReleaseLock | None:
        entity = self._get_or_none(f"get online endpoint {endpoint_name}", self._ml.online_endpoints.get,
                                   name=endpoint_name)
        return None if entity is None else decide.parse_lock(endpoint_name, _tags(entity).get(RELEASE_LOCK_TAG))

    def acquire_release_lock(self, endpoint_name: str, holder: str) -> ReleaseLock:
        rules.check_endpoint_name(endpoint_name)
        entity = self._get_or_none(f"get online endpoint {endpoint_name}", self._ml.online_endpoints.get,
                                   name=endpoint_name)
        current = None if entity is None else decide.parse_lock(endpoint_name, _tags(entity).get(RELEASE_LOCK_TAG))
        conflict = decide.lock_conflict(current, holder)
        if conflict is not None:
            raise conflict
        if current is not None:
            return current  # the same holder resumes
        value = decide.format_lock(holder, _now())
        if entity is None:
            entity = ManagedOnlineEndpoint(name=endpoint_name, tags={RELEASE_LOCK_TAG: value})
        else:
            entity.tags = {**_tags(entity), RELEASE_LOCK_TAG: value}
        self._write_endpoint(f"take the release lock of online endpoint {endpoint_name}", entity, no_progress)
        after = self.get_release_lock(endpoint_name)
        if after is None or after.holder != holder:
            raise decide.lock_conflict(after, holder) or ConflictError(
                f"release lock of online endpoint {endpoint_name} was not kept; retry")
        return after

    def release_release_lock(self, endpoint_name: str, holder: str) -> None:
        entity = self._get_or_none(f"get online endpoint {endpoint_name}", self._ml.online_endpoints.get,
                                   name=endpoint_name)
        if entity is None:
            return
        current = decide.parse_lock(endpoint_name, _tags(entity).get(RELEASE_LOCK_TAG))
        if current is None:
            return  # already released
        if current.holder != holder:  # never remove another holder's lock
            raise ConflictError(f"the release lock of online endpoint {endpoint_name} is held by {current.holder!r} "
                                f"since {current.acquired_at}, not by {holder!r}; it was left in place")
        entity.tags = {k: v for k, v in _tags(entity).items() if k != RELEASE_LOCK_TAG}
        self._write_endpoint(f"release the release lock of online endpoint {endpoint_name}", entity, no_progress)


__all__ = ["AzureWorkspace", "target_from_environment"]
