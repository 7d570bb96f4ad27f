"""A rehearsal runner: plays a GitHub Actions workflow on this machine, job by job, step by step.

Why: the release workflow's correctness is mostly *wiring* - which job runs after which, which
condition lets the rollback run, how a version flows from one job's ``$GITHUB_OUTPUT`` into the next
job's ``env:``, which files survive from one job to the next (only artifacts do). None of that can
be tested by running the ``mlops`` commands by hand. This runner does what the GitHub runner does,
close enough to catch wiring mistakes:

* jobs in ``needs`` order, each with its ``if:`` (default ``success()``; ``failure()`` looks at all
  ancestor jobs, as on GitHub); a job whose condition is false is ``skipped``. A job that calls a
  reusable workflow of the same repository (``uses: $/.github/workflows/X.yml`` or ``./...``) is
  checked (the file exists and declares ``on: workflow_call``) and takes the result the test gives
  in ``called_workflows`` - the rehearsal does not run a whole nested workflow (``ci.yml`` is the
  test suite that runs this very rehearsal);
* every job starts from a FRESH copy of the repository (``actions/checkout``), so a job can only
  see what an earlier job uploaded as an artifact;
* ``env:`` at workflow, job and step level, ``${{ }}`` resolved by ``expressions.py`` with the
  ``github``, ``inputs``, ``vars``, ``secrets``, ``env``, ``needs``, ``steps``, ``job`` and ``runner``
  contexts; real ``GITHUB_OUTPUT``, ``GITHUB_ENV``, ``GITHUB_PATH`` and ``GITHUB_STEP_SUMMARY`` files
  per step; ``run:`` scripts executed by ``bash --noprofile --norc -eo pipefail`` like the runner;
* cancelling a run (``cancel=Cancel(job, step, when)``) or a step running past its timeout does what
  the runner does (actions/runner ``src/Runner.Sdk/ProcessInvoker.cs``, ``CancelAndKillProcessTree``):
  SIGINT to the step's process - its pid only, not its group - then SIGTERM after 7.5 s, then a
  kill of the whole process tree 2.5 s later. The run is then cancelled: the job's remaining steps
  run only under ``always()``/``cancelled()``, the job's result is ``cancelled``, and later jobs see
  ``cancelled()`` true and ``success()`` false (a job that does run, e.g. ``if: cancelled()``, runs
  its own steps normally);
* the GitHub REST API a step may call (``$GITHUB_API_URL``) is a loopback server that answers
  ``GET /repos/{repo}/actions/runs/{id}`` from ``github_runs`` (run objects shaped like the API's,
  see ``Rehearsal.run_object``): each job's ``GITHUB_TOKEN`` carries that job's ``permissions`` -
  without ``actions: read`` the answer is 403, a run of another repository is 404;
* ``uses:`` steps are simulated, each only at the commit ``workflow_files.PINNED_ACTIONS`` names
  (another pin fails the step: its behaviour is not the one simulated): checkout v7 (copy;
  ``persist-credentials: false`` required), setup-python v7 (checked, no-op), azure/login v3
  (checked to be OIDC, then ``MLOPS_WORKSPACE`` points at the local workspace standing in for
  Azure), upload-artifact v7 and download-artifact v8 (folders, with their root-directory,
  hidden-file, overwrite, not-found and ``archive: false`` single-file rules; another run's
  artifacts need ``github-token`` and the job's ``actions: read``). A ``run:`` step that only
  ``pip install``-s is simulated too (the package is already installed), after checking that every
  ``-r`` file it names is in the checkout. Any other action makes the rehearsal fail: it must know
  every step.

Environments with required reviewers (``environment: production``) are approved automatically;
the job records which environment it ran in, and ``environment_vars`` gives each environment's own
variables, which win over the repository's for jobs in it (GitHub: an environment variable takes
precedence over a repository variable of the same name). ``azure/login`` records the client id each
job logged in with (``JobRun.client_id``), so a test sees which identity did what. With
``endpoint_writers`` the identities' Azure roles are modelled too: a job logged in as a client
outside that set (the release identity) gets Azure's 403 AuthorizationFailed for any change of an
online endpoint - creation, traffic, mirror, tags (``rbac_site/sitecustomize.py``).

``azure/login`` also plays Entra ID's token exchange when ``federated_credentials`` (client id ->
the subjects its federated credentials trust) is given: the job's OIDC subject must be one of its
client's, exactly, else the step fails with AADSTS700213 as Entra does. The subject is GitHub's
default: ``repo:OWNER/REPO:`` then ``environment:NAME`` for a job in an environment, else
``ref:<ref>`` (``pull_request`` for pull requests) - with the owner's and repository's numeric ids
(``repo:OWNER@OWNER_ID/REPO@REPO_ID:...``) when ``immutable_subjects`` is on, the default for
repositories created or renamed on or after 2026-07-15 (GitHub changelog 2026-04-23, "Immutable
subject claims for GitHub Actions OIDC tokens").
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.loopback import LoopbackServer
from tests.workflows.expressions import Context, condition, interpolate, to_string
from tests.workflows.workflow_files import PINNED_ACTIONS, SELF_REPOSITORY, load_workflow, needs_of

_MACHINE_MLOPS_VARIABLES = ("MLOPS_VENV_CACHE",)
"""Machine settings (not release settings) a runner would have too: the shared venv cache."""

_UNSUPPORTED_JOB_KEYS = {"strategy", "container", "services", "defaults"}
"""Features the rehearsal would get wrong; a workflow using them makes it fail loudly instead."""

_INSTALL_LINE = re.compile(r"^\s*(python3?\s+-m\s+)?pip3?\s+install\b.*$")
_REQUIREMENT_FILE = re.compile(r"(?:^|\s)(?:-r|--requirement)[=\s]+(\S+)")


@dataclass(frozen=True)
class Cancel:
    """Cancel the run while ``job``'s step ``step`` runs, as soon as ``when(output so far)`` is true
    (someone pressing "Cancel workflow" at that moment)."""

    job: str
    step: str
    when: Callable[[str], bool]


@dataclass
class StepRun:
    index: int
    id: str | None
    name: str
    outcome: str  # success | failure | cancelled | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""
    command: str = ""


@dataclass
class JobRun:
    id: str
    result: str  # success | failure | cancelled | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepRun] = field(default_factory=list)
    environment: str | None = None
    summary: str = ""
    client_id: str | None = None

    def log(self) -> str:
        return "\n".join(f"--- {self.id} step {s.index} [{s.name}] {s.outcome}\n{s.log[-4000:]}" for s in self.steps)


@dataclass
class Rehearsal:
    """One workflow run. ``source`` is the repository as checked out; ``root`` holds the jobs'
    workspaces, the artifacts and the logs; ``workspace_uri`` is what ``azure/login`` stands for."""

    workflow_path: Path
    source: Path
    root: Path
    workspace_uri: str
    event_name: str = "push"
    inputs: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    ref: str = "refs/heads/main"
    step_timeout: float = 600.0
    run_id: str = "1"
    earlier_runs: dict[str, Path] = field(default_factory=dict)
    """Artifacts of earlier runs by run id, for ``download-artifact`` with ``run-id``."""
    github_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What the fake REST API knows: workflow-run objects by run id (``Rehearsal.run_object``)."""
    called_workflows: dict[str, str] = field(default_factory=dict)
    environment_vars: dict[str, dict[str, str]] = field(default_factory=dict)
    """Result of each reusable workflow a job calls, by file name (``{"ci.yml": "success"}``)."""
    cancel: Cancel | None = None
    sigint_timeout: float = 7.5
    sigterm_timeout: float = 2.5
    repository: str = "example/mlops"
    owner_id: int = 1001
    repository_id: int = 2002
    immutable_subjects: bool = True
    federated_credentials: dict[str, set[str]] | None = None
    endpoint_writers: set[str] | None = None
    """Client ids whose Azure role holds onlineEndpoints/write (the production identity's); a step of
    a job logged in as any other client runs under ``rbac_site/sitecustomize.py``, which refuses
    every change of an online endpoint with Azure's 403. ``None``: no RBAC model."""
    jobs: dict[str, JobRun] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workflow = load_workflow(self.workflow_path)
        self.artifacts = self.root / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.cancelled = False
        self._tokens: dict[str, dict[str, str]] = {}
        self._api: LoopbackServer | None = None
        self.github = {
            "event_name": self.event_name,
            "ref": self.ref,
            "ref_name": self.ref.rsplit("/", 1)[-1],
            "sha": "0" * 40,
            "repository": self.repository,
            "repository_owner": self.repository.split("/", 1)[0],
            "run_id": self.run_id,
            "run_attempt": "1",
            "actor": "rehearsal",
            "workflow": self.workflow.get("name", self.workflow_path.stem),
            "server_url": "https://github.invalid",
            "token": "rehearsal-token",
            "event": {"inputs": self._inputs()} if self.event_name == "workflow_dispatch" else {},
        }

    # -----------------------------------------------------------------------------------------
    # the run

    def _inputs(self) -> dict[str, Any]:
        if self.event_name != "workflow_dispatch":
            return {}
        declared = ((self.workflow["on"] or {}).get("workflow_dispatch") or {}).get("inputs") or {}
        unknown = set(self.inputs) - set(declared)
        if unknown:
            raise ValueError(f"inputs not declared by the workflow: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            value = self.inputs.get(name, spec.get("default", ""))
            if spec.get("type") == "boolean":
                value = value if isinstance(value, bool) else str(value).lower() == "true"
            values[name] = value
        return values

    def run(self) -> dict[str, JobRun]:
        self._api = _start_api(self)
        try:
            for job_id in self._job_order():
                self.jobs[job_id] = self._run_job(job_id, self.workflow["jobs"][job_id])
        finally:
            self._api.stop()
        return self.jobs

    def conclusion(self) -> str:
        results = {job.result for job in self.jobs.values()}
        return "cancelled" if self.cancelled else "failure" if "failure" in results else "success"

    def run_object(self) -> dict[str, Any]:
        """This run as GitHub's REST API describes a workflow run ("Get a workflow run"): the fields
        a caller checks (path, head_branch, event, status, conclusion, repository, head_repository)."""
        return {
            "id": int(self.run_id), "name": self.github["workflow"],
            "path": f".github/workflows/{self.workflow_path.name}", "head_branch": self.github["ref_name"],
            "head_sha": self.github["sha"], "event": self.event_name, "status": "completed",
            "conclusion": self.conclusion(), "run_attempt": 1,
            "html_url": f"{self.github['server_url']}/{self.repository}/actions/runs/{self.run_id}",
            "repository": {"full_name": self.repository}, "head_repository": {"full_name": self.repository},
        }

    def oidc_subject(self, environment: str | None) -> str:
        """The ``sub`` claim of a job's OIDC token (GitHub's default subject template)."""
        owner, name = self.repository.split("/", 1)
        repo = f"repo:{owner}@{self.owner_id}/{name}@{self.repository_id}" if self.immutable_subjects \
            else f"repo:{self.repository}"
        if environment:
            return f"{repo}:environment:{environment}"
        if self.event_name.startswith("pull_request"):
            return f"{repo}:pull_request"
        return f"{repo}:ref:{self.ref}"

    def _permissions(self, job: dict[str, Any]) -> dict[str, str]:
        permissions = job.get("permissions", self.workflow.get("permissions"))
        if permissions is None:  # GitHub's default for a workflow that says nothing (restricted mode)
            return {"contents": "read", "packages": "read", "metadata": "read"}
        if isinstance(permissions, str):  # read-all / write-all
            level = permissions.split("-", 1)[0]
            return {scope: level for scope in ("actions", "contents", "id-token", "packages", "metadata")}
        return {str(k): str(v) for k, v in permissions.items()}

    def _job_order(self) -> list[str]:
        jobs = self.workflow["jobs"]
        order: list[str] = []
        pending = list(jobs)
        while pending:
            ready = [j for j in pending if all(n in order for n in needs_of(jobs[j]))]
            if not ready:
                raise ValueError(f"cycle or unknown job in needs: {pending}")
            order.append(ready[0])
            pending.remove(ready[0])
        return order

    def _ancestors(self, job_id: str) -> set[str]:
        seen: set[str] = set()
        stack = list(needs_of(self.workflow["jobs"][job_id]))
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(needs_of(self.workflow["jobs"][name]))
        return seen

    def _base_context(self, env: dict[str, str], environment: str | None = None) -> dict[str, Any]:
        return {
            "github": self.github,
            "inputs": self._inputs(),
            "vars": {**self.vars, **self.environment_vars.get(environment or "", {})},
            "secrets": {},
            "env": env,
            "runner": {"os": "Linux", "arch": "X64", "temp": str(self.root / "runner-temp")},
        }

    def _run_job(self, job_id: str, job: dict[str, Any]) -> JobRun:
        unsupported = (_UNSUPPORTED_JOB_KEYS & set(job)) | ({"defaults"} & set(self.workflow))
        for step in job.get("steps") or []:
            unsupported |= {key for key in ("continue-on-error",) if key in step}
            if step.get("shell", "bash") != "bash":
                unsupported.add(f"shell: {step['shell']}")
        if unsupported:
            raise ValueError(f"job {job_id} uses {sorted(unsupported)}, which the rehearsal does not simulate")
        ancestors = self._ancestors(job_id)
        needs_ctx = {
            name: {"result": self.jobs[name].result, "outputs": self.jobs[name].outputs}
            for name in needs_of(job)
        }
        token = f"ghs_rehearsal_{self.run_id}_{job_id}"
        self._tokens[token] = self._permissions(job)
        self.github["token"] = token
        workflow_env = self._evaluate_env(self.workflow.get("env") or {}, Context(self._base_context({})))
        job_ctx = Context(
            {**self._base_context(workflow_env), "needs": needs_ctx},
            status={
                "success": lambda: all(self.jobs[a].result == "success" for a in ancestors) and not self.cancelled,
                "failure": lambda: any(self.jobs[a].result == "failure" for a in ancestors),
                "cancelled": lambda: self.cancelled,
                "always": lambda: True,
            },
        )
        if not condition(job.get("if"), job_ctx):
            return JobRun(job_id, "skipped")
        if "uses" in job:
            return self._call_workflow(job_id, job)

        environment = job.get("environment")
        if isinstance(environment, dict):
            environment = environment.get("name")
        env = {**workflow_env, **self._evaluate_env(job.get("env") or {}, job_ctx)}
        job_dir = self.root / "jobs" / job_id
        workspace = job_dir / "workspace"
        workspace.mkdir(parents=True)
        (job_dir / "tmp").mkdir()
        run = JobRun(job_id, "success", environment=environment)
        state = _JobState(workspace=workspace, job_dir=job_dir, env=env, logged_in=False, job_id=job_id,
                          environment=environment)
        steps_ctx: dict[str, Any] = {}
        failed = False
        for index, step in enumerate(job.get("steps") or []):
            hit = state.cancelled
            ctx = Context(
                {**self._base_context(state.env, environment), "needs": needs_ctx, "steps": steps_ctx,
                 "job": {"status": "cancelled" if hit else "failure" if failed else "success"}},
                status={
                    "success": lambda f=failed, c=hit: not f and not c,
                    "failure": lambda f=failed: f,
                    "cancelled": lambda c=hit: c,
                    "always": lambda: True,
                },
            )
            name = str(step.get("name") or step.get("uses") or step.get("run", "")).splitlines()[0]
            if not condition(step.get("if"), ctx):
                result = StepRun(index, step.get("id"), name, "skipped")
            else:
                result = self._run_step(index, step, name, ctx, state, job_id)
            run.steps.append(result)
            if result.id:
                steps_ctx[result.id] = {"outputs": result.outputs, "outcome": result.outcome,
                                        "conclusion": result.outcome}
            if result.outcome == "failure" and not step.get("continue-on-error"):
                failed = True
        run.result = "cancelled" if state.cancelled else "failure" if failed else "success"
        run.client_id = state.client_id
        outputs_ctx = Context({**self._base_context(state.env), "needs": needs_ctx, "steps": steps_ctx})
        run.outputs = {k: to_string(interpolate(v, outputs_ctx)) for k, v in (job.get("outputs") or {}).items()}
        run.summary = "".join(p.read_text() for p in sorted(job_dir.glob("summary-*.md"), key=_index_of))
        return run

    def _call_workflow(self, job_id: str, job: dict[str, Any]) -> JobRun:
        uses = str(job["uses"])
        prefix = next((p for p in SELF_REPOSITORY if uses.startswith(p)), None)
        if prefix is None or "@" in uses:
            raise ValueError(f"job {job_id} calls {uses!r}: the rehearsal knows only reusable workflows of "
                             f"the same repository ({' or '.join(SELF_REPOSITORY)}path)")
        called = self.source / uses[len(prefix):]
        if not called.is_file():
            return JobRun(job_id, "failure", steps=[StepRun(0, None, uses, "failure",
                                                              log=f"no workflow at {called}")])
        on = load_workflow(called).get("on") or {}
        if "workflow_call" not in (on if isinstance(on, (dict, list)) else [on]):
            return JobRun(job_id, "failure", steps=[StepRun(0, None, uses, "failure",
                                                              log=f"{called.name} has no on: workflow_call")])
        if called.name not in self.called_workflows:
            raise ValueError(f"job {job_id} calls {called.name}: give its result in called_workflows")
        result = self.called_workflows[called.name]
        return JobRun(job_id, result, steps=[StepRun(0, None, uses, result, log=f"called {called.name}: {result}")])

    def _evaluate_env(self, env: dict[str, Any], ctx: Context) -> dict[str, str]:
        resolved: dict[str, str] = {}
        for key, value in env.items():
            resolved[str(key)] = to_string(interpolate(value, ctx))
        return resolved

    # -----------------------------------------------------------------------------------------
    # steps

    def _run_step(self, index: int, step: dict[str, Any], name: str, ctx: Context, state: _JobState,
                  job_id: str) -> StepRun:
        step_env = {**state.env, **self._evaluate_env(step.get("env") or {}, ctx)}
        if "uses" in step:
            with_ = {str(k): to_string(interpolate(v, Context({**ctx.values, "env": step_env}, ctx.status)))
                     for k, v in (step.get("with") or {}).items()}
            try:
                log = self._simulate_action(str(step["uses"]), with_, state, job_id)
            except _StepFailed as error:
                return StepRun(index, step.get("id"), name, "failure", log=str(error))
            return StepRun(index, step.get("id"), name, "success", log=log)
        script = str(step["run"])
        if "${{" in script:
            raise ValueError(f"job {job_id} step {name!r}: ${{{{ }}}} inside run: (pass values through env:)")
        lines = [line for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
        if lines and all(_INSTALL_LINE.match(line) for line in lines):
            missing = [f for line in lines for f in _REQUIREMENT_FILE.findall(line)
                       if not (state.workspace / f.strip("\"'")).is_file()]
            if missing:
                return StepRun(index, step.get("id"), name, "failure", log=f"pip: no such file {missing}")
            return StepRun(index, step.get("id"), name, "success", log="simulated: the package is installed")
        return self._run_script(index, step, name, script, step_env, state)

    def _run_script(self, index: int, step: dict[str, Any], name: str, script: str, env: dict[str, str],
                    state: _JobState) -> StepRun:
        files = {key: state.job_dir / f"{key.lower()}-{index}" for key in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH")}
        summary = state.job_dir / f"summary-{index}.md"
        for path in (*files.values(), summary):
            path.touch()
        script_file = state.job_dir / "tmp" / f"step-{index}.sh"
        script_file.write_text(script)
        full_env = {
            **_machine_env(),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(state.workspace),
            "GITHUB_EVENT_NAME": self.event_name,
            "GITHUB_REF": self.ref,
            "GITHUB_SHA": self.github["sha"],
            "GITHUB_REPOSITORY": self.github["repository"],
            "GITHUB_RUN_ID": self.github["run_id"],
            "GITHUB_RUN_ATTEMPT": self.github["run_attempt"],
            "GITHUB_ACTOR": self.github["actor"],
            "GITHUB_WORKFLOW": self.github["workflow"],
            "GITHUB_JOB": state.job_dir.name,
            "GITHUB_STEP_SUMMARY": str(summary),
            "RUNNER_OS": "Linux",
            "RUNNER_TEMP": str(state.job_dir / "tmp"),
            **{key: str(path) for key, path in files.items()},
            **env,
        }
        if state.extra_path:
            full_env["PATH"] = os.pathsep.join([*state.extra_path, full_env["PATH"]])
        if state.logged_in:
            full_env["MLOPS_WORKSPACE"] = self.workspace_uri
            if self.endpoint_writers is not None and state.client_id not in self.endpoint_writers:
                full_env["MLOPS_REHEARSAL_DENIED_CLIENT"] = state.client_id or ""
                full_env["PYTHONPATH"] = os.pathsep.join(
                    p for p in (str(Path(__file__).parent / "rbac_site"), full_env.get("PYTHONPATH", "")) if p)
        full_env["GITHUB_API_URL"] = f"http://127.0.0.1:{self._api.port}" if self._api else ""
        cwd = state.workspace / str(step.get("working-directory", "."))
        log_file = state.job_dir / f"step-{index}.log"
        cancel = self.cancel if self.cancel and (self.cancel.job, self.cancel.step) == (state.job_id, name) else None
        with log_file.open("wb") as sink:
            proc = subprocess.Popen(  # noqa: S603 - bash on a script this test wrote
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
                cwd=cwd, env=full_env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: the tree the runner kills at the end
            )
            deadline = time.monotonic() + self.step_timeout
            note = ""
            while proc.poll() is None:
                if cancel is not None and cancel.when(log_file.read_text(errors="replace")):
                    self.cancelled = state.cancelled = True
                    note = "the run was cancelled: " + self._stop(proc)
                    break
                if time.monotonic() > deadline:
                    note = f"timed out after {self.step_timeout}s: " + self._stop(proc)
                    break
                time.sleep(0.2)
        code = proc.wait()
        log = log_file.read_text(errors="replace") + (f"\n{note}" if note else "")
        outputs = _parse_key_values(files["GITHUB_OUTPUT"].read_text())
        state.env.update(_parse_key_values(files["GITHUB_ENV"].read_text()))
        state.extra_path[:0] = [p for p in files["GITHUB_PATH"].read_text().splitlines() if p.strip()]
        outcome = "cancelled" if note.startswith("the run was cancelled") else "success" if code == 0 and not note \
            else "failure"
        return StepRun(index, step.get("id"), name, outcome, outputs=outputs,
                       log=f"$ {script.strip()}\n(exit {code})\n{log}", command=script.strip())

    def _stop(self, proc: subprocess.Popen) -> str:
        """The runner's cancellation of a step: SIGINT to its pid, SIGTERM to its pid, then the tree."""
        for sig, wait in ((signal.SIGINT, self.sigint_timeout), (signal.SIGTERM, self.sigterm_timeout)):
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                return f"exited before {sig.name}"
            try:
                proc.wait(timeout=wait)
                return f"exited {proc.returncode} after {sig.name}"
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return "ignored SIGINT and SIGTERM: process tree killed"

    # -----------------------------------------------------------------------------------------
    # simulated actions

    def _simulate_action(self, uses: str, with_: dict[str, str], state: _JobState, job_id: str) -> str:
        action, _, ref = uses.partition("@")
        action = action.lower()
        if action in PINNED_ACTIONS and ref != PINNED_ACTIONS[action][0]:
            sha, version = PINNED_ACTIONS[action]
            raise _StepFailed(f"the rehearsal simulates {action} {version} ({sha}); this step uses {uses}")
        if action == "actions/checkout":
            if with_.get("persist-credentials", "true").lower() != "false":
                raise _StepFailed("checkout without persist-credentials: false")
            shutil.copytree(self.source, state.workspace, symlinks=True, dirs_exist_ok=True)
            return f"checked out {self.source}"
        if action == "actions/setup-python":
            version = with_.get("python-version", "")
            if not version.startswith(f"{sys.version_info.major}.{sys.version_info.minor}"):
                raise _StepFailed(f"setup-python {version!r} but the rehearsal runs Python "
                                  f"{sys.version_info.major}.{sys.version_info.minor}")
            return f"python {version}"
        if action == "azure/login":
            missing = [k for k in ("client-id", "tenant-id", "subscription-id") if not with_.get(k)]
            if missing or "creds" in with_:
                raise _StepFailed(f"azure/login must use OIDC (client-id, tenant-id, subscription-id); "
                                  f"missing {missing}, creds given: {'creds' in with_}")
            permissions = self.workflow["jobs"][job_id].get("permissions") or {}
            if permissions.get("id-token") != "write":
                raise _StepFailed("azure/login by OIDC needs permissions: id-token: write on the job")
            subject = self.oidc_subject(state.environment)
            if self.federated_credentials is not None \
                    and subject not in self.federated_credentials.get(with_["client-id"], set()):
                raise _StepFailed(f"AADSTS700213: No matching federated identity record found for presented "
                                  f"assertion subject '{subject}' (application {with_['client-id']})")
            state.logged_in = True
            state.client_id = with_["client-id"]
            return f"logged in: MLOPS_WORKSPACE={self.workspace_uri} stands for the Azure ML workspace"
        if action == "actions/upload-artifact":
            return self._upload(with_, state)
        if action == "actions/download-artifact":
            return self._download(with_, state)
        raise _StepFailed(f"the rehearsal does not know the action {uses!r}")

    def _upload(self, with_: dict[str, str], state: _JobState) -> str:
        name = with_.get("name") or "artifact"
        archive = with_.get("archive", "true").lower() != "false"
        patterns = [p.strip() for p in with_.get("path", "").splitlines() if p.strip()]
        includes = [p for p in patterns if not p.startswith("!")]
        excludes = [p[1:] for p in patterns if p.startswith("!")]
        hidden_ok = with_.get("include-hidden-files", "false").lower() == "true"
        files: set[Path] = set()
        search_roots: list[Path] = []
        for pattern in includes:
            absolute = state.workspace / pattern
            parts = Path(pattern).parts
            plain = [p for p in parts if not glob.has_magic(p)] if glob.has_magic(pattern) else list(parts)
            search = state.workspace.joinpath(*parts[: len(plain)]) if glob.has_magic(pattern) else absolute
            for match in glob.glob(str(absolute), recursive=True):
                path = Path(match)
                if path.is_dir():
                    files.update(p for p in path.rglob("*") if p.is_file())
                else:
                    files.add(path)
            search_roots.append(search if search.is_dir() else search.parent)
        files = {
            f for f in files
            if not any(fnmatch.fnmatch(str(f.relative_to(state.workspace)), e.rstrip("/") + "*") for e in excludes)
            and (hidden_ok or not any(part.startswith(".") for part in f.relative_to(state.workspace).parts))
        }
        if not files:
            policy = with_.get("if-no-files-found", "warn")
            if policy == "error":
                raise _StepFailed(f"upload-artifact {name}: no files found at {patterns}")
            return f"upload-artifact {name}: no files found ({policy})"
        if not archive:  # v7: one file, uploaded as it is, named after the file (`name` ignored)
            if len(files) != 1:
                raise _StepFailed(f"upload-artifact with archive: false takes one file, found {len(files)}")
            name = next(iter(files)).name
            search_roots = [next(iter(files)).parent]
        root = Path(os.path.commonpath([str(p) for p in search_roots]))
        target = self.artifacts / name
        if target.exists():
            if with_.get("overwrite", "false").lower() != "true":
                raise _StepFailed(f"upload-artifact: an artifact named {name!r} already exists (overwrite: false)")
            shutil.rmtree(target)
        for file in files:
            destination = target / file.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, destination)
        return f"uploaded {len(files)} file(s) as {name}"

    def _download(self, with_: dict[str, str], state: _JobState) -> str:
        destination = state.workspace / with_.get("path", ".")
        name = with_.get("name")
        artifacts = self.artifacts
        if with_.get("run-id") and with_["run-id"] != self.run_id:  # another run's: token + actions: read
            if not with_.get("github-token"):
                raise _StepFailed("download-artifact with run-id needs github-token")
            if self._tokens.get(with_["github-token"], {}).get("actions") not in ("read", "write"):
                raise _StepFailed("download-artifact from another run: the token lacks actions: read (403)")
            if with_["run-id"] not in self.earlier_runs:
                raise _StepFailed(f"download-artifact: no run {with_['run-id']!r}")
            artifacts = self.earlier_runs[with_["run-id"]]
        names = [name] if name else sorted(p.name for p in artifacts.iterdir())
        for item in names:
            source = artifacts / item
            if not source.is_dir():
                raise _StepFailed(f"download-artifact: artifact {item!r} not found")
            shutil.copytree(source, destination if name else destination / item, dirs_exist_ok=True)
        return f"downloaded {names} into {destination}"


@dataclass
class _JobState:
    workspace: Path
    job_dir: Path
    env: dict[str, str]
    logged_in: bool
    job_id: str = ""
    cancelled: bool = False
    environment: str | None = None
    client_id: str | None = None
    extra_path: list[str] = field(default_factory=list)


def _start_api(rehearsal: Rehearsal) -> LoopbackServer:
    """GitHub's REST API, the part the workflows call, on loopback port 0."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            auth = self.headers.get("Authorization", "")
            permissions = rehearsal._tokens.get(auth.removeprefix("Bearer ").removeprefix("token "))
            if permissions is None:
                return self._send(401, {"message": "Bad credentials"})
            match = re.fullmatch(r"/repos/([^/]+/[^/]+)/actions/runs/(\d+)", self.path.split("?", 1)[0])
            if match is None:
                return self._send(404, {"message": "Not Found"})
            if permissions.get("actions") not in ("read", "write"):
                return self._send(403, {"message": "Resource not accessible by integration"})
            run = rehearsal.github_runs.get(match.group(2))
            if run is None or run["repository"]["full_name"].lower() != match.group(1).lower():
                return self._send(404, {"message": "Not Found"})
            return self._send(200, run)

    return LoopbackServer(Handler, name="rehearsal-github-api").start()


class _StepFailed(Exception):
    pass


def _index_of(path: Path) -> int:
    return int(path.stem.rsplit("-", 1)[-1])


def _machine_env() -> dict[str, str]:
    """What a runner has before the workflow's env: this machine's environment (test credentials
    already cleared by conftest) without GitHub's or mlops' own variables, and this interpreter's
    scripts (``mlops``) first on PATH - they stand for ``pip install .``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "MLOPS_", "RUNNER_")) or k in _MACHINE_MLOPS_VARIABLES}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _parse_key_values(text: str) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` / ``$GITHUB_ENV``: ``key=value`` lines and ``key<<DELIMITER`` blocks."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            values[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
        i += 1
    return values
