"""Rehearse the workflows end to end against a local workspace standing in for Azure ML.

Every ``mlops`` command of the workflows' jobs runs for real, in job order, with the workflow's
``env:`` and output wiring (``tests/workflows/rehearsal.py`` plays the GitHub runner: a fresh
checkout per job from a clean clone of this tree, real ``GITHUB_OUTPUT``/``GITHUB_STEP_SUMMARY``
files, artifacts as folders, a loopback REST API, the runner's cancellation signals). The
``azure/login`` step is where the local workspace (``MLOPS_WORKSPACE=local:<tmp>``) takes Azure's
place. Only the documented variables are set (no ``MLOPS_MODEL``): a push releases mlops.yaml's
committed model. The runs share one workspace, as releases share one Azure workspace:

1. a push to main releases the committed model (blue): every job but the rollback succeeds, the
   production identity shifts traffic, the gate job's step summary holds the gate table, blue
   serves 100% and the batch default is refreshed;
2. a dispatch releases a second model whose scoring adds 400 ms per request: the gate fails (the
   relative gates compare it with live in the same load test), the promotion and the batch refresh
   are skipped, the rollback job runs, and blue still serves 100%.

Then: the same commit pushed again is "nothing to release"; batch-score.yml scores the smoke folder
with the batch default; rollback.yml, dispatched for the failed release run, rolls back from that
run's record (idempotent); a red test suite stops a release before anything changes; a release
cancelled mid-shift rolls back; an inconclusive candidate is removed by the rollback job; rollback.yml refuses foreign run ids and a stale one, and the
endpoint keeps serving. Profile ``fast`` (short load test and bakes) keeps the runs within the test
budget.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_cli
from tests.workflows.rehearsal import Cancel, JobRun, Rehearsal
from tests.workflows.workflow_files import REPO, WORKFLOWS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

VARS = {
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-00000000c1d0",
    "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000007e0",
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-0000000005b0",
    "AZUREML_RESOURCE_GROUP": "rg-rehearsal",
    "AZUREML_WORKSPACE": "ws-rehearsal",
}
"""The documented repository variables, and nothing else (no MLOPS_MODEL: a push releases what the
commit names)."""
PRODUCTION_CLIENT_ID = "00000000-0000-0000-0000-0000000000f1"
ENVIRONMENT_VARS = {"production": {"AZURE_CLIENT_ID": PRODUCTION_CLIENT_ID}}
"""The production environment's own AZURE_CLIENT_ID: the identity allowed to shift traffic."""
SUBJECT_PREFIX = "repo:example@1001/mlops@2002"
FEDERATED_CREDENTIALS = {
    VARS["AZURE_CLIENT_ID"]: {f"{SUBJECT_PREFIX}:ref:refs/heads/main"},
    PRODUCTION_CLIENT_ID: {f"{SUBJECT_PREFIX}:environment:production"},
}
"""What the README's one-time setup creates, for a repository with immutable OIDC subjects (every
new copy): the release identity trusts main, the production identity the production environment."""
ENDPOINT_WRITERS = {PRODUCTION_CLIENT_ID}
"""The README's role split: only the production identity's role holds onlineEndpoints/write (the
release identity's custom role has it in NotActions), so only jobs in `production` change traffic."""

_NOT_CHECKED_OUT = {".git", ".venv", ".mlops", "out", "build", "__pycache__", ".pytest_cache", ".ruff_cache"}

SLOW_SCORE = textwrap.dedent(
    '''\
    """Test candidate: the product's score.py, 400 ms slower per request (a model too slow to serve)."""
    import sys
    import time
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))

    import real_score  # noqa: E402

    try:
        from azureml_inference_server_http.api.aml_request import rawhttp
    except ImportError:  # pragma: no cover
        from azureml.contrib.services.aml_request import rawhttp

    init = real_score.init


    @rawhttp
    def run(request):
        time.sleep(0.4)
        return real_score.run(request)
    '''
)


