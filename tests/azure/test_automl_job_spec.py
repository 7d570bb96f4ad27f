"""``jobs/automl-tcn-forecasting.yml``: loads with azure-ai-ml's ``load_job``, survives the SDK's REST
serialization, agrees with what the local sweep reads, and is submitted and followed by ``mlops jobs``."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.ai.ml import load_job
from azure.ai.ml.automl import ForecastingModels, ForecastingPrimaryMetrics
from azure.ai.ml.entities import Job

from mlops.cli.jobs import follow
from mlops.errors import ConfigError, UsageError, WorkspaceError
from mlops.specs.automl_job import load_automl_job_spec
from mlops.workspace.port import AutoMLJobRequest
from tests.azure.fake_mlclient import Rig
from tests.conftest import REPO

SPEC = REPO / "jobs" / "automl-tcn-forecasting.yml"


def test_the_spec_loads_with_load_job_and_goes_through_the_rest_serialization() -> None:
    job = load_job(str(SPEC))
    assert type(job).__name__ == "ForecastingJob"
    assert job.primary_metric is ForecastingPrimaryMetrics.NORMALIZED_ROOT_MEAN_SQUARED_ERROR
    assert job.training.allowed_training_algorithms == [ForecastingModels.TCN_FORECASTER]
    assert job.training.enable_dnn_training is True
    settings = job.forecasting_settings
    assert (settings.time_column_name, settings.forecast_horizon, job.target_column_name) == ("date", 14, "count")
    assert job.compute == "cpu-cluster" and job.training_data.type == "mltable"

    rest = job._to_rest_object()  # the body azure-ai-ml sends to the job service
    details = rest.properties.task_details
    assert details.task_type == "Forecasting"
    assert details.primary_metric == ForecastingPrimaryMetrics.NORMALIZED_ROOT_MEAN_SQUARED_ERROR
    assert details.forecasting_settings.forecast_horizon.value == 14
    assert details.training_settings.enable_dnn_training is True
    again = Job._from_rest_object(rest)  # and back, as jobs.get returns it
    assert again.primary_metric is ForecastingPrimaryMetrics.NORMALIZED_ROOT_MEAN_SQUARED_ERROR
    assert again.limits.max_trials == job.limits.max_trials


def test_the_local_sweep_reads_the_same_settings_as_the_sdk() -> None:
    ours, sdk = load_automl_job_spec(SPEC), load_job(str(SPEC))
    assert ours.primary_metric == "normalized_root_mean_squared_error"
    assert ours.horizon == sdk.forecasting_settings.forecast_horizon
    assert ours.time_column == sdk.forecasting_settings.time_column_name
    assert ours.target_column == sdk.target_column_name
    assert ours.max_trials == sdk.limits.max_trials
    assert ours.compute == sdk.compute
    assert ours.allowed_algorithms == tuple(str(a.value) for a in sdk.training.allowed_training_algorithms)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("task: forecasting", "task: regression"), "task"),
        (("primary_metric: normalized_root_mean_squared_error", "primary_metric: accuracy"), "primary_metric"),
        (("  enable_dnn_training: true", "  enable_dnn_training: false"), "training"),
        (("    - TCNForecaster", "    - Prophet"), "training"),
    ],
)
def test_a_spec_the_tcn_cannot_use_is_refused(tmp_path: Path, change: tuple[str, str], key: str) -> None:
    path = tmp_path / "spec.yml"
    path.write_text(SPEC.read_text().replace(*change))
    with pytest.raises(ConfigError, match=f"spec.yml: {key}"):
        load_automl_job_spec(path)


def test_submitting_on_azure_sends_the_sdk_body_and_returns_the_named_job(rig: Rig) -> None:
    messages: list[str] = []
    job = rig.workspace.submit_automl_job(AutoMLJobRequest(SPEC, name="dau-sweep-7", trials=2),
                                          progress=messages.append)
    assert (job.name, job.status, job.primary_metric) == ("dau-sweep-7", "Queued", "normalized_root_mean_squared_error")
    (call,) = rig.azure.calls_to("jobs", "create_or_update")
    body = call.body["properties"]
    assert body["jobType"] == "AutoML" and body["taskDetails"]["taskType"] == "Forecasting"
    assert body["taskDetails"]["limitSettings"]["maxTrials"] == 2
    assert body["taskDetails"]["trainingSettings"]["allowedTrainingAlgorithms"] == ["TCNForecaster"]
    assert any("dau-sweep-7 submitted" in m for m in messages)
    with pytest.raises(UsageError, match="--data is for the local workspace"):
        rig.workspace.submit_automl_job(AutoMLJobRequest(SPEC, data="synthetic"))


def test_follow_reports_each_change_and_stops_when_the_job_ends(rig: Rig, capsys: pytest.CaptureFixture) -> None:
    rig.azure.add_job("sweep", status="Running", primary_metric="NormalizedRootMeanSquaredError")
    states = iter(["Running", "Running", "Completed"])

    def sleep(_seconds: float) -> None:
        rig.azure.jobs["sweep"].status = next(states)

    job = follow(rig.workspace, rig.workspace.get_training_job("sweep"), timeout_s=3600, poll_s=30, sleep=sleep,
                 clock=lambda: 0.0)
    assert job.status == "Completed"
    err = capsys.readouterr().err
    assert err.count("job sweep: Running") == 1 and "job sweep: Completed" in err
    rig.azure.add_job("stuck", status="Running", primary_metric="R2Score")
    ticks = iter([0.0, 10.0, 20.0])
    with pytest.raises(WorkspaceError, match="still Running after 5s"):
        follow(rig.workspace, rig.workspace.get_training_job("stuck"), timeout_s=5, sleep=lambda _s: None,
               clock=lambda: next(ticks))
