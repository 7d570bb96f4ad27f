"""Managed online endpoints and deployments (shapes and sequences: ``online_endpoint_e2e.jsonl``,
``online_deployment_create.jsonl``, ``online_deployment_update.jsonl``; rules: ``online_rules``).

* **PUT endpoint** -> ``201`` with ``provisioningState: Creating`` (also when it only changes the
  traffic of an existing endpoint: recorded line 100 of ``online_deployment_create``), the
  ``Azure-AsyncOperation`` / ``Location`` / ``x-ms-async-operation-timeout`` headers (``lro``), an
  ``oeidp`` operation; the new state (traffic, mirror, tags) shows on GET once it is done, the old
  one with ``provisioningState: Updating`` meanwhile. ``scoringUri`` is null until created.
* **PUT deployment** -> ``201 Creating``, an ``odidp`` operation; a re-PUT of an existing deployment
  is a new operation too (``online_deployment_update``). When it ends the deployment is
  ``Succeeded`` or - when its start-up fails (``emulator.settings["online.startup"]``, see
  ``startup``) - ``Failed``, the operation ``Failed`` with Azure's ``ResourceNotReady`` message and
  the container logs readable through ``getLogs``. A deployment whose only change is its instance
  count goes through ``Scaling``.
* **409 while an operation runs** on the endpoint or one of its deployments (a second write is
  refused, not queued): ``UserError`` naming the operation. **409 when the name is taken** in the
  region (``online.taken_names``): "The specified endpoint name '...' is not available. Endpoint names
  must be unique within the region." (the service's words, quoted in ansible-collections/azure#2231).
* **DELETE** -> ``202``, body ``null``, polled; a deployment with live traffic cannot be deleted (400).
* ``listKeys`` (``Key`` auth only), ``regenerateKeys`` (an LRO: ``202`` + polling headers),
  ``token`` (``AMLToken`` auth only: ``accessToken``, ``expiryTimeUtc``, ``refreshAfterTimeUtc``,
  ``tokenType`` as recorded in ``online_endpoint_e2e``), ``getLogs`` (``{"content": ...}``).

Durations (virtual seconds, ``emulator.settings``): ``online.endpoint_seconds`` 62 (recorded create),
``online.traffic_seconds`` 92 (recorded traffic update: 1 min 32 s), ``online.deployment_seconds``
425 (recorded create: 7 min 5 s), ``online.deployment_update_seconds`` 322 (5 min 22 s),
``online.delete_seconds`` 10, ``online.keys_seconds`` 5.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from tests.azure_emulator import online_rules
from tests.azure_emulator.messages import Call, Reply, arm_error, not_found, user_error
from tests.azure_emulator.routes import route
from tests.azure_emulator.routes.assets import find_version
from tests.azure_emulator.routes.workspace import check_workspace

EP = "{WS}/onlineEndpoints/{endpoint}"
DEP = EP + "/deployments/{deployment}"
AUTH_MODES = {"key": "Key", "amltoken": "AMLToken", "aadtoken": "AADToken"}
SERVER_LOG = ("Azure ML Inferencing HTTP server v1.4.0\n\nServer Settings\n---------------\nEntry Script Name: "
              "/var/azureml-app/code/{script}\nModel Directory: /var/azureml-app/azureml-models/{model}\n"
              "Worker Count: 1\nWorker Timeout (seconds): 300\nServer Port: 31311\n\nInitializing logger\n"
              "Starting up app insights client\nFound user script at /var/azureml-app/code/{script}\n"
              "run() is not decorated. Server will invoke it with the input in JSON string.\n"
              "Invoking user's init function\nUsers's init has completed successfully\n"
              "Scoring timeout is set to {timeout}\nListening at: http://0.0.0.0:31311\n")
NOT_READY = ("ResourceNotReady: User container has crashed or terminated: Back-off restarting failed container. "
             "Please see troubleshooting guide, available here: https://aka.ms/oe-tsg#error-resourcenotready")


def state(emu: Any) -> dict[str, Any]:
    return emu.store("online")


def endpoints(emu: Any) -> dict[str, dict[str, Any]]:
    return state(emu).setdefault("endpoints", {})


def deployments(emu: Any, endpoint: str) -> dict[str, dict[str, Any]]:
    return state(emu).setdefault("deployments", {}).setdefault(endpoint.lower(), {})


def endpoint_id(emu: Any, name: str) -> str:
    return f"{emu.workspace.arm_id}/onlineEndpoints/{name}"


def _endpoint(call: Call) -> dict[str, Any]:
    check_workspace(call)
    found = endpoints(call.emulator).get(call.params["endpoint"].lower())
    if found is None:
        raise not_found("Online endpoint", call.params["endpoint"])
    return found


def _busy(emu: Any, resource: str) -> None:
    op = emu.operations.busy(resource)
    if op is not None:
        raise user_error(409, f"There is an operation in progress on {resource.rsplit('/', 1)[-1]} "
                              f"(operation {op.id}); retry when it has finished.")


def _lro_reply(emu: Any, status: int, body: Any, op: Any, location: str, api_version: str) -> Reply:
    base = f"{emu.base_url}/subscriptions/{emu.workspace.subscription_id}/providers/" \
           f"Microsoft.MachineLearningServices/locations/{emu.workspace.location}"
    headers = {"Azure-AsyncOperation": f"{base}/mfeOperationsStatus/{op.id}?api-version={api_version}",
               "Location": location, "x-ms-async-operation-timeout": "PT30M"}
    if status == 202:
        headers["Location"] = f"{base}/mfeOperationResults/{op.id}?api-version={api_version}"
    return Reply(status, body, headers)


def _system(emu: Any, record: dict[str, Any]) -> dict[str, Any]:
    return {"createdAt": emu.clock.iso(record["created"]), "createdBy": "mlops-emulator",
            "createdByType": "Application", "lastModifiedAt": emu.clock.iso(record["modified"])}


def endpoint_body(emu: Any, ep: dict[str, Any]) -> dict[str, Any]:
    live = ep["live"]
    name = ep["name"]
    created = ep["state"] not in ("Creating",)
    return {
        "id": endpoint_id(emu, name), "name": name, "kind": "Managed", "location": emu.workspace.location,
        "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints", "tags": dict(live["tags"]),
        "identity": {"principalId": ep["principal"], "tenantId": emu.workspace.tenant_id, "type": "SystemAssigned"},
        "properties": {
            "authMode": live["authMode"], "compute": None, "description": live.get("description"),
            "traffic": dict(live["traffic"]), "mirrorTraffic": dict(live["mirrorTraffic"]),
            "properties": {"AzureAsyncOperationUri": ep.get("operation_uri", ""),
                           "azureml.onlineendpointid": endpoint_id(emu, name).lower()},
            "provisioningState": ep["state"], "publicNetworkAccess": "Enabled",
            "scoringUri": emu.scoring_uri(name) if created else None,
            "swaggerUri": emu.scoring_uri(name).replace("/score", "/swagger.json") if created else None,
        },
        "systemData": _system(emu, ep),
    }


@route("GET", "{WS}/onlineEndpoints")
def list_endpoints(call: Call) -> Reply:
    check_workspace(call)
    emu = call.emulator
    return Reply(200, {"value": [endpoint_body(emu, e) for e in endpoints(emu).values()]})


@route("GET", EP)
def get_endpoint(call: Call) -> Reply:
    return Reply(200, endpoint_body(call.emulator, _endpoint(call)))


@route("PUT", EP)
def put_endpoint(call: Call) -> Reply:
    check_workspace(call)
    emu, name = call.emulator, call.params["endpoint"]
    problem = online_rules.name_problem("Endpoint", name)
    if problem:
        raise user_error(400, problem)
    props = (call.json() or {}).get("properties") or {}
    existing = endpoints(emu).get(name.lower())
    if existing is None and name.lower() in {n.lower() for n in emu.setting("online.taken_names", ())}:
        raise user_error(409, f"The specified endpoint name '{name}' is not available. Endpoint names must be unique "
                              "within the region. Please choose a different name and try again.")
    if existing is not None:
        _busy(emu, endpoint_id(emu, name))
    auth = AUTH_MODES.get(str(props.get("authMode", "Key")).lower())
    if auth is None:
        raise user_error(400, f"authMode '{props.get('authMode')}' is not one of Key, AMLToken, AADToken.")
    traffic = {k: v for k, v in (props.get("traffic") or {}).items()}
    mirror = {k: v for k, v in (props.get("mirrorTraffic") or {}).items()}
    problem = online_rules.traffic_problem(traffic, mirror, {d["name"] for d in deployments(emu, name).values()})
    if problem:
        raise user_error(400, problem)
    tags = dict((call.json() or {}).get("tags") or {})
    wanted = {"authMode": auth, "description": props.get("description"), "traffic": traffic,
              "mirrorTraffic": mirror, "tags": tags}
    now = emu.clock.now()
    if existing is None:
        ep = {"name": name, "state": "Creating", "created": now, "modified": now, "live": wanted,
              "principal": str(secrets.token_hex(16)), "keys": [secrets.token_urlsafe(24), secrets.token_urlsafe(24)]}
        endpoints(emu)[name.lower()] = ep
        seconds = emu.setting("online.endpoint_seconds", 62)
    else:
        ep = existing
        ep["state"] = "Updating"
        changes_traffic = (wanted["traffic"], wanted["mirrorTraffic"]) != (ep["live"]["traffic"],
                                                                           ep["live"]["mirrorTraffic"])
        seconds = emu.setting("online.traffic_seconds", 92) if changes_traffic else emu.setting(
            "online.endpoint_update_seconds", 30)

    def done() -> str | None:
        ep["live"] = wanted
        ep["state"] = "Succeeded"
        ep["modified"] = emu.clock.now()
        return None

    op = emu.operations.start("oeidp", emu.workspace.workspace_id, seconds, done, resource=endpoint_id(emu, name))
    ep["operation_uri"] = f"mfeOperationsStatus/{op.id}"
    shown = endpoint_body(emu, ep)
    shown["properties"].update({"traffic": traffic, "mirrorTraffic": mirror, "provisioningState": "Creating",
                                "scoringUri": None, "swaggerUri": None})
    shown["tags"] = tags
    return _lro_reply(emu, 201, shown, op, emu.url(endpoint_id(emu, name)), call.api_version)


@route("DELETE", EP)
def delete_endpoint(call: Call) -> Reply:
    emu = call.emulator
    ep = _endpoint(call)
    _busy(emu, endpoint_id(emu, ep["name"]))
    ep["state"] = "Deleting"

    def done() -> str | None:
        endpoints(emu).pop(ep["name"].lower(), None)
        state(emu).get("deployments", {}).pop(ep["name"].lower(), None)
        return None

    op = emu.operations.start("oeidp", emu.workspace.workspace_id, emu.setting("online.delete_seconds", 10), done,
                              resource=endpoint_id(emu, ep["name"]))
    return _lro_reply(emu, 202, None, op, "", call.api_version)


@route("POST", EP + "/listKeys")
def list_keys(call: Call) -> Reply:
    ep = _endpoint(call)
    if ep["live"]["authMode"] != "Key":
        raise user_error(400, f"Keys are not available for endpoint '{ep['name']}': its auth mode is "
                              f"{ep['live']['authMode']}.")
    return Reply(200, {"primaryKey": ep["keys"][0], "secondaryKey": ep["keys"][1]})


@route("POST", EP + "/regenerateKeys")
def regenerate_keys(call: Call) -> Reply:
    emu = call.emulator
    ep = _endpoint(call)
    if ep["live"]["authMode"] != "Key":
        raise user_error(400, f"Keys are not available for endpoint '{ep['name']}'.")
    body = call.json() or {}
    which = str(body.get("keyType", "")).lower()
    if which not in ("primary", "secondary"):
        raise user_error(400, f"keyType '{body.get('keyType')}' is not one of Primary, Secondary.")
    _busy(emu, endpoint_id(emu, ep["name"]))

    def done() -> str | None:
        # azure-ai-ml 1.35 sends the key's *current* value as ``keyValue``
        # (``OnlineEndpointOperations._regenerate_online_keys``), and `az ml online-endpoint
        # regenerate-keys` (the same SDK) does give a new key: the service makes a new value whatever
        # keyValue says.
        ep["keys"][0 if which == "primary" else 1] = secrets.token_urlsafe(24)
        return None

    op = emu.operations.start("oeidp", emu.workspace.workspace_id, emu.setting("online.keys_seconds", 5), done,
                              resource=endpoint_id(emu, ep["name"]))
    return _lro_reply(emu, 202, None, op, "", call.api_version)


@route("POST", EP + "/token")
def endpoint_token(call: Call) -> Reply:
    emu = call.emulator
    ep = _endpoint(call)
    if ep["live"]["authMode"] != "AMLToken":
        raise user_error(400, f"Tokens are issued for AMLToken endpoints only; '{ep['name']}' uses "
                              f"{ep['live']['authMode']}.")
    now = emu.clock.now()
    token = emu.mint.issue({"aud": emu.scoring_uri(ep["name"]), "iat": int(now), "exp": int(now + 3600),
                            "kind": "amltoken"})
    return Reply(200, {"accessToken": token, "expiryTimeUtc": int(now + 3600),
                       "refreshAfterTimeUtc": int(now + 1800), "tokenType": "Bearer"})


@route("GET", "{LOC}/mfeOperationsStatus/{operation}")
def operation_status(call: Call) -> Reply:
    op = call.emulator.operations.get(call.params["operation"])
    if op is None:
        raise arm_error(404, "NotFound", f"Operation {call.params['operation']} not found.")
    return Reply(200, call.emulator.operations.body(op))


@route("GET", "{LOC}/mfeOperationResults/{operation}")
def operation_result(call: Call) -> Reply:
    op = call.emulator.operations.get(call.params["operation"])
    if op is None:
        raise arm_error(404, "NotFound", f"Operation {call.params['operation']} not found.")
    if op.status == "InProgress":
        return Reply(202, None, {"Location": call.emulator.url(call.path) + f"?api-version={call.api_version}"})
    return Reply(200, None) if op.status == "Succeeded" else Reply(
        400, {"error": {"code": "UserError", "message": op.error, "details": [], "additionalInfo": []}})


# deployments ----------------------------------------------------------------------------------
def deployment_body(emu: Any, endpoint: str, dep: dict[str, Any]) -> dict[str, Any]:
    props = dict(dep["spec"])
    props.update({"provisioningState": dep["state"], "endpointComputeType": "Managed",
                  "properties": {"AzureAsyncOperationUri": dep.get("operation_uri", "")}})
    props.setdefault("appInsightsEnabled", False)
    props.setdefault("egressPublicNetworkAccess", "Enabled")
    props.setdefault("scaleSettings", {"scaleType": "Default"})
    props.setdefault("requestSettings", {"maxConcurrentRequestsPerInstance": 1, "maxQueueWait": "PT0.5S",
                                         "requestTimeout": "PT5S"})
    return {"id": f"{endpoint_id(emu, endpoint)}/deployments/{dep['name']}", "name": dep["name"], "kind": "Managed",
            "location": emu.workspace.location, "tags": dict(dep["tags"]), "sku": dict(dep["sku"]),
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
            "properties": props, "systemData": _system(emu, dep)}


def _deployment(call: Call) -> tuple[dict[str, Any], dict[str, Any]]:
    ep = _endpoint(call)
    dep = deployments(call.emulator, ep["name"]).get(call.params["deployment"].lower())
    if dep is None:
        raise not_found("Online deployment", f"{ep['name']}/{call.params['deployment']}")
    return ep, dep


def _asset_version(emu: Any, kind: str, reference: str) -> dict[str, Any] | None:
    parts = (reference or "").rstrip("/").split("/")
    if len(parts) < 4 or parts[-2] != "versions" or parts[-4].lower() != kind:
        return None
    return find_version(emu, kind, parts[-3], parts[-1])


def _what_runs(spec: dict[str, Any]) -> tuple:
    """The part of a deployment that needs new containers when it changes (not the instance count)."""
    code = spec.get("codeConfiguration") or {}
    return (str(spec.get("model", "")).lower(), str(spec.get("environmentId", "")).lower(),
            str(code.get("codeId", "")).lower(), code.get("scoringScript"), spec.get("instanceType"),
            json.dumps(spec.get("environmentVariables") or {}, sort_keys=True))


def startup(emu: Any, endpoint: str, dep: dict[str, Any]) -> str | None:
    """None when the deployment starts, else its inference-server log (it ends ``Failed``).
    ``online.startup`` (a callable ``(endpoint, deployment name, model ARM id) -> log or None``)
    decides; by default every deployment starts."""
    decide = emu.setting("online.startup", None)
    return decide(endpoint, dep["name"], dep["spec"].get("model", "")) if decide else None


@route("GET", EP + "/deployments")
def list_deployments(call: Call) -> Reply:
    ep = _endpoint(call)
    emu = call.emulator
    return Reply(200, {"value": [deployment_body(emu, ep["name"], d) for d in deployments(emu, ep["name"]).values()]})


@route("GET", DEP)
def get_deployment(call: Call) -> Reply:
    ep, dep = _deployment(call)
    return Reply(200, deployment_body(call.emulator, ep["name"], dep))


@route("PUT", DEP)
def put_deployment(call: Call) -> Reply:
    emu = call.emulator
    ep = _endpoint(call)
    name = call.params["deployment"]
    problem = online_rules.name_problem("Deployment", name)
    if problem:
        raise user_error(400, problem)
    body = call.json() or {}
    spec = dict(body.get("properties") or {})
    held = deployments(emu, ep["name"])
    existing = held.get(name.lower())
    if existing is None and len(held) >= online_rules.MAX_DEPLOYMENTS:
        raise user_error(400, f"Endpoint '{ep['name']}' already has {online_rules.MAX_DEPLOYMENTS} deployments.")
    _busy(emu, endpoint_id(emu, ep["name"]))
    for kind, key in (("models", "model"), ("environments", "environmentId")):
        if _asset_version(emu, kind, str(spec.get(key, ""))) is None:
            raise user_error(400, f"{key} '{spec.get(key)}' does not refer to an existing {kind[:-1]} version.")
    code = (spec.get("codeConfiguration") or {}).get("codeId")
    if code and _asset_version(emu, "codes", code) is None:
        raise user_error(400, f"codeId '{code}' does not refer to an existing code version.")
    now = emu.clock.now()
    sku = dict(body.get("sku") or {"name": "Default", "capacity": 1})
    sku.setdefault("tier", "Standard")
    if existing is None:
        dep = {"name": name, "created": now, "modified": now, "spec": spec, "tags": dict(body.get("tags") or {}),
               "sku": sku, "state": "Creating", "logs": {}}
        held[name.lower()] = dep
        seconds = emu.setting("online.deployment_seconds", 425)
    else:
        dep = existing
        scaling_only = (_what_runs(existing["spec"]) == _what_runs(spec)
                        and existing["sku"].get("capacity") != sku.get("capacity"))
        dep.update({"spec": spec, "tags": dict(body.get("tags") or {}), "sku": sku, "modified": now,
                    "state": "Scaling" if scaling_only else "Updating"})
        seconds = emu.setting("online.deployment_update_seconds", 322)

    def done() -> str | None:
        failure = startup(emu, ep["name"], dep)
        script = (spec.get("codeConfiguration") or {}).get("scoringScript", "score.py")
        model = str(spec.get("model", "")).split("/models/")[-1].replace("/versions/", "/")
        dep["logs"]["InferenceServer"] = SERVER_LOG.format(script=script, model=model, timeout="5000 ms") + (
            failure or "")
        dep["logs"]["StorageInitializer"] = f"Downloading model {model} ... done\nDownloading code ... done\n"
        dep["modified"] = emu.clock.now()
        if failure:
            dep["state"] = "Failed"
            return NOT_READY
        dep["state"] = "Succeeded"
        return None

    op = emu.operations.start("odidp", emu.workspace.workspace_id, seconds, done,
                              resource=f"{endpoint_id(emu, ep['name'])}/deployments/{name}")
    dep["operation_uri"] = f"mfeOperationsStatus/{op.id}"
    shown = deployment_body(emu, ep["name"], dep)
    shown["properties"]["provisioningState"] = "Creating"
    return _lro_reply(emu, 201, shown, op, emu.url(f"{endpoint_id(emu, ep['name'])}/deployments/{name}"),
                      call.api_version)


@route("DELETE", DEP)
def delete_deployment(call: Call) -> Reply:
    emu = call.emulator
    ep, dep = _deployment(call)
    share = {k.lower(): v for k, v in ep["live"]["traffic"].items()}.get(dep["name"].lower(), 0)
    if share:
        raise user_error(400, f"Deployment '{dep['name']}' has {share}% of the traffic of endpoint '{ep['name']}'; "
                              "set its traffic to 0 before deleting it.")
    _busy(emu, endpoint_id(emu, ep["name"]))
    dep["state"] = "Deleting"

    def done() -> str | None:
        deployments(emu, ep["name"]).pop(dep["name"].lower(), None)
        return None

    op = emu.operations.start("odidp", emu.workspace.workspace_id, emu.setting("online.delete_seconds", 10), done,
                              resource=f"{endpoint_id(emu, ep['name'])}/deployments/{dep['name']}")
    return _lro_reply(emu, 202, None, op, "", call.api_version)


@route("POST", DEP + "/getLogs")
def get_logs(call: Call) -> Reply:
    _ep, dep = _deployment(call)
    body = call.json() or {}
    container = str(body.get("containerType") or "InferenceServer")
    if container.lower() not in ("inferenceserver", "storageinitializer"):
        raise user_error(400, f"containerType '{container}' is not one of InferenceServer, StorageInitializer.")
    text = dep["logs"].get("InferenceServer" if container.lower() == "inferenceserver" else "StorageInitializer", "")
    tail = int(body.get("tail") or 0)
    if tail > 0:
        text = "\n".join(text.splitlines()[-tail:])
    return Reply(200, {"content": text})