def _clean_clone(dest: Path) -> None:
    """What a clone of this tree would hold: git's tracked files and the untracked ones it does not
    ignore (so a work tree's uncommitted edits are rehearsed, but never ``out/``, ``.mlops/`` or a
    venv). Outside a git checkout: the tree without the usual build and state folders."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, timeout=60)
    if listed.returncode != 0:
        def ignore(_directory: str, names: list[str]) -> list[str]:
            return [n for n in names if n in _NOT_CHECKED_OUT or n.endswith(".egg-info")]

        shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
        return
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file() or source.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name, follow_symlinks=False)


def _checkout_source(dest: Path) -> Path:
    """The repository as ``actions/checkout`` would see it (a clean clone: no venv, no state, no build
    output), with two commits a team would make to try the pipeline on a small shared machine: mlops.yaml's
    profile set to ``fast``, and the ABSOLUTE latency limits and request minimums of the gates and
    of the rollout's health checks relaxed (this test judges the workflow's wiring, not a loaded
    2-core machine's latency). The relative gates - candidate
    against live, measured in the same run under the same load - stay as shipped: they are what
    stops the slow candidate of the second run."""

    _clean_clone(dest)
    config_path = dest / "mlops.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["profile"] = "fast"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    gates_path = dest / config["load_test"]["gates"]
    gates = yaml.safe_load(gates_path.read_text())
    gates["absolute"].update(p50_ms=3000, p95_ms=8000, p99_ms=15000, min_requests=10)
    gates_path.write_text(yaml.safe_dump(gates, sort_keys=False))
    rollout_path = dest / config["online"]["rollout"]
    rollout = yaml.safe_load(rollout_path.read_text())
    rollout["health"].update(max_p95_ms=15000, min_requests=3)
    rollout_path.write_text(yaml.safe_dump(rollout, sort_keys=False))
    return dest


def _stop_local_workspace(workspace_dir: Path) -> None:
    result = run_cli("--workspace", f"local:{workspace_dir}", "local", "down", timeout=120)
    info = workspace_dir / "host.json"
    if info.exists():  # `local down` did not finish the job: kill the host by its pid
        try:
            pid = int(json.loads(info.read_text())["pid"])
            os.killpg(pid, signal.SIGKILL)
        except (ValueError, KeyError, ProcessLookupError, PermissionError, json.JSONDecodeError):
            pass
        sys.stderr.write(f"local down: exit {result.returncode}\n{result.stderr}")


def _committed_model() -> Path:
    config = yaml.safe_load((REPO / "mlops.yaml").read_text())
    return REPO / config["model"]["path"]


def _create_the_endpoint_as_setup_does(uri: str) -> None:
    """The README's one-time setup creates the online endpoint (``az ml online-endpoint create -f
    endpoints/online/endpoint.yml``, as the production identity or an owner): the release identity
    may not."""
    from mlops.config import load_config
    from mlops.workspace import connect

    config = load_config(REPO / "mlops.yaml")
    connect(uri).ensure_online_endpoint(config.online.endpoint)


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("rehearsal")
    workspace_dir = root / "workspace"
    # later candidates: the committed weights in a folder with one more file, so new versions
    models = {}
    for number in (2, 3):
        models[number] = root / f"model-v{number}"
        shutil.copytree(_committed_model(), models[number])
        (models[number] / "NOTES.txt").write_text(f"candidate {number}\n")
    try:
        _create_the_endpoint_as_setup_does(f"local:{workspace_dir}")
        yield {"root": root, "workspace_dir": workspace_dir, "uri": f"local:{workspace_dir}",
               "model_v2": models[2], "model_v3": models[3]}
    finally:
        _stop_local_workspace(workspace_dir)


def _status(uri: str) -> dict[str, Any]:
    result = run_cli("--workspace", uri, "status", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _online(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in status["online_endpoints"] if e["name"] == name)


def _endpoint_names() -> tuple[str, str]:
    config = yaml.safe_load((REPO / "mlops.yaml").read_text())
    online = yaml.safe_load((REPO / config["online"]["endpoint"]).read_text())["name"]
    batch = yaml.safe_load((REPO / config["batch"]["endpoint"]).read_text())["name"]
    return online, batch


def _results(jobs: dict[str, JobRun]) -> dict[str, str]:
    return {name: job.result for name, job in jobs.items()}


def _logs(jobs: dict[str, JobRun]) -> str:
    return "\n".join(job.log() for job in jobs.values())


def _mlops_steps(jobs: dict[str, JobRun]) -> list[str]:
    return [step.command for job in jobs.values() for step in job.steps
            if re.search(r"(^|\n)(exec )?mlops ", step.command)]


def _rehearse(stage: dict[str, Any], workflow: str, *, source: Path | None = None, **kwargs: Any) -> Rehearsal:
    """One workflow run in the shared stage; run ids count up, earlier runs' artifacts stay reachable."""
    root: Path = stage["root"]
    runs: dict[str, Path] = stage.setdefault("runs", {})
    run_id = str(len(runs) + 1)
    rehearsal = Rehearsal(
        WORKFLOWS / workflow,
        source=source or _checkout_source(root / f"checkout-{run_id}"),
        root=root / f"run-{run_id}",
        workspace_uri=stage["uri"],
        run_id=run_id,
        earlier_runs=dict(runs),
        github_runs=dict(stage.setdefault("github_runs", {})),
        **{"called_workflows": {"ci.yml": "success"}, "environment_vars": ENVIRONMENT_VARS,
           "federated_credentials": FEDERATED_CREDENTIALS, "endpoint_writers": ENDPOINT_WRITERS, **kwargs},
    )
    rehearsal.run()
    runs[run_id] = rehearsal.artifacts
    stage["github_runs"][run_id] = rehearsal.run_object()
    return rehearsal


