"""mlops.yaml and the YAML specs: typed, validated up front, loadable by azure-ai-ml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.config import Overrides, load_config, require_model_folder
from mlops.demo.sample_data import sample_files
from mlops.errors import ConfigError, NotFoundError
from mlops.settings.rollout import TrafficStep
from mlops.workspace.port import AssetRef
from tests.conftest import run_cli
from tests.release.helpers import REPO, fake_model, write_config


def test_repository_config_loads() -> None:
    config = load_config(REPO / "mlops.yaml", env={})
    assert config.online.endpoint.name == "tcn-dau"
    assert config.online.slots == ("blue", "green")
    assert TrafficStep(100) in config.online.rollout.steps
    assert config.batch.endpoint.name == "tcn-dau-batch"
    assert config.load_test.gates.absolute.min_requests > 0
    assert config.environment.name == "tcn-inference"
    spec = config.online_deployment_spec("green", AssetRef("tcn-dau", "3"), AssetRef("tcn-inference", "2"), REPO)
    assert (spec.name, str(spec.model), str(spec.environment)) == ("green", "tcn-dau:3", "tcn-inference:2")
    assert spec.request_settings.max_concurrent_requests_per_instance == 16
    batch = config.batch_deployment_spec(AssetRef("tcn-dau", "3"), AssetRef("tcn-inference", "2"), REPO)
    assert batch.name == "tcn-v3" and batch.mini_batch_size == 1 and batch.retry_settings.max_retries == 2


def test_precedence_file_then_env_then_flags() -> None:
    env = {"MLOPS_PROFILE": "fast", "MLOPS_MODEL": "azureml:tcn-dau:7", "MLOPS_BATCH_REFRESH": "false"}
    config = load_config(REPO / "mlops.yaml", env=env)
    assert config.profile == "fast" and config.model.ref == AssetRef("tcn-dau", "7") and not config.batch.refresh
    config = load_config(REPO / "mlops.yaml", env=env, overrides=Overrides(profile="standard", model="out/x"))
    assert config.profile == "standard" and config.model.path == (REPO / "out/x").resolve()


@pytest.mark.parametrize(("edit", "file", "key"), [
    (lambda c: c.pop("model"), "mlops.yaml", "model"),
    (lambda c: c["online"].update(slots=["blue"]), "mlops.yaml", "online.slots"),
    (lambda c: c["online"].update(rollout="missing.yml"), "mlops.yaml", "online.rollout"),
    (lambda c: c["batch"].update(keep=0), "mlops.yaml", "batch.keep"),
    (lambda c: c["batch"].update(job_timeout="soon"), "mlops.yaml", "batch.job_timeout"),
    (lambda c: c.update(profile="nope"), "rollout.yml", "profiles"),
])
def test_config_errors_name_file_key_and_expectation(tmp_path: Path, edit, file: str, key: str) -> None:
    path = write_config(tmp_path, model=fake_model(tmp_path / "m"))
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert error.value.file and error.value.file.endswith(file)
    assert error.value.key == key
    assert "expected" in str(error.value) or "does not exist" in str(error.value)


@pytest.mark.parametrize(("gates", "key"), [
    ({"absolute": {"p95_ms": "fast"}}, "absolute.p95_ms"),
    ({"absolute": {"min_requests": 0}}, "absolute.min_requests"),
    ({"relative": {"mann_whitney": {"alpha": 2}}}, "relative.mann_whitney.alpha"),
])
def test_gate_errors(tmp_path: Path, gates, key: str) -> None:
    path = write_config(tmp_path, model=fake_model(tmp_path / "m"), gates=gates)
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert error.value.key == key and error.value.file.endswith("gates.yml")


def test_bad_rollout_step(tmp_path: Path) -> None:
    path = write_config(tmp_path, model=fake_model(tmp_path / "m"), steps=[{"traffic": 10}])
    with pytest.raises(ConfigError, match=r"rollout.yml: profiles.test: the last traffic step must be"):
        load_config(path, env={})


def test_model_folder_is_checked(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, model=tmp_path / "nowhere"), env={})
    with pytest.raises(ConfigError, match="model.path: expected a folder holding model.pt"):
        require_model_folder(config)


def test_cli_config_error_exits_2_and_touches_nothing(tmp_path: Path) -> None:
    path = write_config(tmp_path, model=fake_model(tmp_path / "m"), gates={"absolute": {"p95_ms": -1}})
    workspace = tmp_path / "ws"
    result = run_cli("--workspace", f"local:{workspace}", "release", "--yes", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "gates.yml: absolute.p95_ms: expected a non-negative number" in result.stderr
    assert not workspace.exists()
    assert not (tmp_path / "releases").exists()


def test_every_endpoint_yaml_loads_with_azure_ai_ml() -> None:
    from azure.ai.ml import (
        load_batch_deployment,
        load_batch_endpoint,
        load_online_deployment,
        load_online_endpoint,
    )

    loaders = {"online/endpoint.yml": load_online_endpoint, "online/deployment.yml": load_online_deployment,
               "batch/endpoint.yml": load_batch_endpoint, "batch/deployment.yml": load_batch_deployment}
    found = {str(p.relative_to(REPO / "endpoints")) for p in (REPO / "endpoints").rglob("*.yml")}
    assert found - {"online/rollout.yml"} == set(loaders)
    for relative, loader in loaders.items():
        text = (REPO / "endpoints" / relative).read_text()
        assert text.startswith("$schema: https://azuremlschemas.azureedge.net/latest/")
        entity = loader(REPO / "endpoints" / relative)
        assert entity.name
    batch = load_batch_deployment(REPO / "endpoints/batch/deployment.yml")
    assert batch.mini_batch_size == 1 and batch.output_file_name == "predictions.csv"


def test_sample_files_match_the_generator() -> None:
    for relative, content in sample_files().items():
        assert (REPO / relative).read_text() == content, f"{relative} is stale: run write_sample_files"


def test_release_without_yes_and_without_a_terminal_asks_for_yes(tmp_path: Path) -> None:
    path = write_config(tmp_path, model=fake_model(tmp_path / "m"))
    workspace = tmp_path / "ws"
    result = run_cli("--workspace", f"local:{workspace}", "release", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "pass --yes" in result.stderr
    assert not workspace.exists()


def test_step_command_needs_its_record(tmp_path: Path) -> None:
    path = write_config(tmp_path, model=fake_model(tmp_path / "m"))
    result = run_cli("--workspace", f"local:{tmp_path / 'ws'}", "gate", "--config", str(path),
                     "--record", str(tmp_path / "none.json"), cwd=tmp_path)
    assert result.returncode == 2
    assert "no release record" in result.stderr


@pytest.mark.parametrize(("source", "job"), [("job:automl-run-7", "automl-run-7"),
                                              ("azureml://jobs/automl-run-7/outputs/artifacts/paths/model/",
                                               "automl-run-7")])
def test_model_from_an_azure_job(source: str, job: str) -> None:
    config = load_config(REPO / "mlops.yaml", env={"MLOPS_MODEL": source})
    assert config.model.job == job and config.model.path is None and config.model.describe() == f"job:{job}"


AUTOML_CONDA = """\
name: project_environment
channels:
  - conda-forge
