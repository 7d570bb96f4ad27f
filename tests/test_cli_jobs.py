"""``mlops train --job`` and ``mlops jobs``: argument errors exit 2 before anything runs; a local
``jobs submit`` runs the sweep and publishes its name to GitHub Actions' outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

SPEC = str(REPO / "jobs" / "automl-tcn-forecasting.yml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "synthetic"], "give --out DIR (one model) or --job NAME"),
        (["train", "--data", "synthetic", "--out", "o", "--trials", "2"], "--trials and --primary-metric belong"),
        (["train", "--data", "synthetic", "--out", "o", "--job", "j"], "--out and --job exclude each other"),
        (["train", "--data", "synthetic", "--job", "bad name"], "job name 'bad name'"),
        (["train", "--data", "synthetic", "--job", "j", "--primary-metric", "accuracy"], "--primary-metric: expected"),
        (["train", "--data", "missing.csv", "--job", "j"], "missing.csv"),
        (["jobs", "submit", SPEC, "--trials", "many"], "--trials: expected a positive integer"),
        (["jobs", "submit", SPEC], "pass --data CSV|synthetic"),
        (["jobs", "submit", str(REPO / "mlops.yaml"), "--data", "synthetic"], "expected type: automl"),
        (["release", "--yes", "--model", "job:nope"], "get AutoML job nope: no such job"),
        (["jobs", "submit", "OTHER_COLUMNS", "--data", "synthetic"], "columns date,count; the spec names time column"),
    ],
)
def test_bad_usage_is_refused_with_the_reason(tmp_path: Path, args: list[str], message: str) -> None:
    if "OTHER_COLUMNS" in args:  # a spec the local sweep cannot honour: other column names
        other = tmp_path / "other.yml"
        other.write_text(Path(SPEC).read_text().replace("target_column_name: count", "target_column_name: sales"))
        args = [str(other) if a == "OTHER_COLUMNS" else a for a in args]
    result = run_cli("--workspace", f"local:{tmp_path / 'ws'}", *args, cwd=REPO if args[0] == "release" else tmp_path)
    assert result.returncode in (1, 2), result.stderr
    assert message in result.stderr
    if args[0] != "release":
        assert result.returncode == 2


def test_on_azure_the_sweep_is_automls(tmp_path: Path) -> None:
    result = run_cli("--workspace", "azureml://subscriptions/s/resourceGroups/r/workspaces/w", "train", "--data",
                     "synthetic", "--job", "j", cwd=tmp_path)
    assert result.returncode == 2 and "mlops jobs submit jobs/automl-tcn-forecasting.yml" in result.stderr


def test_unknown_job_and_empty_list(tmp_path: Path) -> None:
    uri = f"local:{tmp_path / 'ws'}"
    assert "no AutoML jobs yet" in run_cli("--workspace", uri, "jobs", "list", cwd=tmp_path).stdout
    shown = run_cli("--workspace", uri, "jobs", "show", "nope", cwd=tmp_path)
    assert shown.returncode == 1 and "job 'nope' does not exist" in shown.stderr


@pytest.mark.slow
def test_a_local_submit_runs_the_sweep_and_publishes_the_job(tmp_path: Path) -> None:
    uri = f"local:{tmp_path / 'ws'}"
    outputs, summary = tmp_path / "github_output", tmp_path / "summary.md"
    result = run_cli("--workspace", uri, "jobs", "submit", SPEC, "--data", "synthetic", "--fast", "--trials", "2",
                     "--name", "dau-ci-1", "--json", cwd=tmp_path,
                     env={"GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 0, result.stderr[-3000:]
    job = json.loads(result.stdout)
    assert (job["name"], job["status"], len(job["trials"])) == ("dau-ci-1", "Completed", 2)
    assert job["primary_metric"] == "normalized_root_mean_squared_error"
    assert f"job_name=dau-ci-1\njob_status=Completed\nbest_trial={job['best_child']}\n" in outputs.read_text()
    assert "## AutoML job `dau-ci-1`: **Completed**" in summary.read_text()
    listed = json.loads(run_cli("--workspace", uri, "jobs", "list", "--json", cwd=tmp_path).stdout)
    assert [j["name"] for j in listed] == ["dau-ci-1"]