@pytest.fixture(scope="module")
def first_release(stage: dict[str, Any]) -> Rehearsal:
    return _rehearse(stage, "release.yml", event_name="push", vars=VARS)


def _require(stage: dict[str, Any], name: str) -> Any:
    if name not in stage:
        pytest.fail(f"an earlier rehearsal ({name}) did not complete; this one builds on it")
    return stage[name]


def test_release_on_push_completes(first_release: Rehearsal, stage: dict[str, Any]) -> None:
    jobs = first_release.jobs
    assert _results(jobs) == {"tests": "success", "prepare": "success", "batch-prepare": "success",
                              "candidate": "success", "gate": "success", "promote": "success", "batch": "success",
                              "rollback": "skipped"}, _logs(jobs)
    # the order: the batch deployment is prepared beside candidate and gate, before the traffic shift,
    # and made the default after it (a first batch release - no default to keep - prepares nothing)
    order = list(jobs)
    assert order.index("batch-prepare") < order.index("promote") < order.index("batch"), order
    assert "nothing prepared" in jobs["batch-prepare"].log(), jobs["batch-prepare"].log()[-2000:]
    # every mlops command of the workflow ran (none was simulated away)
    assert len(_mlops_steps(jobs)) == 8, _mlops_steps(jobs)
    # versions travelled in job outputs
    assert jobs["prepare"].outputs["model_version"] == "1", jobs["prepare"].outputs
    assert re.fullmatch(r"[\w.-]+:\d+", jobs["prepare"].outputs["environment"]), jobs["prepare"].outputs
    assert jobs["candidate"].outputs["candidate"] == "blue"
    assert jobs["gate"].outputs["verdict"] == "Passed"
    assert jobs["promote"].environment == "production"
    # the production environment's identity shifts traffic; every other job logs in as the release identity
    identities = {name: job.client_id for name, job in jobs.items() if job.client_id}
    assert identities == {"prepare": VARS["AZURE_CLIENT_ID"], "batch-prepare": VARS["AZURE_CLIENT_ID"],
                          "candidate": VARS["AZURE_CLIENT_ID"],
                          "gate": VARS["AZURE_CLIENT_ID"], "promote": PRODUCTION_CLIENT_ID,
                          "batch": VARS["AZURE_CLIENT_ID"]}, identities
    # the gate job's step summary holds the gate table
    assert _gate_table(jobs["gate"].summary), jobs["gate"].summary
    # the record and the locust report were kept as artifacts
    record = json.loads((first_release.artifacts / "release-record" / "record.json").read_text())
    assert record["trigger"]["by"] == "github-actions" and record["status"] == "succeeded", record.get("status")
    assert list((first_release.artifacts / "locust-report").rglob("*.html")), "no locust HTML report"
    # what the workspace serves
    online_name, batch_name = _endpoint_names()
    status = _status(stage["uri"])
    assert _online(status, online_name)["traffic"] == {"blue": 100}
    batch = next(e for e in status["batch_endpoints"] if e["name"] == batch_name)
    default = next(d for d in batch["deployments"] if d["name"] == batch["default_deployment"])
    assert default["model"].endswith(":1")
    stage["released"] = True


def _gate_table(summary: str) -> list[str]:
    """The markdown table rows of the gates (a header row naming the gate, then one row per gate)."""
    rows = [line for line in summary.splitlines() if line.startswith("|")]
    return [row for row in rows if "p95" in row] if any("gate" in row.lower() for row in rows) else []


STOPPED_AT_THE_GATE = {"tests": "success", "prepare": "success", "batch-prepare": "success", "candidate": "success",
                       "gate": "failure", "promote": "skipped", "batch": "skipped", "rollback": "success"}


