"""Jobs: the ARM job resource, run history (children, run data) and the dataset data plane's URI
resolution - the calls ``jobs.get``, ``jobs.list(parent_job_name=...)`` and ``jobs.download`` make
(azure-ai-ml 1.35 ``operations/_job_operations.py``, ``_job_ops_helper.get_job_output_uris_from_dataplane``,
``_run_operations.py``, ``_dataset_dataplane_operations.py``).

* ``GET {WS}/jobs/{id}`` (ARM) - batch parents and their child step (``tests.azure_emulator.batch_jobs``), AutoML jobs
  (``tests.azure_emulator.automl_jobs``); else ``404 UserError``.
* ``GET /history/v1.0{WS}/runs/{id}/children`` (the data plane) -
  ``{"value": [Run], "continuationToken": null}``.
* ``GET /history/v1.0{WS}/runs/{id}`` - one run (a pipeline child step, an AutoML trial).
* ``POST /history/v1.0{WS}/rundata`` - ``{"runMetadata": {..., "outputs": {name: {assetId, type}}}}``.
* ``POST /data/v1.0{WS}/dataversion/batchGetResolvedUris`` - ``{"values": {assetId: {uri, type}}}``.

The data-plane base URL is the discovery document's ``api`` (``routes/operations.py``). Its token is
the **ARM** scope, not ``https://ml.azure.com``: ``MLClient.__init__`` does ``kwargs.update(
_get_cloud_information_from_metadata(cloud_name))`` (``credential_scopes = [resource_manager +
"/.default"]``) and passes those kwargs as ``_service_client_kwargs`` to ``JobOperations``, whose
``ServiceClientRunHistory`` / ``ServiceClientDatasetDataplane`` take them - overriding the clients'
own default ``https://ml.azure.com/.default``. (Only the batch invoke and batch ``list_jobs`` ask
for the ML scope themselves.)
"""

from __future__ import annotations

from typing import Any

from tests.azure_emulator import automl_jobs, batch_jobs
from tests.azure_emulator.messages import Call, Reply, user_error
from tests.azure_emulator.routes import route
from tests.azure_emulator.routes.workspace import check_workspace


def _job_missing(name: str) -> Any:
    return user_error(404, f"Job {name} not found.")


@route("GET", "{WS}/jobs/{job}")
def get_job(call: Call) -> Reply:
    check_workspace(call)
    emu, name = call.emulator, call.params["job"]
    job = batch_jobs.find(emu, name)
    if job is not None:
        # a pipeline's child step answers with ``properties: null`` - azure-ai-ml 1.35's
        # ``_is_pipeline_child_job`` ("pipeline child job has no properties") then raises
        # ``PipelineChildJobError`` from ``jobs.get``/``jobs.download`` of that name
        body = batch_jobs.arm_job(emu, job) if job.name == name else {
            "id": f"{emu.workspace.arm_id}/jobs/{name}", "name": name, "properties": None,
            "type": "Microsoft.MachineLearningServices/workspaces/jobs"}
        return Reply(200, body)
    body = automl_jobs.arm_job(emu, name)
    if body is not None:
        return Reply(200, body)
    raise _job_missing(name)


@route("GET", "/history/v1.0{WS}/runs/{run}/children")
def run_children(call: Call) -> Reply:
    check_workspace(call)
    emu, name = call.emulator, call.params["run"]
    job = batch_jobs.find(emu, name)
    if job is not None and job.name == name:
        return Reply(200, {"value": [batch_jobs.child_run(emu, job)], "continuationToken": None})
    children = automl_jobs.children(emu, name)
    if children is not None:
        return Reply(200, {"value": children, "continuationToken": None})
    raise user_error(404, f"Run {name} not found.")


@route("GET", "/history/v1.0{WS}/runs/{run}")
def get_run(call: Call) -> Reply:
    """What ``jobs.get`` falls back to for a pipeline's child step (``PipelineChildJobError`` ->
    ``_runs_operations.get_run``)."""
    check_workspace(call)
    emu, name = call.emulator, call.params["run"]
    job = batch_jobs.find(emu, name)
    if job is not None and job.child == name:
        return Reply(200, batch_jobs.child_run(emu, job))
    run = automl_jobs.run(emu, name)
    if run is not None:
        return Reply(200, run)
    raise user_error(404, f"Run {name} not found.")


@route("POST", "/history/v1.0{WS}/rundata")
def run_data(call: Call) -> Reply:
    check_workspace(call)
    emu = call.emulator
    run_id = str((call.json() or {}).get("runId") or "")
    job = batch_jobs.find(emu, run_id)
    if job is not None:
        return Reply(200, {"runMetadata": batch_jobs.run_metadata(emu, job, run_id)})
    meta = automl_jobs.run_metadata(emu, run_id)
    if meta is not None:
        return Reply(200, {"runMetadata": meta})
    raise user_error(404, f"Run {run_id} not found.")


@route("POST", "/data/v1.0{WS}/dataversion/batchGetResolvedUris")
def resolve_uris(call: Call) -> Reply:
    check_workspace(call)
    emu = call.emulator
    values: dict[str, Any] = {}
    for asset_id in (call.json() or {}).get("values") or []:
        resolved = batch_jobs.resolve_output(emu, asset_id) or automl_jobs.resolve_output(emu, asset_id)
        if resolved is not None:
            values[asset_id] = resolved
    return Reply(200, {"values": values})
