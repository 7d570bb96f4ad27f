"""A recording, stateful fake of ``azure.ai.ml.MLClient`` for offline tests of the Azure adapter.

The operation groups (``online_endpoints``, ``online_deployments``, ``batch_endpoints``,
``batch_deployments``, ``models``, ``environments``, ``jobs``) have azure-ai-ml's real method
names and parameters (``tests/azure/test_sdk_contract.py`` checks them against the installed SDK).
Every call is recorded in ``FakeAzure.calls``.

What makes it a model of Azure ML rather than a mock:

* Entities sent to it are converted with the SDK's own REST serialization
  (``_to_rest_online_endpoint``, ``_to_rest_object``, ``_to_rest_batch_endpoint``) - the body the
  service would receive - and that body is what is stored (``Call.body`` keeps its ``as_dict()``).
  ``get`` rebuilds entities from it with the SDK's ``_from_rest_object``, as the real client does,
  so read-modify-write really carries what the service holds, and an endpoint PUT with empty
  ``traffic`` really zeroes the traffic.
* Server-side rules: traffic only for existing deployments, summing to 0 or 100; mirror at most
  50% on one deployment without live traffic; a deployment with traffic cannot be deleted; a new
  deployment takes no traffic; referenced models/environments must exist; asset versions are
  immutable (a model version PUT with other files -> 409 "Asset paths cannot be updated." as
  azure-core's ``ResourceExistsError``, which the SDK does not turn into its ``AssetPathException``;
  an environment version with another definition -> 409; a PUT of the same content is an update); version lists hide archived versions unless asked for
  ``ListViewType.ALL`` (the SDK's default is ``ACTIVE_ONLY``; the recording
  ``test_model_archive_restore_version`` shows the archived version gone from the list, readable by
  GET); a batch deployment reports ``Creating`` for a while after its creation is accepted, and
  refuses jobs until ``Succeeded``; a batch job whose environment lacks ``azureml-core`` or
  ``azureml-dataset-runtime[fuse]`` fails (Azure's docs: "Such environment needs to include the
  packages azureml-core and azureml-dataset-runtime[fuse], which are required by batch endpoints",
  how-to-use-batch-model-deployments); the ``score`` output lives on the batch job's child step,
  not on the pipeline parent (``JobOperations._get_batch_job_scoring_output_uri``).
* Long-running operations take their recorded time on the fake clock and change the state when
  they *end* (``fake_operations``): a new endpoint is ``Creating`` without a scoring URI until its
  creation has succeeded; a second write to an endpoint or its deployments while an operation runs
  there is refused with 409 (so is a deployment on an endpoint, online or batch, that is still
  being created or updated); the ``begin_*`` pollers are done when that time has passed.
* Injectable trouble: 409 "operation in progress" for the next N calls of a method, deployments
  whose container crashes (with logs), an endpoint that reports a traffic change only after N
  reads, a credential error on the next call.

It is reusable for the release-pipeline scenarios over the Azure adapter (``make_workspace``).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from azure.ai.ml._artifacts._constants import (
    ASSET_PATH_ERROR,
    CHANGED_ASSET_PATH_MSG,
    CHANGED_ASSET_PATH_MSG_NO_PERSONAL_DATA,
)
from azure.ai.ml._restclient.arm_ml_service import models as rest_models
from azure.ai.ml.constants import ListViewType
from azure.ai.ml.constants._common import EMPTY_CREDENTIALS_ERROR
from azure.ai.ml.entities import BatchEndpoint, Environment, Model
from azure.ai.ml.entities._deployment.batch_deployment import BatchDeployment
from azure.ai.ml.entities._deployment.online_deployment import OnlineDeployment
from azure.ai.ml.entities._endpoint.online_endpoint import (
    EndpointAadToken,
    EndpointAuthKeys,
    EndpointAuthToken,
    OnlineEndpoint,
)
from azure.ai.ml.entities._inputs_outputs import Input
from azure.ai.ml.entities._job.automl.tabular.forecasting_job import ForecastingJob
from azure.ai.ml.exceptions import AssetPathException, ErrorCategory, ErrorTarget, MlException
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)

from tests.azure.fake_operations import (
    LRO_SECONDS,
    FakeClock,
    FakePoller,
    Operation,
    Operations,
    conflict_message,
    endpoint_busy_message,
)
from tests.azure_emulator import online_rules

__all__ = ["FakeClock", "FakePoller"]  # the poller and the clock live in ``fake_operations``

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-mlops"
WORKSPACE = "ws-mlops"
LOCATION = "westeurope"
_ARM = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{WORKSPACE}")


_ARM_CODE = re.compile(r"^(?P<code>[A-Z][A-Za-z]+): (?P<message>.*)$", re.DOTALL)
_ERROR_MAP = {401: ClientAuthenticationError, 404: ResourceNotFoundError, 409: ResourceExistsError}
"""The ``error_map`` every generated operation of azure-ai-ml's REST client passes to azure-core's
``map_error`` (e.g. ``_restclient/v2023_04_01_preview/operations/_model_versions_operations.py``);
any other status is a plain ``HttpResponseError``."""


class _ArmResponse:
    """What azure-core's ``HttpResponseError`` reads of a response: status, reason, body text."""

    def __init__(self, status: int, body: dict) -> None:
        self.status_code = status
        self.reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        self.headers = {"Content-Type": "application/json; charset=utf-8"}
        self.content_type = self.headers["Content-Type"]
        self.request = None
        self._text = json.dumps(body)

    def text(self, encoding: str | None = None) -> str:  # noqa: ARG002 - azure-core's signature
        return self._text


def http_error(status: int, message: str) -> HttpResponseError:
    """The exception azure-core raises for an ARM error answer with ``status``, exactly as the real
    client raises it: the class from ``_ERROR_MAP`` built by ``map_error`` from the response (so
    ``str()`` is azure-core's ``ODataV4Format`` rendering ``"(Code) message\nCode: Code\nMessage:
    message"``, as the wire emulator's answers come out). The body is the ARM error shape every
    recorded 4xx carries (``{"error": {"code", "message", "details", "additionalInfo"}}``,
    ``tests/azure_emulator/messages.py``); a leading ``Code: `` in ``message`` is the error's code,
    else the ML resource provider's ``UserError``."""
    match = _ARM_CODE.match(message)
    code, text = (match["code"], match["message"]) if match else ("UserError", message)
    body = {"error": {"code": code, "message": text, "details": [], "additionalInfo": []}}
    return _ERROR_MAP.get(status, HttpResponseError)(response=_ArmResponse(status, body))


