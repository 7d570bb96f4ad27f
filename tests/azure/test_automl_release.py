"""The release's first steps for ``job:NAME`` over the Azure adapter and the fake MLClient: AutoML's
best trial registered, its conda file downloaded with the model and turned into the serving
environment (trailing pins removed, canonical), pickles trusted on that model's deployments."""

from __future__ import annotations

from pathlib import Path

from mlops.config import Overrides, load_config
from mlops.release.context import ReleaseContext
from mlops.release.current import new_record
from mlops.release.steps.prepare import step_environment, step_register
from tests.azure.fake_mlclient import Rig
from tests.release.helpers import AUTOML_CONDA_FILE, fake_model, write_config

AUTOML_CONDA = AUTOML_CONDA_FILE.encode()


def seed(rig: Rig) -> None:
    rig.azure.add_job("sweep", primary_metric="R2Score", tags={"automl_best_child_run_id": "sweep_1"})
    for i in range(2):
        rig.azure.add_job(f"sweep_{i}", parent="sweep", properties={"score": str(0.5 + i / 10), "goal": "r2_score_max"},
                          files={"outputs/model.pt": f"pickle {i}".encode(), "outputs/conda_env_v_1_0_0.yml": AUTOML_CONDA,
                                 "outputs/scoring_file_v_2_0_0.py": b"def init(): pass\n"})


def context(rig: Rig, tmp_path: Path) -> ReleaseContext:
    path = write_config(tmp_path / "cfg", model=fake_model(tmp_path / "m"),
                        from_model={"name": "tcn-automl-inference", "image": "mcr.microsoft.com/azureml/curated/x:1"})
    config = load_config(path, overrides=Overrides(model="job:sweep"), env={})
    record = new_record(config, rig.workspace, tmp_path / "record.json")
    return ReleaseContext(config, rig.workspace, record)


def test_job_model_environment_from_its_conda_file_and_trust(rig: Rig, tmp_path: Path) -> None:
    seed(rig)
    ctx = context(rig, tmp_path)
    model = step_register(ctx)
    assert (model.trial.job, model.trial.trial, model.trial.primary_metric) == ("sweep", "sweep_1", "r2_score")
    assert model.trusted_pickles and ctx.deployment_variables() == {"MLOPS_TRUST_PICKLED_MODEL": "1"}

    environment = step_environment(ctx)
    assert (environment.name, environment.version) == ("tcn-automl-inference", "1")
    assert [u.name for u in environment.unpinned] == ["numpy", "pandas", "scikit-learn", "holidays", "psutil"]
    (create,) = rig.azure.calls_to("environments", "create_or_update")
    body = str(create.body)
    assert "azureml-defaults==1.60.0" in body and "python=3.9.22" in body, "the AutoML runtime keeps its pins"
    assert "numpy==1.23.5" not in body and "- numpy" in body
    assert create.body["properties"]["image"] == "mcr.microsoft.com/azureml/curated/x:1"
    assert rig.azure.calls_to("models", "download"), "the conda file is read from the registered model"

    # the same job again: the same model version and the same environment version, no write
    writes = len(rig.azure.writes())
    again = context(rig, tmp_path / "again")
    assert step_register(again).version == "1" and step_environment(again).version == "1"
    assert len(rig.azure.writes()) == writes
