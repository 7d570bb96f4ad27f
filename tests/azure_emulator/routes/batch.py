"""Batch endpoints, batch deployments and batch invoke (the scoring host's ``/jobs``).

Shapes and sequences read off ``batch_endpoint_create.jsonl`` and the SDK team's recording
``test_batch_endpoint.pyTestBatchEndpointtest_mlflow_batch_endpoint_create_and_update.json``
(azure-sdk-assets): a batch endpoint PUT answers ``201`` ``provisioningState: Creating`` with
``scoringUri: null`` and ``defaults.deploymentName: null``, an ``Azure-AsyncOperation`` of prefix
``bebes``; polls say ``Updating`` then ``Succeeded`` (30 s); the GET then carries ``Succeeded`` and the
``scoringUri`` ``https://{endpoint}.{region}.inference.ml.azure.com/jobs``; DELETE ``202`` ``null``,
polled about 10 s, then GET ``404`` "An endpoint with the name '...' does not exist in the
workspace '...'".

Rules modelled (each kinder-than-Azure shortcut would hide a defect):

* **Deployments are not ready at once.** A batch deployment PUT is a long-running operation (its
  own ``Creating`` -> ``Succeeded``, ``batch.deployment_seconds``, default 300 s: a batch
  deployment builds its environment image on first use, minutes like an online one -
  ``online_deployment_create.jsonl`` took 7 min 5 s); until the operation ends its
  ``provisioningState`` is ``Creating`` (``Updating`` for an existing one) and an invoke naming it
  is refused (``400 UserError``). The operation-id prefix of batch deployments is not in any
  recording here; ``bdbes`` is this emulator's (the SDK does not parse it).
* **The default deployment is a property of the endpoint** (``defaults.deploymentName``), changed
  only by a PUT of the whole endpoint - a PUT that leaves it out clears it, as any ARM PUT replaces
  the resource (so the adapter must read-modify-write). The change is itself a long-running
  operation and is visible only when it finished.
* **One operation at a time per resource**: a PUT or DELETE while one runs on the same endpoint or
  deployment is ``409`` (the 409 "operation in progress" of issue 13).
* **The default deployment cannot be deleted** (Azure: "cannot delete the default deployment";
  the adapter's own rule ``rules.check_batch_deployment_deletion``).
* **Invoke** is ``POST {scoringUri}`` with an ML-scope token (``audience="ml"``: the SDK asks for
  ``_get_aml_resource_id_from_metadata()`` scopes, ``_batch_endpoint_operations.invoke``), header
  ``azureml-model-deployment`` naming the deployment (else the endpoint's default; none -> 400), and a
  job definition whose ``inputData`` points at blobs the SDK uploaded; it answers the job
  (``tests.azure_emulator.batch_jobs``).

Settings: ``batch.endpoint_seconds`` (30, recorded), ``batch.endpoint_delete_seconds`` (10,
recorded), ``batch.deployment_seconds`` (300), ``batch.deployment_delete_seconds`` (10),
``batch.invoke_failures`` (statuses the next invokes answer first - a test's transient fault; for a
POST azure-core's ``RetryPolicy`` retries 500/503/504 itself but not 502/408/429).
"""

from __future__ import annotations

import copy
from typing import Any

from tests.azure_emulator import batch_jobs
from tests.azure_emulator.messages import Call, Reply, arm_error, user_error
from tests.azure_emulator.routes import route
from tests.azure_emulator.routes.operations import delete_headers, lro_headers
from tests.azure_emulator.routes.workspace import check_workspace

STORE = "batch"


def _state(emu: Any) -> dict[str, Any]:
    store = emu.store(STORE)
    store.setdefault("endpoints", {})
    store.setdefault("deployments", {})
    return store


def _endpoint_id(emu: Any, name: str) -> str:
    return f"{emu.workspace.arm_id}/batchEndpoints/{name}"


def _not_found(emu: Any, name: str) -> Any:
    return user_error(404, f"An endpoint with the name '{name}' does not exist in the workspace "
                           f"'{emu.workspace.name}'. Please check the endpoint name and also ensure the current "
                           "user has access to it.")


def _busy(call: Call, resource_id: str) -> None:
    op = call.emulator.operations.busy(resource_id)
    if op is not None:
        raise user_error(409, f"There is already an operation in progress on '{resource_id.rsplit('/', 1)[-1]}' "
                              f"(operation {op.id}). Wait for it to finish and retry.")


def get_endpoint(emu: Any, name: str) -> dict[str, Any] | None:
    return _state(emu)["endpoints"].get(name.lower())


def get_deployment(emu: Any, endpoint: str, name: str) -> dict[str, Any] | None:
    return _state(emu)["deployments"].get((endpoint.lower(), name.lower()))


def scoring_uri(emu: Any, endpoint: str) -> str:
    """Where ``{endpoint}.{region}.inference.ml.azure.com/jobs`` lives on this emulator."""
    return f"{emu.base_url}/_batch/{endpoint}/jobs"


