"""Batch scoring jobs as Azure ML runs them, on the virtual clock, scored for real.

A batch invoke creates a **parent** pipeline job and one **child** step, ``batchscoring``, that
holds the named output ``score``. The parent's shape is a real invoke's answer (the sample output
of the Ansible collection azure.azcollection's ``azure_rm_mlbatchendpoint_invoke`` module: name
``pipelinejob-{guid}``, tags ``azureml.batchrun: true``, ``azureml.deploymentname``, ``azureml.jobtype:
azureml.pipelinejob``; properties ``azureml.endpointname``, ``azureml.deploymentname``, ``runSource:
BatchDeployment``, ``azureml.runsource: azureml.PipelineRun``). Because of that ``jobtype``,
azure-ai-ml 1.35's ``JobOperations.download`` does *not* take its batch path (which looks in the
child: ``_get_batch_job_scoring_output_uri``) and asks the parent for ``output_name`` itself; the
parent holds no ``score`` output (``rundata`` lists none), so ``jobs.download(parent,
output_name="score")`` downloads nothing - the output is only in the child (issue 13: "a batch
parent job can hold no files while its child does"). States: ``NotStarted`` (the cluster scales from 0 and pulls the image:
``batch.job_queue_seconds``, default 180 s) -> ``Running`` (``batch.job_run_seconds``, 60 s) ->
``Completed`` / ``Failed``.

When the job is first seen past its running time it is really scored: the input blobs the SDK
uploaded (``inputData`` -> a datastore path in Azurite) are downloaded, the deployment's scoring
script runs over them in a subprocess (``batch_driver.py``: ``init()``, ``run(mini_batch)`` per
``miniBatchSize`` files, ``append_row`` with a header), and the output file
(``outputFileName``, default ``predictions.csv``) is uploaded to
``azureml/{child}/score/`` in the workspace's blob container - the child's ``score`` output.

The batch rule of issue 13: Azure's custom-script batch deployments need ``azureml-core`` and
``azureml-dataset-runtime[fuse]`` in the environment (``BATCH_REQUIRED_PACKAGES`` of the local
workspace, which quotes the docs: how-to-use-batch-model-deployments - the driver that calls
``init``/``run`` runs in that environment). An environment whose conda file lacks one fails the job
at its start: without azureml-core the way the driver would, ``ModuleNotFoundError: No module named
'azureml'``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops.workspace.local.batch.plan import BATCH_REQUIRED_PACKAGES
from mlops.workspace.local.batch.plan import missing_packages as _missing

BATCH_OUTPUT = "score"
CHILD_NAME = "batchscoring"
REQUIRED_PACKAGES = BATCH_REQUIRED_PACKAGES
"""The local workspace's list (one place for the fact, with the docs quoted there)."""
DRIVER = Path(__file__).with_name("batch_driver.py")


@dataclass
class BatchJobRecord:
    name: str
    child: str
    endpoint: str
    deployment: str
    deployment_props: dict[str, Any]
    input_uri: str
    submitted: float
    queue_seconds: float
    run_seconds: float
    experiment: str
    outcome: str | None = None
    """None until scored; then ``Completed`` or ``Failed``."""
    error: str = ""
    output_path: str = ""
    """Datastore path of the child's ``score`` output folder once written."""
    rows: int = 0
    log: list[str] = field(default_factory=list)


def _jobs(emu: Any) -> dict[str, BatchJobRecord]:
    return emu.store("batch_jobs")


def find(emu: Any, name: str) -> BatchJobRecord | None:
    jobs = _jobs(emu)
    if name in jobs:
        return jobs[name]
    for job in jobs.values():
        if job.child == name:
            return job
    return None


def submit(emu: Any, endpoint: str, deployment: str, deployment_body: dict[str, Any],
           properties: dict[str, Any]) -> BatchJobRecord:
    data = properties.get("inputData") or {}
    entry = next(iter(data.values()), {}) if isinstance(data, dict) else {}
    uri = str(entry.get("uri") or entry.get("path") or "") if isinstance(entry, dict) else ""
    name = f"pipelinejob-{uuid.uuid4()}"
    job = BatchJobRecord(name=name, child=f"{name}_{CHILD_NAME}", endpoint=endpoint, deployment=deployment,
                         deployment_props=dict(deployment_body.get("properties") or {}), input_uri=uri,
                         submitted=emu.clock.now(), queue_seconds=float(emu.setting("batch.job_queue_seconds", 180.0)),
                         run_seconds=float(emu.setting("batch.job_run_seconds", 60.0)),
                         experiment=endpoint)
    _jobs(emu)[name] = job
    return job


def status(emu: Any, job: BatchJobRecord) -> str:
    now = emu.clock.now()
    if now < job.submitted + job.queue_seconds:
        return "NotStarted"
    if now < job.submitted + job.queue_seconds + job.run_seconds:
        return "Running"
    if job.outcome is None:
        _score(emu, job)
        _write_logs(emu, job)
    return str(job.outcome)