@dataclass
class Call:
    group: str
    method: str
    args: tuple
    kwargs: dict
    body: dict | None = None
    """The REST body the SDK would send (``as_dict()`` of the serialized entity), for writes."""


@dataclass
class FakeAzure:
    """The service's state, shared by the operation groups, plus the call record and injections."""

    calls: list[Call] = field(default_factory=list)
    blobs: Any = None
    """workspaceblobstore's blobs (``fake_blob_lease.FakeBlobService``): where the release lock lives."""
    online_endpoints: dict[str, Any] = field(default_factory=dict)
    online_deployments: dict[tuple[str, str], Any] = field(default_factory=dict)
    batch_endpoints: dict[str, Any] = field(default_factory=dict)
    batch_deployments: dict[tuple[str, str], Any] = field(default_factory=dict)
    models: dict[tuple[str, str], Model] = field(default_factory=dict)
    environments: dict[tuple[str, str], Environment] = field(default_factory=dict)
    jobs: dict[str, SimpleNamespace] = field(default_factory=dict)
    unparsable_jobs: set[str] = field(default_factory=set)
    """Jobs whose REST object the SDK cannot parse: ``jobs.list`` yields ``None`` for them."""
    model_files: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    """(model, version) -> {relative path: bytes} uploaded by ``models.create_or_update``."""
    job_files: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    """(job, output name or "default") -> {relative path: bytes}."""
    keys: dict[str, list[str]] = field(default_factory=dict)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)
    # injections
    conflicts: dict[str, int] = field(default_factory=dict)
    """``"group.method"`` -> how many next calls fail with 409 "operation in progress"."""
    failing_deployments: dict[str, str] = field(default_factory=dict)
    """Deployment name -> its container log; creating it ends ``Failed``."""
    traffic_lag: int = 0
    """After a traffic change, this many ``get`` calls still report the old traffic."""
    fail_next: dict[str, Exception] = field(default_factory=dict)
    """``"group.method"`` -> an exception raised once by the next such call."""
    batch_job_status: str = "Completed"
    batch_scorer: Callable[[str, str, Path], bytes] | None = None
    """``(endpoint, deployment, input folder) -> output file bytes`` of a batch job; default: one
    ``file,deployment,digest`` row per input file. Set it to produce a scoring script's real output."""
    scoring_uri: Callable[[str], str] | None = None
    """Endpoint name -> scoring URI; default ``https://<name>.<region>.inference.ml.azure.com/score``.
    Point it at a loopback router to run load tests through the adapter."""
    archived: set[tuple[str, str, str]] = field(default_factory=set)
    """``("models" | "environments", name, version)`` archived: hidden from default lists, readable by get."""
    batch_ready_after: int = 2
    """A new batch deployment reports ``Creating`` for this many ``get`` calls before ``Succeeded``."""
    batch_failing_provisioning: set[str] = field(default_factory=set)
    """Batch deployment names whose provisioning ends ``Failed`` (after ``batch_ready_after`` reads)."""
    batch_invoke_errors: list[Exception] = field(default_factory=list)
    """Raised, in order, by the next batch ``invoke`` calls (e.g. a transient 503)."""
    credential: Any = None
    """The credential the client was made with: what ``get_keys`` of an ``aad_token`` endpoint asks."""
    lro_seconds: dict[str, float] = field(default_factory=lambda: dict(LRO_SECONDS))
    """``"group.create" | "group.update" | "group.delete"`` -> virtual seconds that operation runs
    (``fake_operations.LRO_SECONDS``: the recorded durations)."""
    clock: Any = field(default_factory=FakeClock)
    _stale: dict[str, tuple[Any, int]] = field(default_factory=dict)
    _batch_pending: dict[tuple[str, str], int] = field(default_factory=dict)
    _job_counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.operations = Operations(lambda: self.clock)
        """The long-running operations in flight (``fake_operations``)."""

    def start(self, group: str, kind: str, resource: tuple[str, ...],
              finish: Callable[[], Any] | None = None) -> FakePoller:
        """Start a long-running operation of ``group`` (``create`` / ``update`` / ``delete``) on
        ``resource``; ``finish`` applies its change when it ends."""
        operation = self.operations.start(resource, kind, self.lro_seconds.get(f"{group}.{kind}", 0.0), finish)
        return FakePoller(operation, self.operations)

    def refuse_if_busy(self, resource: tuple[str, ...], name: str) -> None:
        """409 while an operation runs on ``resource`` or one of its children (``fake_operations``)."""
        if self.operations.busy(resource) is not None:
            raise http_error(409, conflict_message(name, WORKSPACE))

    def running(self, resource: tuple[str, ...]) -> Operation | None:
        return self.operations.on(resource)

    # recording -------------------------------------------------------------------------------
    def record(self, group: str, method: str, args: tuple, kwargs: dict) -> None:
        self.operations.settle()  # what has ended by now has ended, whoever polled it
        self.calls.append(Call(group, method, args, kwargs))
        key = f"{group}.{method}"
        if key in self.fail_next:
            raise self.fail_next.pop(key)
        if self.conflicts.get(key, 0) > 0:
            self.conflicts[key] -= 1
            raise http_error(409, conflict_message(key, WORKSPACE))  # another writer's operation

    def calls_to(self, group: str, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.group == group and (method is None or c.method == method)]

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.body is not None]

    def traffic(self, endpoint: str) -> dict[str, int]:
        return {k: v for k, v in (self.online_endpoints[endpoint].properties.traffic or {}).items() if v}

    def mirror(self, endpoint: str) -> dict[str, int]:
        return {k: v for k, v in (self.online_endpoints[endpoint].properties.mirror_traffic or {}).items() if v}

    # seeding ---------------------------------------------------------------------------------
    def add_job(self, name: str, *, status: str = "Completed", parent: str | None = None,
                properties: dict | None = None, tags: dict | None = None, primary_metric: str | None = None,
                files: dict[str, bytes] | None = None, outputs: dict[str, dict[str, bytes]] | None = None,
                unparsable: bool = False) -> None:
        """Seed a job. ``primary_metric`` (e.g. ``NormalizedRootMeanSquaredError`` as the service
        sends it, or ``r2_score``) is stored as the SDK hands it back after its REST round trip: the
        ``ForecastingPrimaryMetrics`` enum, set through ``ForecastingJob``'s own property setter
        (azure/ai/ml/entities/_job/automl/tabular/forecasting_job.py). ``unparsable``: the SDK's
        ``jobs.list(parent_job_name=...)`` yields ``None`` for it (``RunOperations._translate_from_rest_object``)."""
        job = SimpleNamespace(name=name, status=status, parent=parent, properties=dict(properties or {}),
                              tags=dict(tags or {}), primary_metric=None,
                              type="automl" if primary_metric is not None else "command")
        if primary_metric is not None:
            ForecastingJob.primary_metric.fset(job, primary_metric)  # type: ignore[attr-defined]
            job.primary_metric = job._primary_metric
            del job._primary_metric
        self.jobs[name] = job
        if unparsable:
            self.unparsable_jobs.add(name)
        if files is not None:
            self.job_files[(name, "default")] = dict(files)
        for output, content in (outputs or {}).items():
            self.job_files[(name, output)] = dict(content)


