"""Managed online endpoints and deployments: traffic, keys, invoke, metrics, logs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from azure.ai.ml.entities import (
    CodeConfiguration,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    OnlineRequestSettings,
)
from azure.ai.ml.entities import (
    ProbeSettings as AzProbeSettings,
)

from mlops.errors import (
    AuthError,
    DeploymentFailedError,
    UsageError,
    WorkspaceError,
)
from mlops.workspace import azure_decisions as decide
from mlops.workspace import azure_monitor, rules
from mlops.workspace.azure.calls import AzureCalls, _tags
from mlops.workspace.port import (
    DeploymentMetrics,
    EndpointKeys,
    OnlineDeployment,
    OnlineDeploymentSpec,
    OnlineEndpoint,
    OnlineEndpointSpec,
    ProbeSettings,
    Progress,
    no_progress,
)

AML_SCOPE = "https://ml.azure.com/.default"


def _probe(settings: ProbeSettings) -> AzProbeSettings:
    return AzProbeSettings(initial_delay=settings.initial_delay, period=settings.period, timeout=settings.timeout,
                           success_threshold=settings.success_threshold, failure_threshold=settings.failure_threshold)



class OnlineOps(AzureCalls):
    """Online endpoints and deployments, traffic and mirror, keys, invoke, metrics and logs."""

    # online endpoints ------------------------------------------------------------------------
    def _online_endpoint(self, entity: Any) -> OnlineEndpoint:
        return OnlineEndpoint(name=entity.name, scoring_uri=str(getattr(entity, "scoring_uri", "") or ""),
                              auth_mode=str(getattr(entity, "auth_mode", "key") or "key"),
                              traffic=decide.nonzero(entity.traffic),
                              mirror_traffic=decide.nonzero(entity.mirror_traffic), tags=_tags(entity))

    def _get_endpoint_entity(self, name: str) -> Any:
        return self._call(f"get online endpoint {name}", self._ml.online_endpoints.get, name=name)

    def _idle_endpoint(self, name: str, what: str, progress: Progress) -> tuple[Any, list[Any]]:
        """The endpoint and its deployments, read once no operation runs on any of them: Azure runs
        one at a time there and refuses a write meanwhile (``AzureCalls._wait_idle``)."""
        read: list[Any] = []

        def states() -> dict[str, object]:
            read[:] = [self._get_endpoint_entity(name), self._deployment_entities(name)]
            return {f"endpoint {name}": getattr(read[0], "provisioning_state", None),
                    **{f"deployment {d.name}": getattr(d, "provisioning_state", None) for d in read[1]}}

        self._wait_idle(what, states, progress)
        return read[0], read[1]

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
            try:
                self._write_endpoint(f"create online endpoint {spec.name}", new, progress)
            except AuthError as error:  # the release identity: no onlineEndpoints/write, by design
                raise AuthError(decide.endpoint_setup_hint(spec.name, str(error))) from error
            return self._online_endpoint(self._get_endpoint_entity(spec.name))
        entity, held = self._idle_endpoint(spec.name, f"update online endpoint {spec.name}", progress)
        auth_change = bool(spec.auth_mode) and str(entity.auth_mode).lower() != spec.auth_mode.lower()
        if auth_change and held:
            progress(f"note: endpoint {spec.name} uses auth mode {entity.auth_mode}, the spec says {spec.auth_mode}; "
                     "left unchanged (it serves deployments: its clients use the current mode)")
            auth_change = False
        merged = {**_tags(entity), **dict(spec.tags)}
        if auth_change or merged != _tags(entity) or (spec.description and spec.description != entity.description):
            # read-modify-write: traffic and mirror are the ones just read. An endpoint without
            # deployments (e.g. created empty by an older version's release lock) takes the spec's auth mode:
            # ``authMode`` is an updatable property (Update=true in the ARM model, az-ps
            # IEndpointPropertiesBase.AuthMode) and no client depends on it yet.
            entity.tags = merged
            entity.description = spec.description or entity.description
            if auth_change:
                progress(f"endpoint {spec.name}: auth mode {entity.auth_mode} -> {spec.auth_mode} (as the spec says; "
                         "it has no deployments yet)")
                entity.auth_mode = spec.auth_mode
            self._write_endpoint(f"update online endpoint {spec.name}", entity, progress)
            self._invoke_targets.pop(spec.name, None)
            return self._online_endpoint(self._get_endpoint_entity(spec.name))
        return self._online_endpoint(entity)

    def delete_online_endpoint(self, name: str, *, progress: Progress = no_progress) -> None:
        progress(f"deleting online endpoint {name}")
        self._invoke_targets.pop(name, None)
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
        what = f"create deployment {spec.name} on online endpoint {spec.endpoint_name}"
        _, held = self._idle_endpoint(spec.endpoint_name, what, progress)  # NotFoundError names a missing endpoint
        existing = [d.name for d in held]
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
        endpoint, _ = self._idle_endpoint(endpoint_name, f"delete deployment {name} of online endpoint {endpoint_name}",
                                          progress)
        rules.check_deployment_deletion(endpoint_name, name, decide.nonzero(endpoint.traffic),
                                        decide.nonzero(endpoint.mirror_traffic))
        progress(f"deleting deployment {name} of online endpoint {endpoint_name}")
        self._lro(f"delete deployment {name} of online endpoint {endpoint_name}",
                  lambda: self._ml.online_deployments.begin_delete(name=name, endpoint_name=endpoint_name),
                  progress=progress)

    def set_traffic(self, endpoint_name: str, traffic: Mapping[str, int],
                    mirror_traffic: Mapping[str, int] | None = None, *,
                    progress: Progress = no_progress) -> OnlineEndpoint:
        entity, held = self._idle_endpoint(endpoint_name, f"update traffic of online endpoint {endpoint_name}", progress)
        deployments = [self._online_deployment(d) for d in held]
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
        self._invoke_targets.pop(endpoint_name, None)
        self._idle_endpoint(endpoint_name, f"regenerate the {which} key of online endpoint {endpoint_name}", no_progress)
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

    def _invoke_target(self, endpoint_name: str) -> tuple[str, str, str]:
        """(scoring URI, auth mode, key or "") of ``endpoint_name``, cached (``_invoke_targets``).
        aad_token endpoints cache no key: the credential caches and refreshes its own token. An
        endpoint still being created has no scoring URI yet (recorded: ``scoringUri: null`` until
        its operation ``Succeeded``): that is an error naming its state, and nothing is cached."""
        cached = self._invoke_targets.get(endpoint_name)
        if cached is None:
            entity = self._get_endpoint_entity(endpoint_name)
            if not getattr(entity, "scoring_uri", None):
                state = decide.deployment_state(getattr(entity, "provisioning_state", None))
                raise WorkspaceError(f"invoke online endpoint {endpoint_name}: it has no scoring URI yet (provisioning "
                                     f"state {state}); Azure gives it one when the endpoint's creation has succeeded")
            auth_mode = str(entity.auth_mode or "key")
            key = "" if auth_mode.lower() == "aad_token" else self._bearer(endpoint_name, auth_mode)
            cached = self._invoke_targets[endpoint_name] = (str(entity.scoring_uri), auth_mode, key)
        return cached

    def invoke(self, endpoint_name: str, body: bytes, *, deployment_name: str | None = None) -> bytes:
        for attempt in (1, 2):
            scoring_uri, auth_mode, key = self._invoke_target(endpoint_name)
            headers = {"Content-Type": "application/json",
                       "Authorization": f"Bearer {key or self._bearer(endpoint_name, auth_mode)}"}
            if deployment_name:
                headers["azureml-model-deployment"] = deployment_name
            try:
                status, payload = self.options.http_post(scoring_uri, body, headers, self.options.invoke_timeout)
            except OSError as exc:
                raise WorkspaceError(f"invoke online endpoint {endpoint_name}: cannot reach {scoring_uri}: {exc}") from exc
            if status == 401 and attempt == 1:  # the key may have been regenerated elsewhere: read it again
                self._invoke_targets.pop(endpoint_name, None)
                continue
            break
        if status >= 400:
            text = payload.decode("utf-8", "replace")[:2000]
            target = f" (deployment {deployment_name})" if deployment_name else ""
            raise WorkspaceError(f"invoke online endpoint {endpoint_name}{target}: HTTP {status}: {text}")
        return payload

    def deployment_metrics(self, endpoint_name: str, deployment_name: str, since: float,
                           until: float | None = None) -> DeploymentMetrics:
        """The deployment's rows of ``AmlOnlineEndpointTrafficLog`` in [since, until) (see
        ``azure_monitor``): waits out the rest of the ingestion delay first (once), then two queries."""
        now = self.options.wall_clock()
        until = now if until is None else min(until, now)
        if not self._log_workspace_id or self._logs is None:
            return azure_monitor.unconfigured(endpoint_name, deployment_name, since, until)
        remaining = self.options.ingestion_delay_s - (now - until)
        if self.options.wait_for_ingestion and remaining > 0:
            self.options.sleep(remaining)
            now = self.options.wall_clock()
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
                                                 ingestion_delay_s=self.options.ingestion_delay_s)

    def get_logs(self, endpoint_name: str, deployment_name: str, *, lines: int = 100) -> str:
        return self._call(f"get logs of deployment {deployment_name} on online endpoint {endpoint_name}",
                          self._ml.online_deployments.get_logs, name=deployment_name, endpoint_name=endpoint_name,
                          lines=lines)
