"""Registering the best trial of an AutoML job (``AzureWorkspace.register_model_from_job``)."""

from __future__ import annotations

import json

import pytest
from azure.ai.ml.automl import ForecastingPrimaryMetrics

from mlops.errors import NotFoundError, UsageError
from tests.azure.fake_mlclient import FakeAzure, FakeMLClient, Rig


def trial_files(label: str) -> dict[str, bytes]:
    return {
        "outputs/model.pt": f"tcn weights {label}".encode(),
        "outputs/conda_env_v_1_0_0.yml": b"name: project_environment\ndependencies:\n  - python=3.9\n",
        "outputs/scoring_file_v_1_0_0.py": b"# old scoring file\n",
        "outputs/scoring_file_v_2_0_0.py": b"def init():\n    pass\n",
        "outputs/mlflow-model/MLmodel": b"flavors: {}\n",
        "logs/azureml/stdout.txt": b"training...\n",
    }


def seed_automl_job(azure: FakeAzure, *, child_scores: bool = True, parent_scores: bool = True,
                    best_tag: str | None = None, metric: str = "NormalizedRootMeanSquaredError",
                    scores: tuple[str, ...] = ("0.09", "0.12", "0.07"), status: str = "Completed") -> None:
    """An AutoML forecasting job as the job service reports it: the parent with its primary metric
    (the REST value: the fake hands it back as the SDK's enum), settings and summary tags; a setup
    run; three trials with AutoML's properties (``score``, ``goal``, ``run_algorithm``), one that the
    SDK cannot parse (``None`` in ``jobs.list``) and a failed one."""
    snake = {"NormalizedRootMeanSquaredError": "normalized_root_mean_squared_error", "R2Score": "r2_score"}[metric]
    goal = "max" if snake == "r2_score" else "min"
    tags = {"automl_best_child_run_id": best_tag} if best_tag else {}
    if parent_scores:
        tags.update({"iteration_000": ";".join(str(i) for i in range(len(scores))), "score_000": ";".join(scores)})
    settings = json.dumps({"primary_metric": snake, "task_type": "forecasting"})
    azure.add_job("automl-parent", primary_metric=metric, status=status,
                  properties={"primary_metric": snake, "AMLSettingsJsonString": settings}, tags=tags)
    azure.add_job("automl-parent_setup", parent="automl-parent")
    for iteration, score in enumerate(scores):
        properties = ({"score": score, "goal": f"{snake}_{goal}", "primary_metric": snake,
                       "run_algorithm": "TCNForecaster", "runTemplate": "automl_child"} if child_scores else {})
        azure.add_job(f"automl-parent_{iteration}", parent="automl-parent", properties=properties,
                      files=trial_files(str(iteration)))
    azure.add_job("automl-parent_unparsable", parent="automl-parent", unparsable=True)
    azure.add_job(f"automl-parent_{len(scores)}", parent="automl-parent", status="Failed", properties={"score": "0.01"})


def test_primary_metric_comes_back_as_the_sdk_enum() -> None:
    azure = FakeAzure()
    seed_automl_job(azure, metric="R2Score")
    metric = FakeMLClient(azure).jobs.get("automl-parent").primary_metric
    assert metric is ForecastingPrimaryMetrics.R2_SCORE
    assert str(metric) == "ForecastingPrimaryMetrics.R2_SCORE"
    assert None in FakeMLClient(azure).jobs.list(parent_job_name="automl-parent")


def test_registers_the_best_trial_by_primary_metric(rig: Rig) -> None:
    seed_automl_job(rig.azure)
    messages: list[str] = []
    model = rig.workspace.register_model_from_job("tcn-automl", "automl-parent", progress=messages.append)
    assert (model.name, model.version) == ("tcn-automl", "1")
    assert model.tags["mlops.automl_child_job"] == "automl-parent_2"
    assert model.tags["mlops.automl_primary_metric"] == "normalized_root_mean_squared_error"
    assert model.tags["mlops.automl_score"] == "0.07"
    assert any("best trial automl-parent_2" in m for m in messages)
    assert any(m.startswith("warning:") and "could not parse" in m for m in messages)
    (download,) = rig.azure.calls_to("jobs", "download")
    assert download.args == ("automl-parent_2",)
    (create,) = rig.azure.calls_to("models", "create_or_update")
    assert create.body["properties"]["modelType"] == "custom_model"
    assert create.body["properties"]["tags"]["mlops.automl_parent_job"] == "automl-parent"


@pytest.mark.parametrize(("metric", "scores", "best"), [
    ("R2Score", ("0.71", "0.93", "0.42"), "automl-parent_1"),  # maximised, though the enum's str() is odd
    ("NormalizedRootMeanSquaredError", ("0.71", "0.93", "0.42"), "automl-parent_2"),
])
def test_the_metric_direction_comes_from_the_enum(rig: Rig, metric: str, scores: tuple, best: str) -> None:
    seed_automl_job(rig.azure, metric=metric, scores=scores, parent_scores=False)
    assert rig.workspace.register_model_from_job("tcn", "automl-parent").tags["mlops.automl_child_job"] == best


def test_automl_best_child_run_id_wins_over_the_scores(rig: Rig) -> None:
    seed_automl_job(rig.azure, best_tag="automl-parent_0")
    model = rig.workspace.register_model_from_job("tcn-automl", "automl-parent")
    assert model.tags["mlops.automl_child_job"] == "automl-parent_0"
    assert model.tags["mlops.automl_score"] == "0.09"


@pytest.mark.parametrize(("status", "message"), [("Running", "is Running, not Completed"),
                                                 ("Failed", "is Failed, not Completed")])
def test_an_unfinished_job_is_refused(rig: Rig, status: str, message: str) -> None:
    seed_automl_job(rig.azure, status=status)
    with pytest.raises(UsageError, match=message):
        rig.workspace.register_model_from_job("tcn", "automl-parent")
    assert not rig.azure.calls_to("jobs", "download")


def test_no_trial_with_a_model(rig: Rig) -> None:
    seed_automl_job(rig.azure, child_scores=False, parent_scores=False)
    with pytest.raises(NotFoundError, match="no trial with a model"):
        rig.workspace.register_model_from_job("tcn", "automl-parent")


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


def test_not_an_automl_job_and_missing_job(rig: Rig) -> None:
    rig.azure.add_job("plain-command-job", properties={})
    with pytest.raises(UsageError, match="not an AutoML job"):
        rig.workspace.register_model_from_job("tcn", "plain-command-job")
    with pytest.raises(NotFoundError, match="get AutoML job nope"):
        rig.workspace.register_model_from_job("tcn", "nope")