def _fresh(rest: Any) -> Any:
    return copy.deepcopy(rest)


def _check_traffic_server_side(traffic: dict, mirror: dict, deployments: Iterable[str]) -> None:
    """The resource provider's traffic and mirror rules (one place: ``online_rules.traffic_problem``)."""
    problem = online_rules.traffic_problem(traffic, mirror, set(deployments))
    if problem:
        raise http_error(400, problem)


def _ref(text: str) -> tuple[str, str]:
    body = text.removeprefix("azureml:")
    name, _, version = body.rpartition(":")
    return name, version


class _Group:
    group = ""

    def __init__(self, azure: FakeAzure) -> None:
        self._azure = azure

    def _body(self, body: dict) -> None:
        """Attach the REST body of this write to the call being recorded."""
        self._azure.calls[-1].body = body


class _Recorded:
    """Wraps an operation group: records each call exactly as the adapter made it (positional and
    keyword arguments), applies the injections, then runs the fake method."""

    def __init__(self, group: _Group) -> None:
        self._group = group

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._group, name)
        if name.startswith("_") or not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            self._group._azure.record(self._group.group, name, args, kwargs)
            return method(*args, **kwargs)

        return call


class FakeOnlineEndpointOperations(_Group):
    group = "online_endpoints"

    def get(self, name: str, *, local: bool = False) -> OnlineEndpoint:
        azure = self._azure
        if name not in azure.online_endpoints:
            raise http_error(404, f"ResourceNotFound: online endpoint {name} not found")
        rest = azure.online_endpoints[name]
        stale = azure._stale.get(name)
        if stale is not None:
            old, remaining = stale
            if remaining <= 1:
                del azure._stale[name]
            else:
                azure._stale[name] = (old, remaining - 1)
            rest = old
        return OnlineEndpoint._from_rest_object(_fresh(rest))

    def list(self, *, local: bool = False) -> list[OnlineEndpoint]:
        return [OnlineEndpoint._from_rest_object(_fresh(r)) for r in self._azure.online_endpoints.values()]

    def begin_create_or_update(self, endpoint: OnlineEndpoint, *, local: bool = False) -> FakePoller:
        # what the real operation does before sending: drop 0% entries, serialize
        endpoint = copy.deepcopy(endpoint)
        endpoint.traffic = {k: v for k, v in (endpoint.traffic or {}).items() if v}
        endpoint.mirror_traffic = {k: v for k, v in (endpoint.mirror_traffic or {}).items() if v}
        rest = endpoint._to_rest_online_endpoint(location=LOCATION)
        self._body(rest.as_dict())
        azure = self._azure
        name = endpoint.name
        deployments = [d for (e, d) in azure.online_deployments if e == name]
        _check_traffic_server_side(dict(rest.properties.traffic or {}), dict(rest.properties.mirror_traffic or {}),
                                   deployments)
        old = azure.online_endpoints.get(name)
        if old is not None:  # one operation at a time on the endpoint and its deployments
            azure.refuse_if_busy(("online", name), name)
        rest.name = name
        rest.id = f"{_ARM}/onlineEndpoints/{name}"
        uri = azure.scoring_uri(name) if azure.scoring_uri else f"https://{name}.{LOCATION}.inference.ml.azure.com/score"
        if old is None:
            # recorded: the PUT answers ``Creating`` with ``scoringUri: null``; the URI comes with ``Succeeded``
            rest.properties.provisioning_state = "Creating"
            rest.properties.scoring_uri = None
            azure.online_endpoints[name] = copy.deepcopy(rest)
            azure.keys.setdefault(name, [secrets.token_urlsafe(16), secrets.token_urlsafe(16)])
        else:  # GET shows the old state, ``Updating``, until the operation ends
            old.properties.provisioning_state = "Updating"
        rest.properties.scoring_uri = uri

        def finish() -> OnlineEndpoint:
            rest.properties.provisioning_state = "Succeeded"
            if old is not None and azure.traffic_lag and (
                    dict(old.properties.traffic or {}) != dict(rest.properties.traffic or {})
                    or dict(old.properties.mirror_traffic or {}) != dict(rest.properties.mirror_traffic or {})):
                stale = copy.deepcopy(old)
                stale.properties.provisioning_state = "Succeeded"
                azure._stale[name] = (stale, azure.traffic_lag)
            azure.online_endpoints[name] = rest
            return OnlineEndpoint._from_rest_object(_fresh(rest))

        return azure.start(self.group, "create" if old is None else "update", ("online", name), finish)

    def begin_delete(self, name: str | None = None, *, local: bool = False) -> FakePoller:
        azure = self._azure
        if name not in azure.online_endpoints:
            raise http_error(404, f"ResourceNotFound: online endpoint {name} not found")
        azure.refuse_if_busy(("online", name), name)
        azure.online_endpoints[name].properties.provisioning_state = "Deleting"

        def finish() -> None:
            del azure.online_endpoints[name]
            for key in [k for k in azure.online_deployments if k[0] == name]:
                del azure.online_deployments[key]

        return azure.start(self.group, "delete", ("online", name), finish)

    def _auth_mode(self, name: str) -> str:
        if name not in self._azure.online_endpoints:
            raise http_error(404, f"ResourceNotFound: online endpoint {name} not found")
        mode = self._azure.online_endpoints[name].properties.auth_mode or "Key"
        return str(getattr(mode, "value", mode)).lower()  # the REST enum (``EndpointAuthMode.KEY``) or text

    def get_keys(self, name: str) -> EndpointAuthKeys | EndpointAuthToken | EndpointAadToken:
        """By auth mode, as ``OnlineEndpointOperations._get_online_credentials`` (azure-ai-ml 1.35):
        ``Key`` -> ``listKeys``; ``AADToken`` -> a token of the client's own credential (here the
        rig's, which refuses: no test gets a token); ``AMLToken`` -> the endpoint's ``token`` (the
        recorded shape of ``online_endpoint_e2e.jsonl``) - no keys unless the endpoint uses keys."""
        mode = self._auth_mode(name)
        if mode == "key":
            primary, secondary = self._azure.keys[name]
            return EndpointAuthKeys(primary_key=primary, secondary_key=secondary)
        if mode == "aadtoken":
            if self._azure.credential is None:
                raise MlException(message=EMPTY_CREDENTIALS_ERROR, no_personal_data_message=EMPTY_CREDENTIALS_ERROR)
            return EndpointAadToken(self._azure.credential.get_token("https://ml.azure.com/.default"))
        now = self._azure.clock() if self._azure.clock is not None else 1000.0
        return EndpointAuthToken(access_token=secrets.token_urlsafe(24), expiry_time_utc=now + 3600,
                                 refresh_after_time_utc=now + 1800, token_type="Bearer")

    def begin_regenerate_keys(self, name: str, *, key_type: str = "primary") -> FakePoller:
        if self._auth_mode(name) != "key":  # the service's 400 (``tests/azure_emulator/routes/online.py``)
            raise http_error(400, f"Keys are not available for endpoint '{name}'.")
        self._azure.refuse_if_busy(("online", name), name)

        def finish() -> None:
            self._azure.keys[name][0 if key_type == "primary" else 1] = secrets.token_urlsafe(16)

        return self._azure.start(self.group, "regenerate_keys", ("online", name), finish)


