"""Trust follows the source; the environment comes from the model's conda file when it has one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlops.config import ModelSource, load_config
from mlops.errors import ConfigError
from mlops.release.model_environment import choose_environment, find_conda_file
from mlops.release.trust import TRUST_VARIABLE, pickles_trusted, trust_variables
from mlops.workspace.port import AssetRef
from tests.release.helpers import fake_model, write_config

FROM_MODEL = {"name": "tcn-automl-inference", "image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"}
JOB_TAGS = {"mlops.automl_parent_job": "sweep-1", "mlops.automl_child_job": "sweep-1_2"}

TRIAL_CONDA = """name: project_environment
dependencies:
- python=3.11.7
- pip:
  - azureml-inference-server-http==1.5.1
  - torch==2.13.0
- numpy==2.4.6
- pandas==3.1.1
channels:
- anaconda
- conda-forge
"""


@pytest.mark.parametrize(
    ("source", "tags", "trusted"),
    [
        (ModelSource("tcn", job="sweep-1"), JOB_TAGS, True),  # the best trial of an AutoML job
        (ModelSource("tcn", job="sweep-1"), {}, True),
        (ModelSource("tcn", ref=AssetRef("tcn", "3")), JOB_TAGS, True),  # a version registered from a job
        (ModelSource("tcn", ref=AssetRef("tcn", "3")), {}, False),  # a version registered from a folder
        (ModelSource("tcn", path=Path("out/model")), {}, False),  # a folder: never
        (ModelSource("tcn", path=Path("out/model")), JOB_TAGS, False),  # ... even if the bytes match a job's
    ],
)
def test_pickles_are_trusted_only_for_job_sourced_models(source: ModelSource, tags: dict, trusted: bool) -> None:
    assert pickles_trusted(source, tags) is trusted
    assert trust_variables(trusted) == {TRUST_VARIABLE: "1" if trusted else "0"}


@pytest.mark.parametrize("trusted", [True, False])
def test_the_trust_reaches_online_and_batch_deployments_over_the_template(tmp_path: Path, trusted: bool) -> None:
    config = load_config(write_config(tmp_path, model=fake_model(tmp_path / "m")), env={})
    assert config.online.deployment["environment_variables"][TRUST_VARIABLE] == "0", "the template's value"
    ref = AssetRef("x", "1")
    variables = trust_variables(trusted)
    online = config.online_deployment_spec("blue", ref, ref, tmp_path, environment_variables=variables)
    batch = config.batch_deployment_spec(ref, ref, tmp_path, environment_variables=variables)
    assert online.environment_variables[TRUST_VARIABLE] == batch.environment_variables[TRUST_VARIABLE] \
        == ("1" if trusted else "0")
    assert online.environment_variables["OMP_NUM_THREADS"] == "1", "the template's other variables stay"


def trial_model(folder: Path, conda: str = TRIAL_CONDA) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pt").write_bytes(b"pickle")
    (folder / "conda_env_v_1_0_0.yml").write_text(conda)
    (folder / "scoring_file_v_2_0_0.py").write_text("def init(): pass\n")
    return folder


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_model_with_a_conda_file_gets_its_own_environment(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, model=fake_model(tmp_path / "m"), from_model=FROM_MODEL), env={})
    choice = choose_environment(config, "tcn-dau:3", trial_model(tmp_path / "trial"), tmp_path / "out")
    assert choice.from_model and choice.source == "model tcn-dau:3 conda_env_v_1_0_0.yml"
    assert (choice.spec.name, choice.spec.image) == (FROM_MODEL["name"], FROM_MODEL["image"])
    assert [(u.was, u.now) for u in choice.unpinned] == [("numpy==2.4.6", "numpy"), ("pandas==3.1.1", "pandas")]
    text = choice.spec.conda_file.read_text()
    assert "torch==2.13.0" in text and "python=3.11.7" in text and "numpy==" not in text


def test_an_unchanged_trial_gives_the_same_environment_and_a_changed_pin_the_next(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, model=fake_model(tmp_path / "m"), from_model=FROM_MODEL), env={})
    first = choose_environment(config, "tcn-dau:1", trial_model(tmp_path / "a"), tmp_path / "out-a")
    # another trial, same conda file in another key order and other trailing pins: same environment
    reordered = ("channels:\n- anaconda\n- conda-forge\nname: project_environment\ndependencies:\n- python=3.11.7\n"
                 "- pip:\n  - azureml-inference-server-http==1.5.1\n  - torch==2.13.0\n- pandas==3.0.0\n"
                 "- numpy==2.4.0\n")
    second = choose_environment(config, "tcn-dau:2", trial_model(tmp_path / "b", reordered), tmp_path / "out-b")
    assert second.spec.content_hash() == first.spec.content_hash()
    changed = TRIAL_CONDA.replace("torch==2.13.0", "torch==2.14.0")
    third = choose_environment(config, "tcn-dau:3", trial_model(tmp_path / "c", changed), tmp_path / "out-c")
    assert third.spec.content_hash() != first.spec.content_hash()


@pytest.mark.parametrize("configured", [True, False])
def test_a_model_without_a_conda_file_or_without_from_model_uses_the_spec(tmp_path: Path, configured: bool) -> None:
    path = write_config(tmp_path, model=fake_model(tmp_path / "m"), from_model=FROM_MODEL if configured else None)
    config = load_config(path, env={})
    plain = choose_environment(config, "tcn-dau:1", fake_model(tmp_path / "plain"), tmp_path / "out")
    assert not plain.from_model and plain.spec == config.environment
    if not configured:
        ignored = choose_environment(config, "tcn-dau:1", trial_model(tmp_path / "trial"), tmp_path / "out")
        assert ignored.spec == config.environment


def test_find_conda_file_takes_automls_names_shallowest_and_newest(tmp_path: Path) -> None:
    (tmp_path / "deep" / "x").mkdir(parents=True)
    (tmp_path / "deep" / "x" / "conda_env_v_9_0_0.yml").write_text("x")
    (tmp_path / "conda_env_v_1_0_0.yml").write_text("x")
    (tmp_path / "conda_env_v_1_1_0.yml").write_text("x")
    (tmp_path / "other.yml").write_text("x")
    assert find_conda_file(tmp_path) == tmp_path / "conda_env_v_1_1_0.yml"
    assert find_conda_file(fake_model(tmp_path / "none")) is None


@pytest.mark.parametrize(
    ("from_model", "message"),
    [
        ({"image": "x"}, "environment.from_model.name"),
        ({"name": "bad name", "image": "x"}, "environment.from_model.name"),
        ({"name": "e", "image": "x", "unpin": "all"}, "environment.from_model.unpin"),
        ({"name": "e", "image": "x", "unpin": [1]}, "environment.from_model.unpin"),
    ],
)
def test_from_model_is_validated_up_front(tmp_path: Path, from_model: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(write_config(tmp_path, model=fake_model(tmp_path / "m"), from_model=from_model), env={})


def test_a_broken_conda_file_in_the_model_is_a_config_error(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, model=fake_model(tmp_path / "m"), from_model=FROM_MODEL), env={})
    with pytest.raises(ConfigError, match="conda file: model tcn-dau:1: conda_env_v_1_0_0.yml: expected a mapping"):
        choose_environment(config, "tcn-dau:1", trial_model(tmp_path / "t", "- just a list\n"), tmp_path / "o")


def test_a_step_run_with_another_model_reads_the_registered_files(tmp_path: Path) -> None:
    """``mlops register --model X`` then ``mlops environment`` (another process, mlops.yaml's own
    model.path): the environment comes from the model the record registered, not from mlops.yaml's."""
    from mlops.config import Overrides
    from mlops.release.context import ReleaseContext
    from mlops.release.current import new_record
    from mlops.release.steps.prepare import step_environment, step_register
    from tests.release.fakes import FakeWorkspace

    workspace = FakeWorkspace()
    path = write_config(tmp_path / "cfg", model=tmp_path / "no-such-folder", from_model=FROM_MODEL)
    trial = trial_model(tmp_path / "trial")
    register_config = load_config(path, overrides=Overrides(model=str(trial)), env={})
    record = new_record(register_config, workspace, tmp_path / "record.json")
    step_register(ReleaseContext(register_config, workspace, record))
    environment = step_environment(ReleaseContext(load_config(path, env={}), workspace, record))
    assert environment.name == FROM_MODEL["name"] and [u.name for u in environment.unpinned] == ["numpy", "pandas"]
    assert "download_model" in workspace.calls
