"""Versioned assets: models, environments, code (shapes: ``model_archive_restore.jsonl``,
``environment_create_conda.jsonl``, ``online_deployment_create.jsonl`` lines 7-10).

Rules the resource provider applies, each seen in a recorded session or the SDK's handling of it:

* **Lists** take ``listViewType`` = ``ActiveOnly`` (the default), ``ArchivedOnly`` or ``All``: an
  archived version disappears from the default list but a GET still reads it
  (``model_archive_restore.jsonl`` lines 12-16). ``$orderBy=createdtime desc`` + ``$top=1`` is how
  the SDK asks for "latest" (line 0). Newest first. A model name with no version at all is ``404``
  with the detail code ``ModelNotFound`` (line 0); an environment name with none is an empty list
  (not recorded; the SDK treats both the same way).
* **PUT of a version**: ``201`` when new, ``200`` on update (archive / restore flip ``isArchived``,
  lines 14 and 17). A model version's ``modelUri`` (a code version's ``codeUri``) cannot change:
  the service answers ``UserError`` "Asset paths cannot be updated." - the text azure-ai-ml 1.35
  knows (``_artifacts/_constants.py`` ``ASSET_PATH_ERROR = "(UserError) Asset paths cannot be
  updated."``). The status code is not recorded; 409 Conflict is used. Note what the SDK then does:
  ``ModelOperations.create_or_update`` raises ``AssetPathException`` only when ``str(e)`` *equals*
  that text, but azure-core renders an ARM-shaped error as ``"(UserError) ...\nCode: UserError\n
  Message: ..."``, so the caller gets the ``ResourceExistsError`` itself (seen in the wire tests).
  An environment version's build definition (image, conda file) cannot change either: 409.
* **Code** is found by content hash across the workspace: ``GET codes/{any}/versions?hash=...&
  hashVersion=202208`` lists every code version whose ``properties.hash_sha256`` matches, whatever
  the container name in the path (line 7 asks one name and gets another's version back).
* The conda file is sent as YAML text and comes back as JSON text (``environment_create_conda``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import yaml

from tests.azure_emulator.messages import Call, Reply, arm_error, not_found_detail
from tests.azure_emulator.routes import route
from tests.azure_emulator.routes.workspace import check_workspace

ASSET_PATH_ERROR = "Asset paths cannot be updated."
_KINDS = {"models": "Model", "environments": "Environment", "codes": "Code"}
_TYPES = {"models": "models/versions", "environments": "environments/versions", "codes": "codes/versions"}


def versions(emu: Any, kind: str, name: str) -> dict[str, dict[str, Any]]:
    """``version -> record`` of one asset container (created on first use); names are case-insensitive."""
    return emu.store("assets").setdefault(kind, {}).setdefault(name.lower(), {})


def asset_id(emu: Any, kind: str, name: str, version: str) -> str:
    return f"{emu.workspace.arm_id}/{kind}/{name}/versions/{version}"


def find_version(emu: Any, kind: str, name: str, version: str) -> dict[str, Any] | None:
    return emu.store("assets").get(kind, {}).get(name.lower(), {}).get(str(version))


_DEFAULTS: dict[str, dict[str, Any]] = {
    # the fields every recorded answer carries even when the PUT left them out
    "models": {"flavors": {}, "properties": {}, "tags": {}, "description": None, "jobName": None,
               "isAnonymous": False, "isArchived": False, "intellectualProperty": None, "autoDeleteSetting": None},
    "environments": {"properties": {}, "tags": {}, "description": None, "isAnonymous": False, "isArchived": False,
                     "osType": "Linux", "environmentType": "UserCreated", "autoRebuild": "Disabled",
                     "intellectualProperty": None, "autoDeleteSetting": None, "stage": "Logged"},
    "codes": {"properties": {}, "tags": {}, "description": None, "isAnonymous": False, "isArchived": False},
}


def _body(emu: Any, kind: str, record: dict[str, Any]) -> dict[str, Any]:
    props = {**_DEFAULTS[kind], **{k: v for k, v in record["properties"].items() if v is not None}}
    props["provisioningState"] = "Succeeded"
    if kind == "models":
        props["stage"] = "Archived" if props.get("isArchived") else "Development"
    if kind == "environments" and props.get("condaFile"):
        props["condaFile"] = json.dumps(yaml.safe_load(props["condaFile"]), indent=2)
    clock = emu.clock
    return {"id": asset_id(emu, kind, record["name"], record["version"]), "name": record["version"],
            "type": f"Microsoft.MachineLearningServices/workspaces/{_TYPES[kind]}", "properties": props,
            "systemData": {"createdAt": clock.iso(record["created"]), "createdBy": "mlops-emulator",
                           "createdByType": "Application", "lastModifiedAt": clock.iso(record["modified"]),
                           "lastModifiedBy": "mlops-emulator", "lastModifiedByType": "Application"}}


def _view(records: list[dict[str, Any]], view: str) -> list[dict[str, Any]]:
    view = (view or "ActiveOnly").lower()
    if view == "all":
        return records
    archived = view == "archivedonly"
    if view not in ("activeonly", "archivedonly"):
        raise arm_error(400, "UserError", f"listViewType '{view}' is not one of ActiveOnly, ArchivedOnly, All.")
    return [r for r in records if bool(r["properties"].get("isArchived")) == archived]


def _list(call: Call, kind: str) -> Reply:
    check_workspace(call)
    emu, name = call.emulator, call.params["name"]
    held = emu.store("assets").get(kind, {}).get(name.lower())
    if not held and kind == "models":
        raise not_found_detail("ModelNotFound", f"Model container with name: {name} not found.")
    records = sorted((held or {}).values(), key=lambda r: r["created"], reverse=True)
    records = _view(records, call.query.get("listViewType", ""))
    order = call.query.get("$orderBy", "").lower()
    if order and order not in ("createdtime desc", "createdtime asc"):
        raise arm_error(400, "UserError", f"$orderBy '{order}' is not supported.")
    if order == "createdtime asc":
        records.reverse()
    if call.query.get("$top"):
        records = records[: int(call.query["$top"])]
    return Reply(200, {"value": [_body(emu, kind, r) for r in records]})


def _get(call: Call, kind: str) -> Reply:
    check_workspace(call)
    emu, name, version = call.emulator, call.params["name"], call.params["version"]
    record = find_version(emu, kind, name, version)
    if record is None:
        raise not_found_detail(f"{_KINDS[kind]}NotFound", f"{_KINDS[kind]} {name}:{version} not found.")
    return Reply(200, _body(emu, kind, record))


_IMMUTABLE = {"models": ("modelUri",), "codes": ("codeUri",), "environments": ("image", "condaFile", "build")}


def _put(call: Call, kind: str) -> Reply:
    check_workspace(call)
    emu, name, version = call.emulator, call.params["name"], call.params["version"]
    sent = (call.json() or {}).get("properties") or {}
    held = versions(emu, kind, name)
    now = emu.clock.now()
    existing = held.get(version)
    if existing is not None:
        for key in _IMMUTABLE[kind]:
            if key in sent and _normal(kind, key, sent.get(key)) != _normal(kind, key, existing["properties"].get(key)):
                if kind == "environments":
                    raise arm_error(409, "UserError", f"Environment {name}:{version} already exists with a different "
                                                      "definition; environment versions are immutable.")
                raise arm_error(409, "UserError", ASSET_PATH_ERROR)
        existing["properties"] = {**existing["properties"], **sent}
        existing["modified"] = now
        return Reply(200, _body(emu, kind, existing))
    record = {"name": name, "version": version, "properties": dict(sent), "created": now, "modified": now}
    held[version] = record
    return Reply(201, _body(emu, kind, record),
                 {"Location": emu.url(asset_id(emu, kind, name, version))})


def _normal(kind: str, key: str, value: Any) -> Any:
    if key == "condaFile" and isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    if key in ("modelUri", "codeUri") and isinstance(value, str):
        return value.lower().rstrip("/")
    return value


for _kind in ("models", "environments", "codes"):
    if _kind != "codes":  # codes: code_list_by_hash below
        route("GET", "{WS}/" + _kind + "/{name}/versions")(lambda call, k=_kind: _list(call, k))
    route("GET", "{WS}/" + _kind + "/{name}/versions/{version}")(lambda call, k=_kind: _get(call, k))
    route("PUT", "{WS}/" + _kind + "/{name}/versions/{version}")(lambda call, k=_kind: _put(call, k))


@route("GET", "{WS}/models/{name}")
def get_model_container(call: Call) -> Reply:
    check_workspace(call)
    emu, name = call.emulator, call.params["name"]
    if not emu.store("assets").get("models", {}).get(name.lower()):
        raise not_found_detail("ModelNotFound", f"Model container with name: {name} not found.")
    held = versions(emu, "models", name)
    latest = max(held.values(), key=lambda r: r["created"])
    return Reply(200, {"id": f"{emu.workspace.arm_id}/models/{name}", "name": name,
                       "type": "Microsoft.MachineLearningServices/workspaces/models",
                       "properties": {"latestVersion": latest["version"], "isArchived": False,
                                      "nextVersion": str(max((int(v) for v in held if v.isdigit()), default=0) + 1)}})


@route("POST", "{WS}/codes/{name}/versions/{version}/startPendingUpload")
def start_pending_upload(call: Call) -> Reply:
    """Where the SDK uploads a new code version (``_asset_utils.get_storage_info_for_non_registry_asset``):
    a fresh container of the workspace's storage account, ``{workspaceId}-{random}`` as in the recorded
    ``codeUri`` (``online_deployment_create.jsonl`` line 7), with a write SAS valid for a day - made
    for real in the storage emulator (``storage.*`` settings, ``use_azurite``)."""
    check_workspace(call)
    from datetime import timedelta

    from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

    emu = call.emulator
    body = call.json() or {}
    if body.get("pendingUploadType") != "TemporaryBlobReference":
        raise arm_error(400, "UserError", "pendingUploadType must be TemporaryBlobReference.")
    account_url = emu.setting("storage.account_url", "")
    if not account_url:
        raise arm_error(500, "InternalServerError", "the emulator has no storage account (use_azurite)")
    account = account_url.split("//", 1)[1].split(".", 1)[0]
    key = emu.setting("storage.account_key", "")
    container = f"{emu.workspace.workspace_id}-{uuid.uuid4().hex[:25]}"
    with BlobServiceClient(account_url, credential={"account_name": account, "account_key": key}) as service:
        service.create_container(container)
    sas = generate_container_sas(account, container, account_key=key,
                                 permission=ContainerSasPermissions(read=True, write=True, create=True, list=True),
                                 expiry=emu.clock.utcnow() + timedelta(days=1))
    blob_uri = f"{account_url}/{container}"
    return Reply(200, {"blobReferenceForConsumption": {
        "blobUri": blob_uri, "storageAccountArmId": f"/subscriptions/{emu.workspace.subscription_id}/resourceGroups/"
                                                   f"{emu.workspace.resource_group}/providers/Microsoft.Storage/"
                                                   f"storageAccounts/{account}",
        "credential": {"credentialType": "SAS", "sasUri": f"{blob_uri}?{sas}"}},
        "pendingUploadId": str(uuid.uuid4()), "pendingUploadType": "TemporaryBlobReference"})


@route("GET", "{WS}/codes/{name}/versions")
def code_list_by_hash(call: Call) -> Reply:
    check_workspace(call)
    emu, digest = call.emulator, call.query.get("hash")
    if not digest:
        return _list(call, "codes")
    found = [r for container in emu.store("assets").get("codes", {}).values() for r in container.values()
             if (r["properties"].get("properties") or {}).get("hash_sha256") == digest]
    return Reply(200, {"value": [_body(emu, "codes", r) for r in found]})