class FakeOnlineDeploymentOperations(_Group):
    group = "online_deployments"

    def _get(self, name: str, endpoint_name: str) -> OnlineDeployment:
        key = (endpoint_name, name)
        if key not in self._azure.online_deployments:
            raise http_error(404, f"ResourceNotFound: deployment {name} not found on endpoint {endpoint_name}")
        entity = OnlineDeployment._from_rest_object(_fresh(self._azure.online_deployments[key]))
        entity.endpoint_name = endpoint_name
        return entity

    def get(self, name: str, endpoint_name: str, *, local: bool | None = False) -> OnlineDeployment:
        return self._get(name, endpoint_name)

    def list(self, endpoint_name: str, *, local: bool = False) -> list[OnlineDeployment]:
        return [self._get(d, e) for (e, d) in self._azure.online_deployments if e == endpoint_name]

    def begin_create_or_update(self, deployment: OnlineDeployment, *, local: bool = False, vscode_debug: bool = False,
                               skip_script_validation: bool = False, local_enable_gpu: bool = False,
                               **kwargs: Any) -> FakePoller:
        rest = deployment._to_rest_object(location=LOCATION)
        self._body(rest.as_dict())
        azure = self._azure
        endpoint = deployment.endpoint_name
        if endpoint not in azure.online_endpoints:
            raise http_error(404, f"ResourceNotFound: online endpoint {endpoint} not found")
        held = [d for (e, d) in azure.online_deployments if e == endpoint]
        if deployment.name not in held and len(held) >= online_rules.MAX_DEPLOYMENTS:
            raise http_error(400, f"Endpoint '{endpoint}' already has {online_rules.MAX_DEPLOYMENTS} deployments.")
        if _ref(str(deployment.model)) not in azure.models:
            raise http_error(400, f"BadArgument: model {deployment.model} not found")
        if _ref(str(deployment.environment)) not in azure.environments:
            raise http_error(400, f"BadArgument: environment {deployment.environment} not found")
        endpoint_op = azure.running(("online", endpoint))
        if endpoint_op is not None:  # the endpoint itself is being written (azure-sdk-for-net#36961)
            raise http_error(409, endpoint_busy_message(endpoint, endpoint_op.state))
        azure.refuse_if_busy(("online", endpoint), f"{endpoint}/{deployment.name}")
        failed = deployment.name in azure.failing_deployments
        key = (endpoint, deployment.name)
        old = azure.online_deployments.get(key)
        rest.name = deployment.name
        rest.id = f"{_ARM}/onlineEndpoints/{endpoint}/deployments/{deployment.name}"
        rest.properties.scale_settings = rest_models.DefaultScaleSettings()
        if old is None:  # listed at once, ``Creating`` (recorded: the PUT answers 201 ``Creating``)
            rest.properties.provisioning_state = "Creating"
            azure.online_deployments[key] = copy.deepcopy(rest)
        else:  # a re-PUT is a new operation; the old definition shows ``Updating`` meanwhile
            old.properties.provisioning_state = "Updating"

        def finish() -> OnlineDeployment:
            rest.properties.provisioning_state = "Failed" if failed else "Succeeded"
            azure.online_deployments[key] = rest
            if failed:
                azure.logs[key] = azure.failing_deployments[deployment.name]
                raise http_error(200, "ResourceNotReady: User container has crashed or terminated. Please see "
                                      "troubleshooting guide, available here: https://aka.ms/oe-tsg#error-resourcenotready")
            azure.logs[key] = "azmlinfsrv: Listening at: http://0.0.0.0:31311\ninit() done\n"
            return self._get(deployment.name, endpoint)

        return azure.start(self.group, "create" if old is None else "update", ("online", endpoint, deployment.name),
                           finish)

    def begin_delete(self, name: str, endpoint_name: str, *, local: bool | None = False) -> FakePoller:
        azure = self._azure
        if (endpoint_name, name) not in azure.online_deployments:
            raise http_error(404, f"ResourceNotFound: deployment {name} not found")
        if azure.traffic(endpoint_name).get(name) or azure.mirror(endpoint_name).get(name):
            raise http_error(400, f"BadRequest: deployment {name} has traffic and cannot be deleted")
        azure.refuse_if_busy(("online", endpoint_name), f"{endpoint_name}/{name}")
        azure.online_deployments[(endpoint_name, name)].properties.provisioning_state = "Deleting"

        def finish() -> None:
            azure.online_deployments.pop((endpoint_name, name), None)

        return azure.start(self.group, "delete", ("online", endpoint_name, name), finish)

    def get_logs(self, name: str, endpoint_name: str, lines: int, *, container_type: str | None = None,
                 local: bool = False) -> str:
        if container_type == "storage-initializer":
            return "storage initializer: model downloaded\n"
        text = self._azure.logs.get((endpoint_name, name), "")
        return "\n".join(text.splitlines()[-lines:])


