"""``train.yml``: submit the AutoML job, wait for it, start the release with ``job:NAME``."""

from __future__ import annotations

import re

from tests.workflows.workflow_files import all_workflows

TRAIN = all_workflows()["train.yml"]
RELEASE = all_workflows()["release.yml"]


def test_triggers_are_dispatch_and_a_schedule() -> None:
    on = TRAIN["on"]
    assert set(on) == {"workflow_dispatch", "schedule"}
    assert on["schedule"] and all(re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", entry["cron"]) for entry in on["schedule"])
    assert set(on["workflow_dispatch"]["inputs"]) == {"trials", "release"}


def test_the_train_job_submits_the_spec_and_waits_after_logging_in() -> None:
    steps = TRAIN["jobs"]["train"]["steps"]
    uses = [str(s.get("uses", "")).split("@")[0] for s in steps]
    login, submit = uses.index("azure/login"), next(i for i, s in enumerate(steps) if s.get("id") == "submit")
    assert login < submit
    command = steps[submit]["run"]
    assert command.startswith("exec mlops jobs submit jobs/automl-tcn-forecasting.yml --wait")
    assert TRAIN["jobs"]["train"]["outputs"]["job_name"] == "${{ steps.submit.outputs.job_name }}"
    assert TRAIN["jobs"]["train"]["permissions"] == {"contents": "read", "id-token": "write"}


def test_the_release_job_starts_release_yml_with_the_jobs_best_trial() -> None:
    job = TRAIN["jobs"]["release"]
    assert job["needs"] == "train"
    assert "inputs.release" in job["if"] and "schedule" in job["if"]
    (step,) = job["steps"]
    assert step["run"] == 'gh workflow run release.yml --ref main -f model_source="job:$JOB_NAME"'
    assert step["env"]["JOB_NAME"] == "${{ needs.train.outputs.job_name }}"
    assert job["permissions"] == {"actions": "write"}
    assert "model_source" in RELEASE["on"]["workflow_dispatch"]["inputs"], "release.yml takes the model source"


def test_one_training_at_a_time() -> None:
    assert TRAIN["concurrency"] == {"group": "train-tcn-dau", "cancel-in-progress": False}
