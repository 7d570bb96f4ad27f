"""The rehearsal runner itself behaves like GitHub's runner where our workflows depend on it.

A toy workflow (no mlops) exercises: job outputs from ``$GITHUB_OUTPUT``, ``env:`` wiring,
fresh checkouts per job (only artifacts carry files), artifact overwrite/hidden-file/root rules,
``failure()`` jobs after a failed ancestor, skipped dependants, and login-gated workspace URIs.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.workflows.rehearsal import Cancel, Rehearsal


def _toy(tmp_path: Path, name: str, workflow: str, *, files: dict[str, str] | None = None, run: str = "run",
         **options: object) -> Rehearsal:
    """Rehearse the toy ``workflow`` (written as ``<name>.yml``) over a source tree holding ``files``
    (path -> text; the tree is kept when it exists already), its run under ``tmp_path / run``;
    ``options`` go to ``Rehearsal`` (default ``workspace_uri="local:/x"``)."""
    path = tmp_path / f"{name}.yml"
    path.write_text(workflow)
    source = tmp_path / "repo"
    source.mkdir(exist_ok=True)
    for relative, text in (files or {}).items():
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_text(text)
    options.setdefault("workspace_uri", "local:/x")
    rehearsal = Rehearsal(path, source=source, root=tmp_path / run, **options)  # type: ignore[arg-type]
    rehearsal.run()
    return rehearsal

TOY = textwrap.dedent(
    """\
    name: toy
    on:
      workflow_dispatch:
        inputs:
          fail_at:
            type: string
            default: ""
          flag:
            type: boolean
            default: true
    permissions: {}
    env:
      MLOPS_WORKSPACE: azureml://subscriptions/${{ vars.SUB }}/x
      FAIL_AT: ${{ inputs.fail_at }}
    jobs:
      first:
        runs-on: ubuntu-latest
        permissions:
          contents: read
          id-token: write
        outputs:
          version: ${{ steps.make.outputs.version }}
        steps:
          - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1
            with:
              persist-credentials: false
          - name: before login
            run: echo "ws=$MLOPS_WORKSPACE" > before.txt
          - uses: azure/login@f5d393ae46f8fde4be8b75f32e3fc50e654ad0ca
            with:
              client-id: ${{ vars.CLIENT }}
              tenant-id: ${{ vars.TENANT }}
              subscription-id: ${{ vars.SUB }}
          - id: make
            run: |
              mkdir -p out
              echo "$MLOPS_WORKSPACE" > out/ws.txt
              cp before.txt out/
              echo hidden > out/.hidden
              echo "version=7" >> "$GITHUB_OUTPUT"
              echo "FROM_ENV=yes" >> "$GITHUB_ENV"
              echo "## first" >> "$GITHUB_STEP_SUMMARY"
          - run: test "$FROM_ENV" = yes
          - uses: actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f
            with:
              name: rec
              path: out/
      second:
        needs: first
        runs-on: ubuntu-latest
        steps:
          - run: test ! -e before.txt
          - uses: actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c
            with:
              name: rec
              path: got
          - env:
              VERSION: ${{ needs.first.outputs.version }}
            run: |
              test "$VERSION" = 7
              test -f got/ws.txt && test ! -e got/.hidden
              test "$FAIL_AT" != second
          - if: always()
            uses: actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f
            with:
              name: rec
              path: got/
              overwrite: true
      third:
        needs: second
        if: inputs.flag
        runs-on: ubuntu-latest
        steps:
          - run: "true"
      cleanup:
        needs: [first, second, third]
        if: failure() && needs.first.result == 'success'
        runs-on: ubuntu-latest
        steps:
          - run: "true"
    """
)


def _rehearse(tmp_path: Path, **inputs: object) -> Rehearsal:
    return _toy(tmp_path, "toy", TOY, files={"README.md": "toy\n"}, workspace_uri="local:/tmp/ws",
                event_name="workflow_dispatch", inputs=dict(inputs), vars={"SUB": "s", "CLIENT": "c", "TENANT": "t"})


def test_wiring_of_outputs_env_artifacts_and_login(tmp_path: Path) -> None:
    run = _rehearse(tmp_path)
    jobs = run.jobs
    assert {name: job.result for name, job in jobs.items()} == {
        "first": "success", "second": "success", "third": "success", "cleanup": "skipped"}, \
        "\n".join(j.log() for j in jobs.values())
    assert jobs["first"].outputs == {"version": "7"}
    assert "## first" in jobs["first"].summary
    artifact = run.artifacts / "rec"
    # login replaced the Azure URI; before login the workflow's own value was in force
    assert (artifact / "ws.txt").read_text().strip() == "local:/tmp/ws"
    assert (artifact / "before.txt").read_text().strip() == "ws=azureml://subscriptions/s/x"
    assert not (artifact / ".hidden").exists()  # upload-artifact (v4.4 and later) leaves hidden files out


def test_a_failed_job_skips_its_dependants_and_runs_the_failure_job(tmp_path: Path) -> None:
    jobs = _rehearse(tmp_path, fail_at="second").jobs
    assert {name: job.result for name, job in jobs.items()} == {
        "first": "success", "second": "failure", "third": "skipped", "cleanup": "success"}
    # the always() upload still ran after the failed step
    assert [s.outcome for s in jobs["second"].steps] == ["success", "success", "failure", "success"]


def test_a_false_boolean_input_skips_the_job(tmp_path: Path) -> None:
    jobs = _rehearse(tmp_path, flag=False).jobs
    assert jobs["third"].result == "skipped"
    assert jobs["cleanup"].result == "skipped"


def test_undeclared_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not declared"):
        _rehearse(tmp_path, nope="x")


def test_what_the_rehearsal_cannot_simulate_fails_loudly(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    source.mkdir()
    matrix = tmp_path / "matrix.yml"
    matrix.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n"
                      "        x: [1, 2]\n    steps:\n      - run: 'true'\n")
    with pytest.raises(ValueError, match="strategy"):
        Rehearsal(matrix, source=source, root=tmp_path / "run-a", workspace_uri="local:/x").run()
    unknown = tmp_path / "unknown.yml"
    unknown.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                       "      - uses: someone/action@0123456789012345678901234567890123456789\n")
    jobs = Rehearsal(unknown, source=source, root=tmp_path / "run-b", workspace_uri="local:/x").run()
    assert jobs["a"].result == "failure" and "does not know the action" in jobs["a"].steps[0].log


# ---------------------------------------------------------------------------------------------
# cancellation: the runner signals the step's pid only, so only `exec` lets the program see it

SIGNAL_PROBE = (
    "import signal, sys, time\n"
    "def stop(number, _frame):\n"
    "    open('got-' + signal.Signals(number).name, 'w').close()\n"
    "    sys.exit(130)\n"
    "signal.signal(signal.SIGINT, stop)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def _cancel_toy(tmp_path: Path, command: str) -> Rehearsal:
    return _toy(tmp_path, "cancel", textwrap.dedent(f"""\
        on: push
        permissions: {{}}
        jobs:
          work:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1
                with:
                  persist-credentials: false
              - name: long
                run: {command}
              - name: after
                run: "true"
              - name: always
                if: always()
                run: touch always-ran
          cleanup:
            needs: work
            if: cancelled()
            runs-on: ubuntu-latest
            steps:
              - run: "true"
          next:
            needs: work
            runs-on: ubuntu-latest
            steps:
              - run: "true"
        """), files={"probe.py": SIGNAL_PROBE}, cancel=Cancel("work", "long", lambda log: "ready" in log),
                sigint_timeout=1.0, sigterm_timeout=1.0)


def test_a_cancelled_exec_step_gets_sigint_and_the_run_is_cancelled(tmp_path: Path) -> None:
    run = _cancel_toy(tmp_path, "exec python3 probe.py")
    workspace = tmp_path / "run" / "jobs" / "work" / "workspace"
    assert (workspace / "got-SIGINT").exists(), run.jobs["work"].log()
    assert [s.outcome for s in run.jobs["work"].steps] == ["success", "cancelled", "skipped", "success"]
    assert {name: job.result for name, job in run.jobs.items()} == {
        "work": "cancelled", "cleanup": "success", "next": "skipped"}
    assert run.conclusion() == "cancelled"


def test_without_exec_the_signal_stops_at_the_shell(tmp_path: Path) -> None:
    """bash waits for its foreground child and the runner signals bash's pid only: the program never
    sees SIGINT or SIGTERM, and dies by the final kill of the process tree."""
    run = _cancel_toy(tmp_path, "python3 probe.py")
    workspace = tmp_path / "run" / "jobs" / "work" / "workspace"
    assert not list(workspace.glob("got-*")), run.jobs["work"].log()
    assert "process tree killed" in run.jobs["work"].steps[1].log or "after SIGTERM" in run.jobs["work"].steps[1].log


# ---------------------------------------------------------------------------------------------
# reusable workflows, the REST API and pins


ASK_API = (
    "import os, urllib.error, urllib.request\n"
    "url = os.environ['GITHUB_API_URL'] + '/repos/example/mlops/actions/runs/' + os.environ['RUN']\n"
    "request = urllib.request.Request(url, headers={'Authorization': 'Bearer ' + os.environ['TOKEN']})\n"
    "try:\n"
    "    print('code=%d' % urllib.request.urlopen(request).status)\n"
    "except urllib.error.HTTPError as error:\n"
    "    print('code=%d' % error.code)\n"
)


def _api_toy(tmp_path: Path, *, permissions: str, run_id: str, runs: dict) -> Rehearsal:
    return _toy(tmp_path, "api", textwrap.dedent(f"""\
        on: push
        permissions: {{}}
        jobs:
          tests:
            uses: $/.github/workflows/lib.yml
          ask:
            needs: tests
            runs-on: ubuntu-latest
            permissions:
              {permissions}
            steps:
              - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1
                with:
                  persist-credentials: false
              - env:
                  TOKEN: ${{{{ github.token }}}}
                  RUN: "{run_id}"
                run: python3 ask.py >> "$GITHUB_OUTPUT"
        """), files={".github/workflows/lib.yml": "on:\n  workflow_call:\njobs: {}\n", "ask.py": ASK_API},
                run=f"run-{permissions[:7]}-{run_id}", github_runs=runs, called_workflows={"lib.yml": "success"})


def test_the_rest_api_answers_by_the_jobs_token_permissions(tmp_path: Path) -> None:
    mine = {"id": 5, "repository": {"full_name": "example/mlops"}}
    theirs = {"id": 6, "repository": {"full_name": "someone/else"}}
    runs = {"5": mine, "6": theirs}
    codes = {(permissions, run_id): _api_toy(tmp_path, permissions=permissions, run_id=run_id, runs=runs)
             .jobs["ask"].steps[1].outputs.get("code")
             for permissions, run_id in [("actions: read", "5"), ("contents: read", "5"), ("actions: read", "6"),
                                         ("actions: read", "7")]}
    assert codes == {("actions: read", "5"): "200", ("contents: read", "5"): "403", ("actions: read", "6"): "404",
                     ("actions: read", "7"): "404"}


def test_a_called_workflow_needs_its_result_and_workflow_call(tmp_path: Path) -> None:
    run = _api_toy(tmp_path, permissions="actions: read", run_id="5", runs={})
    assert run.jobs["tests"].result == "success"
    workflow = tmp_path / "api.yml"
    with pytest.raises(ValueError, match="give its result"):
        Rehearsal(workflow, source=tmp_path / "repo", root=tmp_path / "run-x", workspace_uri="local:/x").run()
    (tmp_path / "repo" / ".github" / "workflows" / "lib.yml").write_text("on: push\njobs: {}\n")
    failed = Rehearsal(workflow, source=tmp_path / "repo", root=tmp_path / "run-y", workspace_uri="local:/x",
                       called_workflows={"lib.yml": "success"})
    failed.run()
    assert failed.jobs["tests"].result == "failure" and failed.jobs["ask"].result == "skipped"


def test_an_action_at_another_commit_than_the_simulated_one_fails(tmp_path: Path) -> None:
    jobs = _toy(tmp_path, "old", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683\n"
                "        with:\n          persist-credentials: false\n").jobs
    assert jobs["a"].result == "failure" and "simulates actions/checkout v7.0.1" in jobs["a"].steps[0].log


# ---------------------------------------------------------------------------------------------
# Entra ID's federated credentials: the subject must match exactly

def _login_job(environment: str | None) -> str:
    return ("    runs-on: ubuntu-latest\n" + (f"    environment: {environment}\n" if environment else "")
            + "    permissions:\n      id-token: write\n    steps:\n"
            "      - uses: azure/login@f5d393ae46f8fde4be8b75f32e3fc50e654ad0ca\n        with:\n"
            "          client-id: ${{ vars.AZURE_CLIENT_ID }}\n          tenant-id: t\n          subscription-id: s\n")


LOGIN = "on: push\npermissions: {}\njobs:\n  main:\n" + _login_job(None) + "  prod:\n" + _login_job("production")


@pytest.mark.parametrize(("immutable", "credentials", "expected"), [
    # a new repository presents immutable subjects: credentials in that format match
    (True, {"rel": {"repo:example@1001/mlops@2002:ref:refs/heads/main"},
            "prod": {"repo:example@1001/mlops@2002:environment:production"}}, {"main": "success", "prod": "success"}),
    # the old name-only format never matches a new repository's tokens
    (True, {"rel": {"repo:example/mlops:ref:refs/heads/main"},
            "prod": {"repo:example/mlops:environment:production"}}, {"main": "failure", "prod": "failure"}),
    # an older repository (not opted in) presents the name-only format
    (False, {"rel": {"repo:example/mlops:ref:refs/heads/main"},
             "prod": {"repo:example/mlops:environment:production"}}, {"main": "success", "prod": "success"}),
    # a job in the production environment presents the environment, not the branch
    (True, {"rel": {"repo:example@1001/mlops@2002:ref:refs/heads/main"},
            "prod": {"repo:example@1001/mlops@2002:ref:refs/heads/main"}}, {"main": "success", "prod": "failure"}),
])
def test_login_needs_a_federated_credential_for_the_jobs_exact_subject(tmp_path: Path, immutable: bool,
                                                                       credentials: dict, expected: dict) -> None:
    jobs = _toy(tmp_path, "login", LOGIN, vars={"AZURE_CLIENT_ID": "rel"},
                environment_vars={"production": {"AZURE_CLIENT_ID": "prod"}}, immutable_subjects=immutable,
                federated_credentials=credentials).jobs
    assert {name: job.result for name, job in jobs.items()} == expected
    for job in jobs.values():
        if job.result == "failure":
            assert "AADSTS700213" in job.steps[0].log, job.steps[0].log
