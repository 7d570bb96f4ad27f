"""The AutoML import on the real azure-ai-ml client: ``job:NAME`` -> AutoML's best trial (its
``automl_best_child_run_id``) registered with its conda and scoring files -> the serving environment
made from that conda file. The job is seeded in the emulator (``tests.azure_emulator.automl_jobs``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.config import Overrides, load_config
from mlops.release.context import ReleaseContext
from mlops.release.current import new_record
from mlops.release.steps.prepare import step_environment, step_register
from mlops.workspace.azure import AzureWorkspace
from tests.azure_emulator import RunningEmulator, automl_jobs
from tests.release.helpers import AUTOML_CONDA_FILE, fake_model, write_config


def trial(name: str, score: float | None, status: str = "Completed") -> automl_jobs.Trial:
    return automl_jobs.Trial(name=name, score=score, status=status, files={
        "outputs/model.pt": f"pickled TCN of {name}".encode(),
        "outputs/conda_env_v_1_0_0.yml": AUTOML_CONDA_FILE.encode(),
        "outputs/scoring_file_v_2_0_0.py": b"def init():\n    pass\n\ndef run(data):\n    return data\n",
        "outputs/generated_code/script.py": b"# AutoML's training code\n"})


def context(emu: RunningEmulator, tmp_path: Path) -> ReleaseContext:
    clock = emu.clock
    ws = AzureWorkspace(emu.ml_client(), sleep=clock.sleep, clock=clock.monotonic, wall_clock=clock.now,
                        retry_base=1.0)
    path = write_config(tmp_path / "cfg", model=fake_model(tmp_path / "m"),
                        from_model={"name": "tcn-automl-inference", "image": "mcr.microsoft.com/azureml/curated/x:1"})
    config = load_config(path, overrides=Overrides(model="job:automl-dau"), env={})
    return ReleaseContext(config, ws, new_record(config, ws, tmp_path / "record.json"))


@pytest.fixture
def seeded(emulator: RunningEmulator) -> RunningEmulator:
    automl_jobs.seed(emulator, automl_jobs.AutoMLJob(name="automl-dau", best="automl-dau_1", trials=[
        trial("automl-dau_0", 0.081),  # the lowest NRMSE - but AutoML's own choice wins
        trial("automl-dau_1", 0.093),
        trial("automl-dau_2", None, status="Failed")]))
    return emulator


def test_job_model_source_registers_automls_choice_and_builds_the_environment_from_its_conda_file(
        seeded: RunningEmulator, tmp_path: Path) -> None:
    ctx = context(seeded, tmp_path)
    model = step_register(ctx)
    assert (model.trial.job, model.trial.trial) == ("automl-dau", "automl-dau_1")
    assert model.trial.primary_metric == "normalized_root_mean_squared_error", "REST spelling mapped by the SDK"
    assert model.trusted_pickles
    put = [e for e in seeded.requests_to("/models/", "PUT") if e.status in (200, 201)][-1].body
    assert put["properties"]["tags"]["mlops.automl_child_job"] == "automl-dau_1"
    # the registered folder holds exactly the three files AutoML's trial names (not generated_code/)
    from tests.azure_emulator import storage

    blobs = storage.for_emulator(seeded)
    uploaded = sorted(Path(n).name for n in blobs.names() if "/model" in n or n.endswith((".yml", ".py", ".pt")))
    assert {"model.pt", "conda_env_v_1_0_0.yml", "scoring_file_v_2_0_0.py"} <= set(uploaded)
    assert "script.py" not in uploaded

    environment = step_environment(ctx)
    assert (environment.name, environment.version) == ("tcn-automl-inference", "1")
    assert [u.name for u in environment.unpinned] == ["numpy", "pandas", "scikit-learn", "holidays", "psutil"]
    env_put = seeded.requests_to("/environments/tcn-automl-inference/versions/", "PUT")[-1].body
    conda = env_put["properties"]["condaFile"]
    assert "azureml-defaults==1.60.0" in conda and "numpy==1.23.5" not in conda
    assert env_put["properties"]["image"] == "mcr.microsoft.com/azureml/curated/x:1"


def test_without_automls_choice_the_best_score_in_the_metrics_direction_wins(emulator: RunningEmulator,
                                                                           tmp_path: Path) -> None:
    automl_jobs.seed(emulator, automl_jobs.AutoMLJob(name="automl-dau", best=None, trials=[
        trial("automl-dau_0", 0.081), trial("automl-dau_1", 0.093)]))
    model = step_register(context(emulator, tmp_path))
    assert model.trial.trial == "automl-dau_0", "NRMSE is minimized"