# endpoints --------------------------------------------------------------------------------------
@route("GET", "{WS}/batchEndpoints")
def list_endpoints(call: Call) -> Reply:
    check_workspace(call)
    return Reply(200, {"value": [copy.deepcopy(e) for e in _state(call.emulator)["endpoints"].values()]})


@route("GET", "{WS}/batchEndpoints/{endpoint}")
def read_endpoint(call: Call) -> Reply:
    check_workspace(call)
    found = get_endpoint(call.emulator, call.params["endpoint"])
    if found is None:
        raise _not_found(call.emulator, call.params["endpoint"])
    return Reply(200, copy.deepcopy(found))


@route("PUT", "{WS}/batchEndpoints/{endpoint}")
def put_endpoint(call: Call) -> Reply:
    check_workspace(call)
    emu, name = call.emulator, call.params["endpoint"]
    body = call.json() or {}
    props = body.get("properties") or {}
    resource_id = _endpoint_id(emu, name)
    _busy(call, resource_id)
    existing = get_endpoint(emu, name)
    default = (props.get("defaults") or {}).get("deploymentName")
    if default and get_deployment(emu, name, default) is None:
        raise user_error(400, f"Deployment '{default}' does not exist on batch endpoint '{name}'; the default "
                              "deployment must be one of the endpoint's deployments.")
    now = emu.clock.iso()
    desired = {
        "id": resource_id, "name": name, "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints",
        "location": body.get("location") or emu.workspace.location, "tags": body.get("tags") or {},
        "properties": {
            "description": props.get("description"),
            "properties": {**(props.get("properties") or {}), "BatchEndpointCreationApiVersion": call.api_version,
                           "azureml.onlineendpointid": resource_id},
            "authMode": {"aadtoken": "AADToken"}.get(str(props.get("authMode", "aadToken")).lower(), "AADToken"),
            # an ARM PUT replaces the resource: a body without ``defaults`` clears the default
            "defaults": {"deploymentName": default},
            "scoringUri": None, "swaggerUri": None,
        },
        "systemData": {"createdAt": (existing or {}).get("systemData", {}).get("createdAt", now),
                       "createdBy": "mlops-tests", "lastModifiedAt": now},
    }
    if existing is None:
        shown = copy.deepcopy(desired)
        shown["properties"]["provisioningState"] = "Creating"
        _state(emu)["endpoints"][name.lower()] = shown
        status = 201
    else:
        existing["properties"]["provisioningState"] = "Updating"
        shown = copy.deepcopy(existing)
        shown["properties"].update({k: v for k, v in desired["properties"].items() if k not in ("scoringUri",)})
        shown["properties"]["provisioningState"] = "Updating"
        status = 200

    def done() -> None:
        desired["properties"]["provisioningState"] = "Succeeded"
        desired["properties"]["scoringUri"] = scoring_uri(emu, name)
        _state(emu)["endpoints"][name.lower()] = desired

    seconds = emu.setting("batch.endpoint_seconds", 30.0)
    op = emu.operations.start("bebes", emu.workspace.workspace_id, seconds, done, resource=resource_id)
    return Reply(status, shown, lro_headers(emu, op, resource_id, call.api_version))


@route("DELETE", "{WS}/batchEndpoints/{endpoint}")
def delete_endpoint(call: Call) -> Reply:
    check_workspace(call)
    emu, name = call.emulator, call.params["endpoint"]
    if get_endpoint(emu, name) is None:
        return Reply(204)
    resource_id = _endpoint_id(emu, name)
    _busy(call, resource_id)
    state = _state(emu)
    state["endpoints"][name.lower()]["properties"]["provisioningState"] = "Deleting"

    def done() -> None:
        state["endpoints"].pop(name.lower(), None)
        for key in [k for k in state["deployments"] if k[0] == name.lower()]:
            state["deployments"].pop(key)

    op = emu.operations.start("bebes", emu.workspace.workspace_id, emu.setting("batch.endpoint_delete_seconds", 10.0),
                              done, resource=resource_id)
    return Reply(202, None, delete_headers(emu, op, call.api_version))


# deployments ------------------------------------------------------------------------------------
def _endpoint_or_404(call: Call) -> dict[str, Any]:
    found = get_endpoint(call.emulator, call.params["endpoint"])
    if found is None:
        raise _not_found(call.emulator, call.params["endpoint"])
    return found


@route("GET", "{WS}/batchEndpoints/{endpoint}/deployments")
def list_deployments(call: Call) -> Reply:
    check_workspace(call)
    _endpoint_or_404(call)
    key = call.params["endpoint"].lower()
    return Reply(200, {"value": [copy.deepcopy(d) for (e, _), d in _state(call.emulator)["deployments"].items()
                                 if e == key]})


@route("GET", "{WS}/batchEndpoints/{endpoint}/deployments/{deployment}")
def read_deployment(call: Call) -> Reply:
    check_workspace(call)
    _endpoint_or_404(call)
    found = get_deployment(call.emulator, call.params["endpoint"], call.params["deployment"])
    if found is None:
        raise user_error(404, f"Deployment '{call.params['deployment']}' was not found on batch endpoint "
                              f"'{call.params['endpoint']}'.")
    return Reply(200, copy.deepcopy(found))