# the rule and the scoring ---------------------------------------------------------------------
def _pip_names(conda_text: str) -> set[str]:
    try:
        spec = yaml.safe_load(conda_text) or {}
    except yaml.YAMLError:
        return set()
    names: set[str] = set()
    for dep in spec.get("dependencies") or []:
        entries = dep.get("pip") or [] if isinstance(dep, dict) else [dep]
        for item in entries:
            match = re.match(r"\s*([A-Za-z0-9_.\-]+)", str(item))
            if match:
                names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def missing_packages(conda_text: str | None) -> list[str]:
    """The packages of ``REQUIRED_PACKAGES`` the conda file does not install (pure; table-tested)."""
    return list(_missing(REQUIRED_PACKAGES, _pip_names(conda_text or "")))


_ASSET_ID = re.compile(r"/(?P<kind>models|environments|codes)/(?P<name>[^/]+)/versions/(?P<version>[^/?]+)",
                       re.IGNORECASE)


def _resource(emu: Any, arm_id: str) -> dict[str, Any] | None:
    """The stored version (``routes/assets.py``) an asset id of the deployment names, as
    ``{"properties": {...}}``."""
    from tests.azure_emulator.routes import assets

    found = _ASSET_ID.search(arm_id)
    if found is None:
        return None
    return assets.find_version(emu, found.group("kind").lower(), found.group("name"), found.group("version"))


def _fail(job: BatchJobRecord, message: str) -> None:
    job.outcome, job.error = "Failed", message
    job.log.append(message)


def _write_logs(emu: Any, job: BatchJobRecord) -> None:
    """The child step's logs where run history keeps a run's artifacts (``workspaceartifactstore``,
    ``ExperimentRun/dcid.{child}/logs/``): ``job_result.txt``, and ``job_error.txt`` when it failed -
    the files the adapter's ``get_batch_job_logs`` reads (parallel run step's summary logs)."""
    from tests.azure_emulator import storage
    from tests.azure_emulator.automl_jobs import ARTIFACT_CONTAINER

    blobs = storage.for_emulator(emu)
    if blobs is None:
        return
    client = storage.BlobStore(blobs.account_url, blobs.account_name, blobs.account_key, ARTIFACT_CONTAINER)._client()
    if not client.exists():
        client.create_container()
    prefix = f"ExperimentRun/dcid.{job.child}/logs/"
    client.upload_blob(prefix + "job_result.txt", f"{job.outcome}: {job.rows} rows\n".encode(), overwrite=True)
    if job.outcome == "Failed":
        client.upload_blob(prefix + "job_error.txt", ("\n".join(job.log) + "\n").encode(), overwrite=True)


def _score(emu: Any, job: BatchJobRecord) -> None:
    from tests.azure_emulator import storage

    props = job.deployment_props
    env_id = str(props.get("environmentId") or "")
    environment = _resource(emu, env_id) if env_id else None
    conda = ((environment or {}).get("properties") or {}).get("condaFile")
    missing = missing_packages(conda)
    if missing:
        first = "ModuleNotFoundError: No module named 'azureml'" if "azureml-core" in missing else \
            f"the batch driver could not start: {', '.join(missing)} not installed"
        _fail(job, f"{first} - environment {env_id.split('/environments/')[-1] or '(none)'} does not install "
                   f"{', '.join(missing)}. Azure ML batch deployments require azureml-core and "
                   "azureml-dataset-runtime[fuse] in the environment: "
                   "https://learn.microsoft.com/azure/machine-learning/how-to-use-batch-model-deployments")
        return
    blobs = storage.for_emulator(emu)
    if blobs is None:
        _fail(job, "the emulator has no blob storage (start Azurite: tests/azure_emulator/azurite.py)")
        return
    with tempfile.TemporaryDirectory(prefix="batch-job-") as tmp:
        root = Path(tmp)
        try:
            inputs = blobs.download_uri(job.input_uri, root / "input")
            model_dir = _asset_folder(emu, blobs, props.get("model") or {}, "modelUri", root / "model")
            code = props.get("codeConfiguration") or {}
            code_dir = _asset_folder(emu, blobs, {"assetId": code.get("codeId")}, "codeUri", root / "code")
        except LookupError as error:
            _fail(job, str(error))
            return
        if not inputs:
            _fail(job, f"the job's input {job.input_uri} holds no files")
            return
        output_name = str(props.get("outputFileName") or "predictions.csv")
        output = root / "out" / output_name
        output.parent.mkdir()
        settings = {"code_dir": str(code_dir), "scoring_script": str(code.get("scoringScript") or "score.py"),
                    "model_dir": str(model_dir), "files": [str(p) for p in inputs], "output": str(output),
                    "mini_batch_size": int(props.get("miniBatchSize") or 10),
                    "environment_variables": dict(props.get("environmentVariables") or {})}
        result = subprocess.run([sys.executable, str(DRIVER), json.dumps(settings)], capture_output=True,
                                text=True, timeout=300, check=False)
        job.log.extend((result.stdout + result.stderr).splitlines()[-80:])
        if result.returncode != 0:
            _fail(job, (result.stderr.strip().splitlines() or ["the scoring script failed"])[-1])
            return
        job.output_path = f"azureml/{job.child}/{BATCH_OUTPUT}/"
        blobs.upload_file(output, job.output_path + output_name)
        with output.open(newline="") as handle:
            job.rows = max(0, sum(1 for _ in csv.reader(handle)) - 1)
        job.outcome = "Completed"


