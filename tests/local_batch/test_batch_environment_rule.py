"""Azure's rule for a batch deployment's environment, as the local workspace enforces it: a job
whose environment lacks ``azureml-core`` / ``azureml-dataset-runtime`` fails at its start naming
the packages and the fix (``plan.BATCH_REQUIRED_PACKAGES``; Azure's docs quoted there)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlops.workspace.local.batch import jobs as batch_jobs
from mlops.workspace.local.batch.files import installed_distributions
from mlops.workspace.local.batch.plan import BATCH_REQUIRED_PACKAGES, BatchJobRuntime, missing_packages
from mlops.workspace.port import JobStatus


@pytest.mark.parametrize(("required", "installed", "missing"), [
    (BATCH_REQUIRED_PACKAGES, ["azureml_core", "azureml_dataset_runtime", "numpy"], ()),
    (BATCH_REQUIRED_PACKAGES, ["Azureml-Core", "azureml.dataset.runtime"], ()),
    (BATCH_REQUIRED_PACKAGES, ["azureml_core"], ("azureml-dataset-runtime",)),
    (BATCH_REQUIRED_PACKAGES, ["azureml_inference_server_http", "torch"], BATCH_REQUIRED_PACKAGES),
    ((), [], ()),
])
def test_missing_packages(required, installed, missing) -> None:
    assert missing_packages(required, installed) == missing


def test_the_rule_names_both_packages_the_docs_require() -> None:
    assert BATCH_REQUIRED_PACKAGES == ("azureml-core", "azureml-dataset-runtime")


def test_installed_distributions_reads_a_venv_and_asks_another_interpreter() -> None:
    names = {name.lower().replace("_", "-") for name in installed_distributions(sys.executable)}
    assert {"pytest", "pyyaml"} <= names


def _job(tmp_path: Path, required: tuple[str, ...]) -> BatchJobRuntime:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("def init():\n    pass\n\ndef run(mini_batch):\n    return list(mini_batch)\n")
    (tmp_path / "in.csv").write_text("x\n1\n")
    return BatchJobRuntime(job_name="rule", job_dir=str(tmp_path / "job"), python=sys.executable,
                           code_dir=str(code), scoring_script="score.py", model_dir=str(tmp_path),
                           input_files=(str(tmp_path / "in.csv"),), required_packages=required)


def test_a_job_in_an_environment_without_azureml_core_fails_naming_the_packages_and_the_fix(tmp_path) -> None:
    if not missing_packages(BATCH_REQUIRED_PACKAGES, installed_distributions(sys.executable)):
        pytest.skip("this interpreter has azureml-core and azureml-dataset-runtime")
    progress = batch_jobs.run_job(_job(tmp_path, BATCH_REQUIRED_PACKAGES))
    assert progress.status is JobStatus.FAILED
    assert "lacks azureml-core, azureml-dataset-runtime" in progress.error
    assert "add azureml-core, azureml-dataset-runtime[fuse] to the 'pip:' section" in progress.error
    assert progress.mini_batches_done == 0, "the scoring script never ran"


def test_a_job_whose_environment_holds_the_required_packages_runs(tmp_path) -> None:
    progress = batch_jobs.run_job(_job(tmp_path, ("pyyaml", "pytest")))
    assert progress.status is JobStatus.COMPLETED, progress.error
