"""An in-memory ``Workspace`` whose online endpoints are real loopback HTTP servers.

The release logic is tested against it without the local workspace: registry, environments and
batch jobs live in dictionaries, while every online endpoint is a small threaded HTTP server that
honours the parts of the Azure rules the release relies on (key auth, traffic weights, the
``azureml-model-deployment`` request and response header, and per-deployment metrics of every
answer a deployment gave, as the local router and Azure Monitor keep them). How each model version behaves (extra
latency, failure rate, failing only when not header-targeted, forecast bias) is set per model
version with ``Behaviour``, so a "slow candidate" is just a model version the fake serves slowly.
"""

from __future__ import annotations

import csv
import io
import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from mlops.errors import ConflictError, DeploymentFailedError, NotFoundError, RuleViolation, WorkspaceError
from mlops.workspace.hashing import content_hash
from mlops.workspace.local.workspace.batch import LOCAL_BATCH_POLL_S
from mlops.workspace.port import (
    BatchDeployment,
    BatchDeploymentSpec,
    BatchEndpoint,
    BatchEndpointSpec,
    BatchJob,
    DeploymentMetrics,
    EndpointKeys,
    Environment,
    EnvironmentSpec,
    Model,
    OnlineDeployment,
    OnlineDeploymentSpec,
    OnlineEndpoint,
    OnlineEndpointSpec,
    ReleaseLock,
    no_progress,
)
from tests.loopback import LoopbackServer

HEADER = "azureml-model-deployment"


@dataclass
class Behaviour:
    delay_ms: float = 0.0
    fail_rate: float = 0.0
    fail_untargeted: bool = False
    bias: float = 1.0
    """Forecast = last context count x bias (1.0 is a seasonal-naive-ish good model)."""
    fail_on_create: bool = False


@dataclass
class _Endpoint:
    spec: OnlineEndpointSpec
    server: LoopbackServer
    keys: EndpointKeys
    traffic: dict[str, int] = field(default_factory=dict)
    deployments: dict[str, OnlineDeployment] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)


