"""The deployment code snapshot: scoring folder + the one copy of mlops/forecasting, nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops.packaging import stage_scoring_code
from tests.conftest import REPO


def test_snapshot_holds_the_scoring_files_and_the_forecasting_package(online_code: Path) -> None:
    files = {p.relative_to(online_code).as_posix() for p in online_code.rglob("*") if p.is_file()}
    assert "score.py" in files and "mlops/__init__.py" in files
    ours = {p.relative_to(REPO / "mlops").as_posix() for p in (REPO / "mlops" / "forecasting").rglob("*.py")}
    assert {f"mlops/{name}" for name in ours} <= files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert not any(f.startswith(("mlops/cli", "mlops/release", "mlops/workspace")) for f in files)


def test_snapshot_imports_its_own_copy_without_the_installed_package(online_code: Path) -> None:
    # What score.py does: its folder goes first on sys.path, so the snapshot's copy wins over the
    # (editable) installed mlops of the dev venv; the serving environment has no mlops at all.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import mlops.forecasting.forecaster as m; "
            "import mlops; print(m.__file__); print(sorted(k for k in sys.modules if k.startswith('mlops')))")
    result = subprocess.run([sys.executable, "-c", code, str(online_code)], capture_output=True, text=True,  # noqa: S603 - our own interpreter
                            timeout=120, cwd=online_code.parent)
    assert result.returncode == 0, result.stderr
    path, modules = result.stdout.splitlines()
    assert Path(path).is_relative_to(online_code)
    assert "mlops.cli" not in modules and "mlops.errors" not in modules  # forecasting needs nothing else


TRAINING_MODULES = ("mlops.forecasting.training", "mlops.forecasting.train_config", "mlops.forecasting.splits",
                    "mlops.forecasting.fit", "mlops.forecasting.evaluation", "mlops.forecasting.sweep")


@pytest.mark.parametrize("endpoint", ["online", "batch"])
def test_the_scoring_scripts_import_no_training_code(tmp_path: Path, endpoint: str) -> None:
    """The snapshot ships every forecasting module, but a scoring script loads only what serves: none
    of the training modules (and so none of their torch training code) is imported by ``score.py``."""
    code_dir = stage_scoring_code(REPO / "endpoints" / endpoint, tmp_path / endpoint)
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('score', sys.argv[1] + "
            "'/score.py'); module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
            "import mlops; print(mlops.__file__); print(' '.join(sorted(k for k in sys.modules if k.startswith('mlops'))))")
    result = subprocess.run([sys.executable, "-c", code, str(code_dir)], capture_output=True, text=True,  # noqa: S603 - our own interpreter
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path, modules = result.stdout.splitlines()
    assert Path(path).is_relative_to(code_dir)
    assert "mlops.forecasting.loading" in modules.split()
    assert not set(modules.split()) & set(TRAINING_MODULES)


def test_refuses_a_non_empty_destination_and_a_missing_source(tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        stage_scoring_code(REPO / "endpoints" / "online", tmp_path / "dest")
    with pytest.raises(FileNotFoundError):
        stage_scoring_code(tmp_path / "absent", tmp_path / "dest2")


def test_the_code_hash_is_the_staged_snapshots_content_hash_without_copying(tmp_path: Path, monkeypatch) -> None:
    import shutil as shutil_module

    from mlops.release.staging import code_hash, stage_code
    from mlops.workspace.hashing import content_hash

    scoring = tmp_path / "scoring"
    shutil_module.copytree(REPO / "endpoints" / "online", scoring)
    (scoring / "__pycache__").mkdir(exist_ok=True)
    (scoring / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"cache")
    (scoring / ".DS_Store").write_bytes(b"finder")
    copies: list[object] = []
    for name in ("copy", "copy2", "copyfile", "copytree"):
        monkeypatch.setattr(shutil_module, name, lambda *a, _n=name, **k: copies.append(_n))
    before = code_hash(scoring)
    assert copies == [], "the hash is computed from the sources, nothing is copied"
    monkeypatch.undo()

    staged = stage_code(scoring, tmp_path / "staged")
    assert not (staged / ".DS_Store").exists() and not (staged / "__pycache__").exists()
    assert before == content_hash(staged)  # one hash: what the workspace stores is what the tag says
    (scoring / "score.py").write_text((scoring / "score.py").read_text() + "\n# changed\n")
    assert code_hash(scoring) != before