class FakeBatchEndpointOperations(_Group):
    group = "batch_endpoints"

    def get(self, name: str) -> BatchEndpoint:
        if name not in self._azure.batch_endpoints:
            raise http_error(404, f"ResourceNotFound: batch endpoint {name} not found")
        return BatchEndpoint._from_rest_object(_fresh(self._azure.batch_endpoints[name]))

    def list(self) -> list[BatchEndpoint]:
        return [BatchEndpoint._from_rest_object(_fresh(r)) for r in self._azure.batch_endpoints.values()]

    def begin_create_or_update(self, endpoint: BatchEndpoint) -> FakePoller:
        rest = endpoint._to_rest_batch_endpoint(location=LOCATION)
        self._body(rest.as_dict())
        azure = self._azure
        default = rest.properties.defaults.deployment_name if rest.properties.defaults else None
        if default and (endpoint.name, default) not in azure.batch_deployments:
            raise http_error(400, f"BadRequest: default deployment {default} does not exist")
        name = endpoint.name
        old = azure.batch_endpoints.get(name)
        if old is not None:
            azure.refuse_if_busy(("batch", name), name)
        rest.name = name
        rest.id = f"{_ARM}/batchEndpoints/{name}"
        if old is None:  # recorded: 201 ``Creating``, ``scoringUri: null`` until the operation ``Succeeded``
            rest.properties.provisioning_state = "Creating"
            rest.properties.scoring_uri = None
            azure.batch_endpoints[name] = copy.deepcopy(rest)
        else:
            old.properties.provisioning_state = "Updating"

        def finish() -> BatchEndpoint:
            rest.properties.scoring_uri = f"https://{name}.{LOCATION}.inference.ml.azure.com/jobs"
            rest.properties.provisioning_state = "Succeeded"
            azure.batch_endpoints[name] = rest
            return BatchEndpoint._from_rest_object(_fresh(rest))

        return azure.start(self.group, "create" if old is None else "update", ("batch", name), finish)

    def begin_delete(self, name: str) -> FakePoller:
        azure = self._azure
        if name in azure.batch_endpoints:
            azure.refuse_if_busy(("batch", name), name)
            azure.batch_endpoints[name].properties.provisioning_state = "Deleting"

        def finish() -> None:
            azure.batch_endpoints.pop(name, None)

        return azure.start(self.group, "delete", ("batch", name), finish)

    def invoke(self, endpoint_name: str, *, deployment_name: str | None = None,
               inputs: dict[str, Input] | None = None, **kwargs: Any) -> SimpleNamespace:
        azure = self._azure
        if endpoint_name not in azure.batch_endpoints:
            raise http_error(404, f"ResourceNotFound: batch endpoint {endpoint_name} not found")
        given = kwargs.get("input")
        if not isinstance(given, Input) or given.type != "uri_folder" or not Path(given.path).is_dir():
            raise http_error(400, "BadRequest: expected input=Input(type='uri_folder', path=<folder>)")
        rest_default = azure.batch_endpoints[endpoint_name].properties.defaults
        deployment = deployment_name or (rest_default.deployment_name if rest_default else None)
        if not deployment or (endpoint_name, deployment) not in azure.batch_deployments:
            raise http_error(400, f"BadRequest: no deployment {deployment} on batch endpoint {endpoint_name}")
        if azure.batch_invoke_errors:
            raise azure.batch_invoke_errors.pop(0)
        rest_deployment = azure.batch_deployments[(endpoint_name, deployment)]
        state = rest_deployment.properties.provisioning_state
        if state != "Succeeded":
            raise http_error(400, f"BadRequest: batch deployment {deployment} is in provisioning state {state}; "
                                  "jobs can be submitted once it is Succeeded")
        name = f"batchjob-{next(azure._job_counter)}"
        output = rest_deployment.properties.output_file_name or "predictions.csv"
        env_id = str(rest_deployment.properties.environment_id or "")
        environment = azure.environments.get(_ref(env_id)) if env_id else None
        missing = _missing_batch_packages(environment) if environment is not None else []
        if azure.batch_scorer is not None:
            content = azure.batch_scorer(endpoint_name, deployment, Path(given.path))
        else:
            files = sorted(p for p in Path(given.path).rglob("*") if p.is_file())
            content = ("file,deployment,digest\n" + "".join(
                f"{p.name},{deployment},{hashlib.sha256(p.read_bytes()).hexdigest()[:8]}\n" for p in files)).encode()
        status = "Failed" if missing else azure.batch_job_status
        error = (f"The batch deployment's environment lacks {', '.join(missing)}: Azure ML batch deployments need "
                 "azureml-core and azureml-dataset-runtime[fuse] in the environment\n" if missing
                 else "" if status == "Completed" else "run() raised ValueError: bad file\n")
        # the parent is a pipeline job (tagged so): its own ``score`` output holds no file; the step's does
        azure.add_job(name, status=status,
                      properties={"azureml.endpointname": endpoint_name, "azureml.deploymentname": deployment},
                      tags={"azureml.batchrun": "true", "azureml.deploymentname": deployment,
                            "azureml.jobtype": "azureml.pipelinejob"})
        step = f"{name}-batchscoring"
        azure.add_job(step, status=status, parent=name,
                      files={"logs/job_result.txt": b"processed all mini-batches\n" if not missing else b"",
                             "logs/job_error.txt": error.encode()},
                      outputs={"score": {output: content, "job_metadata.json": b"{}"}} if status == "Completed"
                      else None)
        return SimpleNamespace(name=name, status="Preparing", id=f"{_ARM}/batchEndpoints/{endpoint_name}/jobs/{name}")


