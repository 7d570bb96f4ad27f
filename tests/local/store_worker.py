"""A separate process that hammers one workspace store (used by test_store.py).

Usage: python -m tests.local.store_worker WORKSPACE_DIR TAG COUNT SHARED_DIR
Registers COUNT distinct model folders under the name ``m`` plus the shared folder each time,
and moves a release lock back and forth, printing one line per version it got.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlops.workspace.local.registry.artifacts import ArtifactStore
from mlops.workspace.local.registry.models import register_model
from mlops.workspace.local.registry.store import Store


def main() -> None:
    workspace, tag, count, shared = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    store = Store(workspace)
    artifacts = ArtifactStore(workspace / "artifacts")
    for i in range(count):
        folder = workspace.parent / f"src-{tag}-{i}"
        folder.mkdir()
        (folder / "model.bin").write_bytes(f"{tag}-{i}".encode())
        model = register_model(store, artifacts, "m", folder)
        same = register_model(store, artifacts, "shared", shared)
        print(f"{model.version} {same.version}", flush=True)


if __name__ == "__main__":
    main()