class FakeWorkspace:
    """Implements ``mlops.workspace.port.Workspace`` in memory (online endpoints over real HTTP)."""

    def __init__(self) -> None:
        self.uri = "fake:"
        self.models: dict[str, list[Model]] = {}
        self.environments: dict[str, list[Environment]] = {}
        self.endpoints: dict[str, _Endpoint] = {}
        self.batch_endpoints: dict[str, BatchEndpoint] = {}
        self.batch_deployments: dict[str, dict[str, tuple[BatchDeployment, BatchDeploymentSpec]]] = {}
        self.jobs: dict[str, tuple[BatchJob, Path]] = {}
        self.locks: dict[str, ReleaseLock] = {}
        self.behaviours: dict[str, Behaviour] = {}
        self.answers: list[tuple[float, str, str, int, float, str]] = []
        """(arrived, endpoint, deployment, status, latency ms, kind) of every answer a deployment gave."""
        """Model version -> how deployments of it behave."""
        self.calls: list[str] = []
        self.traffic_history: list[tuple[str, dict[str, int]]] = []
        self._lock = threading.Lock()
        self._jobs_dir = Path(__import__("tempfile").mkdtemp(prefix="fake-ws-jobs-"))

    def close(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.server.stop()

    # models --------------------------------------------------------------------------------
    def register_model(self, name, path, *, tags=None, progress=no_progress):
        self.calls.append("register_model")
        content = content_hash(Path(path))
        for model in self.models.get(name, []):
            if model.content_hash == content:
                return model
        versions = self.models.setdefault(name, [])
        model = Model(name, str(len(versions) + 1), content, str(path), dict(tags or {}))
        versions.append(model)
        return model

    def get_model(self, name, version="latest"):
        versions = self.models.get(name, [])
        if not versions:
            raise NotFoundError(f"model {name} not found")
        if version == "latest":
            return versions[-1]
        for model in versions:
            if model.version == version:
                return model
        raise NotFoundError(f"model {name}:{version} not found")

    def list_models(self, name):
        return list(self.models.get(name, []))

    def download_model(self, name, version, dest):
        import shutil

        self.calls.append("download_model")
        target = Path(dest) / name
        shutil.copytree(self.get_model(name, version).path, target, dirs_exist_ok=True)
        return target

    # environments --------------------------------------------------------------------------
    def ensure_environment(self, spec: EnvironmentSpec, *, progress=no_progress):
        self.calls.append("ensure_environment")
        content = spec.content_hash()
        versions = self.environments.setdefault(spec.name, [])
        for env in versions:
            if env.content_hash == content:
                return env
        env = Environment(spec.name, str(len(versions) + 1), content, spec.image)
        versions.append(env)
        return env

    def get_environment(self, name, version):
        for env in self.environments.get(name, []):
            if env.version == version:
                return env
        raise NotFoundError(f"environment {name}:{version} not found")

    # online --------------------------------------------------------------------------------
    def _view(self, endpoint: _Endpoint) -> OnlineEndpoint:
        return OnlineEndpoint(endpoint.spec.name, f"http://127.0.0.1:{endpoint.server.port}/score",
                              traffic=dict(endpoint.traffic))

    def list_online_endpoints(self):
        return [self._view(e) for e in self.endpoints.values()]

    def get_online_endpoint(self, name):
        endpoint = self.endpoints.get(name)
        return self._view(endpoint) if endpoint else None

    def ensure_online_endpoint(self, spec, *, progress=no_progress):
        if spec.name not in self.endpoints:
            server = LoopbackServer(_handler(self, spec.name), name=f"fake-endpoint-{spec.name}").start()
            self.endpoints[spec.name] = _Endpoint(spec, server, EndpointKeys("primary-key", "secondary-key"))
        return self._view(self.endpoints[spec.name])

    def delete_online_endpoint(self, name, *, progress=no_progress):
        endpoint = self.endpoints.pop(name)
        endpoint.server.stop()

    def _endpoint(self, name) -> _Endpoint:
        if name not in self.endpoints:
            raise NotFoundError(f"online endpoint {name} not found")
        return self.endpoints[name]

    def list_online_deployments(self, endpoint_name):
        return list(self._endpoint(endpoint_name).deployments.values())

    def get_online_deployment(self, endpoint_name, name):
        return self._endpoint(endpoint_name).deployments.get(name)

    def create_online_deployment(self, spec: OnlineDeploymentSpec, *, progress=no_progress):
        self.calls.append(f"create_online_deployment {spec.name} {spec.model}")
        endpoint = self._endpoint(spec.endpoint_name)
        if not (Path(spec.code_path) / spec.scoring_script).is_file():
            raise WorkspaceError(f"scoring script missing in {spec.code_path}")
        behaviour = self.behaviours.get(spec.model.version, Behaviour())
        state = "Failed" if behaviour.fail_on_create else "Succeeded"
        deployment = OnlineDeployment(spec.endpoint_name, spec.name, spec.model, spec.environment, state,
                                      spec.instance_count, tags=dict(spec.tags))
        with self._lock:
            endpoint.deployments[spec.name] = deployment
            endpoint.traffic.setdefault(spec.name, 0)
        if state == "Failed":
            raise DeploymentFailedError(f"deployment {spec.name} failed", log_tail="init() raised")
        return deployment

    def delete_online_deployment(self, endpoint_name, name, *, progress=no_progress):
        self.calls.append(f"delete_online_deployment {name}")
        endpoint = self._endpoint(endpoint_name)
        if endpoint.traffic.get(name, 0) > 0:
            raise RuleViolation(f"{name} has traffic")
        with self._lock:
            endpoint.deployments.pop(name, None)
            endpoint.traffic.pop(name, None)

    def set_traffic(self, endpoint_name, traffic, mirror_traffic=None, *, progress=no_progress):
        endpoint = self._endpoint(endpoint_name)
        total = sum(traffic.values())
        if total not in (0, 100) or any(name not in endpoint.deployments for name in traffic):
            raise RuleViolation(f"invalid traffic {dict(traffic)}")
        with self._lock:
            endpoint.traffic = {name: int(traffic.get(name, 0)) for name in endpoint.deployments}
        self.traffic_history.append((endpoint_name, dict(endpoint.traffic)))
        return self._view(endpoint)

    def get_keys(self, endpoint_name):
        return self._endpoint(endpoint_name).keys

    def regenerate_key(self, endpoint_name, which):
        return self._endpoint(endpoint_name).keys

    def invoke(self, endpoint_name, body, *, deployment_name=None):
        import urllib.request

        view = self._view(self._endpoint(endpoint_name))
        headers = {"Authorization": "Bearer primary-key", "Content-Type": "application/json"}
        if deployment_name:
            headers[HEADER] = deployment_name
        request = urllib.request.Request(view.scoring_uri, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                return response.read()
        except urllib.error.HTTPError as error:
            raise WorkspaceError(f"HTTP {error.code}: {error.read()[:200]!r}") from None

    def get_logs(self, endpoint_name, deployment_name, *, lines=100):
        return ""

    def deployment_metrics(self, endpoint_name, deployment_name, since, until=None):
        import numpy as np

        self._endpoint(endpoint_name)
        until = time.time() if until is None else until
        with self._lock:
            rows = [a for a in self.answers if a[1] == endpoint_name and a[2] == deployment_name
                    and since <= a[0] < until]
        codes: dict[int, int] = {}
        kinds: dict[str, int] = {}
        for _, _, _, status, _, kind in rows:
            codes[status] = codes.get(status, 0) + 1
            kinds[kind] = kinds.get(kind, 0) + 1
        ok = [a[4] for a in rows if 200 <= a[3] < 400]
        p50, p95, p99 = (float(v) for v in np.percentile(ok, [50, 95, 99])) if ok else (float("nan"),) * 3
        return DeploymentMetrics(endpoint_name, deployment_name, since, until, len(rows), codes, p50, p95, p99,
                                 kinds, complete=True, source="fake")

    # batch ---------------------------------------------------------------------------------
    def list_batch_endpoints(self):
        return list(self.batch_endpoints.values())

    def get_batch_endpoint(self, name):
        return self.batch_endpoints.get(name)

    def ensure_batch_endpoint(self, spec: BatchEndpointSpec, *, progress=no_progress):
        self.batch_endpoints.setdefault(spec.name, BatchEndpoint(spec.name, None))
        self.batch_deployments.setdefault(spec.name, {})
        return self.batch_endpoints[spec.name]

    def list_batch_deployments(self, endpoint_name):
        return [item[0] for item in self.batch_deployments.get(endpoint_name, {}).values()]

    def create_batch_deployment(self, spec: BatchDeploymentSpec, *, progress=no_progress):
        self.calls.append(f"create_batch_deployment {spec.name}")
        deployment = BatchDeployment(spec.endpoint_name, spec.name, spec.model, spec.environment, "Succeeded",
                                     tags=dict(spec.tags))
        self.batch_deployments[spec.endpoint_name][spec.name] = (deployment, spec)
        return deployment

    def delete_batch_deployment(self, endpoint_name, name, *, progress=no_progress):
        self.calls.append(f"delete_batch_deployment {name}")
        if self.batch_endpoints[endpoint_name].default_deployment == name:
            raise RuleViolation(f"{name} is the default")
        self.batch_deployments[endpoint_name].pop(name)

    def set_batch_default(self, endpoint_name, deployment_name):
        self.batch_endpoints[endpoint_name] = replace(self.batch_endpoints[endpoint_name],
                                                      default_deployment=deployment_name)
        return self.batch_endpoints[endpoint_name]

    def invoke_batch(self, endpoint_name, input_dir, *, deployment_name=None):
        name = deployment_name or self.batch_endpoints[endpoint_name].default_deployment
        deployment, _spec = self.batch_deployments[endpoint_name][name]
        bias = self.behaviours.get(deployment.model.version, Behaviour()).bias
        job_name = f"job-{len(self.jobs) + 1}"
        out = self._jobs_dir / job_name
        out.mkdir(parents=True)
        rows = ["date,forecast_origin,predicted,count,file"]
        for file in sorted(Path(input_dir).glob("*.csv")):
            data = list(csv.DictReader(io.StringIO(file.read_text())))
            for previous, row in zip(data, data[1:], strict=False):
                rows.append(f"{row['date']},{previous['date']},{float(previous['count']) * bias},{row['count']},"
                            f"{file.name}")
        (out / "predictions.csv").write_text("\n".join(rows) + "\n")
        job = BatchJob(job_name, endpoint_name, name, "Completed", 1, 1, 0)
        self.jobs[job_name] = (job, out)
        return job

    def get_batch_job(self, job_name):
        return self.jobs[job_name][0]

    @staticmethod
    def batch_job_poll(elapsed):
        return LOCAL_BATCH_POLL_S  # in memory, like the local workspace: a read costs nothing

    def download_batch_output(self, job_name, dest):
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / "predictions.csv"
        target.write_bytes((self.jobs[job_name][1] / "predictions.csv").read_bytes())
        return target

    def get_batch_job_logs(self, job_name, *, lines=100):
        return ""

    # locks ---------------------------------------------------------------------------------
    def acquire_release_lock(self, endpoint_name, holder):
        lock = self.locks.get(endpoint_name)
        if lock is not None and lock.holder != holder:
            raise ConflictError(f"release of {endpoint_name} already in progress: held by {lock.holder} "
                                f"since {lock.acquired_at}")
        if lock is None:
            lock = ReleaseLock(endpoint_name, holder, datetime.now(UTC).isoformat(timespec="seconds"))
            self.locks[endpoint_name] = lock
        return lock

    def release_release_lock(self, endpoint_name, holder):
        lock = self.locks.get(endpoint_name)
        if lock is not None and lock.holder == holder:
            del self.locks[endpoint_name]

    def get_release_lock(self, endpoint_name):
        return self.locks.get(endpoint_name)

    # the fake's HTTP side ------------------------------------------------------------------
    def _pick(self, endpoint_name: str, target: str | None) -> OnlineDeployment | None:
        endpoint = self.endpoints[endpoint_name]
        with self._lock:
            if target:
                return endpoint.deployments.get(target)
            weights = [(name, share) for name, share in endpoint.traffic.items() if share > 0]
        if not weights:
            return None
        names, shares = zip(*weights, strict=True)
        name = random.choices(names, weights=shares)[0]
        return endpoint.deployments.get(name)


def _forecast(body: bytes, bias: float) -> dict[str, object]:
    data = json.loads(body)["Inputs"]["data"]
    context = [row for row in data if "count" in row]
    future = [row for row in data if "count" not in row]
    if not future:
        raise ValueError("nothing to forecast")
    last = context[-7:] if len(context) >= 7 else context
    values = []
    for index, _row in enumerate(future):
        base = last[index % len(last)]["count"] if last else 1.0
        values.append(float(base) * bias)
    return {"Results": {"forecast": values, "index": [{"date": row["date"]} for row in future]}}


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler that answers JSON and names the serving deployment, as a router does."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, payload: Mapping[str, object], deployment: str = "") -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if deployment:
            self.send_header(HEADER, deployment)
        self.end_headers()
        self.wfile.write(body)


def _handler(workspace: FakeWorkspace, endpoint_name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        arrived = 0.0
        started = 0.0

        def _send(self, status: int, payload: Mapping[str, object], deployment: str = "") -> None:
            super()._send(status, payload, deployment)
            if deployment:
                kind = "targeted" if self.headers.get(HEADER) else "routed"
                with workspace._lock:
                    workspace.answers.append((self.arrived, endpoint_name, deployment, status,
                                              (time.perf_counter() - self.started) * 1000, kind))

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.arrived, self.started = time.time(), time.perf_counter()
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            endpoint = workspace.endpoints[endpoint_name]
            if self.headers.get("Authorization") not in (f"Bearer {endpoint.keys.primary_key}",
                                                         f"Bearer {endpoint.keys.secondary_key}"):
                self._send(401, {"error": "unauthorized"})
                return
            target = self.headers.get(HEADER)
            deployment = workspace._pick(endpoint_name, target)
            if deployment is None:
                self._send(404 if target else 503, {"error": "no deployment"})
                return
            behaviour = workspace.behaviours.get(deployment.model.version, Behaviour())
            endpoint.served[deployment.name] = endpoint.served.get(deployment.name, 0) + 1
            if behaviour.delay_ms:
                time.sleep(behaviour.delay_ms / 1000)
            if (behaviour.fail_untargeted and not target) or random.random() < behaviour.fail_rate:
                self._send(500, {"error": "injected failure"}, deployment.name)
                return
            try:
                payload = _forecast(body, behaviour.bias)
            except (ValueError, KeyError, TypeError) as error:
                self._send(400, {"error": str(error)}, deployment.name)
                return
            self._send(200, payload, deployment.name)

    return Handler