def _dispatch_release(stage: dict[str, Any], model: Path, **kwargs: Any) -> Rehearsal:
    """release.yml dispatched for ``model`` with the fast profile (batch refresh on unless said)."""
    inputs = {"model_source": str(model), "rollout_profile": "fast", "refresh_batch": kwargs.pop("refresh_batch", True)}
    return _rehearse(stage, "release.yml", event_name="workflow_dispatch", inputs=inputs, vars=VARS, **kwargs)


def test_candidate_failing_its_gate_is_rolled_back(stage: dict[str, Any]) -> None:
    _require(stage, "released")
    source = _checkout_source(stage["root"] / "checkout-slow")
    online_dir = source / "endpoints" / "online"
    (online_dir / "score.py").rename(online_dir / "real_score.py")
    (online_dir / "score.py").write_text(SLOW_SCORE)
    rehearsal = _dispatch_release(stage, stage["model_v2"], source=source)
    jobs = rehearsal.jobs
    assert _results(jobs) == STOPPED_AT_THE_GATE, _logs(jobs)
    assert jobs["prepare"].outputs["model_version"] == "2"
    assert jobs["candidate"].outputs["candidate"] == "green"
    # it is the gate that stopped it: the load test ran, the judgement failed and was summarised
    outcomes = {step.name: step.outcome for step in jobs["gate"].steps}
    assert outcomes["Load-test candidate and live side by side"] == "success", jobs["gate"].log()
    assert outcomes["Judge the gates"] == "failure", jobs["gate"].log()
    assert _gate_table(jobs["gate"].summary), jobs["gate"].summary + jobs["gate"].log()
    online_name, _ = _endpoint_names()
    endpoint = _online(_status(stage["uri"]), online_name)
    assert endpoint["traffic"] == {"blue": 100}, endpoint
    assert [d["name"] for d in endpoint["deployments"]] == ["blue"], endpoint
    record = json.loads((rehearsal.artifacts / "release-record" / "record.json").read_text())
    assert record["status"] in ("failed", "rolled_back"), record["status"]
    # batch-prepare had created and smoke-scored tcn-v2 beside the gate; the rollback job removed it
    prepared = json.loads((rehearsal.artifacts / "batch-prepared" / "record.json").read_text())["batch_prep"]
    assert prepared["deployment"] == "tcn-v2" and prepared["state"] == "ready", prepared
    assert "removed the prepared deployment tcn-v2" in jobs["rollback"].log(), jobs["rollback"].log()[-3000:]
    _, batch_name = _endpoint_names()
    batch = next(e for e in _status(stage["uri"])["batch_endpoints"] if e["name"] == batch_name)
    assert batch["default_deployment"] == "tcn-v1" and {d["name"] for d in batch["deployments"]} == {"tcn-v1"}, batch
    stage["failed_release_run"] = rehearsal.run_id


def test_same_model_again_is_nothing_to_release(stage: dict[str, Any]) -> None:
    """A push that changes no model or environment (e.g. a code change): no candidate, so no gate and
    no promotion; the batch refresh still runs (a no-op when its default is current)."""
    _require(stage, "released")
    rehearsal = _rehearse(stage, "release.yml", event_name="push", vars=VARS)
    jobs = rehearsal.jobs
    assert _results(jobs) == {"tests": "success", "prepare": "success", "batch-prepare": "success",
                              "candidate": "success", "gate": "skipped", "promote": "skipped", "batch": "success",
                              "rollback": "skipped"}, _logs(jobs)
    assert jobs["prepare"].outputs["model_version"] == "1"
    assert jobs["candidate"].outputs["candidate"] == ""
    online_name, _ = _endpoint_names()
    assert _online(_status(stage["uri"]), online_name)["traffic"] == {"blue": 100}


def test_batch_scoring_workflow_scores_with_the_default_deployment(stage: dict[str, Any]) -> None:
    _require(stage, "released")
    rehearsal = _rehearse(stage, "batch-score.yml", event_name="workflow_dispatch", vars=VARS)
    jobs = rehearsal.jobs
    assert _results(jobs) == {"score": "success"}, _logs(jobs)
    job = json.loads((rehearsal.artifacts / "batch-output" / "job.json").read_text())
    assert job["status"] == "Completed", job
    _, batch_name = _endpoint_names()
    assert job["endpoint"] == batch_name and job["deployment"].endswith("1"), job
    scored = rehearsal.artifacts / "batch-output" / Path(job["output_file"]).name
    rows = scored.read_text().splitlines()
    assert rows[0].split(",")[:3] == ["date", "forecast_origin", "predicted"] and len(rows) > 10, rows[:3]