dependencies:
  - python=3.9
  - pip=22.1.2
  - numpy~=1.23.5
  - py-xgboost<=1.5.0
  - cudatoolkit=11.1
  - pip:
      - azureml-train-automl-runtime==1.56.0
      - azureml-defaults==1.56.0
"""
"""Shaped like the ``conda_env_v_1_0_0.yml`` an AutoML forecasting run writes: conda packages, and a
Python that is not this one. Azure builds it as a conda environment; only the local workspace cannot."""


def test_an_azure_style_conda_file_with_conda_packages_loads_via_config(tmp_path: Path) -> None:
    from mlops.specs.environment import parse_conda_file
    from mlops.workspace.local import LocalWorkspace

    env_dir = tmp_path / "automl-env"
    env_dir.mkdir()
    (env_dir / "conda_env_v_1_0_0.yml").write_text(AUTOML_CONDA)
    (env_dir / "environment.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
        "name: automl-env\nimage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n"
        "conda_file: conda_env_v_1_0_0.yml\n")
    path = write_config(tmp_path, model=fake_model(tmp_path / "m"))
    data = yaml.safe_load(path.read_text())
    data["environment"] = str(env_dir / "environment.yml")
    path.write_text(yaml.safe_dump(data))

    config = load_config(path, env={})  # no local-only rule on the way to an Azure release
    assert (config.environment.name, config.environment.conda_file) == ("automl-env",
                                                                        env_dir / "conda_env_v_1_0_0.yml")
    requirements = parse_conda_file(config.environment.conda_file.read_text())
    assert requirements.conda == ("numpy~=1.23.5", "py-xgboost<=1.5.0", "cudatoolkit=11.1")
    assert requirements.python == "3.9"

    # the same spec meets the local workspace's own rule where the local workspace builds a venv
    workspace = LocalWorkspace(tmp_path / "ws", venv_cache=tmp_path / "venvs")
    # (numpy and py-xgboost have PyPI equivalents and would be pip-installed; cudatoolkit has none)
    with pytest.raises(ConfigError, match=r"conda-only packages cannot be installed by the local workspace: "
                                          r"cudatoolkit=11.1;"):
        workspace.ensure_environment(config.environment)
    with pytest.raises(NotFoundError):  # refused before anything was recorded
        workspace.get_environment("automl-env", "latest")


def test_loading_the_config_imports_no_workspace_adapter_and_not_the_release() -> None:
    """The environment spec is read config-side (``mlops.specs.environment``), not by an adapter; the
    settings types are config-side too (``mlops.settings``): the release reads the config, never the
    other way round."""
    import subprocess
    import sys

    code = ("import sys; from mlops.config import load_config; load_config(sys.argv[1], env={}); "
            "print(sorted(m for m in sys.modules if m.startswith(('mlops.workspace.local', 'mlops.workspace.azure', "
            "'mlops.release'))))")
    result = subprocess.run([sys.executable, "-c", code, str(REPO / "mlops.yaml")],  # noqa: S603 - this interpreter
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
