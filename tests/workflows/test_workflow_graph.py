"""The workflows' graph and security rules, read from the YAML (no GitHub needed).

What is checked, and why:

* release.yml: the job graph (tests -> prepare -> candidate -> gate -> promote -> batch, with
  batch-prepare beside candidate and gate and before promote; rollback after a failure or
  cancellation of candidate, gate, promote or batch-prepare - evaluated with the rehearsal's
  expression evaluator for every outcome, not by string matching; nothing runs when the tests
  fail), promote runs in the ``production`` environment (its required reviewers approve the traffic
  shift), one release per endpoint at a time and never cancelled, manual rollbacks in a group of
  their own that queues them, the triggers and dispatch inputs of the issue;
* every workflow: least ``permissions`` (none or ``contents: read`` at the top; ``id-token: write``
  only on jobs that log in to Azure, by OIDC with ids from repository variables, and no write
  scope besides it), no ``pull_request_target``, no ``${{ }}`` inside ``run:``, every action one
  of ``PINNED_ACTIONS`` (Node 24 majors) at its commit SHA with the version in a comment,
  checkouts without persisted credentials, no stored secrets; every job that can mint the Azure
  token installs only from the hashed lock (``--require-hashes --no-deps``, torch's CPU index the
  only extra index);
* every ``mlops`` command line in the workflows parses with the real CLI parser (flags included),
  and is ``exec``-ed as the last command of its step, so a cancelled run's signal reaches it.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.workflows.expressions import Context, condition
from tests.workflows.workflow_files import (
    PINNED_ACTIONS,
    PINNED_USES,
    REPO,
    SELF_REPOSITORY,
    all_workflows,
    logs_in_to_azure,
    needs_of,
    steps,
    uses_comment_versions,
    workflow_paths,
)

WORKFLOWS = all_workflows()
RELEASE = WORKFLOWS.get("release.yml", {})


def _jobs(name: str) -> dict[str, Any]:
    return WORKFLOWS[name]["jobs"]


def _ancestors(jobs: dict[str, Any], job_id: str) -> set[str]:
    seen: set[str] = set()
    stack = needs_of(jobs[job_id])
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(needs_of(jobs[name]))
    return seen


# ---------------------------------------------------------------------------------------------
# release.yml: the graph


def test_release_job_graph() -> None:
    jobs = _jobs("release.yml")
    assert set(jobs) == {"tests", "prepare", "batch-prepare", "candidate", "gate", "promote", "batch", "rollback"}
    assert needs_of(jobs["prepare"]) == ["tests"]
    assert needs_of(jobs["candidate"]) == ["prepare"]
    assert "candidate" in needs_of(jobs["gate"])
    assert "gate" in needs_of(jobs["promote"])
    assert "promote" in needs_of(jobs["batch"])
    assert {"candidate", "gate", "promote", "batch-prepare"} <= set(needs_of(jobs["rollback"]))
    # the batch deployment is prepared beside the online jobs (neither waits for the other), the
    # traffic shift waits for it, and its default is set after the promotion
    assert needs_of(jobs["batch-prepare"]) == ["prepare"]
    assert not {"candidate", "gate"} & _ancestors(jobs, "batch-prepare")
    assert "batch-prepare" not in _ancestors(jobs, "candidate") | _ancestors(jobs, "gate")
    assert "batch-prepare" in needs_of(jobs["promote"]) and "batch-prepare" in needs_of(jobs["batch"])
    assert "batch" not in _ancestors(jobs, "rollback"), "a failed batch refresh must not roll back online traffic"


def test_the_release_waits_for_the_test_suite() -> None:
    """The tests job is ci.yml itself (a reusable workflow of this repository, at the running commit),
    and every job of the release descends from it."""
    jobs = _jobs("release.yml")
    uses = str(jobs["tests"]["uses"])
    prefix = next(p for p in SELF_REPOSITORY if uses.startswith(p))
    called = REPO / uses[len(prefix):]
    assert called.name == "ci.yml" and "workflow_call" in WORKFLOWS["ci.yml"]["on"]
    assert all("tests" in _ancestors(jobs, job_id) for job_id in jobs if job_id != "tests")
    assert any("make test" in str(s.get("run", "")) for _, _, s in steps(WORKFLOWS["ci.yml"]))
    # called by the release, a test job is never cancelled by a newer push (only pull requests are)
    concurrency = WORKFLOWS["ci.yml"]["concurrency"]
    assert "github.workflow" in concurrency["group"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_nothing_runs_when_the_tests_fail() -> None:
    for job_id in ("prepare", "rollback"):
        results = _with_batch({"tests": "failure", "prepare": "skipped", "candidate": "skipped", "gate": "skipped",
                               "promote": "skipped"})
        assert _job_runs(job_id, results) is False, job_id


def test_promote_needs_the_gate_and_runs_in_production() -> None:
    promote = _jobs("release.yml")["promote"]
    assert "gate" in needs_of(promote)
    environment = promote.get("environment")
    assert (environment.get("name") if isinstance(environment, dict) else environment) == "production"
    # no other job runs in production: approval guards the traffic shift, not the whole release
    others = [j for j, job in _jobs("release.yml").items() if j != "promote" and job.get("environment")]
    assert others == []


def _environment(job: dict[str, Any]) -> str | None:
    environment = job.get("environment")
    return environment.get("name") if isinstance(environment, dict) else environment


def _runs(job: dict[str, Any], command: str) -> bool:
    return any(re.search(rf"(^|\s)(exec )?mlops {command}\b", step.get("run", "")) for step in job.get("steps", []))


@pytest.mark.parametrize("workflow", ["release.yml", "rollback.yml", "train.yml", "batch-score.yml"])
def test_only_jobs_in_production_run_the_commands_that_change_traffic(workflow: str) -> None:
    """The production identity (the `production` environment's AZURE_CLIENT_ID) is the only one whose
    role holds onlineEndpoints/write. `mlops promote` (shadow mirror, traffic steps) and a manual
    `mlops rollback` (live's traffic back) change traffic, so they run in `production`. release.yml's
    own rollback job is the exception by design: it runs as the release identity, removes a candidate
    at 0% and never needs a traffic write (the rehearsal's RBAC model refuses one)."""
    for job_id, job in _jobs(workflow).items():
        changes_traffic = _runs(job, "promote") or (_runs(job, "rollback") and workflow == "rollback.yml")
        if changes_traffic:
            assert _environment(job) == "production", f"{workflow} {job_id} changes traffic outside production"
        elif workflow == "release.yml" and job_id == "rollback":
            assert _runs(job, "rollback") and _environment(job) is None, job
        else:
            assert _environment(job) is None, f"{workflow} {job_id} runs in {_environment(job)} without need"


ORDER = ["tests", "prepare", "candidate", "gate", "promote"]
"""The online jobs in order; ``batch-prepare`` runs beside candidate and gate (``_with_batch``)."""


def _job_runs(job_id: str, results: dict[str, str], *, candidate: str = "green", event: str = "push",
              inputs: dict[str, Any] | None = None, cancelled: bool = False) -> bool:
    """Would ``job_id`` run, given its ancestors' results? (GitHub's rules, the rehearsal's evaluator.)"""
    jobs = _jobs("release.yml")
    ancestors = _ancestors(jobs, job_id)
    outputs = {"candidate": {"candidate": candidate}}
    ctx = Context(
        {"needs": {name: {"result": results[name], "outputs": outputs.get(name, {})} for name in needs_of(jobs[job_id])},
         "github": {"event_name": event}, "inputs": inputs or {}, "vars": {}},
        status={
            "success": lambda: all(results[a] == "success" for a in ancestors) and not cancelled,
            "failure": lambda: any(results[a] == "failure" for a in ancestors),
            "cancelled": lambda: cancelled,
            "always": lambda: True,
        },
    )
    return condition(jobs[job_id].get("if"), ctx)


def _with_batch(results: dict[str, str], batch_prepare: str | None = None) -> dict[str, str]:
    """``results`` with batch-prepare's: given, else success once prepare succeeded (it runs beside
    candidate and gate), skipped otherwise."""
    if batch_prepare is None:
        batch_prepare = "success" if results["prepare"] == "success" else "skipped"
    return {**results, "batch-prepare": batch_prepare}


def _failed_at(failed: str) -> dict[str, str]:
    index = ORDER.index(failed)
    return _with_batch({name: "success" if i < index else "failure" if i == index else "skipped"
                        for i, name in enumerate(ORDER)})


ALL_PASSED = _with_batch(dict.fromkeys(ORDER, "success"))
NOTHING_TO_RELEASE = _with_batch({"tests": "success", "prepare": "success", "candidate": "success",
                                  "gate": "skipped", "promote": "skipped"})
BATCH_PREPARE_FAILED = _with_batch({"tests": "success", "prepare": "success", "candidate": "success",
                                    "gate": "success", "promote": "skipped"}, "failure")


@pytest.mark.parametrize("failed", ORDER)
def test_rollback_runs_when_candidate_gate_or_promote_fail(failed: str) -> None:
    # nothing was deployed when the tests or prepare failed: nothing to roll back
    assert _job_runs("rollback", _failed_at(failed)) is (failed not in ("tests", "prepare"))


def test_rollback_does_not_run_after_a_successful_release_or_when_nothing_was_released() -> None:
    assert _job_runs("rollback", ALL_PASSED) is False
    assert _job_runs("rollback", NOTHING_TO_RELEASE, candidate="") is False


def test_rollback_runs_when_the_release_is_cancelled_mid_way() -> None:
    results = _with_batch({"tests": "success", "prepare": "success", "candidate": "success", "gate": "success",
                           "promote": "cancelled"})
    assert _job_runs("rollback", results, cancelled=True) is True


def test_a_failed_batch_preparation_stops_the_release_before_traffic_moves() -> None:
    """The promotion waits for batch-prepare: a failed one means no traffic shift, no batch default,
    and the rollback job removes the candidate and the prepared batch deployment."""
    assert _job_runs("promote", BATCH_PREPARE_FAILED) is False
    assert _job_runs("batch", {**BATCH_PREPARE_FAILED, "batch": "skipped"}) is False
    assert _job_runs("rollback", BATCH_PREPARE_FAILED) is True
    # batch off on dispatch: batch-prepare is skipped, and the promotion does not wait for it
    off = _with_batch(ALL_PASSED, "skipped")
    assert _job_runs("batch-prepare", ALL_PASSED, event="workflow_dispatch", inputs={"refresh_batch": False}) is False
    assert _job_runs("promote", off, event="workflow_dispatch", inputs={"refresh_batch": False}) is True
    assert _job_runs("batch-prepare", ALL_PASSED) is True


def test_gate_and_promotion_run_only_for_a_deployed_candidate() -> None:
    assert _job_runs("gate", ALL_PASSED) is True
    assert _job_runs("gate", ALL_PASSED, candidate="") is False
    assert _job_runs("promote", ALL_PASSED) is True
    assert _job_runs("promote", _failed_at("gate")) is False
    assert _job_runs("promote", NOTHING_TO_RELEASE, candidate="") is False


@pytest.mark.parametrize("failed", ORDER)
def test_no_batch_refresh_after_a_failure(failed: str) -> None:
    assert _job_runs("batch", {**_failed_at(failed), "batch": "skipped"}) is False


def test_batch_refresh_after_a_promotion_or_nothing_to_release_and_optional_on_dispatch() -> None:
    assert _job_runs("batch", ALL_PASSED) is True
    assert _job_runs("batch", NOTHING_TO_RELEASE, candidate="") is True
    assert _job_runs("batch", ALL_PASSED, event="workflow_dispatch", inputs={"refresh_batch": True}) is True
    assert _job_runs("batch", ALL_PASSED, event="workflow_dispatch", inputs={"refresh_batch": False}) is False
    assert _job_runs("batch", ALL_PASSED, cancelled=True) is False


def _online_endpoint_name() -> str:
    config = yaml.safe_load((REPO / "mlops.yaml").read_text())
    endpoint_file = REPO / config["online"]["endpoint"]
    return yaml.safe_load(endpoint_file.read_text())["name"]


def test_one_release_per_endpoint_and_never_cancelled() -> None:
    concurrency = RELEASE["concurrency"]
    assert concurrency["group"] == f"release-{_online_endpoint_name()}"
    assert concurrency["cancel-in-progress"] is False


def test_no_push_can_cancel_a_pending_rollback() -> None:
    """GitHub cancels a group's pending run when another run enters the group (default ``queue:
    single``). Rollbacks have a group of their own that no push enters, and ``queue: max`` keeps every
    waiting rollback instead of the newest; a release awaiting approval does not hold it either."""
    rollback = WORKFLOWS["rollback.yml"]["concurrency"]
    assert rollback == {"group": f"rollback-{_online_endpoint_name()}", "cancel-in-progress": False, "queue": "max"}
    groups = {name: (w.get("concurrency") or {}).get("group") for name, w in WORKFLOWS.items()}
    assert [name for name, group in groups.items() if group == rollback["group"]] == ["rollback.yml"]
    assert set(WORKFLOWS["rollback.yml"]["on"]) == {"workflow_dispatch"}


def test_release_triggers_and_dispatch_inputs() -> None:
    on = RELEASE["on"]
    assert set(on) == {"push", "workflow_dispatch"}
    assert on["push"]["branches"] == ["main"]
    assert set(on["push"]["paths"]) == {"mlops.yaml", "models/**", "requirements/**", "endpoints/**",
                                        "environments/**", "load_tests/**", "mlops/**"}
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"model_source", "rollout_profile", "refresh_batch"}
    assert inputs["refresh_batch"]["type"] == "boolean"
    assert all(not spec.get("required") for spec in inputs.values()), "a dispatch must work with defaults"


def test_a_push_releases_the_model_the_commit_names() -> None:
    """mlops.yaml's model.path is a committed folder (or a registered reference / job): a push that
    changes it triggers the release, and a push releases it with no repository variable."""
    config = yaml.safe_load((REPO / "mlops.yaml").read_text())
    source = config["model"]["path"]
    if not re.match(r"^(azureml|job):", source):
        folder = REPO / source
        assert (folder / "model.pt").is_file(), f"mlops.yaml's model.path {source} holds no committed model.pt"
        changed = f"{source.rstrip('/')}/model.pt"  # fnmatch's * crosses '/', like GitHub's ** here
        assert any(fnmatch.fnmatch(changed, pattern) for pattern in RELEASE["on"]["push"]["paths"]), \
            f"a change to {source} does not trigger the release"
    register = next(s for _, _, s in steps(RELEASE) if s.get("id") == "register")
    assert "vars." not in str(register.get("env")), "a repository variable must not override what the commit names"


def test_versions_travel_in_job_outputs_and_the_record_as_an_artifact() -> None:
    jobs = {job_id: job for job_id, job in _jobs("release.yml").items() if "uses" not in job}
    assert set(jobs["prepare"]["outputs"]) >= {"model_version", "environment"}
    assert "candidate" in jobs["candidate"]["outputs"]
    assert "verdict" in jobs["gate"]["outputs"]
    for job_id, job in jobs.items():
        ids = {step.get("id") for step in job["steps"]}
        for value in (job.get("outputs") or {}).values():
            for step_id in re.findall(r"steps\.([\w-]+)\.outputs", value):
                assert step_id in ids, f"{job_id} outputs read step {step_id!r}, which it does not have"
        for step in job["steps"]:
            for value in (step.get("env") or {}).values():
                for needed in re.findall(r"needs\.([\w-]+)\.", str(value)):
                    assert needed in needs_of(job), f"{job_id} reads needs.{needed} without needing it"
        # batch-prepare runs beside the online jobs: its record is an artifact of its own, which the
        # batch and rollback jobs take over (`--prepared`); uploading release-record would race them
        record = "batch-prepared" if job_id == "batch-prepare" else "release-record"
        uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@")
                   and s["with"]["name"] == record]
        assert len(uploads) == 1, f"{job_id} must upload the release record once"
        assert uploads[0].get("if") == "always()", f"{job_id} must keep the record even when it fails"
        assert str(uploads[0]["with"].get("overwrite")).lower() == "true"
        if job_id != "prepare":
            assert any(str(s.get("uses", "")).startswith("actions/download-artifact@")
                       and s["with"]["name"] == "release-record" for s in job["steps"]), job_id
    for job_id in ("batch", "rollback"):
        assert any(str(s.get("uses", "")).startswith("actions/download-artifact@")
                   and s["with"]["name"] == "batch-prepared" for s in jobs[job_id]["steps"]), job_id
        assert any("--prepared" in str(s.get("run", "")) for s in jobs[job_id]["steps"]), job_id


def test_gate_keeps_the_locust_report() -> None:
    uploads = [s for s in _jobs("release.yml")["gate"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert any(".html" in s["with"]["path"] and s.get("if") == "always()" for s in uploads)


def test_manual_rollback_asks_github_before_it_trusts_the_runs_record() -> None:
    workflow = WORKFLOWS["rollback.yml"]
    assert set(workflow["on"]) == {"workflow_dispatch"}
    jobs = workflow["jobs"]
    assert set(jobs) == {"verify", "rollback"} and needs_of(jobs["rollback"]) == ["verify"]
    # the check holds no Azure token, only what the API call needs
    assert jobs["verify"]["permissions"] == {"actions": "read", "contents": "read"}
    check = next(s for s in jobs["verify"]["steps"] if "check_release_run.py" in str(s.get("run", "")))
    assert "inputs.release_run_id" in check["env"]["RUN_ID"] and "github.token" in check["env"]["GH_TOKEN"]
    assert (REPO / ".github" / "scripts" / "check_release_run.py").is_file()
    job = jobs["rollback"]
    download = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact@"))
    assert download["with"]["name"] == "release-record"
    assert "inputs.release_run_id" in download["with"]["run-id"]
    assert any("mlops rollback" in str(s.get("run", "")) for s in job["steps"])


def test_batch_scoring_runs_on_a_schedule_and_by_hand_and_keeps_the_output() -> None:
    workflow = WORKFLOWS["batch-score.yml"]
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    config = yaml.safe_load((REPO / "mlops.yaml").read_text())
    batch_endpoint = yaml.safe_load((REPO / config["batch"]["endpoint"]).read_text())["name"]
    assert workflow["env"]["BATCH_ENDPOINT"] == batch_endpoint
    assert workflow["concurrency"] == {"group": f"batch-score-{batch_endpoint}", "cancel-in-progress": False}
    (job,) = workflow["jobs"].values()
    assert any("mlops batch invoke" in str(s.get("run", "")) and "--wait" in str(s.get("run", ""))
               for s in job["steps"])
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert [u["with"]["name"] for u in uploads] == ["batch-output"]


# ---------------------------------------------------------------------------------------------
# every workflow: security


def starts_a_workflow(job: dict[str, Any]) -> bool:
    """A job whose only steps dispatch another workflow with ``gh workflow run``."""
    runs = [str(step.get("run", "")) for step in job.get("steps") or []]
    return bool(runs) and all(re.match(r"\s*gh workflow run ", run) for run in runs) \
        and not any("uses" in step for step in job.get("steps") or [])


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_least_permissions(name: str) -> None:
    workflow = WORKFLOWS[name]
    top = workflow.get("permissions")
    assert top in ({}, {"contents": "read"}), f"{name}: top-level permissions must be {{}} or contents: read"
    for job_id, job in workflow["jobs"].items():
        permissions = job.get("permissions", top) or {}
        writes = {scope for scope, level in permissions.items() if level != "read"}
        if logs_in_to_azure(job):
            assert permissions.get("id-token") == "write", f"{name}/{job_id} logs in without id-token: write"
            assert writes == {"id-token"}, f"{name}/{job_id}: no write scope besides id-token ({writes})"
        elif starts_a_workflow(job):  # `gh workflow run` needs actions: write, and nothing else
            assert writes == {"actions"}, f"{name}/{job_id} starts a workflow: actions: write only ({writes})"
        else:
            assert writes == set(), f"{name}/{job_id} does not log in to Azure: no write scope ({writes})"


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_azure_login_is_oidc_from_repository_variables(name: str) -> None:
    for job_id, index, step in steps(WORKFLOWS[name]):
        if str(step.get("uses", "")).startswith("azure/login@"):
            given = step.get("with") or {}
            assert set(given) == {"client-id", "tenant-id", "subscription-id"}, f"{name}/{job_id}#{index}: {given}"
            for key, value in given.items():
                assert re.fullmatch(r"\$\{\{\s*vars\.AZURE_[A-Z_]+\s*\}\}", str(value)), f"{key}: {value}"


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_jobs_that_log_in_give_mlops_the_ids_for_its_own_federated_credential(name: str) -> None:
    """azure/login's CLI session cannot get a new GitHub ID token once the first (valid ~5 min) expired
    (AADSTS700024); with ``AZURE_CLIENT_ID`` and ``AZURE_TENANT_ID`` in the job's environment - beside the
    ``ACTIONS_ID_TOKEN_REQUEST_*`` variables GitHub sets for ``id-token: write`` - the mlops process builds
    its own ``ClientAssertionCredential``, which asks GitHub for a fresh ID token per Azure token."""
    from mlops.workspace.azure.credential import CLIENT_ID_ENV, TENANT_ID_ENV

    for job_id, job in WORKFLOWS[name]["jobs"].items():
        if logs_in_to_azure(job):
            env = job.get("env") or {}
            for variable in (CLIENT_ID_ENV, TENANT_ID_ENV):
                assert re.fullmatch(rf"\$\{{\{{\s*vars\.{variable}\s*\}}\}}", str(env.get(variable, ""))), \
                    f"{name}/{job_id}: env {variable} must be ${{{{ vars.{variable} }}}} ({env})"
        for index, step in enumerate(job.get("steps") or []):  # and nothing relies on the CLI's session
            assert not re.search(r"^\s*(exec\s+)?az\s", str(step.get("run", "")), re.MULTILINE), \
                f"{name}/{job_id}#{index} runs the Azure CLI, whose token expires after ~5 minutes"


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_mlops_command_runs_after_the_login(name: str) -> None:
    """Before ``azure/login`` an ``mlops`` command would meet Azure without credentials."""
    for job_id, job in WORKFLOWS[name]["jobs"].items():
        logged_in = False
        for index, step in enumerate(job.get("steps") or []):
            logged_in = logged_in or str(step.get("uses", "")).startswith("azure/login@")
            if re.search(r"^\s*(exec\s+)?mlops ", str(step.get("run", "")), re.MULTILINE) and name != "ci.yml":
                assert logged_in, f"{name}/{job_id}#{index} runs mlops before azure/login"


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_no_dangerous_triggers_and_no_stored_secrets(name: str) -> None:
    text = (REPO / ".github" / "workflows" / name).read_text()
    assert "pull_request_target" not in WORKFLOWS[name]["on"]
    assert "secrets." not in text and "creds:" not in text


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_no_expressions_inside_run(name: str) -> None:
    offenders = [f"{job_id}#{index}" for job_id, index, step in steps(WORKFLOWS[name]) if "${{" in str(step.get("run", ""))]
    assert offenders == [], f"{name}: pass values through env:, not ${{{{ }}}} in run: ({offenders})"


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.name)
def test_actions_pinned_to_a_commit_sha_with_the_version_in_a_comment(path: Path) -> None:
    comments = uses_comment_versions(path)
    for job_id, index, step in steps(WORKFLOWS[path.name]):
        uses = step.get("uses")
        if uses is None or str(uses).startswith(SELF_REPOSITORY):
            continue
        assert PINNED_USES.match(str(uses)), f"{path.name}/{job_id}#{index}: {uses} is not pinned to a SHA"
        assert uses in comments, f"{path.name}/{job_id}#{index}: {uses} has no '# vX.Y.Z' comment"
        action, sha = str(uses).split("@")
        assert action in PINNED_ACTIONS, f"{path.name}/{job_id}#{index}: {action} is not one of {sorted(PINNED_ACTIONS)}"
        assert (sha, comments[uses]) == PINNED_ACTIONS[action], f"{path.name}/{job_id}#{index}: {uses} # {comments[uses]}"
        if str(uses).startswith("actions/checkout@"):
            assert str((step.get("with") or {}).get("persist-credentials")).lower() == "false"


def test_one_sha_per_action_across_workflows() -> None:
    """The same action at two SHAs is a pin that was half-updated."""
    pins: dict[str, set[str]] = {}
    for path in workflow_paths():
        for pinned, version in uses_comment_versions(path).items():
            action, sha = pinned.split("@")
            pins.setdefault(action, set()).add(f"{sha} {version}")
    assert {a: v for a, v in pins.items() if len(v) > 1} == {}


_LOCKED_INSTALL = re.compile(
    r'^python -m pip install --require-hashes --no-deps --only-binary :all: --extra-index-url "\$TORCH_CPU_INDEX" '
    r"-r requirements/release\.txt$")
_PROJECT_INSTALL = "python -m pip install --no-deps --no-build-isolation --no-index ."


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_jobs_that_can_mint_the_azure_token_install_only_the_hashed_lock(name: str) -> None:
    """pip's hash-checking mode for every package (torch's CPU index can supply only the file whose
    hash the lock holds); the project itself from the checkout, with the lock's build backend."""
    workflow = WORKFLOWS[name]
    for job_id, job in workflow["jobs"].items():
        if not logs_in_to_azure(job):
            continue
        installs = [line.strip() for s in job["steps"] for line in str(s.get("run", "")).splitlines()
                    if re.search(r"\bpip3?\s+install\b", line)]
        assert installs == [_PROJECT_INSTALL] or (
            len(installs) == 2 and _LOCKED_INSTALL.match(installs[0]) and installs[1] == _PROJECT_INSTALL
        ), f"{name}/{job_id} installs {installs}"
    env = workflow.get("env") or {}
    if any(logs_in_to_azure(job) for job in workflow["jobs"].values()):
        assert "PIP_EXTRA_INDEX_URL" not in env and "PIP_INDEX_URL" not in env
        assert env.get("TORCH_CPU_INDEX") == "https://download.pytorch.org/whl/cpu"


def _scripts_running_mlops() -> list[Any]:
    found = []
    for name, workflow in WORKFLOWS.items():
        for job_id, index, step in steps(workflow):
            script = str(step.get("run", ""))
            if re.search(r"(^|\s)mlops\s", script) and name != "ci.yml":
                found.append(pytest.param(script, id=f"{name}/{job_id}#{index}"))
    return found


@pytest.mark.parametrize("script", _scripts_running_mlops())
def test_mlops_is_execed_as_the_last_command_of_its_step(script: str) -> None:
    """The runner signals the step's pid only: with ``exec`` that pid is mlops, not a waiting bash."""
    lines = [line.strip() for line in re.sub(r"\\\n\s*", " ", script).splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert re.match(r"^exec mlops ", lines[-1]), lines[-1]
    assert not any(re.search(r"(^|[\s;&|])mlops\s", line) for line in lines[:-1]), lines


# ---------------------------------------------------------------------------------------------
# every mlops command line parses with the real CLI


def _tokens(text: str) -> list[str]:
    """Shell words, keeping ``${VAR:+--flag "$VAR"}`` as one word; quotes removed."""
    words = re.findall(r"\$\{\w+:\+[^}]*\}|\"[^\"]*\"|'[^']*'|\S+", text)
    return [w if w.startswith("${") else w.strip("\"'") for w in words]


def _mlops_command_lines() -> list[Any]:
    found: list[Any] = []
    for name, workflow in WORKFLOWS.items():
        for job_id, index, step in steps(workflow):
            script = re.sub(r"\\\n\s*", " ", str(step.get("run", "")))
            for line in script.splitlines():
                line = re.sub(r"^exec\s+", "", line.strip())
                if line.startswith("mlops "):
                    found.append(pytest.param(line, id=f"{name}/{job_id}#{index}"))
    return found


def _expand(words: list[str]) -> list[list[str]]:
    """Each ``${VAR:+--flag "$VAR"}`` both present and absent; ``$VAR`` -> a placeholder value."""
    variants: list[list[list[str]]] = []
    for word in words:
        optional = re.fullmatch(r"\$\{(\w+):\+(.*)\}", word)
        if optional:
            inner = [re.sub(r"\$\{?\w+\}?", "value", w) for w in _tokens(optional.group(2))]
            variants.append([[], inner])
        else:
            variants.append([[re.sub(r"\$\{?\w+\}?", "value", word)]])
    return [list(itertools.chain.from_iterable(choice)) for choice in itertools.product(*variants)]


def test_workflows_call_the_release_commands() -> None:
    commands = {_tokens(param.values[0])[1] for param in _mlops_command_lines()}
    assert {"register", "environment", "deploy", "loadtest", "gate", "promote", "batch-refresh",
            "rollback", "batch"} <= commands


@pytest.mark.parametrize("line", _mlops_command_lines())
def test_every_mlops_command_line_parses(line: str) -> None:
    from mlops.cli import build_parser

    words = _tokens(line)[1:]
    for stop, word in enumerate(words):  # the command ends at a redirection, pipe or list operator
        if re.fullmatch(r"\d?>>?|\||&&|\|\||;", word):
            words = words[:stop]
            break
    for argv in _expand(words):
        try:
            build_parser().parse_args(argv)
        except SystemExit as error:
            pytest.fail(f"`mlops {' '.join(argv)}` is not a valid command line (exit {error.code})")
