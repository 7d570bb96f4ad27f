"""The code snapshot each deployment runs: the scoring folder plus the forecasting package.

``mlops.packaging.stage_scoring_code`` builds it (score.py imports ``mlops.forecasting`` from the
snapshot, since the serving environment does not install this package). Every deploy stages into a
fresh folder under the release's artifacts, so later edits of the source tree never change what a
running deployment serves.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops.release.slots import CODE_HASH_TAG
from mlops.workspace.hashing import files_hash

__all__ = ["CODE_HASH_TAG", "code_hash", "stage_code"]


def stage_code(scoring_dir: Path, dest: Path) -> Path:
    from mlops.packaging import stage_scoring_code

    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(stage_scoring_code(scoring_dir, dest))


def code_hash(scoring_dir: Path) -> str:
    """The hash of the snapshot ``stage_code`` would build (the ``mlops.code_hash`` tag), computed
    from the source files without copying them: a changed score.py or forecaster makes a new release
    even when the model and environment are unchanged. Equal to ``content_hash`` of the staged copy."""
    from mlops.packaging import scoring_code_files

    return files_hash(scoring_code_files(scoring_dir), what=f"the code snapshot of {scoring_dir}")