@route("PUT", "{WS}/batchEndpoints/{endpoint}/deployments/{deployment}")
def put_deployment(call: Call) -> Reply:
    check_workspace(call)
    emu = call.emulator
    endpoint = _endpoint_or_404(call)
    if endpoint["properties"].get("provisioningState") not in ("Succeeded", "Updating"):
        raise user_error(409, f"Batch endpoint '{endpoint['name']}' is {endpoint['properties']['provisioningState']}; "
                              "wait until it is Succeeded.")
    ep_name, name = call.params["endpoint"], call.params["deployment"]
    siblings = [k for k in _state(emu)["deployments"] if k[0] == ep_name.lower()]
    existing = get_deployment(emu, ep_name, name)
    if existing is None and len(siblings) >= 20:
        raise user_error(400, f"Batch endpoint '{ep_name}' already has 20 deployments, the maximum.")
    resource_id = f"{_endpoint_id(emu, ep_name)}/deployments/{name}"
    _busy(call, resource_id)
    body = call.json() or {}
    props = dict(body.get("properties") or {})
    for required in ("model", "compute"):
        if not props.get(required):
            raise user_error(400, f"Batch deployment '{name}': '{required}' is required.")
    now = emu.clock.iso()
    desired = {"id": resource_id, "name": name, "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints/"
                                                       "deployments",
               "location": body.get("location") or emu.workspace.location, "tags": body.get("tags") or {},
               "properties": {**props}, "systemData": {"createdAt": now, "lastModifiedAt": now}}
    shown = copy.deepcopy(desired)
    shown["properties"]["provisioningState"] = "Creating" if existing is None else "Updating"
    _state(emu)["deployments"][(ep_name.lower(), name.lower())] = shown

    def done() -> None:
        desired["properties"]["provisioningState"] = "Succeeded"
        _state(emu)["deployments"][(ep_name.lower(), name.lower())] = desired

    op = emu.operations.start("bdbes", emu.workspace.workspace_id, emu.setting("batch.deployment_seconds", 300.0),
                              done, resource=resource_id)
    return Reply(201 if existing is None else 200, shown, lro_headers(emu, op, resource_id, call.api_version))


@route("DELETE", "{WS}/batchEndpoints/{endpoint}/deployments/{deployment}")
def delete_deployment(call: Call) -> Reply:
    check_workspace(call)
    emu = call.emulator
    endpoint = _endpoint_or_404(call)
    ep_name, name = call.params["endpoint"], call.params["deployment"]
    if get_deployment(emu, ep_name, name) is None:
        return Reply(204)
    if (endpoint["properties"].get("defaults") or {}).get("deploymentName", "") == name:
        raise user_error(400, f"Deployment '{name}' is the default deployment of batch endpoint '{ep_name}' and "
                              "cannot be deleted; set another default first.")
    resource_id = f"{_endpoint_id(emu, ep_name)}/deployments/{name}"
    _busy(call, resource_id)

    def done() -> None:
        _state(emu)["deployments"].pop((ep_name.lower(), name.lower()), None)

    op = emu.operations.start("bdbes", emu.workspace.workspace_id, emu.setting("batch.deployment_delete_seconds", 10.0),
                              done, resource=resource_id)
    return Reply(202, None, delete_headers(emu, op, call.api_version))


# invoke -----------------------------------------------------------------------------------------
@route("POST", "/_batch/{endpoint}/jobs", audience="ml")
def invoke(call: Call) -> Reply:
    emu, ep_name = call.emulator, call.params["endpoint"]
    injected = emu.settings.get("batch.invoke_failures") or []
    if injected:  # a test's transient fault: the front end answers before any job exists
        status = int(injected.pop(0))
        raise arm_error(status, {502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}.get(
            status, "InternalServerError"), "The service is temporarily unavailable; retry the request.")
    endpoint = get_endpoint(emu, ep_name)
    if endpoint is None or endpoint["properties"].get("provisioningState") == "Creating":
        raise arm_error(404, "EndpointNotFound", f"Batch endpoint '{ep_name}' was not found.")
    name = call.headers.get("azureml-model-deployment") or (endpoint["properties"].get("defaults") or {}).get(
        "deploymentName")
    if not name:
        raise user_error(400, f"Batch endpoint '{ep_name}' has no default deployment and the request names none "
                              "(header azureml-model-deployment).")
    deployment = get_deployment(emu, ep_name, name)
    if deployment is None:
        raise user_error(404, f"Deployment '{name}' was not found on batch endpoint '{ep_name}'.")
    state = deployment["properties"].get("provisioningState")
    if state != "Succeeded":
        raise user_error(400, f"Deployment '{name}' of batch endpoint '{ep_name}' is not ready to take jobs "
                              f"(provisioningState {state}); wait until it is Succeeded.")
    request = call.json() or {}
    job = batch_jobs.submit(emu, ep_name, name, deployment, request.get("properties") or {})
    return Reply(200, batch_jobs.invoke_answer(emu, job))