def _asset_folder(emu: Any, blobs: Any, reference: dict[str, Any], uri_key: str, dest: Path) -> Path:
    asset_id = str(reference.get("assetId") or "")
    body = _resource(emu, asset_id) if asset_id else None
    uri = ((body or {}).get("properties") or {}).get(uri_key)
    if not uri:
        raise LookupError(f"{asset_id or 'an asset'} of the deployment is not registered in this workspace")
    files = blobs.download_uri(str(uri), dest)
    if not files:
        raise LookupError(f"{asset_id} points at {uri}, which holds no files")
    return dest


# answers -----------------------------------------------------------------------------------
def invoke_answer(emu: Any, job: BatchJobRecord) -> dict[str, Any]:
    """What the scoring host answers an invoke: the batch job resource (v2020-09-01-dataplanepreview
    ``BatchJobResource``, parsed by ``BatchJob._from_rest_object``)."""
    ws = emu.workspace
    return {"id": f"{ws.arm_id}/batchEndpoints/{job.endpoint}/deployments/{job.deployment}/jobs/{job.name}",
            "name": job.name, "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints/jobs",
            "properties": {"status": status(emu, job), "inputData": {}, "outputFileName":
                           job.deployment_props.get("outputFileName"), "interactionEndpoints": {},
                           "tags": tags(job), "properties": parent_properties(job)}}


def tags(job: BatchJobRecord) -> dict[str, str]:
    return {"azureml.batchrun": "true", "azureml.deploymentname": job.deployment,
            "azureml.jobtype": "azureml.pipelinejob"}


def parent_properties(job: BatchJobRecord) -> dict[str, str]:
    return {"azureml.deploymentname": job.deployment, "azureml.endpointname": job.endpoint,
            "azureml.runLineageType": "batchDeployment", "azureml.runsource": "azureml.PipelineRun",
            "runSource": "BatchDeployment", "runType": "HTTP", "azureml.defaultDataStoreName": "workspaceblobstore"}


def arm_job(emu: Any, job: BatchJobRecord) -> dict[str, Any]:
    """``GET {WS}/jobs/{name}`` of the parent: a pipeline job tagged as a batch run."""
    ws = emu.workspace
    current = status(emu, job)
    return {"id": f"{ws.arm_id}/jobs/{job.name}", "name": job.name,
            "type": "Microsoft.MachineLearningServices/workspaces/jobs",
            "properties": {"jobType": "Pipeline", "status": current, "experimentName": job.experiment,
                           "displayName": job.name, "isArchived": False, "jobs": {}, "inputs": {}, "outputs": {},
                           "settings": {},
                           "tags": tags(job),
                           "properties": {**parent_properties(job),
                                          **({"azureml.error": job.error} if current == "Failed" else {})}},
            "systemData": {"createdAt": emu.clock.iso(job.submitted)}}


def child_run(emu: Any, job: BatchJobRecord) -> dict[str, Any]:
    """The child step as run history lists it (``runs/{parent}/children``)."""
    current = status(emu, job)
    run: dict[str, Any] = {"runId": job.child, "rootRunId": job.name, "parentRunId": job.name,
                           "experimentId": str(uuid.uuid5(uuid.NAMESPACE_URL, job.experiment)),
                           "status": current, "runType": "azureml.StepRun", "name": CHILD_NAME,
                           "displayName": CHILD_NAME, "properties": {}, "tags": {}}
    if current == "Failed":
        run["error"] = {"error": {"code": "UserError", "message": job.error}}
    return run


def run_metadata(emu: Any, job: BatchJobRecord, run_id: str) -> dict[str, Any]:
    """``rundata``'s ``runMetadata``: the child holds the ``score`` output (a data asset id the
    dataset data plane resolves to a datastore path); the parent holds none."""
    meta: dict[str, Any] = {"runId": run_id, "status": status(emu, job), "outputs": {}}
    if run_id == job.child and job.output_path:
        meta["outputs"] = {BATCH_OUTPUT: {"assetId": output_asset_id(emu, job), "type": "UriFolder"}}
    return meta


def output_asset_id(emu: Any, job: BatchJobRecord) -> str:
    return f"azureml://locations/{emu.workspace.location}/workspaces/{emu.workspace.workspace_id}/data/" \
           f"azureml_{job.child}_output_data_{BATCH_OUTPUT}/versions/1"


def resolve_output(emu: Any, asset_id: str) -> dict[str, str] | None:
    for job in _jobs(emu).values():
        if job.output_path and output_asset_id(emu, job) == asset_id:
            ws = emu.workspace
            return {"uri": f"azureml://subscriptions/{ws.subscription_id}/resourcegroups/{ws.resource_group}/"
                           f"workspaces/{ws.name}/datastores/workspaceblobstore/paths/{job.output_path}",
                    "type": "UriFolder"}
    return None


def read_csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))
