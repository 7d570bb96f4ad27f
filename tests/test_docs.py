"""The README tells the truth: every CLI command is documented, and the two commands exist."""

from __future__ import annotations

import re

from tests.conftest import REPO
from tests.test_cli import _commands

README = (REPO / "README.md").read_text()


def test_every_cli_command_appears_in_the_readme() -> None:
    missing = [command for command in _commands() if f"mlops {command}" not in README]
    assert not missing, f"README.md does not mention: {', '.join('mlops ' + c for c in missing)}"


def test_the_two_commands_are_make_targets() -> None:
    makefile = (REPO / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"Makefile has no '{target}' target"


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()
