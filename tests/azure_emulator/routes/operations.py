"""The headers of long-running operations and the workspace's service discovery.

The polling URLs themselves (``mfeOperationsStatus``, ``mfeOperationResults``) are served by
``routes/online.py`` for every operation of ``lro.Operations``.

* ``GET /discovery`` - the workspace's ``discoveryUrl``: the data-plane base URLs the SDK reads
  (``_utils.utils._get_base_urls_from_discovery_service``: key ``api`` for run history, the dataset
  and model data planes). All point back at this emulator.

``lro_headers`` / ``delete_headers`` build the recorded reply headers for route modules.
"""

from __future__ import annotations

from typing import Any

from tests.azure_emulator.lro import Operation
from tests.azure_emulator.messages import Call, Reply
from tests.azure_emulator.routes import route


def _location_prefix(emu: Any) -> str:
    ws = emu.workspace
    return (f"{emu.base_url}/subscriptions/{ws.subscription_id}/providers/Microsoft.MachineLearningServices"
            f"/locations/{ws.location}")


def lro_headers(emu: Any, op: Operation, resource_id: str, api_version: str) -> dict[str, str]:
    """A long-running PUT's headers as recorded: ``Azure-AsyncOperation`` (the poll, with the PUT's
    api-version), ``Location`` (the resource), ``x-ms-async-operation-timeout: PT30M``."""
    return {"Azure-AsyncOperation": f"{_location_prefix(emu)}/mfeOperationsStatus/{op.id}?api-version={api_version}",
            "Location": f"{emu.base_url}{resource_id}?api-version={api_version}",
            "x-ms-async-operation-timeout": "PT30M"}


def delete_headers(emu: Any, op: Operation, api_version: str) -> dict[str, str]:
    """A DELETE's headers as recorded (``online_endpoint_e2e.jsonl``): the poll and a ``Location`` to
    ``mfeOperationResults``; the body is ``null``."""
    return {"Azure-AsyncOperation": f"{_location_prefix(emu)}/mfeOperationsStatus/{op.id}?api-version={api_version}",
            "Location": f"{_location_prefix(emu)}/mfeOperationResults/{op.id}?api-version={api_version}",
            "x-ms-async-operation-timeout": "PT30M", "X-Body": "null"}


@route("GET", "/discovery", audience=None)
def discovery(call: Call) -> Reply:
    base = call.emulator.base_url
    return Reply(200, {"api": base, "catalog": base, "experimentation": base, "gallery": base, "history": base,
                       "hyperdrive": base, "labeling": base, "modelmanagement": base, "pipelines": base,
                       "studio": base})