class FakeBatchDeploymentOperations(_Group):
    group = "batch_deployments"

    def _get(self, name: str, endpoint_name: str, *, advance: bool = True) -> BatchDeployment:
        key = (endpoint_name, name)
        if key not in self._azure.batch_deployments:
            raise http_error(404, f"ResourceNotFound: batch deployment {name} not found on {endpoint_name}")
        pending = self._azure._batch_pending.get(key, 0)
        if advance and pending > 0:  # not ready at once: Creating for a few reads, then its final state
            self._azure._batch_pending[key] = pending - 1
            if pending == 1:
                final = "Failed" if name in self._azure.batch_failing_provisioning else "Succeeded"
                self._azure.batch_deployments[key].properties.provisioning_state = final
        entity = BatchDeployment._from_rest_object(_fresh(self._azure.batch_deployments[key]))
        entity.endpoint_name = endpoint_name
        return entity

    def get(self, name: str, endpoint_name: str) -> BatchDeployment:
        return self._get(name, endpoint_name)

    def list(self, endpoint_name: str) -> list[BatchDeployment]:
        return [self._get(d, e) for (e, d) in self._azure.batch_deployments if e == endpoint_name]

    def begin_create_or_update(self, deployment: Any, *, skip_script_validation: bool = False,
                               **kwargs: Any) -> FakePoller:
        rest = deployment._to_rest_object(location=LOCATION)
        self._body(rest.as_dict())
        azure = self._azure
        if deployment.endpoint_name not in azure.batch_endpoints:
            raise http_error(404, f"ResourceNotFound: batch endpoint {deployment.endpoint_name} not found")
        endpoint_op = azure.running(("batch", deployment.endpoint_name))
        if endpoint_op is not None:
            # a deployment on an endpoint that is still being created (or updated, deleted) is refused: the
            # resource provider's message for online endpoints (azure-sdk-for-net#36961); the wire
            # emulator refuses it too (``routes/batch.py``), and Microsoft's MLOps template waits for
            # the batch endpoint's ``provisioning_state == "Succeeded"`` before it deploys
            # (``wait_for_endpoint_ready`` in the dstoolkit-mlops-v2 forks' provision_batch_deployment.py)
            raise http_error(409, endpoint_busy_message(deployment.endpoint_name, endpoint_op.state))
        for ref, registry in ((deployment.model, azure.models), (deployment.environment, azure.environments)):
            if _ref(str(ref)) not in registry:
                raise http_error(400, f"BadArgument: {ref} not found")
        rest.name = deployment.name
        rest.id = f"{_ARM}/batchEndpoints/{deployment.endpoint_name}/deployments/{deployment.name}"
        rest.properties.provisioning_state = "Creating" if azure.batch_ready_after > 0 else "Succeeded"
        azure.batch_deployments[(deployment.endpoint_name, deployment.name)] = rest
        azure._batch_pending[(deployment.endpoint_name, deployment.name)] = azure.batch_ready_after
        created = self._get(deployment.name, deployment.endpoint_name, advance=False)
        # the operation is accepted and ends at once here; readiness is ``batch_ready_after`` reads of ``get``
        return azure.start(self.group, "create", ("batch", deployment.endpoint_name, deployment.name),
                           lambda: created)

    def begin_delete(self, name: str, endpoint_name: str) -> FakePoller:
        azure = self._azure
        default = azure.batch_endpoints[endpoint_name].properties.defaults
        if default and default.deployment_name == name:
            raise http_error(400, f"BadRequest: {name} is the default deployment")
        azure.refuse_if_busy(("batch", endpoint_name), f"{endpoint_name}/{name}")
        return azure.start(self.group, "delete", ("batch", endpoint_name, name),
                           lambda: azure.batch_deployments.pop((endpoint_name, name), None) and None)


def _asset_versions(registry: dict[tuple[str, str], Any], name: str) -> list[str]:
    return [v for (n, v) in registry if n == name]


def _listed(azure: FakeAzure, group: str, name: str, version: str, list_view_type: Any) -> bool:
    """``listViewType`` as the service applies it (the SDK sends ``ActiveOnly`` by default)."""
    archived = (group, name, version) in azure.archived
    view = ListViewType(list_view_type) if list_view_type is not None else ListViewType.ACTIVE_ONLY
    if view == ListViewType.ALL:
        return True
    return archived if view == ListViewType.ARCHIVED_ONLY else not archived


REQUIRED_BATCH_PACKAGES = ("azureml-core", "azureml-dataset-runtime")
"""Packages a custom-script batch deployment's environment must hold (Azure's docs, see the module docstring)."""


def _missing_batch_packages(environment: Any) -> list[str]:
    conda = getattr(environment, "conda_file", None) or {}
    pip: list[str] = []
    for dependency in (conda.get("dependencies") or []) if isinstance(conda, dict) else []:
        if isinstance(dependency, dict):
            pip.extend(str(item) for item in dependency.get("pip") or [])
    names = {entry.split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip().lower() for entry in pip}
    return [package for package in REQUIRED_BATCH_PACKAGES if package not in names]


