"""The workspace and its datastores (shapes: ``online_deployment_create.jsonl`` lines 0, 11, 12).

``datastore.*`` settings say where the default blob datastore points - helper ``wirebatch``'s Azurite
fixture sets them: ``datastore.account`` / ``datastore.endpoint`` / ``datastore.protocol`` (the SDK
builds ``{protocol}://{account}.blob.{endpoint}``), ``datastore.credentials`` (``"None"``: identity
based, ``listSecrets`` is 400 "No secrets for credentials of type None." as recorded, and the SDK
uploads with a storage-scope token of the caller's credential; ``"AccountKey"`` / ``"Sas"``:
``listSecrets`` answers the secret), ``datastore.secret``.
"""

from __future__ import annotations

from typing import Any

from tests.azure_emulator.messages import Call, Reply, arm_error, not_found, user_error
from tests.azure_emulator.routes import route

DEFAULT_DATASTORE = "workspaceblobstore"
ARTIFACT_DATASTORE = "workspaceartifactstore"
"""Where run history keeps a run's default artifacts (``ExperimentRun/dcid.{run}/``, container
``azureml``): azure-ai-ml 1.35 ``JobOperations._get_named_output_uri`` falls back to
``azureml://datastores/workspaceartifactstore/paths/ExperimentRun/dcid.{job}/`` for ``default``."""
DATASTORES = (DEFAULT_DATASTORE, ARTIFACT_DATASTORE)


def workspace_body(emu: Any) -> dict[str, Any]:
    ws = emu.workspace
    return {
        "id": ws.arm_id, "name": ws.name, "location": ws.location, "kind": "Default", "etag": None,
        "type": "Microsoft.MachineLearningServices/workspaces", "tags": {},
        "identity": {"principalId": "00000000-0000-0000-0000-00000000beef", "tenantId": ws.tenant_id,
                     "type": "SystemAssigned"},
        "sku": {"name": "Basic", "tier": "Basic"},
        "properties": {
            "workspaceId": ws.workspace_id, "provisioningState": "Succeeded", "tenantId": ws.tenant_id,
            "friendlyName": ws.name, "description": "", "hbiWorkspace": False, "v1LegacyMode": False,
            "discoveryUrl": f"{emu.base_url}/discovery", "publicNetworkAccess": "Enabled",
            "storageAccount": f"/subscriptions/{ws.subscription_id}/resourceGroups/{ws.resource_group}/providers/"
                              f"Microsoft.Storage/storageAccounts/{emu.setting('datastore.account', 'devstoreaccount1')}",
            "mlFlowTrackingUri": f"azureml://{ws.location}.api.azureml.ms/mlflow/v1.0{ws.arm_id}",
            "systemDatastoresAuthMode": "identity", "enableDataIsolation": False,
        },
    }


def check_workspace(call: Call) -> None:
    """Every workspace-scoped route's first check (other route modules call it too)."""
    ws = call.emulator.workspace
    p = call.params
    if (p["sub"].lower(), p["rg"].lower(), p["ws"].lower()) != (ws.subscription_id.lower(),
                                                                   ws.resource_group.lower(), ws.name.lower()):
        if p["sub"].lower() != ws.subscription_id.lower():
            raise arm_error(404, "SubscriptionNotFound", f"The subscription '{p['sub']}' could not be found.")
        raise arm_error(404, "ResourceNotFound", f"The Resource 'Microsoft.MachineLearningServices/workspaces/"
                                                 f"{p['ws']}' under resource group '{p['rg']}' was not found.")


@route("GET", "{WS}")
def get_workspace(call: Call) -> Reply:
    check_workspace(call)
    return Reply(200, workspace_body(call.emulator))


def datastore_body(emu: Any, name: str) -> dict[str, Any]:
    ws = emu.workspace
    return {
        "id": f"{ws.arm_id}/datastores/{name}", "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/datastores",
        "properties": {
            "datastoreType": "AzureBlob", "isDefault": name == DEFAULT_DATASTORE, "description": None, "tags": None, "properties": None,
            "accountName": emu.setting("datastore.account", "devstoreaccount1"),
            "containerName": f"azureml-blobstore-{ws.workspace_id}" if name == DEFAULT_DATASTORE  # as recorded
                             else "azureml",
            "endpoint": emu.setting("datastore.endpoint", "core.windows.net"),
            "protocol": emu.setting("datastore.protocol", "https"),
            "credentials": {"credentialsType": emu.setting("datastore.credentials", "None")},
            "serviceDataAccessAuthIdentity": "WorkspaceSystemAssignedIdentity",
            "subscriptionId": ws.subscription_id, "resourceGroup": ws.resource_group,
        },
    }


@route("GET", "{WS}/datastores")
def list_datastores(call: Call) -> Reply:
    check_workspace(call)
    names = [DEFAULT_DATASTORE] if call.query.get("isDefault", "").lower() == "true" else DATASTORES
    return Reply(200, {"value": [datastore_body(call.emulator, name) for name in names]})


@route("GET", "{WS}/datastores/{name}")
def get_datastore(call: Call) -> Reply:
    check_workspace(call)
    if call.params["name"] not in DATASTORES:
        raise not_found("Datastore", call.params["name"])
    return Reply(200, datastore_body(call.emulator, call.params["name"]))


@route("POST", "{WS}/datastores/{name}/listSecrets")
def list_secrets(call: Call) -> Reply:
    check_workspace(call)
    if call.params["name"] not in DATASTORES:
        raise not_found("Datastore", call.params["name"])
    kind = call.emulator.setting("datastore.credentials", "None")
    if kind == "None":
        raise user_error(400, "No secrets for credentials of type None.")
    if kind == "AccountKey":
        return Reply(200, {"secretsType": "AccountKey", "key": call.emulator.setting("datastore.secret", "")})
    return Reply(200, {"secretsType": "Sas", "sasToken": call.emulator.setting("datastore.secret", "")})
