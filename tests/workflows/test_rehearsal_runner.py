"""The rehearsal runner itself behaves like GitHub's runner where our workflows depend on it.

A toy workflow (no mlops) exercises: job outputs from ``$GITHUB_OUTPUT``, ``env:`` wiring,
fresh checkouts per job (only artifacts carry files), artifact overwrite/hidden-file/root rules,
``failure()`` jobs after a failed ancestor, skipped dependants, and login-gated workspace URIs.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.workflows.rehearsal import Rehearsal

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
          - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683
            with:
              persist-credentials: false
          - name: before login
            run: echo "ws=$MLOPS_WORKSPACE" > before.txt
          - uses: azure/login@a457da9ea143d694b1b9c7c869ebb04ebe844ef5
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
          - uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02
            with:
              name: rec
              path: out/
      second:
        needs: first
        runs-on: ubuntu-latest
        steps:
          - run: test ! -e before.txt
          - uses: actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093
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
            uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02
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
    workflow = tmp_path / "toy.yml"
    workflow.write_text(TOY)
    source = tmp_path / "repo"
    source.mkdir()
    (source / "README.md").write_text("toy\n")
    rehearsal = Rehearsal(workflow, source=source, root=tmp_path / "run", workspace_uri="local:/tmp/ws",
                          event_name="workflow_dispatch", inputs=dict(inputs),
                          vars={"SUB": "s", "CLIENT": "c", "TENANT": "t"})
    rehearsal.run()
    return rehearsal


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
    assert not (artifact / ".hidden").exists()  # upload-artifact v4 leaves hidden files out


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
