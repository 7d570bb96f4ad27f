"""Online endpoints and deployments of the local workspace: the store is the truth, the long-lived host
process (``online/host.py``, through the ``HostClient`` seam of ``online/desired_state.py``) is made
to match it.

A ``Failed`` deployment takes no traffic: its share is removed (the rest rescaled to 100), its
log tail is kept in the store (``get_logs`` still shows it) and it is no longer pushed to the host,
so a broken ``init()`` is not restarted forever.

Self-repair: the first online call of a ``LocalWorkspace`` (and any call that finds the host gone)
starts the host if needed and pushes every endpoint it does not serve, from the store - so after a
``kill -9`` of the host the next command brings every endpoint back on the same port with the same
keys.
"""

from __future__ import annotations

import json
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

from mlops.errors import DeploymentFailedError, NotFoundError, UsageError, WorkspaceError
from mlops.workspace import rules
from mlops.workspace.local.online.desired_state import (
    DeploymentRuntime,
    DeploymentStatus,
    EndpointRuntime,
    HostClient,
)
from mlops.workspace.local.online.routing import DEPLOYMENT_HEADER
from mlops.workspace.local.registry import environments, store
from mlops.workspace.local.registry.store import DeploymentRow, EndpointRow, dumps, file_lock, now
from mlops.workspace.local.workspace.base import LocalBase, stored_ref
from mlops.workspace.port import (
    DeploymentMetrics,
    EndpointKeys,
    OnlineDeployment,
    OnlineDeploymentSpec,
    OnlineEndpoint,
    OnlineEndpointSpec,
    ProbeSettings,
    Progress,
    RequestSettings,
    no_progress,
)

INVOKE_TIMEOUT_S = 90.0
SUPPORTED_AUTH_MODES = ("key",)


def _online_deployment(row: DeploymentRow) -> OnlineDeployment:
    spec = row.spec
    return OnlineDeployment(row.endpoint_name, row.name, stored_ref(spec["model"]), stored_ref(spec["environment"]),
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


class OnlineOps(LocalBase):
    """The host (started on demand, repaired when gone), online endpoints, deployments, traffic, keys,
    invoke, logs and the router's per-deployment metrics."""

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
            env = stored_ref(spec["environment"])
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
