"""AutoML forecasting jobs: a parent with child trials, as the SDK reads them back.

``seed`` puts a finished AutoML job in the emulator (what a submitted job looks like after AutoML
ran it): the parent's ARM body is the recorded one (``automl_forecasting.jsonl``: ``jobType: AutoML``,
``taskDetails.taskType: Forecasting``, ``primaryMetric: NormalizedRootMeanSquaredError`` - the REST
spelling, which the SDK maps to ``ForecastingPrimaryMetrics.NORMALIZED_ROOT_MEAN_SQUARED_ERROR``)
with ``status: Completed`` and AutoML's decision in its tags (``automl_best_child_run_id``, the
rules of ``mlops.workspace.automl``). The trials are run-history runs (``runs/{parent}/children``)
with AutoML's trial properties (``runTemplate: automl_child``, ``score``, ``primary_metric``,
``goal``, ``run_algorithm``, ``model_output_path``...); one child is AutoML's ``{parent}_setup`` run
(no score), one trial ``Failed``.

A trial's files are its default artifacts: ``ExperimentRun/dcid.{trial}/outputs/...`` in the
``workspaceartifactstore`` datastore (container ``azureml``) - where ``jobs.download(trial)`` looks
(``JobOperations._get_named_output_uri``'s fallback for ``default``). A trial answers ARM's
``jobs/{name}`` with ``properties: null`` (azure-ai-ml's "child job" shape), so the SDK reads it
from run history (``runs/{name}``), as for a pipeline's step.

Not modelled: a child whose REST object does not *parse* (``_translate_from_rest_object`` -> None).
``_BaseJob._load_from_rest`` only reads attributes msrest always sets, so no run-history ``Run``
body makes it raise; a body msrest cannot deserialize fails the whole children list instead.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARTIFACT_CONTAINER = "azureml"
RECORDING = Path(__file__).resolve().parents[3] / "shared" / "azure-recordings" / "automl_forecasting.jsonl"


@dataclass
class Trial:
    name: str
    score: float | None
    status: str = "Completed"
    algorithm: str = "TCNForecaster"
    files: dict[str, bytes] = field(default_factory=dict)
    """``outputs/model.pt`` etc.: written to the artifact store by ``seed``."""


@dataclass
class AutoMLJob:
    name: str
    best: str | None
    trials: list[Trial]
    metric_rest: str = "NormalizedRootMeanSquaredError"
    status: str = "Completed"


def _jobs(emu: Any) -> dict[str, AutoMLJob]:
    return emu.store("automl_jobs")


def _recorded_parent() -> dict[str, Any]:
    """The recorded AutoML job PUT answer; a minimal equivalent where the recordings are not beside
    the checkout."""
    if RECORDING.is_file():
        for line in RECORDING.read_text().splitlines():
            exchange = json.loads(line)
            if exchange["method"] == "PUT" and "/jobs/" in exchange["path"]:
                return exchange["response_body"]
    return {"properties": {"jobType": "AutoML", "experimentName": "automl", "properties": {}, "tags": {},
                           "outputs": {}, "services": {}, "resources": {"instanceCount": 1, "shmSize": "2g"},
                           "taskDetails": {"taskType": "Forecasting", "targetColumnName": "count",
                                           "primaryMetric": "NormalizedRootMeanSquaredError",
                                           "forecastingSettings": {"timeColumnName": "date",
                                                                   "forecastHorizon": {"mode": "Custom",
                                                                                       "value": 14}},
                                           "trainingData": {"jobInputType": "mltable",
                                                            "uri": "azureml://datastores/workspaceblobstore/"
                                                                   "paths/train"}}}}


def seed(emu: Any, job: AutoMLJob) -> None:
    """A finished AutoML job with its trials' files uploaded (Azurite must be attached)."""
    from tests.azure_emulator import storage

    blobs = storage.for_emulator(emu)
    if blobs is None:
        raise RuntimeError("seed an AutoML job after use_azurite(): its trials' files live in blob storage")
    store = storage.BlobStore(blobs.account_url, blobs.account_name, blobs.account_key, ARTIFACT_CONTAINER)
    client = store._client()
    if not client.exists():
        client.create_container()
    for trial in job.trials:
        for relative, data in trial.files.items():
            client.upload_blob(f"ExperimentRun/dcid.{trial.name}/{relative}", data, overwrite=True)
    _jobs(emu)[job.name] = job


