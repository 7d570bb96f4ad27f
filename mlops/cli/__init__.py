"""The ``mlops`` command line: a thin layer that parses, calls the library and maps errors to exit codes.

Every command lives in one module of this package, by area, and registers itself with
``add_command`` (which makes its ``--help`` carry an example). Results go to stdout (``--json`` for
machines), logs and progress to stderr. Exit codes (DESIGN.md section 4): 0 success; 1 the
operation failed; 2 bad usage or configuration, detected before anything is touched;
3 inconclusive. ``mlops.errors`` says which error maps to which code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mlops import __version__
from mlops.errors import MlopsError

Handler = Callable[[argparse.Namespace], int | None]

EXAMPLES = """\
Examples:
  mlops demo                                  # train two models, release both locally (blue -> green)
  mlops train --data synthetic --out out/v1   # train a TCN forecaster
  mlops release --yes                         # register, build env, deploy, load-test, gate, promote, batch
  mlops status --json                         # what the workspace serves
  mlops --workspace azureml://subscriptions/SUB/resourceGroups/RG/workspaces/WS status
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def progress(message: str) -> None:
    """The CLI's progress sink: one line on stderr."""
    _stderr(message)


def emit(result: Any, *, as_json: bool, text: str | None = None) -> None:
    """Write a command's result to stdout: JSON when asked, else ``text`` (or the JSON, indented)."""
    if as_json or text is None:
        print(json.dumps(result, indent=2, sort_keys=False, default=str))
    else:
        print(text)


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    example: str,
    handler: Handler,
    description: str | None = None,
    json_output: bool = False,
) -> argparse.ArgumentParser:
    """Add a sub-command whose ``--help`` ends with ``Example:`` and ``example``."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description=description or help,
        epilog="Example:\n" + "\n".join(f"  {line}" for line in example.strip().splitlines()),
        formatter_class=_Formatter,
    )
    if json_output:
        parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.set_defaults(handler=handler)
    return parser


def group_help(parser: argparse.ArgumentParser) -> Handler:
    """The handler of a command group called without its sub-command: its help on stderr, exit 2."""
    def handler(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2
    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description="Release a time-series forecaster to Azure ML (or the local workspace) without "
        "breaking the live endpoint.",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"mlops {__version__}")
    parser.add_argument(
        "--workspace",
        metavar="URI",
        default=None,
        help="local:[PATH] (default, state under ./.mlops) or "
        "azureml://subscriptions/<id>/resourceGroups/<rg>/workspaces/<name>; env MLOPS_WORKSPACE",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from mlops.cli import jobs, release, train, workspace

    for module in (train, jobs, workspace, release):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    if args.workspace is None:
        args.workspace = os.environ.get("MLOPS_WORKSPACE") or None
    try:
        code = args.handler(args)
    except MlopsError as error:
        _stderr(f"error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        _stderr("interrupted")
        return 130
    return 0 if code is None else int(code)
