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
from mlops.workspace.hashing import content_files


def package_root() -> Path:
    """The installed ``mlops`` package folder (the source of the snapshot's ``mlops/``)."""
    return Path(mlops.__file__).resolve().parent


def scoring_code_files(scoring_dir: Path) -> list[tuple[str, Path]]:
    """What the snapshot of ``scoring_dir`` holds, as ``(relative posix path, source file)``, sorted:
    the scoring folder's files, ``mlops/__init__.py`` and ``mlops/forecasting/**``, no caches
    (``mlops.workspace.hashing.is_cache``). ``stage_scoring_code`` copies exactly these; the release
    hashes them without copying (``mlops.release.staging.code_hash``)."""
    scoring_dir = Path(scoring_dir)
    if not scoring_dir.is_dir():
        raise FileNotFoundError(f"scoring folder {scoring_dir} does not exist")
    if (scoring_dir / "mlops").exists():
        raise FileExistsError(f"{scoring_dir} has its own mlops/ folder, which would shadow the package")
    root = package_root()
    files = list(content_files(scoring_dir))
    files.append(("mlops/__init__.py", root / "__init__.py"))
    files.extend((f"mlops/forecasting/{relative}", file) for relative, file in content_files(root / "forecasting"))
    return sorted(files)


def stage_scoring_code(scoring_dir: Path, dest: Path) -> Path:
    """Copy ``scoring_code_files(scoring_dir)`` into ``dest`` (created; must not exist or be empty).
    Returns ``dest``. No ``__pycache__`` is copied."""
    dest = Path(dest)
    files = scoring_code_files(scoring_dir)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty; stage into a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    for relative, source in files:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest
