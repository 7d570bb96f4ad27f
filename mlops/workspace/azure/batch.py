"""Batch endpoints and deployments, batch jobs, their outputs and logs."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from azure.ai.ml import Input
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import (
    BatchEndpoint as AzBatchEndpoint,
)
from azure.ai.ml.entities import (
    BatchRetrySettings as AzBatchRetrySettings,
)
from azure.ai.ml.entities import (
    CodeConfiguration,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
)
from azure.ai.ml.operations._job_ops_helper import _wait_before_polling

from mlops.errors import (
    DeploymentFailedError,
    NotFoundError,
    RuleViolation,
    UsageError,
    WorkspaceError,
)
from mlops.workspace import azure_decisions as decide
from mlops.workspace import rules
from mlops.workspace.azure.calls import AzureCalls, _tags
from mlops.workspace.port import (
    BatchDeployment,
    BatchDeploymentSpec,
    BatchEndpoint,
    BatchEndpointSpec,
    BatchJob,
    JobStatus,
    Progress,
    no_progress,
)

BATCH_OUTPUT_NAME = "score"
"""The named output of a batch scoring job (azure-ai-ml's ``BATCH_JOB_CHILD_RUN_OUTPUT_NAME``)."""


def _batch_default(endpoint: Any) -> str | None:
    defaults = getattr(endpoint, "defaults", None)
    if defaults is None:
        return None
    if isinstance(defaults, dict):  # as the adapter or a YAML sets it
        return defaults.get("deployment_name") or defaults.get("deploymentName") or None
    return getattr(defaults, "deployment_name", None) or None  # the REST model ``get`` returns



class BatchOps(AzureCalls):
    """Batch endpoints, batch deployments, batch jobs and their outputs and logs."""

    @staticmethod
    def batch_job_poll(elapsed: float) -> float:
        """Seconds before the next read of a batch job (``mlops.workspace.waiting``): azure-ai-ml's
        own schedule for waiting on a job (``_job_ops_helper._wait_before_polling``, what
        ``ml_client.jobs.stream`` sleeps): 2 s at first, a sigmoid of the time waited rising to a
        minute (59 s) after about three minutes (``AZUREML_RUN_POLLING_INTERVAL_MIN`` / ``_MAX`` tune it).
        A batch job runs for minutes, and every read is an ARM GET counted against the
        subscription's read limit."""
        return float(_wait_before_polling(max(elapsed, 0.0)))

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

    def _idle_batch_endpoint(self, name: str, what: str, progress: Progress) -> Any:
        """The batch endpoint, read once no operation runs on it (``AzureCalls._wait_idle``): a
        deployment on an endpoint that is still ``Creating`` is refused (the fake's and the wire
        emulator's rule; Microsoft's MLOps template waits for ``provisioning_state == "Succeeded"``
        before it deploys to a batch endpoint)."""
        read: list[Any] = []

        def states() -> dict[str, object]:
            read[:] = [self._get_batch_entity(name)]
            return {f"batch endpoint {name}": getattr(read[0], "provisioning_state", None)}

        self._wait_idle(what, states, progress)
        return read[0]

    def list_batch_endpoints(self) -> list[BatchEndpoint]:
        return [self._batch_endpoint(e) for e in self._list("list batch endpoints", self._ml.batch_endpoints.list)]

    def get_batch_endpoint(self, name: str) -> BatchEndpoint | None:
        entity = self._get_or_none(f"get batch endpoint {name}", self._ml.batch_endpoints.get, name=name)
        return None if entity is None else self._batch_endpoint(entity)

    def ensure_batch_endpoint(self, spec: BatchEndpointSpec, *, progress: Progress = no_progress) -> BatchEndpoint:
        rules.check_endpoint_name(spec.name)
        entity = self._get_or_none(f"get batch endpoint {spec.name}", self._ml.batch_endpoints.get, name=spec.name)
        if entity is not None:  # perhaps still being created by another writer: ready once it has succeeded
            return self._batch_endpoint(self._idle_batch_endpoint(spec.name, f"use batch endpoint {spec.name}",
                                                                  progress))
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
        what = f"create deployment {spec.name} on batch endpoint {spec.endpoint_name}"
        self._idle_batch_endpoint(spec.endpoint_name, what, progress)
        entity = ModelBatchDeployment(
            name=spec.name, endpoint_name=spec.endpoint_name,
            model=decide.asset_reference(spec.model), environment=decide.asset_reference(spec.environment),
            code_configuration=CodeConfiguration(code=str(spec.code_path), scoring_script=spec.scoring_script),
            compute=spec.compute, tags=dict(spec.tags) or None, description=spec.description or None,
            settings=ModelBatchDeploymentSettings(
                logging_level=spec.logging_level or None,
                mini_batch_size=spec.mini_batch_size, instance_count=spec.instance_count,
                max_concurrency_per_instance=spec.max_concurrency_per_instance,
                output_action=spec.output_action, output_file_name=spec.output_file_name,
                retry_settings=AzBatchRetrySettings(max_retries=spec.retry_settings.max_retries,
                                                    timeout=spec.retry_settings.timeout),
                error_threshold=spec.error_threshold,
                environment_variables=dict(spec.environment_variables) or None),
        )
        progress(f"{what} (model {spec.model}, environment {spec.environment}, compute {spec.compute})")
        self._lro(what, lambda: self._ml.batch_deployments.begin_create_or_update(entity), progress=progress,
                  failed=lambda reason: DeploymentFailedError(f"{what} failed: {reason}"))
        return self._wait_batch_deployment_ready(spec.endpoint_name, spec.name, what, progress)

    def _wait_batch_deployment_ready(self, endpoint_name: str, name: str, what: str,
                                     progress: Progress) -> BatchDeployment:
        """Until the deployment *reports* ``provisioning_state: Succeeded``: a batch deployment is not
        ready the moment its creation is accepted (issue 13; Microsoft's MLOps template scripts poll
        ``provisioning_state`` every 30 s until ``Succeeded`` before they use a batch endpoint or
        deployment, and ``az ml batch-deployment show --query provisioning_state`` before updating
        one); an invoke before that fails. ``Failed``/``Canceled`` end the wait with the reason."""
        deadline = self.options.clock() + self.options.lro_timeout
        while True:
            result = self._batch_deployment(self._call(f"get batch deployment {name}", self._ml.batch_deployments.get,
                                                       name=name, endpoint_name=endpoint_name))
            if result.state == "Succeeded":
                return result
            if result.state == "Failed":
                raise DeploymentFailedError(f"{what}: provisioning state {result.state}; see the deployment in "
                                            f"Azure ML studio (az ml batch-deployment show --endpoint-name "
                                            f"{endpoint_name} --name {name})")
            if self.options.clock() >= deadline:
                raise WorkspaceError(f"{what}: still {result.state} after {self.options.lro_timeout:.0f}s; check it in "
                                     "Azure ML studio and re-run (it is idempotent)")
            progress(f"{what}: provisioning state {result.state}; waiting for Succeeded")
            self.options.sleep(self.options.poll_interval)

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
        """The job's output file - the deployment's ``output_file_name`` (``predictions.csv`` by
        default), that file and no other - from the ``score`` output. A batch job is a pipeline
        job: azure-ai-ml looks in its child ("batchscoring") only when the job is *not* tagged
        ``azureml.jobtype: azureml.pipelinejob`` (``JobOperations.download`` and
        ``_get_batch_job_scoring_output_uri``), so the parent can hand back no file while the
        child holds it: then each child's ``score`` output is downloaded in turn."""
        job = self.get_batch_job(job_name)
        if job.status is not JobStatus.COMPLETED:
            raise WorkspaceError(f"batch job {job_name} is {job.status}: its output exists once it is Completed")
        output_name = ""
        if job.endpoint_name and job.deployment_name:
            deployment = self._get_or_none(f"get batch deployment {job.deployment_name}", self._ml.batch_deployments.get,
                                           name=job.deployment_name, endpoint_name=job.endpoint_name)
            # ``get`` returns a BatchDeployment, whose output_file_name is a top-level attribute
            output_name = str(getattr(deployment, "output_file_name", "") or "")
        wanted = output_name or "predictions.csv"
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        found: list[str] = []
        with tempfile.TemporaryDirectory(prefix="mlops-batch-") as tmp:
            sources = [job_name] + [child.name for child in self._list(
                f"list steps of batch job {job_name}", self._ml.jobs.list, parent_job_name=job_name) if child]
            for index, source in enumerate(sources):
                where = Path(tmp) / str(index)
                self._call(f"download output of batch job {source}", self._ml.jobs.download, source,
                           download_path=str(where), output_name=BATCH_OUTPUT_NAME)
                files = sorted(p for p in where.rglob("*") if p.is_file())
                found.extend(f"{source}: {p.relative_to(where).as_posix()}" for p in files)
                match = next((p for p in files if p.name == wanted), None)
                if match is not None:
                    target = dest / match.name
                    shutil.copy2(match, target)
                    return target
        raise NotFoundError(f"batch job {job_name} has no output file {wanted!r} in its '{BATCH_OUTPUT_NAME}' output "
                            f"(nor in its steps'); found: {', '.join(found) or 'no files'}. See 'mlops batch logs "
                            f"{job_name}': the scoring script's run() must return rows for output_action append_row")

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
