"""Batch endpoints, deployments and jobs of the local workspace. A job runs in a detached process
(``batch/jobs.py``); it is a row plus a folder ``jobs/<job>``."""

from __future__ import annotations

import json
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.errors import NotFoundError, UsageError
from mlops.workspace import rules
from mlops.workspace.local.batch.plan import BATCH_REQUIRED_PACKAGES, BatchJobRuntime
from mlops.workspace.local.registry import environments, store
from mlops.workspace.local.registry.store import loads, now
from mlops.workspace.local.workspace.base import LocalBase, stored_ref
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

LOCAL_BATCH_POLL_S = 0.5
"""Between reads of a local batch job (a SQLite query; the job runs here in seconds)."""


class BatchOps(LocalBase):
    """Batch endpoints (the first deployment is the default), deployments, jobs, outputs and logs."""

    @staticmethod
    def batch_job_poll(elapsed: float) -> float:  # noqa: ARG004 - the port's signature
        """Seconds before the next read of a batch job (``Workspace.batch_job_poll``): the same
        ``LOCAL_BATCH_POLL_S`` all along - a read is a SQLite query, not a call counted by a service."""
        return LOCAL_BATCH_POLL_S

    def _batch_endpoint(self, row: Any) -> BatchEndpoint:
        return BatchEndpoint(row["name"], row["default_deployment"], f"{self.uri}#batch/{row['name']}")

    def list_batch_endpoints(self) -> list[BatchEndpoint]:
        with self.store.read() as conn:
            return [self._batch_endpoint(row) for row in conn.execute("SELECT * FROM batch_endpoints ORDER BY name")]

    def get_batch_endpoint(self, name: str) -> BatchEndpoint | None:
        with self.store.read() as conn:
            row = conn.execute("SELECT * FROM batch_endpoints WHERE name = ?", (name,)).fetchone()
        return self._batch_endpoint(row) if row else None

    def _require_batch_endpoint(self, name: str) -> BatchEndpoint:
        endpoint = self.get_batch_endpoint(name)
        if endpoint is None:
            raise NotFoundError(f"batch endpoint {name!r} does not exist in {self.uri}")
        return endpoint

    def ensure_batch_endpoint(self, spec: BatchEndpointSpec, *, progress: Progress = no_progress) -> BatchEndpoint:
        rules.check_endpoint_name(spec.name)
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM batch_endpoints WHERE name = ?", (spec.name,)).fetchone() is None:
                conn.execute("INSERT INTO batch_endpoints (name, default_deployment, created_at) VALUES (?, NULL, ?)",
                             (spec.name, now()))
                progress(f"created batch endpoint {spec.name}")
        return self._require_batch_endpoint(spec.name)

    def list_batch_deployments(self, endpoint_name: str) -> list[BatchDeployment]:
        self._require_batch_endpoint(endpoint_name)
        with self.store.read() as conn:
            rows = store.batch_deployment_rows(conn, endpoint_name)
        return [BatchDeployment(row.endpoint_name, row.name, stored_ref(row.spec["model"]), stored_ref(row.spec["environment"]),
                                row.state, dict(row.spec.get("tags") or {}))  # type: ignore[arg-type]
                for row in rows]

    def create_batch_deployment(self, spec: BatchDeploymentSpec, *,
                                progress: Progress = no_progress) -> BatchDeployment:
        rules.check_deployment_name(spec.endpoint_name, spec.name)
        self._require_batch_endpoint(spec.endpoint_name)
        stored = self._stored_spec(spec, progress)
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO batch_deployments (endpoint_name, name, spec, state, updated_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT (endpoint_name, name) DO UPDATE SET spec = excluded.spec, state = excluded.state, "
                "updated_at = excluded.updated_at",
                (spec.endpoint_name, spec.name, json.dumps(stored), "Succeeded", now()),
            )
            # Like `az ml batch-deployment create --set-default` on a new endpoint: the first one is the default.
            conn.execute("UPDATE batch_endpoints SET default_deployment = ? WHERE name = ? AND default_deployment IS NULL",
                         (spec.name, spec.endpoint_name))
        progress(f"batch deployment {spec.endpoint_name}/{spec.name} ({spec.model}, {spec.environment}): Succeeded")
        return next(d for d in self.list_batch_deployments(spec.endpoint_name) if d.name == spec.name)

    def delete_batch_deployment(self, endpoint_name: str, name: str, *, progress: Progress = no_progress) -> None:
        with self.store.transaction() as conn:
            endpoint = conn.execute("SELECT * FROM batch_endpoints WHERE name = ?", (endpoint_name,)).fetchone()
            if endpoint is None:
                raise NotFoundError(f"batch endpoint {endpoint_name!r} does not exist in {self.uri}")
            if conn.execute("SELECT 1 FROM batch_deployments WHERE endpoint_name = ? AND name = ?",
                            (endpoint_name, name)).fetchone() is None:
                raise NotFoundError(f"deployment {name!r} does not exist on batch endpoint {endpoint_name!r}")
            rules.check_batch_deployment_deletion(endpoint_name, name, endpoint["default_deployment"])
            conn.execute("DELETE FROM batch_deployments WHERE endpoint_name = ? AND name = ?", (endpoint_name, name))
        progress(f"deleted batch deployment {endpoint_name}/{name}")

    def set_batch_default(self, endpoint_name: str, deployment_name: str) -> BatchEndpoint:
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM batch_endpoints WHERE name = ?", (endpoint_name,)).fetchone() is None:
                raise NotFoundError(f"batch endpoint {endpoint_name!r} does not exist in {self.uri}")
            if conn.execute("SELECT 1 FROM batch_deployments WHERE endpoint_name = ? AND name = ?",
                            (endpoint_name, deployment_name)).fetchone() is None:
                raise NotFoundError(f"deployment {deployment_name!r} does not exist on batch endpoint {endpoint_name!r}")
            conn.execute("UPDATE batch_endpoints SET default_deployment = ? WHERE name = ?",
                         (deployment_name, endpoint_name))
        return self._require_batch_endpoint(endpoint_name)

    def invoke_batch(self, endpoint_name: str, input_dir: Path, *, deployment_name: str | None = None) -> BatchJob:
        from mlops.workspace.local.batch import jobs

        endpoint = self._require_batch_endpoint(endpoint_name)
        name = deployment_name or endpoint.default_deployment
        if not name:
            raise UsageError(f"batch endpoint {endpoint_name!r} has no default deployment: name one with --deployment "
                             "or set the default")
        with self.store.read() as conn:
            row = conn.execute("SELECT spec FROM batch_deployments WHERE endpoint_name = ? AND name = ?",
                               (endpoint_name, name)).fetchone()
        if row is None:
            raise NotFoundError(f"deployment {name!r} does not exist on batch endpoint {endpoint_name!r}")
        spec = loads(row["spec"])
        input_dir = Path(input_dir).resolve()
        if not input_dir.is_dir():
            raise UsageError(f"batch input {input_dir} is not a folder")
        files = tuple(sorted(str(path) for path in input_dir.rglob("*") if path.is_file()))
        if not files:
            raise UsageError(f"batch input {input_dir} holds no files")
        env = stored_ref(spec["environment"])
        python = environments.environment_python(self.store, self.venvs, env.name, env.version)
        model = self.get_model(spec["model"]["name"], spec["model"]["version"])
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        job_name = f"{endpoint_name}-{stamp}-{secrets.token_hex(3)}"
        job_dir = store.private_dir(self.dir / "jobs" / job_name)
        retry = spec.get("retry_settings") or {}
        runtime = BatchJobRuntime(
            job_name=job_name, job_dir=str(job_dir), python=str(python), code_dir=spec["code_path"],
            scoring_script=spec["scoring_script"], model_dir=model.path, input_files=files,
            mini_batch_size=int(spec.get("mini_batch_size", 10)),
            workers=int(spec.get("instance_count", 1)) * int(spec.get("max_concurrency_per_instance", 1)),
            max_retries=int(retry.get("max_retries", 3)), timeout=int(retry.get("timeout", 30)),
            error_threshold=int(spec.get("error_threshold", -1)),
            output_action=spec.get("output_action", "append_row"),
            output_file_name=spec.get("output_file_name", "predictions.csv"),
            environment_variables=dict(spec.get("environment_variables") or {}),
            required_packages=BATCH_REQUIRED_PACKAGES,  # Azure's rule for a batch deployment's environment
        )
        with self.store.transaction() as conn:
            conn.execute("INSERT INTO jobs (name, endpoint_name, deployment_name, job_dir, created_at) VALUES (?,?,?,?,?)",
                         (job_name, endpoint_name, name, str(job_dir), now()))
        jobs.start_job(runtime)
        return self.get_batch_job(job_name)

    def _job_row(self, job_name: str) -> Any:
        with self.store.read() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE name = ?", (job_name,)).fetchone()
        if row is None:
            raise NotFoundError(f"batch job {job_name!r} does not exist in {self.uri}")
        return row

    def get_batch_job(self, job_name: str) -> BatchJob:
        from mlops.workspace.local.batch import jobs

        row = self._job_row(job_name)
        progress = jobs.read_progress(row["job_dir"])
        error = progress.error
        if progress.failed_files and not error:
            error = "failed files: " + ", ".join(progress.failed_files)
        return BatchJob(job_name, row["endpoint_name"], row["deployment_name"], progress.status,
                        progress.mini_batches_total, progress.mini_batches_done, progress.mini_batches_failed, error)

    def download_batch_output(self, job_name: str, dest: Path) -> Path:
        from mlops.workspace.local.batch import jobs

        row = self._job_row(job_name)
        progress = jobs.read_progress(row["job_dir"])
        if progress.status is not JobStatus.COMPLETED or not progress.output_file or not Path(progress.output_file).is_file():
            raise NotFoundError(f"batch job {job_name!r} has no output to download (status {progress.status}"
                                + (f": {progress.error}" if progress.error else "") + ")")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / Path(progress.output_file).name
        shutil.copyfile(progress.output_file, target)
        return target

    def get_batch_job_logs(self, job_name: str, *, lines: int = 100) -> str:
        from mlops.workspace.local.batch import jobs

        return jobs.read_logs(self._job_row(job_name)["job_dir"], lines=lines)
