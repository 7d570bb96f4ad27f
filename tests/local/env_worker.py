"""A separate process that asks for one environment (used by test_environments.py).

Usage: python -m tests.local.env_worker WORKSPACE_DIR ENVIRONMENT_YML
Prints its progress lines, then ``version=N``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlops.specs.environment import load_environment_spec
from mlops.workspace.local import LocalWorkspace


def main() -> None:
    workspace = LocalWorkspace(Path(sys.argv[1]))
    env = workspace.ensure_environment(load_environment_spec(Path(sys.argv[2])), progress=print)
    print(f"version={env.version}", flush=True)


if __name__ == "__main__":
    main()
