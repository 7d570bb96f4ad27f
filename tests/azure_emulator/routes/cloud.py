"""ARM's cloud metadata: ``GET /metadata/endpoints?api-version=2019-05-01`` (no auth), the document
``ARM_CLOUD_METADATA_URL`` points azure-ai-ml at for a cloud other than the public one.

azure-ai-ml 1.35 ``_azure_environments``: with ``ARM_CLOUD_METADATA_URL`` set (and no
``AZUREML_CURRENT_CLOUD``), ``_get_default_cloud_name`` fetches this list, picks the cloud whose
``resourceManager`` the URL starts with, and ``_convert_arm_to_cli`` maps ``portal``,
``resourceManager``, ``authentication.loginEndpoint``, ``suffixes.storage`` (the ML scope is
``https://ml.azure.{suffix of portal}``). So an *unchanged* adapter (``MLClient(credential, sub, rg,
ws)``) talks to the emulator - the route a sovereign cloud or Azure Stack user takes - and
azure-identity takes its authority from ``AZURE_AUTHORITY_HOST``. The shape is ARM's
(https://learn.microsoft.com/rest/api/resources/cloud-metadata?, the ``AzureCloud`` entry of
``management.azure.com/metadata/endpoints``).
"""

from __future__ import annotations

from tests.azure_emulator.messages import Call, Reply
from tests.azure_emulator.routes import route


@route("GET", "/metadata/endpoints", audience=None)
def cloud_metadata(call: Call) -> Reply:
    emu = call.emulator
    cloud = {
        "name": emu.cloud_name if hasattr(emu, "cloud_name") else "MlopsEmulatorCloud",
        "portal": "https://portal.azure.com", "resourceManager": emu.arm_url,
        "authentication": {"loginEndpoint": emu.authority + "/", "audiences": [emu.arm_audience + "/",
                                                                                 emu.arm_audience],
                           "tenant": "common", "identityProvider": "AAD"},
        "media": "", "graphAudience": "", "graph": "", "batch": "", "sqlManagement": "", "gallery": "",
        "activeDirectoryDataLake": "", "vmImageAliasDoc": "", "microsoftGraphResourceId": "",
        "suffixes": {"storage": emu.setting("datastore.endpoint", "core.windows.net"),
                     "keyVaultDns": "vault.azure.net", "acrLoginServer": "azurecr.io"},
    }
    return Reply(200, [cloud])
