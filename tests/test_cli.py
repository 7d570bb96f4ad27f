"""The CLI contract: every command's --help carries an example, usage errors exit 2."""

from __future__ import annotations

import argparse

import pytest

from mlops.cli import build_parser, main
from tests.conftest import run_cli


def _commands() -> list[str]:
    parser = build_parser()
    names: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                names.append(name)
                for sub_action in sub._actions:
                    if isinstance(sub_action, argparse._SubParsersAction):
                        names.extend(f"{name} {child}" for child in sub_action.choices)
    return names


def test_top_level_help_has_examples() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "Examples:" in result.stdout
    assert "--workspace" in result.stdout


@pytest.mark.parametrize("command", _commands() or ["<none>"])
def test_every_command_help_has_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    if command == "<none>":
        pytest.skip("no commands registered yet")
    with pytest.raises(SystemExit) as exit_info:
        main([*command.split(), "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "Example:" in out, f"`mlops {command} --help` has no example"
    assert f"mlops {command}" in out.split("Example:", 1)[1]


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_no_command_prints_help_and_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "usage: mlops" in result.stderr