def test_manual_rollback_workflow_uses_the_release_runs_record(stage: dict[str, Any]) -> None:
    """Dispatching rollback.yml for the failed release's run: its record comes from that run's
    artifact; rolling back again is idempotent and leaves blue serving 100%."""
    run_id = _require(stage, "failed_release_run")
    rehearsal = _rehearse(stage, "rollback.yml", event_name="workflow_dispatch",
                          inputs={"release_run_id": run_id, "reason": "rehearsal: manual rollback"}, vars=VARS)
    jobs = rehearsal.jobs
    assert _results(jobs) == {"verify": "success", "rollback": "success"}, _logs(jobs)
    record = json.loads((rehearsal.artifacts / "release-record" / "record.json").read_text())
    assert record["status"] == "rolled_back", record["status"]
    online_name, _ = _endpoint_names()
    assert _online(_status(stage["uri"]), online_name)["traffic"] == {"blue": 100}


def _serves(stage: dict[str, Any]) -> str:
    """One real forecast request through the online endpoint (its router, its key): the response body."""
    from mlops.release.quality import build_requests, read_rows

    online_name, _ = _endpoint_names()
    config = yaml.safe_load((REPO / "mlops.yaml").read_text())
    holdout = REPO / yaml.safe_load((REPO / config["load_test"]["gates"]).read_text())["quality"]["holdout"]
    request = build_requests(read_rows(holdout), origins=1, context_days=56, horizon=14)[0]
    body = stage["root"] / "request.json"
    body.write_bytes(request.body)
    result = run_cli("--workspace", stage["uri"], "invoke", online_name, "--request", str(body), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "forecast" in result.stdout, result.stdout[:500]
    return result.stdout


def test_a_red_test_suite_stops_the_release_before_anything_changes(stage: dict[str, Any]) -> None:
    _require(stage, "released")
    online_name, _ = _endpoint_names()
    before = _online(_status(stage["uri"]), online_name)
    rehearsal = _rehearse(stage, "release.yml", event_name="push", vars=VARS, called_workflows={"ci.yml": "failure"})
    jobs = rehearsal.jobs
    assert _results(jobs) == {"tests": "failure", "prepare": "skipped", "batch-prepare": "skipped",
                              "candidate": "skipped", "gate": "skipped", "promote": "skipped", "batch": "skipped",
                              "rollback": "skipped"}, _logs(jobs)
    assert _mlops_steps(jobs) == []
    assert _online(_status(stage["uri"]), online_name) == before


def _shifting(log: str) -> bool:
    return re.search(r"promote: step \d+/\d+ traffic", log) is not None


def test_a_cancelled_release_rolls_back_mid_shift(stage: dict[str, Any]) -> None:
    """"Cancel workflow" while promote shifts traffic: the runner's SIGINT reaches `exec`-ed mlops,
    which gives live its traffic back and removes the candidate; the rollback job (if: cancelled())
    finds nothing left to undo; blue serves 100%."""
    _require(stage, "released")
    rehearsal = _dispatch_release(stage, stage["model_v3"], cancel=Cancel("promote", "Shift traffic step by step",
                                                                          _shifting))
    jobs = rehearsal.jobs
    assert _results(jobs) == {"tests": "success", "prepare": "success", "batch-prepare": "success",
                              "candidate": "success", "gate": "success", "promote": "cancelled", "batch": "skipped",
                              "rollback": "success"}, _logs(jobs)
    shift = next(s for s in jobs["promote"].steps if s.name == "Shift traffic step by step")
    assert shift.outcome == "cancelled" and "after SIGINT" in shift.log, shift.log[-3000:]
    assert "rolling back (KeyboardInterrupt)" in shift.log, shift.log[-3000:]
    # the promote job still kept the record (its upload is if: always()); it says rolled back
    record = json.loads((rehearsal.artifacts / "release-record" / "record.json").read_text())
    assert record["status"] == "rolled_back", record["status"]
    online_name, _ = _endpoint_names()
    endpoint = _online(_status(stage["uri"]), online_name)
    assert endpoint["traffic"] == {"blue": 100}, endpoint
    assert [d["name"] for d in endpoint["deployments"]] == ["blue"], endpoint
    _serves(stage)


def test_an_inconclusive_candidate_is_removed_by_the_rollback_job(stage: dict[str, Any]) -> None:
    """Too few requests to judge (a gates file asking for a million): `mlops gate` exits 3 and says the
    candidate is left at 0% for the workflow's rollback job to remove - which is what happens; live
    is untouched."""
    _require(stage, "released")
    source = _checkout_source(stage["root"] / "checkout-inconclusive")
    config = yaml.safe_load((source / "mlops.yaml").read_text())
    gates_path = source / config["load_test"]["gates"]
    gates = yaml.safe_load(gates_path.read_text())
    gates["absolute"]["min_requests"] = 1_000_000
    gates_path.write_text(yaml.safe_dump(gates, sort_keys=False))
    rehearsal = _dispatch_release(stage, stage["model_v2"], source=source)
    jobs = rehearsal.jobs
    assert _results(jobs) == STOPPED_AT_THE_GATE, _logs(jobs)
    judge = next(s for s in jobs["gate"].steps if s.name == "Judge the gates")
    assert "(exit 3)" in judge.log and "rollback job" in judge.log, judge.log[-3000:]
    online_name, _ = _endpoint_names()
    endpoint = _online(_status(stage["uri"]), online_name)
    assert endpoint["traffic"] == {"blue": 100}, endpoint
    assert [d["name"] for d in endpoint["deployments"]] == ["blue"], endpoint
    record = json.loads((rehearsal.artifacts / "release-record" / "record.json").read_text())
    assert record["status"] == "rolled_back", record["status"]


def test_rollback_of_a_foreign_run_id_is_refused_and_the_endpoint_keeps_serving(stage: dict[str, Any]) -> None:
    """Run ids rollback.yml must not trust: a batch-score.yml run of this repository, a run of another
    repository (GitHub answers 404 under this repository's URL) and a number that is no run at all."""
    _require(stage, "released")
    online_name, _ = _endpoint_names()
    batch_run = next(run_id for run_id, run in stage["github_runs"].items() if run["path"].endswith("batch-score.yml"))
    stage["github_runs"]["900000001"] = {**stage["github_runs"]["1"], "id": 900000001,
                                         "repository": {"full_name": "someone/else"},
                                         "head_repository": {"full_name": "someone/else"}}
    before = _online(_status(stage["uri"]), online_name)
    for run_id, reason in ((batch_run, "not of .github/workflows/release.yml"),
                           ("900000001", "is not a workflow run of example/mlops"),
                           ("424242", "is not a workflow run of example/mlops")):
        rehearsal = _rehearse(stage, "rollback.yml", event_name="workflow_dispatch",
                              inputs={"release_run_id": run_id, "reason": "rehearsal: foreign run id"}, vars=VARS)
        jobs = rehearsal.jobs
        assert _results(jobs) == {"verify": "failure", "rollback": "skipped"}, _logs(jobs)
        assert reason in jobs["verify"].steps[-1].log, jobs["verify"].log()
        assert "Rollback refused" in jobs["verify"].summary
    assert _online(_status(stage["uri"]), online_name) == before
    _serves(stage)


def test_rollback_of_a_stale_run_id_is_refused_and_the_endpoint_keeps_serving(stage: dict[str, Any]) -> None:
    """The failed release's run (its candidate was green) after a later release put its model on green
    and deleted blue: the run is a genuine release.yml run on main, so the check passes, and `mlops
    rollback` refuses (exit 2): green belongs to the later release, and removing it would leave
    nothing serving."""
    stale_run = _require(stage, "failed_release_run")
    release = _dispatch_release(stage, stage["model_v3"], refresh_batch=False)
    assert _results(release.jobs) == {"tests": "success", "prepare": "success", "batch-prepare": "skipped",
                                      "candidate": "success", "gate": "success", "promote": "success",
                                      "batch": "skipped", "rollback": "skipped"}, _logs(release.jobs)
    online_name, _ = _endpoint_names()
    endpoint = _online(_status(stage["uri"]), online_name)
    assert endpoint["traffic"] == {"green": 100}, endpoint
    rehearsal = _rehearse(stage, "rollback.yml", event_name="workflow_dispatch",
                          inputs={"release_run_id": stale_run, "reason": "rehearsal: stale run id"}, vars=VARS)
    jobs = rehearsal.jobs
    assert _results(jobs) == {"verify": "success", "rollback": "failure"}, _logs(jobs)
    restore = next(s for s in jobs["rollback"].steps if s.name == "Restore the live deployment")
    assert "(exit 2)" in restore.log and "created by release" in restore.log, restore.log[-3000:]
    assert _online(_status(stage["uri"]), online_name) == endpoint
    _serves(stage)
