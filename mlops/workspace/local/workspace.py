"""``LocalWorkspace``: the ``Workspace`` port on this machine, with real processes and no Docker.

The store (``registry/store.py``) is the truth; the long-lived host process (``online/host.py``,
through the ``HostClient`` seam of ``online/desired_state.py``) is made to match it. Every change follows one shape:

1. validate against the Azure rules (``mlops.workspace.rules``) inside one ``BEGIN IMMEDIATE``
   transaction, and write it - a violation raises and rolls back, so nothing changed;
2. push the endpoint's *whole* desired state to the host (``HostClient.apply``), under a
   workspace-wide file lock so two CLI processes' pushes cannot land out of order (each push
   reads the store afresh, so the last one always carries the latest state);
3. record the states the host reports (``Creating`` -> ``Succeeded`` / ``Failed`` + log tail).

A ``Failed`` deployment takes no traffic: its share is removed (the rest rescaled to 100), its
log tail is kept in the store (``get_logs`` still shows it) and it is no longer pushed to the host,
so a broken ``init()`` is not restarted forever.

Self-repair: the first online call of a ``LocalWorkspace`` (and any call that finds the host gone)
starts the host if needed and pushes every endpoint it does not serve, from the store - so after a
``kill -9`` of the host the next command brings every endpoint back on the same port with the same
keys.

Batch jobs run in detached processes (``batch/jobs.py``); a job is a row plus a folder ``jobs/<job>``.
Release locks are rows holding the holder's pid: a lock whose process is dead is stale and may be
taken over.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mlops.errors import (
    ConfigError,
    ConflictError,
    DeploymentFailedError,
    NotFoundError,
    UsageError,
    WorkspaceError,
)
from mlops.processes import process_alive
from mlops.workspace import rules
from mlops.workspace.local.batch.plan import BATCH_REQUIRED_PACKAGES, BatchJobRuntime
from mlops.workspace.local.online.desired_state import (
    DeploymentRuntime,
    DeploymentStatus,
    EndpointRuntime,
    HostClient,
)
from mlops.workspace.local.registry import automl_jobs, environments, models, store
from mlops.workspace.local.registry.artifacts import ArtifactStore
from mlops.workspace.local.registry.store import (
    DeploymentRow,
    EndpointRow,
    Store,
    dumps,
    file_lock,
    loads,
    now,
)
from mlops.workspace.port import (
    AssetRef,
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
    RequestSettings,
    TrainingJob,
    no_progress,
)

DEPLOYMENT_HEADER = "azureml-model-deployment"
INVOKE_TIMEOUT_S = 90.0
SUPPORTED_AUTH_MODES = ("key",)


def _spec_json(spec: OnlineDeploymentSpec | BatchDeploymentSpec, code_dir: Path) -> dict[str, Any]:
    """A deployment spec as stored: plain JSON, with ``code_path`` pointing at the artifact copy."""
    data = json.loads(json.dumps(asdict(spec), default=str))
    data["code_path"] = str(code_dir)
    return data


def _ref(data: Mapping[str, str]) -> AssetRef:
    return AssetRef(data["name"], data["version"])


def _online_deployment(row: DeploymentRow) -> OnlineDeployment:
    spec = row.spec
    return OnlineDeployment(row.endpoint_name, row.name, _ref(spec["model"]), _ref(spec["environment"]),
                            row.state, int(spec.get("instance_count", 1)), row.error,  # type: ignore[arg-type]
                            dict(spec.get("tags") or {}))


LOG_TAIL_MARKER = "\n--- log tail ---\n"


def _failure_text(host_error: str, host_log_tail: str) -> str:
    """``reason`` + ``LOG_TAIL_MARKER`` + log tail, from the host's error (its first line is the reason,
    any further lines its own log tail) or else the deployment's log file."""
    reason, _, rest = (host_error or "the deployment did not become ready").strip().partition("\n")
    lines = rest.splitlines()
    if lines and lines[0].startswith("--- ") and lines[0].endswith(" ---"):
        lines = lines[1:]  # the host's own "--- last N log lines ---" header
    tail = "\n".join(lines).strip() or host_log_tail.strip()
    return reason + (LOG_TAIL_MARKER + tail if tail else "")


SYNTHETIC = "synthetic"