def _find(emu: Any, name: str) -> tuple[AutoMLJob, Trial | None] | None:
    for job in _jobs(emu).values():
        if job.name == name:
            return job, None
        for trial in job.trials:
            if trial.name == name:
                return job, trial
    return None


def arm_job(emu: Any, name: str) -> dict[str, Any] | None:
    found = _find(emu, name)
    if found is None:
        return None
    job, trial = found
    ws = emu.workspace
    if trial is not None:
        return {"id": f"{ws.arm_id}/jobs/{name}", "name": name, "properties": None,
                "type": "Microsoft.MachineLearningServices/workspaces/jobs"}
    body = copy.deepcopy(_recorded_parent())
    body.update({"id": f"{ws.arm_id}/jobs/{name}", "name": name,
                 "type": "Microsoft.MachineLearningServices/workspaces/jobs"})
    props = body["properties"]
    props.update({"displayName": name, "status": job.status,
                  "computeId": f"{ws.arm_id}/computes/cpu-cluster"})
    props["taskDetails"]["primaryMetric"] = job.metric_rest
    tags = {"model_explain_run": "best_run"}
    if job.best:
        tags["automl_best_child_run_id"] = job.best
    props["tags"] = tags
    props["properties"] = {"runTemplate": "AutoML", "num_iterations": str(len(job.trials)),
                           "primary_metric": _snake(job.metric_rest)}
    return body


def _snake(rest: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in rest).lstrip("_")


def _run(emu: Any, job: AutoMLJob, trial: Trial, iteration: int) -> dict[str, Any]:
    metric = _snake(job.metric_rest)
    props: dict[str, str] = {"runTemplate": "automl_child", "iteration": str(iteration),
                             "run_algorithm": trial.algorithm, "primary_metric": metric,
                             "goal": f"{metric}_min", "model_output_path": "outputs/model.pt",
                             "conda_env_data_location": "outputs/conda_env_v_1_0_0.yml",
                             "scoring_data_location_v2": "outputs/scoring_file_v_2_0_0.py"}
    if trial.score is not None:
        props["score"] = repr(trial.score)
    return {"runId": trial.name, "rootRunId": job.name, "parentRunId": job.name, "status": trial.status,
            "runType": "azureml.scriptrun", "displayName": trial.name, "name": trial.name,
            "experimentId": job.name, "properties": props, "tags": {}, "createdUtc": emu.clock.iso()}


def _setup_run(job: AutoMLJob) -> dict[str, Any]:
    return {"runId": f"{job.name}_setup", "rootRunId": job.name, "parentRunId": job.name, "status": "Completed",
            "runType": "azureml.scriptrun", "displayName": "setup", "properties": {"runTemplate": "automl_child"},
            "tags": {}}


def children(emu: Any, name: str) -> list[dict[str, Any]] | None:
    job = _jobs(emu).get(name)
    if job is None:
        return None
    return [_setup_run(job)] + [_run(emu, job, t, i) for i, t in enumerate(job.trials)]


def run(emu: Any, run_id: str) -> dict[str, Any] | None:
    found = _find(emu, run_id)
    if found is None or found[1] is None:
        return None
    job, trial = found
    return _run(emu, job, trial, job.trials.index(trial))


def run_metadata(emu: Any, run_id: str) -> dict[str, Any] | None:
    """A trial's ``rundata``: no named outputs (its files are the default artifacts)."""
    found = _find(emu, run_id)
    if found is None:
        return None
    job, trial = found
    return {"runId": run_id, "status": trial.status if trial else job.status, "outputs": {}}


def resolve_output(emu: Any, asset_id: str) -> dict[str, str] | None:
    return None
