"""The code snapshot each deployment runs: the scoring folder plus the forecasting package.

``mlops.packaging.stage_scoring_code`` builds it (score.py imports ``mlops.forecasting`` from the
snapshot, since the serving environment does not install this package). Every deploy stages into a
fresh folder under the release's artifacts, so later edits of the source tree never change what a
running deployment serves.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from mlops.release.slots import CODE_HASH_TAG

__all__ = ["CODE_HASH_TAG", "code_hash", "stage_code", "tree_hash"]


def stage_code(scoring_dir: Path, dest: Path) -> Path:
    from mlops.packaging import stage_scoring_code

    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(stage_scoring_code(scoring_dir, dest))


def tree_hash(root: Path) -> str:
    """sha256 over a folder's files (relative paths and bytes), ignoring caches."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def code_hash(scoring_dir: Path) -> str:
    """The hash of the snapshot ``stage_code`` would build: a changed score.py or forecaster makes a
    new release even when the model and environment are unchanged."""
    with tempfile.TemporaryDirectory(prefix="mlops-code-") as tmp:
        return tree_hash(stage_code(scoring_dir, Path(tmp) / "code"))