def load_training_data(data: str, *, fast: bool = False) -> tuple[Any, str]:
    """``(frame, source)`` from a CSV (date,count[,holiday]) or ``synthetic`` (the seeded series;
    ``fast``: a shorter one). Bad input is a ``UsageError`` naming the file and the column."""
    from mlops.forecasting.data import load_series_csv
    from mlops.forecasting.errors import ForecastInputError
    from mlops.forecasting.synthetic import generate_dau
    from mlops.forecasting.training import MAX_IMPUTED_GAP

    if data == SYNTHETIC:
        return generate_dau(420 if fast else 1095, seed=0), SYNTHETIC
    try:
        return load_series_csv(data, fill_gaps=MAX_IMPUTED_GAP), str(data)
    except ForecastInputError as error:
        raise UsageError(str(error)) from None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _free_loopback_port(taken: set[int]) -> int:
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in taken:
            return port
    raise WorkspaceError("could not find a free loopback port for the endpoint")


class LocalWorkspace:
    """The embedded workspace under ``path`` (state in ``path/workspace.db``, files beside it).

    ``host`` and ``venv_cache`` default to the real host process of this folder and the
    machine-wide venv cache; they are parameters so that another host (or cache) can be plugged
    into the same seam.
    """

    def __init__(self, path: Path, *, host: HostClient | None = None, venv_cache: Path | None = None) -> None:
        self.dir = Path(path).expanduser().resolve()
        self.uri = f"local:{self.dir}"
        self.store = Store(self.dir)
        self.artifacts = ArtifactStore(store.private_dir(self.dir / "artifacts"))
        self.venvs = environments.VenvCache(venv_cache)
        self._host = host
        self._synced = False

    def __repr__(self) -> str:
        return f"LocalWorkspace({str(self.dir)!r})"

    # models ---------------------------------------------------------------------------------
    def register_model(self, name: str, path: Path, *, tags: Mapping[str, str] | None = None,
                       progress: Progress = no_progress) -> Model:
        return models.register_model(self.store, self.artifacts, name, Path(path), tags=tags, progress=progress)

    def register_model_from_job(self, name: str, job_name: str, *, tags: Mapping[str, str] | None = None,
                                progress: Progress = no_progress) -> Model:
        """The best trial of a local AutoML-shaped job (``automl_jobs.register_best_trial``)."""
        return automl_jobs.register_best_trial(
            self.store, name, job_name,
            lambda model_name, folder, all_tags: self.register_model(model_name, folder, tags=all_tags,
                                                                     progress=progress),
            tags=tags, progress=progress)

    def download_model(self, name: str, version: str, dest: Path) -> Path:
        model = self.get_model(name, version)
        target = Path(dest) / name
        shutil.copytree(model.path, target, dirs_exist_ok=True)
        return target

    # AutoML-shaped jobs ---------------------------------------------------------------------
    @property
    def automl_dir(self) -> Path:
        return self.dir / "automl"

    def run_automl_sweep(self, name: str, frame: Any, settings: automl_jobs.SweepSettings, base_config: Any, *,
                         progress: Progress = no_progress) -> TrainingJob:
        """A local AutoML sweep: ``settings.trials`` TCN variants of ``base_config`` (a
        ``TrainConfig``) trained on ``frame`` as the trials of job ``name``."""
        run, hyperparameters = automl_jobs.trial_runner(frame, settings.source, base_config)
        return automl_jobs.run_sweep(self.store, self.automl_dir, name, settings, run,
                                     hyperparameters=hyperparameters, progress=progress)

    def submit_automl_job(self, request: AutoMLJobRequest, *, progress: Progress = no_progress) -> TrainingJob:
        """Run the spec's sweep here: its primary metric, horizon and ``limits.max_trials`` (or
        ``request.trials``) on ``request.data`` (a data asset exists only on Azure)."""
        from dataclasses import replace as _replace

        from mlops.forecasting.training import TrainConfig
        from mlops.specs.automl_job import load_automl_job_spec

        spec = load_automl_job_spec(request.spec_file)
        if (spec.time_column, spec.target_column) != ("date", "count"):
            raise ConfigError(f"the local sweep trains the TCN on a daily series with columns date,count; the spec "
                              f"names time column {spec.time_column!r} and target {spec.target_column!r}",
                              file=str(spec.file), key="target_column_name")
        if not request.data:
            raise UsageError(f"the local workspace cannot read the data asset {spec.training_data!r}: pass --data "
                             "CSV|synthetic (a CSV with date,count[,holiday])")
        frame, source = load_training_data(request.data, fast=request.fast)
        trials = request.trials or min(spec.max_trials, 3)
        base = TrainConfig(horizon=spec.horizon)
        if request.fast:
            base = _replace(base, epochs=3, patience=2)
        name = request.name or f"{spec.experiment_name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
        settings = automl_jobs.SweepSettings(trials=trials, primary_metric=spec.primary_metric, horizon=spec.horizon,
                                             source=source, experiment_name=spec.experiment_name)
        return self.run_automl_sweep(name, frame, settings, base, progress=progress)

    def get_training_job(self, name: str) -> TrainingJob:
        return automl_jobs.get_job(self.store, name)

    def list_training_jobs(self) -> list[TrainingJob]:
        return automl_jobs.list_jobs(self.store)

    def get_model(self, name: str, version: str = "latest") -> Model:
        return models.get_model(self.store, name, version)

    def list_models(self, name: str) -> list[Model]:
        return models.list_models(self.store, name)

    # environments ---------------------------------------------------------------------------
    def ensure_environment(self, spec: EnvironmentSpec, *, progress: Progress = no_progress) -> Environment:
        return environments.ensure_environment(self.store, self.venvs, spec, progress=progress)

    def get_environment(self, name: str, version: str) -> Environment:
        return environments.get_environment(self.store, name, version)

    # host -----------------------------------------------------------------------------------
    @property
    def host(self) -> HostClient:
        """The host process of this workspace folder (started on demand by online calls)."""
        if self._host is None:
            from mlops.workspace.local.online.client import LocalHostClient

            self._host = LocalHostClient(self.dir)
        return self._host

    def sync_host(self, *, progress: Progress = no_progress, start: bool = False) -> list[str]:
        """Start the host if it is down (or ``start``) and push every endpoint it does not serve.

        Returns the names of the endpoints pushed. Called by every online operation, once per
        instance (and again whenever the host is found gone), so ``kill -9`` of the host is repaired
        by the next command with the same ports and keys.
        """
        with self.store.read() as conn:
            names = [row.name for row in store.endpoint_rows(conn)]
        if not names and not start:
            return []
        host = self.host
        if not host.is_running():
            if names:
                progress(f"starting the local host for {len(names)} endpoint(s) of {self.uri}")
            host.ensure_running()
            missing = names
        else:
            served = host.status()
            missing = [name for name in names if name not in served]
        for name in missing:
            progress(f"restoring endpoint {name} from the store")
            self._push(name, progress=progress)
        self._synced = True
        return missing

    def _online_host(self, progress: Progress = no_progress) -> HostClient:
        if not self._synced or not self.host.is_running():
            self.sync_host(progress=progress)
        return self.host

    def _runtime(self, endpoint: EndpointRow, deployments: list[DeploymentRow], include: str | None,
                 progress: Progress) -> EndpointRuntime:
        runtimes = []
        for row in deployments:
            if row.state == "Failed" and row.name != include:
                continue  # a failed deployment takes no traffic and is not restarted forever
            spec = row.spec
            env = _ref(spec["environment"])
            python = environments.environment_python(self.store, self.venvs, env.name, env.version, progress=progress)
            model = self.get_model(spec["model"]["name"], spec["model"]["version"])
            runtimes.append(DeploymentRuntime(
                name=row.name,
                python=str(python),
                code_dir=spec["code_path"],
                scoring_script=spec["scoring_script"],
                model_dir=model.path,
                environment_variables=dict(spec.get("environment_variables") or {}),
                instance_count=int(spec.get("instance_count", 1)),
                request_settings=RequestSettings(**spec.get("request_settings", {})),
                liveness_probe=ProbeSettings(**spec.get("liveness_probe", {})),
                readiness_probe=ProbeSettings(**spec.get("readiness_probe", {})),
                generation=str(row.generation),
            ))
        live = {row.name for row in deployments if row.state != "Failed" or row.name == include}
        return EndpointRuntime(
            name=endpoint.name, port=endpoint.port, primary_key=endpoint.primary_key,
            secondary_key=endpoint.secondary_key, auth_mode=endpoint.auth_mode,
            traffic={k: v for k, v in endpoint.traffic.items() if k in live},
            mirror_traffic={k: v for k, v in endpoint.mirror_traffic.items() if k in live},
            deployments=tuple(runtimes),
        )

    def _push(self, endpoint_name: str, *, include: str | None = None,
              progress: Progress = no_progress) -> dict[str, DeploymentStatus]:
        """Make the host serve the endpoint as the store says; record the states it reports.

        A deployment the host reports ``Failed`` is stored ``Failed`` with its log tail, loses its
        traffic and mirror share, and the endpoint is pushed once more without it.
        """
        host = self.host
        with file_lock(self.dir / "host-apply.lock"):
            with self.store.read() as conn:
                endpoint = store.endpoint_row(conn, endpoint_name)
                deployments = store.deployment_rows(conn, endpoint_name)
            if endpoint is None:
                host.remove_endpoint(endpoint_name)
                return {}
            runtime = self._runtime(endpoint, deployments, include, progress)
            statuses = host.apply(runtime)
            generations = {row.name: row.generation for row in deployments}
            failed: dict[str, str] = {}
            states: list[tuple[str, str, str]] = []
            for deployment in runtime.deployments:
                status = statuses.get(deployment.name)
                if status is None:
                    continue
                error = status.error
                if status.state == "Failed":
                    error = failed[deployment.name] = _failure_text(
                        status.error, self._host_logs(endpoint_name, deployment.name, 40))
                states.append((deployment.name, status.state, error))
            with self.store.transaction() as conn:
                for name, state, error in states:
                    store.set_deployment_state(conn, endpoint_name, name, state, error, generation=generations[name])
            if failed:
                with self.store.transaction() as conn:
                    current = store.endpoint_row(conn, endpoint_name)
                    if current is not None:
                        traffic, mirror = dict(current.traffic), dict(current.mirror_traffic)
                        for name in failed:
                            if traffic.get(name, 0) > 0:
                                progress(f"deployment {name} failed: its {traffic[name]}% traffic goes to the others")
                            traffic = rules.without_deployment(traffic, name)
                            mirror.pop(name, None)
                        store.set_traffic(conn, endpoint_name, traffic, mirror)
                    deployments = store.deployment_rows(conn, endpoint_name)
                    current = store.endpoint_row(conn, endpoint_name)
                if current is not None:
                    host.apply(self._runtime(current, deployments, None, progress))
            return statuses

    def _host_logs(self, endpoint_name: str, deployment_name: str, lines: int) -> str:
        try:
            return self.host.logs(endpoint_name, deployment_name, lines=lines)
        except Exception:  # noqa: BLE001 - the log tail is a courtesy; the failure itself is reported
            return ""

    # online endpoints -------------------------------------------------------------------------
    def _endpoint(self, row: EndpointRow) -> OnlineEndpoint:
        return OnlineEndpoint(row.name, f"http://127.0.0.1:{row.port}/score", row.auth_mode, dict(row.traffic),
                              dict(row.mirror_traffic), dict(row.tags))

    def _endpoint_row(self, name: str) -> EndpointRow:
        with self.store.read() as conn:
            row = store.endpoint_row(conn, name)
        if row is None:
            raise NotFoundError(f"online endpoint {name!r} does not exist in {self.uri}")
        return row

    def list_online_endpoints(self) -> list[OnlineEndpoint]:
        """Also repairs a crashed host, so ``mlops status`` after a ``kill -9`` shows what serves."""
        with self.store.read() as conn:
            rows = store.endpoint_rows(conn)
        if rows:
            self._online_host()
        return [self._endpoint(row) for row in rows]

    def get_online_endpoint(self, name: str) -> OnlineEndpoint | None:
        with self.store.read() as conn:
            row = store.endpoint_row(conn, name)
        if row is not None:
            self._online_host()
        return self._endpoint(row) if row else None

    def ensure_online_endpoint(self, spec: OnlineEndpointSpec, *, progress: Progress = no_progress) -> OnlineEndpoint:
        rules.check_endpoint_name(spec.name)
        if spec.auth_mode not in SUPPORTED_AUTH_MODES:
            raise UsageError(f"online endpoint {spec.name!r}: auth_mode {spec.auth_mode!r} is not supported by "
                             f"the local workspace (supported: {', '.join(SUPPORTED_AUTH_MODES)})")
        with self.store.transaction() as conn:
            row = store.endpoint_row(conn, spec.name)
            if row is None:
                taken = {port for (port,) in conn.execute("SELECT port FROM online_endpoints")}
                port = _free_loopback_port(taken)
                conn.execute(
                    "INSERT INTO online_endpoints (name, port, primary_key, secondary_key, auth_mode, traffic, "
                    "mirror_traffic, tags, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (spec.name, port, secrets.token_urlsafe(32), secrets.token_urlsafe(32), spec.auth_mode,
                     "{}", "{}", dumps(spec.tags), now()),
                )
                created = True
            else:
                created = False
        if created:
            progress(f"created online endpoint {spec.name} at http://127.0.0.1:{port}/score")
            self._online_host(progress)
            self._push(spec.name, progress=progress)
        return self._endpoint(self._endpoint_row(spec.name))

    def delete_online_endpoint(self, name: str, *, progress: Progress = no_progress) -> None:
        self._endpoint_row(name)
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM online_deployments WHERE endpoint_name = ?", (name,))
            conn.execute("DELETE FROM online_endpoints WHERE name = ?", (name,))
        if self.host.is_running():
            self.host.remove_endpoint(name)
        progress(f"deleted online endpoint {name}")

    # online deployments -----------------------------------------------------------------------
    def list_online_deployments(self, endpoint_name: str) -> list[OnlineDeployment]:
        self._endpoint_row(endpoint_name)
        with self.store.read() as conn:
            return [_online_deployment(row) for row in store.deployment_rows(conn, endpoint_name)]

    def get_online_deployment(self, endpoint_name: str, name: str) -> OnlineDeployment | None:
        with self.store.read() as conn:
            row = store.deployment_row(conn, endpoint_name, name)
        return _online_deployment(row) if row else None

    def create_online_deployment(self, spec: OnlineDeploymentSpec, *,
                                 progress: Progress = no_progress) -> OnlineDeployment:
        rules.check_deployment_name(spec.endpoint_name, spec.name)
        self._endpoint_row(spec.endpoint_name)
        with self.store.read() as conn:
            existing = [row.name for row in store.deployment_rows(conn, spec.endpoint_name)]
        rules.check_deployment_count(spec.endpoint_name, existing, spec.name)
        stored = self._stored_spec(spec, progress)
        with self.store.transaction() as conn:
            names = [row.name for row in store.deployment_rows(conn, spec.endpoint_name)]
            rules.check_deployment_count(spec.endpoint_name, names, spec.name)
            row = store.deployment_row(conn, spec.endpoint_name, spec.name)
            generation = (row.generation + 1) if row else 1
            state = "Updating" if row else "Creating"
            conn.execute(
                "INSERT INTO online_deployments (endpoint_name, name, spec, generation, state, error, updated_at) "
                "VALUES (?,?,?,?,?,'',?) ON CONFLICT (endpoint_name, name) DO UPDATE SET spec = excluded.spec, "
                "generation = excluded.generation, state = excluded.state, error = '', updated_at = excluded.updated_at",
                (spec.endpoint_name, spec.name, json.dumps(stored), generation, state, now()),
            )
        progress(f"deployment {spec.endpoint_name}/{spec.name} ({spec.model}, {spec.environment}): {state.lower()} "
                 f"{spec.instance_count} instance(s)")
        self._online_host(progress)
        statuses = self._push(spec.endpoint_name, include=spec.name, progress=progress)
        deployment = self.get_online_deployment(spec.endpoint_name, spec.name)
        status = statuses.get(spec.name)
        if deployment is None or status is None or status.state != "Succeeded":
            error = deployment.error if deployment else "the deployment was removed while it was starting"
            reason, _, tail = error.partition(LOG_TAIL_MARKER)
            reason = reason.strip()
            if f"'{spec.name}'" not in reason:
                reason = f"deployment {spec.name!r} on endpoint {spec.endpoint_name!r} failed to start: {reason}"
            raise DeploymentFailedError(reason, log_tail=tail)
        progress(f"deployment {spec.endpoint_name}/{spec.name}: Succeeded")
        return deployment

    def delete_online_deployment(self, endpoint_name: str, name: str, *, progress: Progress = no_progress) -> None:
        with self.store.transaction() as conn:
            endpoint = store.endpoint_row(conn, endpoint_name)
            if endpoint is None:
                raise NotFoundError(f"online endpoint {endpoint_name!r} does not exist in {self.uri}")
            if store.deployment_row(conn, endpoint_name, name) is None:
                raise NotFoundError(f"deployment {name!r} does not exist on online endpoint {endpoint_name!r}")
            rules.check_deployment_deletion(endpoint_name, name, endpoint.traffic, endpoint.mirror_traffic)
            conn.execute("DELETE FROM online_deployments WHERE endpoint_name = ? AND name = ?", (endpoint_name, name))
            traffic = {k: v for k, v in endpoint.traffic.items() if k != name}
            mirror = {k: v for k, v in endpoint.mirror_traffic.items() if k != name}
            store.set_traffic(conn, endpoint_name, traffic, mirror)
        self._online_host(progress)
        self._push(endpoint_name, progress=progress)
        progress(f"deleted deployment {endpoint_name}/{name}")

    def set_traffic(self, endpoint_name: str, traffic: Mapping[str, int],
                    mirror_traffic: Mapping[str, int] | None = None, *,
                    progress: Progress = no_progress) -> OnlineEndpoint:
        traffic = dict(traffic)
        with self.store.transaction() as conn:
            endpoint = store.endpoint_row(conn, endpoint_name)
            if endpoint is None:
                raise NotFoundError(f"online endpoint {endpoint_name!r} does not exist in {self.uri}")
            rows = store.deployment_rows(conn, endpoint_name)
            mirror = dict(endpoint.mirror_traffic) if mirror_traffic is None else dict(mirror_traffic)
            rules.check_traffic(endpoint_name, traffic, mirror, [row.name for row in rows],
                                failed=[row.name for row in rows if row.state == "Failed"])
            store.set_traffic(conn, endpoint_name, traffic, mirror)
        progress(f"endpoint {endpoint_name}: traffic {traffic}" + (f", mirror {mirror}" if mirror else ""))
        self._online_host(progress)
        self._push(endpoint_name, progress=progress)
        return self._endpoint(self._endpoint_row(endpoint_name))

    def get_keys(self, endpoint_name: str) -> EndpointKeys:
        row = self._endpoint_row(endpoint_name)
        return EndpointKeys(row.primary_key, row.secondary_key)

    def regenerate_key(self, endpoint_name: str, which: Literal["primary", "secondary"]) -> EndpointKeys:
        if which not in ("primary", "secondary"):
            raise UsageError(f"key must be 'primary' or 'secondary', got {which!r}")
        self._endpoint_row(endpoint_name)
        with self.store.transaction() as conn:
            conn.execute(f"UPDATE online_endpoints SET {which}_key = ? WHERE name = ?",  # noqa: S608 - fixed column
                         (secrets.token_urlsafe(32), endpoint_name))
        self._online_host()
        self._push(endpoint_name)
        return self.get_keys(endpoint_name)

    def invoke(self, endpoint_name: str, body: bytes, *, deployment_name: str | None = None) -> bytes:
        row = self._endpoint_row(endpoint_name)
        self._online_host()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {row.primary_key}"}
        if deployment_name:
            headers[DEPLOYMENT_HEADER] = deployment_name
        request = urllib.request.Request(f"http://127.0.0.1:{row.port}/score", data=body, headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=INVOKE_TIMEOUT_S) as response:  # noqa: S310 - loopback URL
                return response.read()
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace").strip()
            raise WorkspaceError(f"endpoint {endpoint_name!r} answered {error.code} {error.reason}: {text}") from error
        except (urllib.error.URLError, OSError) as error:
            raise WorkspaceError(f"endpoint {endpoint_name!r} at 127.0.0.1:{row.port} did not answer: {error}") from error

    def get_logs(self, endpoint_name: str, deployment_name: str, *, lines: int = 100) -> str:
        self._endpoint_row(endpoint_name)
        deployment = self.get_online_deployment(endpoint_name, deployment_name)
        if deployment is None:
            raise NotFoundError(f"deployment {deployment_name!r} does not exist on online endpoint {endpoint_name!r}")
        if deployment.state == "Failed":  # no longer on the host: the stored failure carries its log tail
            return "\n".join(deployment.error.splitlines()[-lines:])
        return self._online_host().logs(endpoint_name, deployment_name, lines=lines)

    def deployment_metrics(self, endpoint_name: str, deployment_name: str, since: float,
                           until: float | None = None) -> DeploymentMetrics:
        """What the endpoint's router recorded for the deployment (every kind of traffic, see
        ``traffic_metrics``). Incomplete when the router started recording after ``since`` (the host
        was restarted inside the window: what it served before is gone)."""
        self._endpoint_row(endpoint_name)
        data = self._online_host().deployment_metrics(endpoint_name, deployment_name, since, until)
        recorded_since = float(data.get("recorded_since") or 0.0)
        complete = recorded_since <= since
        note = ("" if complete else
                f"the router holds this deployment's requests only from {_iso(recorded_since)} (the local host "
                f"restarted, or older requests were dropped), after the window start {_iso(since)}")

        def number(key: str) -> float:
            value = data.get(key)
            return float("nan") if value is None else float(value)

        return DeploymentMetrics(
            endpoint_name=endpoint_name, deployment_name=deployment_name, since=since,
            until=float(data.get("until") or (until if until is not None else since)),
            requests=int(data.get("requests") or 0),
            status_codes={int(code): int(count) for code, count in (data.get("status_codes") or {}).items()},
            p50_ms=number("p50_ms"), p95_ms=number("p95_ms"), p99_ms=number("p99_ms"),
            kinds={str(k): int(v) for k, v in (data.get("kinds") or {}).items()},
            complete=complete, note=note, source="local router")

    # batch ------------------------------------------------------------------------------------
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
        return [BatchDeployment(row.endpoint_name, row.name, _ref(row.spec["model"]), _ref(row.spec["environment"]),
                                row.state, dict(row.spec.get("tags") or {}))  # type: ignore[arg-type]
                for row in rows]

    def _stored_spec(self, spec: OnlineDeploymentSpec | BatchDeploymentSpec, progress: Progress) -> dict[str, Any]:
        """Check what a deployment refers to (model, built environment, scoring script) and store its
        code as an immutable artifact; return the spec as the store keeps it."""
        self.get_model(spec.model.name, spec.model.version)
        environments.environment_python(self.store, self.venvs, spec.environment.name, spec.environment.version,
                                         progress=progress)
        code_path = Path(spec.code_path)
        if not (code_path / spec.scoring_script).is_file():
            raise ConfigError(f"scoring script {spec.scoring_script!r} not found in {code_path}",
                              key="code_configuration.scoring_script")
        _, code_dir = self.artifacts.put(code_path)
        return _spec_json(spec, code_dir)

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
        env = _ref(spec["environment"])
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

    # release lock -----------------------------------------------------------------------------
    def acquire_release_lock(self, endpoint_name: str, holder: str) -> ReleaseLock:
        hostname = socket.gethostname()
        with self.store.transaction() as conn:
            row = conn.execute("SELECT * FROM release_locks WHERE endpoint_name = ?", (endpoint_name,)).fetchone()
            if row is not None and row["holder"] != holder:
                alive = row["hostname"] != hostname or process_alive(row["pid"])
                if alive:
                    raise ConflictError(
                        f"the release lock of endpoint {endpoint_name!r} is held by {row['holder']!r} since "
                        f"{row['acquired_at']} (pid {row['pid']} on {row['hostname']}); wait for that release "
                        "to finish"
                    )
            acquired_at = row["acquired_at"] if row is not None and row["holder"] == holder else now()
            conn.execute(
                "INSERT INTO release_locks (endpoint_name, holder, pid, hostname, acquired_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT (endpoint_name) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, "
                "hostname = excluded.hostname, acquired_at = excluded.acquired_at",
                (endpoint_name, holder, os.getpid(), hostname, acquired_at),
            )
        return ReleaseLock(endpoint_name, holder, acquired_at)

    def release_release_lock(self, endpoint_name: str, holder: str) -> None:
        with self.store.transaction() as conn:
            row = conn.execute("SELECT holder FROM release_locks WHERE endpoint_name = ?", (endpoint_name,)).fetchone()
            if row is not None and row["holder"] != holder:
                raise ConflictError(f"the release lock of endpoint {endpoint_name!r} is held by {row['holder']!r}, "
                                    f"not {holder!r}")
            conn.execute("DELETE FROM release_locks WHERE endpoint_name = ?", (endpoint_name,))

    def get_release_lock(self, endpoint_name: str) -> ReleaseLock | None:
        """The lock in force: one whose holder process died on this machine is stale (the next
        ``acquire_release_lock`` takes it over), so it is reported as none."""
        with self.store.read() as conn:
            row = conn.execute("SELECT * FROM release_locks WHERE endpoint_name = ?", (endpoint_name,)).fetchone()
        if row is None or (row["hostname"] == socket.gethostname() and not process_alive(row["pid"])):
            return None
        return ReleaseLock(row["endpoint_name"], row["holder"], row["acquired_at"])


__all__ = ["LocalWorkspace"]
