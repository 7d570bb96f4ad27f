"""Which run ids rollback.yml trusts (.github/scripts/check_release_run.py), as a table of run objects."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from tests.workflows.workflow_files import REPO

_SPEC = importlib.util.spec_from_file_location("check_release_run", REPO / ".github" / "scripts" / "check_release_run.py")
assert _SPEC is not None and _SPEC.loader is not None
check = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(check)

REPOSITORY = "contoso/mlops"


def _run(**changes: Any) -> dict[str, Any]:
    run = {"id": 42, "path": ".github/workflows/release.yml", "head_branch": "main", "event": "push",
           "status": "completed", "conclusion": "success", "repository": {"full_name": REPOSITORY},
           "head_repository": {"full_name": REPOSITORY}}
    run.update(changes)
    return run


@pytest.mark.parametrize(
    ("run", "refused_because"),
    [
        (_run(), None),
        (_run(event="workflow_dispatch", conclusion="failure"), None),
        (_run(conclusion="cancelled"), None),
        (_run(path="contoso/mlops/.github/workflows/release.yml@main"), None),
        (_run(path=".github/workflows/release.yml@refs/heads/main"), None),
        (_run(path=".github/workflows/ci.yml"), "not of .github/workflows/release.yml"),
        (_run(path=".github/workflows/batch-score.yml"), "not of .github/workflows/release.yml"),
        (_run(path="other/repo/.github/workflows/release.yml@main"), "not of .github/workflows/release.yml"),
        (_run(head_branch="feature"), "ran on 'feature', not on 'main'"),
        (_run(event="pull_request"), "started by 'pull_request'"),
        (_run(event="schedule"), "started by 'schedule'"),
        (_run(status="in_progress", conclusion=None), "in_progress"),
        (_run(status="waiting", conclusion=None), "waiting"),
        (_run(repository={"full_name": "someone/else"}), "belongs to someone/else"),
        (_run(head_repository={"full_name": "fork/mlops"}), "from fork/mlops (a fork)"),
        (_run(head_repository=None), "(a fork)"),
    ],
)
def test_only_a_completed_release_run_on_main_of_this_repository_is_trusted(run: dict[str, Any],
                                                                            refused_because: str | None) -> None:
    reason = check.refusal(run, REPOSITORY)
    if refused_because is None:
        assert reason is None
    else:
        assert reason is not None and refused_because in reason, reason


def test_repository_names_compare_without_case() -> None:
    assert check.refusal(_run(repository={"full_name": "Contoso/MLOps"},
                              head_repository={"full_name": "Contoso/MLOps"}), REPOSITORY) is None


@pytest.mark.parametrize("run_id", ["", "abc", "0", "12/../../x", "1 2", "-5", "1" * 21])
def test_a_value_that_is_not_a_run_id_is_bad_input(run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_ID", run_id)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPOSITORY)
    monkeypatch.setenv("GH_TOKEN", "t")
    assert check.main() == 2
