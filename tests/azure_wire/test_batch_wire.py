"""Batch endpoints, deployments, jobs and their output on the real azure-ai-ml client against the
emulator (``routes/batch.py``, ``routes/jobs.py``, ``batch_jobs.py``) with Azurite as the storage."""

from __future__ import annotations

from pathlib import Path

from mlops.release.staging import stage_code
from mlops.workspace.azure import AzureWorkspace
from mlops.workspace.port import BatchDeploymentSpec, BatchEndpointSpec, EnvironmentSpec, JobStatus
from tests.azure_emulator import RunningEmulator, batch_jobs

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "endpoints" / "batch" / "smoke"
MODEL = REPO / "models" / "tcn-dau"
CONDA_WITH_CORE = ("name: tcn-batch\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n"
                   "      - azureml-core==1.60.0\n      - torch==2.13.0\n      - pandas\n")
CONDA_WITHOUT_CORE = CONDA_WITH_CORE.replace("      - azureml-core==1.60.0\n", "")


def adapter(emu: RunningEmulator) -> AzureWorkspace:
    clock = emu.clock
    return AzureWorkspace(emu.ml_client(), sleep=clock.sleep, clock=clock.monotonic, wall_clock=clock.now,
                          retry_base=1.0, poll_interval=5.0)


def environment(tmp_path: Path, conda: str, name: str = "tcn-batch") -> EnvironmentSpec:
    path = tmp_path / f"{name}-conda.yml"
    path.write_text(conda)
    return EnvironmentSpec(name=name, image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
                           conda_file=path, description="batch scoring")


def deployment_spec(tmp_path: Path, name: str, model, env) -> BatchDeploymentSpec:
    code = stage_code(REPO / "endpoints" / "batch", tmp_path / f"code-{name}")
    return BatchDeploymentSpec(endpoint_name="tcn-dau-batch", name=name, model=model, environment=env,
                               code_path=code, scoring_script="score.py", mini_batch_size=1,
                               output_file_name="predictions.csv",
                               environment_variables={"OMP_NUM_THREADS": "1"})


def test_batch_deployment_smoke_job_scores_the_uploaded_input_for_real(emulator: RunningEmulator, tmp_path) -> None:
    ws = adapter(emulator)
    model = ws.register_model("tcn-dau", MODEL)
    env = ws.ensure_environment(environment(tmp_path, CONDA_WITH_CORE))
    ws.ensure_batch_endpoint(BatchEndpointSpec(name="tcn-dau-batch", description="nightly"))
    created = ws.create_batch_deployment(deployment_spec(tmp_path, "tcn-v1", model.ref, env.ref))
    assert created.state == "Succeeded"
    job = ws.invoke_batch("tcn-dau-batch", SMOKE, deployment_name="tcn-v1")
    assert ws.get_batch_job(job.name).status is JobStatus.QUEUED
    emulator.clock.advance(600)
    assert ws.get_batch_job(job.name).status is JobStatus.COMPLETED
    output = ws.download_batch_output(job.name, tmp_path / "out")
    assert output.name == "predictions.csv"
    rows = batch_jobs.read_csv_rows(output.read_text())
    assert rows and {"date", "predicted", "count", "file"} <= set(rows[0])
