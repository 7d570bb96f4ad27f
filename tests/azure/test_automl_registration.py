"""Registering the best trial of an AutoML job (``AzureWorkspace.register_model_from_job``)."""

from __future__ import annotations

import json

import pytest

from mlops.errors import NotFoundError, UsageError
from tests.azure.fake_mlclient import FakeAzure, Rig

SETTINGS = json.dumps({"primary_metric": "normalized_root_mean_squared_error", "metric_operation": "minimize",
                       "task_type": "forecasting"})


def trial_files(label: str) -> dict[str, bytes]:
    return {
        "outputs/model.pt": f"tcn weights {label}".encode(),
        "outputs/conda_env_v_1_0_0.yml": b"name: project_environment\ndependencies:\n  - python=3.9\n",
        "outputs/scoring_file_v_1_0_0.py": b"# old scoring file\n",
        "outputs/scoring_file_v_2_0_0.py": b"def init():\n    pass\n",
        "outputs/mlflow-model/MLmodel": b"flavors: {}\n",
        "logs/azureml/stdout.txt": b"training...\n",
    }


def seed_automl_job(azure: FakeAzure, *, child_scores: bool = True, parent_scores: bool = True) -> None:
    """An AutoML forecasting job as the job service reports it: the parent with its primary metric,
    settings and summary tags; a setup run; three trials (``_2`` best by NRMSE) and a failed one."""
    tags = {"automl_best_child_run_id": "automl-parent_0"}
    if parent_scores:
        tags.update({"iteration_000": "0;1;2", "score_000": "0.09;0.12;0.07"})
    azure.add_job("automl-parent", primary_metric="normalized_root_mean_squared_error",
                  properties={"primary_metric": "normalized_root_mean_squared_error", "AMLSettingsJsonString": SETTINGS},
                  tags=tags)
    azure.add_job("automl-parent_setup", parent="automl-parent")
    for iteration, score in ((0, "0.09"), (1, "0.12"), (2, "0.07")):
        properties = {"score": score, "run_algorithm": "TCNForecaster"} if child_scores else {}
        azure.add_job(f"automl-parent_{iteration}", parent="automl-parent", properties=properties,
                      files=trial_files(str(iteration)))
    azure.add_job("automl-parent_3", parent="automl-parent", status="Failed", properties={"score": "0.01"})


def test_registers_the_best_trial_by_primary_metric(rig: Rig) -> None:
    seed_automl_job(rig.azure)
    messages: list[str] = []
    model = rig.workspace.register_model_from_job("tcn-automl", "automl-parent", progress=messages.append)
    assert (model.name, model.version) == ("tcn-automl", "1")
    assert model.tags["mlops.automl_child_job"] == "automl-parent_2"
    assert model.tags["mlops.automl_primary_metric"] == "normalized_root_mean_squared_error"
    assert model.tags["mlops.automl_score"] == "0.07"
    assert any("best trial automl-parent_2" in m for m in messages)
    (download,) = rig.azure.calls_to("jobs", "download")
    assert download.args == ("automl-parent_2",)
    (create,) = rig.azure.calls_to("models", "create_or_update")
    assert create.body["properties"]["modelType"] == "custom_model"
    assert create.body["properties"]["tags"]["mlops.automl_parent_job"] == "automl-parent"


def test_registered_folder_holds_model_conda_and_newest_scoring_file(rig: Rig, monkeypatch) -> None:
    seed_automl_job(rig.azure)
    seen: dict[str, bytes] = {}
    original = rig.workspace.register_model

    def capture(name, path, **kwargs):  # noqa: ANN001
        seen.update({p.name: p.read_bytes() for p in path.iterdir()})
        return original(name, path, **kwargs)

    monkeypatch.setattr(rig.workspace, "register_model", capture)
    rig.workspace.register_model_from_job("tcn-automl", "automl-parent")
    assert seen == {"model.pt": b"tcn weights 2", "conda_env_v_1_0_0.yml": trial_files("2")["outputs/conda_env_v_1_0_0.yml"],
                    "scoring_file_v_2_0_0.py": b"def init():\n    pass\n"}


def test_same_job_twice_registers_once(rig: Rig) -> None:
    seed_automl_job(rig.azure)
    first = rig.workspace.register_model_from_job("tcn-automl", "automl-parent")
    second = rig.workspace.register_model_from_job("tcn-automl", "automl-parent")
    assert first.version == second.version == "1"
    assert len(rig.azure.calls_to("models", "create_or_update")) == 1


def test_scores_from_parent_tags_when_trials_carry_none(rig: Rig) -> None:
    seed_automl_job(rig.azure, child_scores=False)
    model = rig.workspace.register_model_from_job("tcn-automl", "automl-parent")
    assert model.tags["mlops.automl_child_job"] == "automl-parent_2"


def test_falls_back_to_automl_best_child_tag_without_any_score(rig: Rig) -> None:
    seed_automl_job(rig.azure, child_scores=False, parent_scores=False)
    model = rig.workspace.register_model_from_job("tcn-automl", "automl-parent")
    assert model.tags["mlops.automl_child_job"] == "automl-parent_0"
    assert model.tags["mlops.automl_score"] == ""


def test_not_an_automl_job_and_missing_job(rig: Rig) -> None:
    rig.azure.add_job("plain-command-job", properties={})
    with pytest.raises(UsageError, match="not an AutoML job"):
        rig.workspace.register_model_from_job("tcn", "plain-command-job")
    with pytest.raises(NotFoundError, match="get AutoML job nope"):
        rig.workspace.register_model_from_job("tcn", "nope")
