"""The seed's journey on the local workspace, as a new user runs it from a fresh clone:

``mlops train --data synthetic --trials 3 --job NAME`` then ``mlops release --yes --model job:NAME``
on an empty workspace ends with the best trial at 100%, the environment built from its conda file
(the record shows the unpinned dependencies), the batch default on the same model and pinned
environment, pickles trusted on those deployments only; a second release is nothing to release.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from mlops.release.record import Record, ReleaseStatus
from mlops.workspace.local import LocalWorkspace
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("automl-clone")
    for name in ("mlops.yaml", "endpoints", "environments", "load_tests", "jobs"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)
    uri = f"local:{root / '.mlops'}"

    def cli(*args: str, timeout: float = 600):
        return run_cli("--workspace", uri, *args, cwd=root, timeout=timeout)

    timings: dict[str, float] = {}
    started = time.monotonic()
    train = cli("train", "--data", "synthetic", "--trials", "3", "--job", "dau-sweep-1", "--epochs", "3",
                "--synthetic-days", "420", "--json")
    timings["train"] = time.monotonic() - started
    try:
        assert train.returncode == 0, train.stderr[-4000:]
        started = time.monotonic()
        release = cli("release", "--yes", "--model", "job:dau-sweep-1", "--profile", "fast", timeout=900)
        timings["release"] = time.monotonic() - started
        assert release.returncode == 0, f"{release.stdout}\n{release.stderr[-6000:]}"
        print(f"local AutoML journey: train {timings['train']:.0f}s, release {timings['release']:.0f}s")
        yield root, cli, json.loads(train.stdout), release
    finally:
        cli("local", "down", timeout=120)


def test_the_best_trial_serves_100_percent_on_an_environment_built_from_its_conda_file(clone) -> None:
    root, cli, job, release = clone
    record = Record.load(root / ".mlops" / "releases" / "current.json")
    assert record is not None and record.status is ReleaseStatus.SUCCEEDED
    assert job["best_child"] and record.model.trial is not None
    assert (record.model.trial.job, record.model.trial.trial) == ("dau-sweep-1", job["best_child"])
    best = min(job["trials"], key=lambda t: t["primary_metric_value"])  # NRMSE: lower is better
    assert best["name"] == job["best_child"]
    assert record.model.trusted_pickles is True
    assert record.environment.name == "tcn-automl-inference"
    assert record.environment.source == f"model {record.model.name}:{record.model.version} conda_env_v_1_0_0.yml"
    assert [u.name for u in record.environment.unpinned] == ["numpy", "pandas"]
    assert "unpinned numpy==" in release.stdout  # the report says what was unpinned

    status = json.loads(cli("status", "--json").stdout)
    (online,) = [e for e in status["online_endpoints"] if e["name"] == "tcn-dau"]
    model, environment = f"{record.model.name}:{record.model.version}", str(record.environment.ref)
    serving = [d for d in online["deployments"] if online["traffic"].get(d["name"]) == 100]
    assert [(d["model"], d["environment"]) for d in serving] == [(model, environment)]
    (batch,) = [e for e in status["batch_endpoints"] if e["name"] == "tcn-dau-batch"]
    default = next(d for d in batch["deployments"] if d["name"] == batch["default_deployment"])
    assert (default["model"], default["environment"]) == (model, environment)

    # the pickled model.pt is served because these deployments - and only they - trust pickles
    workspace = LocalWorkspace(root / ".mlops")
    with workspace.store.read() as conn:
        specs = [json.loads(row[0]) for row in conn.execute("SELECT spec FROM online_deployments")]
        specs += [json.loads(row[0]) for row in conn.execute("SELECT spec FROM batch_deployments")]
    assert {s["environment_variables"]["MLOPS_TRUST_PICKLED_MODEL"] for s in specs} == {"1"}


def test_the_jobs_commands_show_the_sweep(clone) -> None:
    _root, cli, job, _release = clone
    listed = cli("jobs", "list")
    assert listed.returncode == 0 and "dau-sweep-1" in listed.stdout and job["best_child"] in listed.stdout
    shown = cli("jobs", "show", "dau-sweep-1")
    assert f"{job['best_child']}" in shown.stdout and "<- best" in shown.stdout
    assert [t["status"] for t in job["trials"]] == ["Completed"] * 3


def test_the_step_commands_show_the_trial_and_what_was_unpinned(clone) -> None:
    root, cli, job, _release = clone
    record = str(root / "steps" / "record.json")
    registered = cli("register", "--model", "job:dau-sweep-1", "--record", record, "--json")
    assert registered.returncode == 0, registered.stderr
    assert f"from trial {job['best_child']} of job dau-sweep-1; its deployments trust pickles" in registered.stderr
    assert json.loads(registered.stdout)["result"]["trial"]["trial"] == job["best_child"]
    environment = cli("environment", "--record", record, "--json")
    assert environment.returncode == 0, environment.stderr
    assert "unpinned numpy==" in environment.stderr and ", pandas==" in environment.stderr
    result = json.loads(environment.stdout)["result"]
    assert [u["name"] for u in result["unpinned"]] == ["numpy", "pandas"]
    assert result["source"].endswith("conda_env_v_1_0_0.yml")


def test_a_second_release_of_the_same_job_is_nothing_to_release(clone) -> None:
    root, cli, _job, _release = clone
    again = cli("release", "--yes", "--model", "job:dau-sweep-1", "--profile", "fast")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to release" in again.stderr
    record = Record.load(root / ".mlops" / "releases" / "current.json")
    assert record.status is ReleaseStatus.NOTHING_TO_RELEASE
    workspace = LocalWorkspace(root / ".mlops")
    assert [m.version for m in workspace.list_models("tcn-dau")] == ["1"]
    with workspace.store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM environments").fetchone()[0] == 1
