"""AutoML-shaped jobs of the local workspace: planted trials, the best as AutoML decides it, registration.

The trials here are planted (a trial runner that writes AutoML's outputs and returns chosen
metrics), so the decisions are tested without training; ``tests/forecasting/test_sweep.py`` trains
real ones and ``tests/release/test_release_automl_local.py`` releases them.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import pytest

from mlops.errors import ConflictError, NotFoundError, UsageError
from mlops.workspace.local import LocalWorkspace
from mlops.workspace.local.registry import automl_jobs
from mlops.workspace.local.registry.automl_jobs import SweepSettings, run_sweep

METRICS = ("normalized_root_mean_squared_error", "normalized_mean_absolute_error", "r2_score",
           "spearman_correlation")


def planted(values: list[Mapping[str, float] | Exception]):
    """A trial runner: trial i writes AutoML's three output files and reports ``values[i]``."""

    def run(iteration: int, trial_dir: Path, _progress) -> Mapping[str, float]:  # noqa: ANN001
        value = values[iteration]
        if isinstance(value, Exception):
            raise value
        outputs = trial_dir / "outputs"
        outputs.mkdir(parents=True, exist_ok=True)
        (outputs / "model.pt").write_bytes(pickle.dumps({"trial": iteration}))
        (outputs / "conda_env_v_1_0_0.yml").write_text("name: project_environment\ndependencies:\n- python=3.11\n")
        (outputs / "scoring_file_v_2_0_0.py").write_text("def init():\n    pass\n")
        (outputs / "scoring_file_v_1_0_0.py").write_text("# older\n")
        return {metric: value.get(metric, 0.5) for metric in METRICS}

    return run


def sweep(ws: LocalWorkspace, name: str, metric: str, values: list) -> object:
    settings = SweepSettings(trials=len(values), primary_metric=metric, horizon=14, source="planted")
    return run_sweep(ws.store, ws.automl_dir, name, settings, planted(values))


@pytest.fixture
def ws(tmp_path: Path) -> LocalWorkspace:
    return LocalWorkspace(tmp_path / "ws", venv_cache=tmp_path / "venvs")


@pytest.mark.parametrize(
    ("metric", "scores", "best"),
    [
        # minimised: the lowest error wins, wherever it was planted
        ("normalized_root_mean_squared_error", [0.30, 0.25, 0.12, 0.40], "job_2"),
        ("normalized_mean_absolute_error", [0.05, 0.25, 0.12], "job_0"),
        # maximised: the highest score wins (the worst trial would win with the wrong direction)
        ("r2_score", [0.61, 0.93, 0.42, 0.70], "job_1"),
        ("spearman_correlation", [0.10, 0.20, 0.30, 0.95], "job_3"),
    ],
)
def test_the_planted_best_trial_wins_and_is_registered(ws: LocalWorkspace, metric: str, scores: list[float],
                                                       best: str) -> None:
    job = sweep(ws, "job", metric, [{metric: s} for s in scores])
    assert (job.status, job.best_child) == ("Completed", best)
    assert job.tags["automl_best_child_run_id"] == best
    assert [t.score for t in job.trials] == scores
    trial = next(t for t in job.trials if t.name == best)
    assert trial.properties["goal"] == f"{metric}_{'max' if metric in ('r2_score', 'spearman_correlation') else 'min'}"
    assert trial.properties["runTemplate"] == "automl_child" and trial.algorithm == "TCNForecaster"

    messages: list[str] = []
    model = ws.register_model_from_job("tcn-dau", "job", progress=messages.append)
    assert model.tags["mlops.automl_child_job"] == best
    assert model.tags["mlops.automl_parent_job"] == "job"
    assert float(model.tags["mlops.automl_score"]) == scores[int(best.rsplit("_", 1)[1])]
    folder = Path(model.path)
    assert sorted(p.name for p in folder.iterdir()) == ["conda_env_v_1_0_0.yml", "model.pt", "scoring_file_v_2_0_0.py"]
    assert pickle.loads((folder / "model.pt").read_bytes()) == {"trial": int(best.rsplit("_", 1)[1])}
    assert any("AutoML's choice" in m for m in messages)


def test_the_same_job_registers_once(ws: LocalWorkspace) -> None:
    sweep(ws, "job", "r2_score", [{"r2_score": 0.5}, {"r2_score": 0.6}])
    first = ws.register_model_from_job("tcn-dau", "job")
    second = ws.register_model_from_job("tcn-dau", "job")
    assert first.version == second.version == "1"
    assert len(ws.list_models("tcn-dau")) == 1


def test_a_failed_trial_is_recorded_and_the_sweep_goes_on(ws: LocalWorkspace) -> None:
    job = sweep(ws, "job", "normalized_root_mean_squared_error",
                [RuntimeError("out of memory"), {"normalized_root_mean_squared_error": 0.2}])
    assert job.status == "Completed" and job.best_child == "job_1"
    assert [t.status for t in job.trials] == ["Failed", "Completed"]


def test_a_sweep_without_a_completed_trial_fails_and_gives_no_model(ws: LocalWorkspace) -> None:
    job = sweep(ws, "job", "r2_score", [RuntimeError("boom"), RuntimeError("boom again")])
    assert job.status == "Failed" and job.best_child is None
    with pytest.raises(UsageError, match="'job' is Failed, not Completed"):
        ws.register_model_from_job("tcn-dau", "job")


def test_unknown_duplicate_and_badly_named_jobs(ws: LocalWorkspace) -> None:
    with pytest.raises(NotFoundError, match="get AutoML job nope: no such job in this workspace"):
        ws.register_model_from_job("tcn-dau", "nope")
    with pytest.raises(NotFoundError, match="mlops jobs list"):
        ws.get_training_job("nope")
    sweep(ws, "job", "r2_score", [{"r2_score": 0.5}])
    with pytest.raises(ConflictError, match="already exists"):
        sweep(ws, "job", "r2_score", [{"r2_score": 0.5}])
    with pytest.raises(UsageError, match="job name 'bad name'"):
        sweep(ws, "bad name", "r2_score", [{"r2_score": 0.5}])
    with pytest.raises(NotFoundError):  # a trial is not a job of its own to release
        ws.register_model_from_job("tcn-dau", "job_0")


def test_a_sweep_whose_process_died_is_failed_not_running(ws: LocalWorkspace) -> None:
    sweep(ws, "job", "r2_score", [{"r2_score": 0.5}])
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    with ws.store.transaction() as conn:
        conn.execute("UPDATE training_jobs SET status = 'Running', pid = ? WHERE name = 'job'", (dead,))
    job = ws.get_training_job("job")
    assert job.status == "Failed" and "died" in job.error
    with pytest.raises(UsageError, match="not Completed"):
        ws.register_model_from_job("tcn-dau", "job")


def test_list_and_show_documents(ws: LocalWorkspace) -> None:
    sweep(ws, "first", "normalized_root_mean_squared_error", [{"normalized_root_mean_squared_error": 0.3}])
    sweep(ws, "second", "r2_score", [{"r2_score": 0.4}, {"r2_score": 0.8}])
    assert [j.name for j in ws.list_training_jobs()] == ["second", "first"]
    document = ws.get_training_job("second").to_dict()
    assert document["best_child"] == "second_1" and document["goal"] == "maximize"
    assert [(t["name"], t["primary_metric_value"], t["best"]) for t in document["trials"]] == [
        ("second_0", 0.4, False), ("second_1", 0.8, True)]
    assert automl_jobs.get_job(ws.store, "first").primary_metric == "normalized_root_mean_squared_error"