class FakeModelOperations(_Group):
    group = "models"

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        registry = self._azure.models
        if label == "latest":
            versions = _asset_versions(registry, name)
            version = max(versions, key=int) if versions else None
        if (name, version) not in registry:
            raise http_error(404, f"ResourceNotFound: model {name}:{version} not found")
        return copy.deepcopy(registry[(name, version)])

    def list(self, name: str | None = None, stage: str | None = None, *,
             list_view_type: Any = ListViewType.ACTIVE_ONLY) -> list[Model]:
        return [copy.deepcopy(m) for (n, v), m in self._azure.models.items() if name in (None, n)
                and _listed(self._azure, "models", n, v, list_view_type)]

    def create_or_update(self, model: Model) -> Model:
        """As ``ModelOperations.create_or_update`` of azure-ai-ml 1.35 with a local path: the files
        go to ``LocalUpload/<content hash>/<folder or file name>`` (the recorded ``modelUri`` of
        ``model_archive_restore.jsonl``), then the version is PUT. The service answers a PUT of an
        existing version with the same ``modelUri`` as an update, with another one "(UserError) Asset
        paths cannot be updated." (``tests/azure_emulator/routes/assets.py``); the SDK's ``except``
        turns that into ``AssetPathException`` only when ``str(e) == ASSET_PATH_ERROR``, which
        azure-core's rendering never is - so the caller gets the ``ResourceExistsError`` itself."""
        body = model._to_rest_object().as_dict()
        self._body(body)
        registry = self._azure.models
        version = str(model.version or (max(map(int, _asset_versions(registry, model.name)), default=0) + 1))
        source = Path(str(model.path))
        files = ({f"{source.name}/{p.relative_to(source).as_posix()}": p.read_bytes()
                  for p in sorted(source.rglob("*")) if p.is_file()} if source.is_dir()
                 else {source.name: source.read_bytes()} if source.is_file() else {})
        digest = hashlib.sha256(b"".join(k.encode() + b"\0" + v for k, v in sorted(files.items()))).hexdigest()[:32]
        uri = (f"azureml://subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}/workspaces/"
               f"{WORKSPACE}/datastores/workspaceblobstore/paths/LocalUpload/{digest}/{source.name}")
        held = registry.get((model.name, version))
        if held is not None and str(held.path).rstrip("/").lower() != uri.lower():
            error = http_error(409, ASSET_PATH_ERROR.removeprefix("(UserError) "))
            if str(error) == ASSET_PATH_ERROR:  # the SDK's own test (never true with azure-core's rendering)
                raise AssetPathException(message=CHANGED_ASSET_PATH_MSG, target=ErrorTarget.MODEL,
                                         no_personal_data_message=CHANGED_ASSET_PATH_MSG_NO_PERSONAL_DATA,
                                         error_category=ErrorCategory.USER_ERROR) from error
            raise error
        stored = copy.deepcopy(model)
        stored.version = version
        stored.path = uri
        registry[(model.name, version)] = stored
        self._azure.model_files[(model.name, version)] = files
        return copy.deepcopy(stored)

    def download(self, name: str, version: str, download_path: str | Path = ".") -> None:
        """As azure-ai-ml 1.35 lays it out: ``<download_path>/<name>/<the registered folder's name>/...``."""
        self.get(name=name, version=version)
        for relative, content in self._azure.model_files.get((name, version), {}).items():
            target = Path(download_path) / name / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)


def _build_definition(environment: Environment) -> tuple:
    conda = environment.conda_file
    return environment.image, yaml.safe_load(conda) if isinstance(conda, str) else conda, environment.build


class FakeEnvironmentOperations(_Group):
    group = "environments"

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Environment:
        registry = self._azure.environments
        if label == "latest":
            versions = _asset_versions(registry, name)
            version = max(versions, key=int) if versions else None
        if (name, version) not in registry:
            raise http_error(404, f"ResourceNotFound: environment {name}:{version} not found")
        return copy.deepcopy(registry[(name, version)])

    def list(self, name: str | None = None, *, list_view_type: Any = ListViewType.ACTIVE_ONLY) -> list[Environment]:
        return [copy.deepcopy(e) for (n, v), e in self._azure.environments.items() if name in (None, n)
                and _listed(self._azure, "environments", n, v, list_view_type)]

    def create_or_update(self, environment: Environment) -> Environment:
        body = environment._to_rest_object().as_dict()
        self._body(body)
        registry = self._azure.environments
        version = str(environment.version)
        held = registry.get((environment.name, version))
        if held is not None and _build_definition(held) != _build_definition(environment):
            # the service's rule as the wire emulator applies it (``routes/assets.py`` ``_IMMUTABLE``):
            # a version's image / conda file / build cannot change; the same definition is an update
            raise http_error(409, f"Environment {environment.name}:{version} already exists with a different "
                                  "definition; environment versions are immutable.")
        registry[(environment.name, version)] = copy.deepcopy(environment)
        return copy.deepcopy(environment)


