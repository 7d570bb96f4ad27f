"""The batch runner's pure decisions and the job's description: no I/O, tested with tables.

``BatchJobRuntime`` is everything one job needs (the workspace builds it from the store and the
batch deployment's spec); ``BatchJobProgress`` is what the job says about itself. The decisions -
how the input files are split into mini-batches, what follows a failed mini-batch, when
``error_threshold`` stops the job, and whether a recorded status is stale because the job process
died - are the rules described in ``jobs.py``'s docstring (Azure ML batch deployments,
``azure.ai.ml.entities.BatchDeployment``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mlops.workspace.port import JobStatus


@dataclass(frozen=True)
class BatchJobRuntime:
    """Everything one batch job needs. The runner writes its status, logs and output under ``job_dir``."""

    job_name: str
    job_dir: str
    python: str
    """The environment venv's interpreter: workers run the scoring script with it."""
    code_dir: str
    scoring_script: str
    model_dir: str
    input_files: tuple[str, ...]
    mini_batch_size: int = 10
    workers: int = 1
    """``instance_count x max_concurrency_per_instance`` worker processes."""
    max_retries: int = 3
    timeout: int = 30
    """Seconds one mini-batch may take before it is killed and retried."""
    error_threshold: int = -1
    output_action: str = "append_row"
    output_file_name: str = "predictions.csv"
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    required_packages: tuple[str, ...] = ()
    """Distributions the environment must hold or the job fails at its start, as Azure's does
    (``BATCH_REQUIRED_PACKAGES`` for a batch deployment's job; empty for a bare runner)."""


BATCH_REQUIRED_PACKAGES = ("azureml-core", "azureml-dataset-runtime")
"""What Azure ML requires in a custom-script batch deployment's environment. The docs: "Such
environment needs to include the packages `azureml-core` and `azureml-dataset-runtime[fuse]`,
which are required by batch endpoints, plus any dependency your code requires for running"
(Deploy models for scoring in batch endpoints, how-to-use-batch-model-deployments); the Learn
module: "You also need to add the library azureml-core as it's required for batch deployments to
work" (deploy-model-batch-endpoint, 4-deploy-custom-model-batch-endpoint). On Azure the batch
driver runs in that environment and the job fails without them."""


def _normalized(name: str) -> str:
    """PEP 503 normalisation, as dist-info folder names and requirement names compare."""
    return "-".join(part for part in name.lower().replace("_", "-").replace(".", "-").split("-") if part)


def missing_packages(required: Sequence[str], installed: Iterable[str]) -> tuple[str, ...]:
    """The ``required`` distributions not among ``installed`` (names compared normalised)."""
    have = {_normalized(name) for name in installed}
    return tuple(name for name in required if _normalized(name) not in have)


def missing_packages_error(missing: Sequence[str], python: str) -> str:
    """The job's error when its environment lacks a package Azure requires: the package and the fix."""
    extras = {"azureml-dataset-runtime": "azureml-dataset-runtime[fuse]"}
    wanted = ", ".join(extras.get(name, name) for name in missing)
    return (f"the batch deployment's environment lacks {', '.join(missing)} (interpreter {python}): Azure ML "
            "batch deployments run their scoring script only in an environment holding azureml-core and "
            f"azureml-dataset-runtime[fuse], and their jobs fail without them. Fix: add {wanted} to the "
            "'pip:' section of the environment's conda file (environments/*/conda.yml), then release again "
            "(a new environment version is built and pinned)")


@dataclass(frozen=True)
class BatchJobProgress:
    status: JobStatus
    mini_batches_total: int = 0
    mini_batches_done: int = 0
    mini_batches_failed: int = 0
    failed_files: tuple[str, ...] = ()
    error: str = ""
    output_file: str = ""


@dataclass(frozen=True)
class Task:
    """One run of ``run(mini_batch)``: a whole mini-batch, or one file of a failed one (``single``)."""

    mini_batch: int
    files: tuple[str, ...]
    attempt: int = 0
    single: int = -1
    """Index of the file inside its mini-batch when the mini-batch is being isolated, else -1."""

    @property
    def isolated(self) -> bool:
        return self.single >= 0

    @property
    def id(self) -> str:
        suffix = f"-f{self.single:04d}" if self.isolated else ""
        return f"mb{self.mini_batch:05d}{suffix}-a{self.attempt}"


FailureAction = Literal["retry", "isolate", "fail"]


def plan_mini_batches(files: Sequence[str], mini_batch_size: int) -> list[tuple[str, ...]]:
    """Sorted files in consecutive groups of ``mini_batch_size`` (the last one may be shorter)."""
    if mini_batch_size < 1:
        raise ValueError(f"mini_batch_size must be at least 1, got {mini_batch_size}")
    ordered = sorted(files)
    return [tuple(ordered[i:i + mini_batch_size]) for i in range(0, len(ordered), mini_batch_size)]


def after_failure(task: Task, max_retries: int) -> FailureAction:
    """What to do with a task that raised, crashed or timed out.

    A mini-batch is retried up to ``max_retries`` times; then, if it holds several files, its files
    are re-run one by one to find the bad one(s); a single file that fails is counted as failed.
    An isolated file is run once: its mini-batch already used its retries.
    """
    if not task.isolated and task.attempt < max_retries:
        return "retry"
    if len(task.files) > 1:
        return "isolate"
    return "fail"


def threshold_exceeded(failed_files: int, error_threshold: int) -> bool:
    """Azure ML: the job is aborted when the failure count goes ABOVE the threshold; -1 ignores all."""
    return error_threshold >= 0 and failed_files > error_threshold


def name_files(files: Sequence[str], limit: int = 20) -> str:
    """The files for a message: all of them, or the first ``limit`` and how many more."""
    shown = ", ".join(files[:limit])
    return shown + (f" and {len(files) - limit} more (see failed_files)" if len(files) > limit else "")


def has_ended(status: Mapping[str, Any]) -> bool:
    """Whether a recorded status document says the job ended (``JobStatus.finished``)."""
    return JobStatus(status.get("status", JobStatus.QUEUED)).finished


def stale_status(status: dict[str, Any], process_alive: bool | None) -> dict[str, Any] | None:
    """The status to record when the job process died without saying how the job ended, else None.

    ``process_alive`` is None when no process is known yet (``start_job`` is between writing the
    status and starting the process).
    """
    if has_ended(status) or process_alive is None or process_alive:
        return None
    was = status.get("status", JobStatus.QUEUED)
    return {**status, "status": JobStatus.FAILED,
            "error": f"job process {status.get('pid', '?')} died while {was} (killed or crashed); "
                     "see logs/job.log and logs/job-process.log"}
