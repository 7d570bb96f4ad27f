"""The offline release meets Azure's batch-environment rule: with an environment that lacks
``azureml-core`` / ``azureml-dataset-runtime`` the release's batch step fails at the smoke job,
naming the packages and the fix (real processes: the local
workspace's environment build and batch job). The shipped spec holds both: the local releases of
``tests/release/test_release_local.py`` run its batch refresh."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.config import load_config
from mlops.errors import ReleaseFailed
from mlops.release.batch import batch_refresh
from mlops.release.context import ReleaseContext
from mlops.release.current import new_record
from mlops.release.steps.prepare import step_environment, step_register
from mlops.workspace.local import LocalWorkspace
from tests.release.helpers import REPO, fake_model, write_config

pytestmark = pytest.mark.slow


def test_the_batch_step_fails_naming_the_packages_an_environment_without_azureml_core_lacks(tmp_path: Path) -> None:
    env_dir = tmp_path / "serving-only"
    env_dir.mkdir()
    (env_dir / "conda.yml").write_text("dependencies:\n  - python=3.11\n  - pip:\n      - six==1.17.0\n")
    (env_dir / "environment.yml").write_text(
        "name: serving-only\nimage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\nconda_file: conda.yml\n")
    path = write_config(tmp_path / "cfg", model=fake_model(tmp_path / "model"))
    data = yaml.safe_load(path.read_text())
    data["environment"] = str(env_dir / "environment.yml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    config = load_config(path, env={})
    workspace = LocalWorkspace(tmp_path / "ws", venv_cache=tmp_path / "venvs")
    lines: list[str] = []
    ctx = ReleaseContext(config, workspace, new_record(config, workspace, tmp_path / "record.json"), lines.append)
    model = step_register(ctx)
    environment = step_environment(ctx)
    with pytest.raises(ReleaseFailed) as caught:
        batch_refresh(ctx, model=model.ref, environment=environment.ref, code_hash="c0de",
                      release_tag=("mlops.release", "test"))
    message = str(caught.value)
    assert "lacks azureml-core, azureml-dataset-runtime" in message, message
    assert "the default deployment is unchanged" in message
    assert "'pip:' section of the environment's conda file" in message, "the fix is named"


def test_the_shipped_environment_holds_what_azure_requires_of_a_batch_environment() -> None:
    from mlops.specs.environment import load_environment_spec, parse_conda_file
    from mlops.workspace.local.batch.plan import BATCH_REQUIRED_PACKAGES, missing_packages

    spec = load_environment_spec(REPO / "environments" / "tcn-inference" / "environment.yml")
    pip = parse_conda_file(spec.conda_file.read_text()).pip
    names = [entry.split("[")[0].split("=")[0] for entry in pip if not entry.startswith("-")]
    assert missing_packages(BATCH_REQUIRED_PACKAGES, names) == ()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip and "torch==2.13.0" in pip
