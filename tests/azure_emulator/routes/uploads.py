"""``POST {WS}/codes/{name}/versions/{version}/startPendingUpload`` - where a code snapshot goes.

azure-ai-ml 1.35 uploads code (a deployment's ``code_configuration.code``) not to the default
datastore but to a temporary blob reference the service hands out (``_utils/_asset_utils.
get_storage_info_for_non_registry_asset``: body ``{"pendingUploadType": "TemporaryBlobReference"}``;
it reads ``blobReferenceForConsumption.credential.sasUri`` and ``.blobUri``), uploads with that SAS
(``get_storage_client(account_url=sas_uri)``: the container comes from the URL, files go to its
root) and then PUTs the code version with ``codeUri`` = the blob URI. Here the reference is a fresh
container in Azurite with a container SAS (write/list/read, 1 day of Azurite's real clock), on the
host the SDK can reach (the cloud's storage suffix, ``use_azurite``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.azure_emulator import storage
from tests.azure_emulator.messages import Call, Reply, user_error
from tests.azure_emulator.routes import route
from tests.azure_emulator.routes.workspace import check_workspace


@route("POST", "{WS}/codes/{name}/versions/{version}/startPendingUpload")
def start_pending_upload(call: Call) -> Reply:
    check_workspace(call)
    emu = call.emulator
    kind = (call.json() or {}).get("pendingUploadType")
    if kind != "TemporaryBlobReference":
        raise user_error(400, f"pendingUploadType must be TemporaryBlobReference, got {kind!r}.")
    blobs = storage.for_emulator(emu)
    if blobs is None:
        raise user_error(400, "The workspace has no storage account (the emulator runs without Azurite).")
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    upload_id = str(uuid.uuid4())
    container = f"pending-{upload_id}"
    storage.BlobStore(blobs.account_url, blobs.account_name, blobs.account_key, container)._client().create_container()
    sas = generate_container_sas(blobs.account_name, container, account_key=blobs.account_key,
                                 permission=ContainerSasPermissions(read=True, write=True, list=True, create=True,
                                                                    add=True),
                                 expiry=datetime.now(UTC) + timedelta(days=1))
    host = f"https://{blobs.account_name}.blob.{emu.setting('datastore.endpoint', '')}"
    return Reply(200, {
        "blobReferenceForConsumption": {
            "blobUri": f"{host}/{container}",
            "storageAccountArmId": f"/subscriptions/{emu.workspace.subscription_id}/resourceGroups/"
                                   f"{emu.workspace.resource_group}/providers/Microsoft.Storage/storageAccounts/"
                                   f"{blobs.account_name}",
            "credential": {"credentialType": "SAS", "sasUri": f"{host}/{container}?{sas}"},
        },
        "pendingUploadId": upload_id, "pendingUploadType": "TemporaryBlobReference"})
