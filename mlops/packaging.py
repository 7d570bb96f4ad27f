"""The deployment's code snapshot: a scoring folder plus the one copy of the forecasting package.

Azure ML uploads a deployment's ``code`` folder as-is and runs the scoring script from it in an
environment that does not install ``mlops``. Rather than keeping a second copy of the forecaster
beside each scoring script, ``stage_scoring_code`` builds the folder Azure (or the local
workspace) receives::

    dest/
      score.py ...          every file of the scoring folder (e.g. endpoints/online/)
      mlops/__init__.py     the package marker (import-free: only __version__)
      mlops/forecasting/    the forecaster, which imports only torch, numpy, pandas

``score.py`` puts its own folder first on ``sys.path`` and imports ``mlops.forecasting``. The
release pipeline calls this before every online and batch deployment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlops

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".DS_Store")


def package_root() -> Path:
    """The installed ``mlops`` package folder (the source of the snapshot's ``mlops/``)."""
    return Path(mlops.__file__).resolve().parent


def stage_scoring_code(scoring_dir: Path, dest: Path) -> Path:
    """Copy ``scoring_dir``'s files and ``mlops/__init__.py`` + ``mlops/forecasting/**`` into ``dest``
    (created; must not exist or be empty). Returns ``dest``. No ``__pycache__`` is copied."""
    scoring_dir, dest = Path(scoring_dir), Path(dest)
    if not scoring_dir.is_dir():
        raise FileNotFoundError(f"scoring folder {scoring_dir} does not exist")
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty; stage into a new folder")
    if (scoring_dir / "mlops").exists():
        raise FileExistsError(f"{scoring_dir} has its own mlops/ folder, which would shadow the package")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(scoring_dir, dest, ignore=_IGNORE, dirs_exist_ok=True)
    root = package_root()
    (dest / "mlops").mkdir()
    shutil.copy2(root / "__init__.py", dest / "mlops" / "__init__.py")
    shutil.copytree(root / "forecasting", dest / "mlops" / "forecasting", ignore=_IGNORE)
    return dest