class FakeJobOperations(_Group):
    group = "jobs"

    def get(self, name: str) -> SimpleNamespace:
        if name not in self._azure.jobs:
            raise http_error(404, f"ResourceNotFound: job {name} not found")
        return copy.deepcopy(self._azure.jobs[name])

    def list(self, *, parent_job_name: str | None = None, list_view_type: Any = None,
             **kwargs: Any) -> list[SimpleNamespace]:
        return [None if j.name in self._azure.unparsable_jobs else copy.deepcopy(j)
                for j in self._azure.jobs.values() if j.parent == parent_job_name]

    def create_or_update(self, job: Any, *, description: str | None = None, compute: str | None = None,
                         tags: dict | None = None, experiment_name: str | None = None,
                         skip_validation: bool = False, **kwargs: Any) -> SimpleNamespace:
        """Submit: the body is the SDK's own REST serialization of the job (``_to_rest_object``);
        the job service answers with the job ``NotStarted`` and its primary metric as the enum."""
        rest = job._to_rest_object()
        self._body(rest.as_dict())
        name = job.name or f"job-{next(self._azure._job_counter)}"
        if name in self._azure.jobs:
            raise http_error(400, f"UserError: a job with the name {name} already exists")
        details = rest.properties
        metric = getattr(getattr(details, "task_details", None), "primary_metric", None)
        self._azure.add_job(name, status="NotStarted", tags=dict(details.tags or {}),
                            properties=dict(details.properties or {}),
                            primary_metric=getattr(metric, "value", metric))
        created = copy.deepcopy(self._azure.jobs[name])
        created.experiment_name = details.experiment_name
        created.studio_url = f"https://ml.azure.com/runs/{name}"
        return created

    def download(self, name: str, *, download_path: str | Path = ".", output_name: str | None = None,
                 all: bool = False) -> None:  # noqa: A002 - the SDK's name
        job = self.get(name)
        if job.status not in ("Completed", "Failed", "Canceled", "NotResponding", "Paused"):
            raise http_error(400, f"This job is in state {job.status}. Download is allowed only in terminal states")
        base = Path(download_path)
        # azure-ai-ml 1.35 layout: default artifacts under artifacts/, named outputs under named-outputs/<name>/
        if output_name:
            sources = {f"named-outputs/{output_name}/{k}": v
                       for k, v in self._azure.job_files.get((name, output_name), {}).items()}
        else:
            sources = {f"artifacts/{k}": v for k, v in self._azure.job_files.get((name, "default"), {}).items()}
        for relative, content in sources.items():
            target = base / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)


class FakeMLClient:
    """Stands in for ``MLClient(credential, subscription_id, resource_group_name, workspace_name)``."""

    def __init__(self, azure: FakeAzure | None = None) -> None:
        self.azure = azure or FakeAzure()
        self.subscription_id = SUBSCRIPTION
        self.resource_group_name = RESOURCE_GROUP
        self.workspace_name = WORKSPACE
        self.online_endpoints = _Recorded(FakeOnlineEndpointOperations(self.azure))
        self.online_deployments = _Recorded(FakeOnlineDeploymentOperations(self.azure))
        self.batch_endpoints = _Recorded(FakeBatchEndpointOperations(self.azure))
        self.batch_deployments = _Recorded(FakeBatchDeploymentOperations(self.azure))
        self.models = _Recorded(FakeModelOperations(self.azure))
        self.environments = _Recorded(FakeEnvironmentOperations(self.azure))
        self.jobs = _Recorded(FakeJobOperations(self.azure))


FAKE_GROUPS = {
    "online_endpoints": (FakeOnlineEndpointOperations, "OnlineEndpointOperations"),
    "online_deployments": (FakeOnlineDeploymentOperations, "OnlineDeploymentOperations"),
    "batch_endpoints": (FakeBatchEndpointOperations, "BatchEndpointOperations"),
    "batch_deployments": (FakeBatchDeploymentOperations, "BatchDeploymentOperations"),
    "models": (FakeModelOperations, "ModelOperations"),
    "environments": (FakeEnvironmentOperations, "EnvironmentOperations"),
    "jobs": (FakeJobOperations, "JobOperations"),
}
"""Operation group attribute -> (fake class, name of the real class in ``azure.ai.ml.operations``)."""


class GuardCredential:
    """A credential that fails the test if anything asks it for a token."""

    def __init__(self) -> None:
        self.requests: list[tuple] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.requests.append(scopes)
        raise AssertionError(f"a test asked for an Azure token {scopes}: no test may reach a tenant")

    get_token_info = get_token


class FakeScoringServer:
    """``http_post`` for ``AzureWorkspace``: answers like an online endpoint's router would."""

    def __init__(self, azure: FakeAzure) -> None:
        self._azure = azure
        self.requests: list[tuple[str, bytes, dict]] = []
        self.fail_with: tuple[int, bytes] | None = None
        """When set, every request gets this (status, body), e.g. ``(503, b"overloaded")``."""

    def __call__(self, url: str, body: bytes, headers: Any, timeout: float) -> tuple[int, bytes]:
        self.requests.append((url, body, dict(headers)))
        if self.fail_with is not None:
            return self.fail_with
        endpoint = url.split("//", 1)[1].split(".", 1)[0]
        keys = self._azure.keys.get(endpoint, [])
        if headers.get("Authorization", "").removeprefix("Bearer ") not in keys:
            return 401, b'{"message": "unauthorized"}'
        target = headers.get("azureml-model-deployment")
        if target is None:
            live = self._azure.traffic(endpoint)
            target = max(live, key=live.get) if live else None
        if target is None or (endpoint, target) not in self._azure.online_deployments:
            return 404, b'{"message": "no deployment to serve the request"}'
        return 200, b'{"forecast": [1.0, 2.0], "deployment": "' + target.encode() + b'"}'


@dataclass
class Rig:
    """An ``AzureWorkspace`` over the fake, with everything a test inspects."""

    workspace: Any
    azure: FakeAzure
    credential: GuardCredential
    server: FakeScoringServer
    clock: FakeClock


def make_workspace(azure: FakeAzure | None = None, **options: Any) -> Rig:
    """An ``AzureWorkspace`` over a fresh (or given) fake: waits take no time, the credential
    refuses to give tokens, invokes reach ``FakeScoringServer``."""
    from mlops.workspace.azure import AzureWorkspace
    from tests.azure.fake_blob_lease import FakeBlobService, lease_storage

    client = FakeMLClient(azure)
    credential = GuardCredential()
    server = FakeScoringServer(client.azure)
    clock = FakeClock()
    client.azure.clock = clock
    blobs = FakeBlobService()
    client.azure.blobs = blobs
    client.azure.credential = credential
    defaults: dict[str, Any] = {"sleep": clock.sleep, "clock": clock, "http_post": server,
                                "credential": credential, "lock_storage": lambda: lease_storage(blobs)}
    defaults.update(options)
    workspace = AzureWorkspace(client, **defaults)  # type: ignore[arg-type]
    return Rig(workspace, client.azure, credential, server, clock)
