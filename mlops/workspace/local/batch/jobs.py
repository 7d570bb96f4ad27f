"""The local workspace's batch jobs: start, run, cancel and read them (Azure ML batch deployment
semantics with real processes).

A job is a folder (``job_dir``, laid out in ``files.py``) that the workspace creates; a job runs in
a detached process (``runner.py``) that feeds worker processes (``worker.py``).

How a job runs (mirrors Azure ML batch deployments, ``azure.ai.ml.entities.BatchDeployment``):

* The input files (sorted) are split into mini-batches of ``mini_batch_size`` files.
* ``workers`` (= ``instance_count x max_concurrency_per_instance``) long-lived worker processes run
  ``worker.py`` with the deployment environment's interpreter: cwd and ``sys.path`` get the
  code folder, ``AZUREML_MODEL_DIR`` and the deployment's ``environment_variables`` are set, the
  scoring script's ``init()`` runs once per worker, then ``run(mini_batch)`` (a list of file paths)
  once per mini-batch handed to it. ``run()`` returns a DataFrame or a list: one output row each.
* ``retry_settings``: a mini-batch that raises, crashes its worker, or runs longer than ``timeout``
  seconds (the worker is killed and restarted, ``init()`` runs again) is retried up to
  ``max_retries`` more times.
* Poison files: when a mini-batch of several files still fails after its retries, the runner
  re-runs its files ONE BY ONE (each once, no further retries) to find which file is bad. The good
  files' rows reach the output; only the failing files are counted and named in ``failed_files``.
  Azure ML would count every file of the failed mini-batch; we isolate so that a job can report
  the culprit by name and ``error_threshold`` counts real bad files.
* ``error_threshold``: how many failed FILES the job tolerates (-1: all). One more and the job
  stops scheduling, kills its workers and ends ``Failed``, naming the failed files. Otherwise it
  ends ``Completed`` with the failed files listed in its progress.
* ``append_row``: every row of every successful (sub-)mini-batch goes to ONE CSV file under
  ``outputs/``, in completion order, with the header (the DataFrame columns) written once.
  The file appears under its final name only when the job ends (rows are gathered in a hidden
  ``.partial`` file). ``summary_only`` writes no output file.
* A job whose process dies (``kill -9``, machine reboot) while ``Queued``/``Running`` is reported
  ``Failed`` ("job process died") by the next ``read_progress``; its workers notice that their
  parent is gone and exit on their own.

Decisions (how to split, what to do after a failure, when the threshold is exceeded, whether a
recorded status is stale) are pure functions in ``plan.py``; the rest is I/O.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mlops.errors import NotFoundError
from mlops.processes import process_alive, process_identity
from mlops.workspace.local.batch.files import (
    CANCEL_FILE,
    JOB_FILE,
    PID_FILE,
    STATUS_FILE,
    initial_status,
    job_process,
    job_to_dict,
    progress_from_status,
    read_json,
    read_logs,
    tail,
    utcnow,
    write_json_atomic,
)
from mlops.workspace.local.batch.plan import (
    BatchJobProgress,
    BatchJobRuntime,
    has_ended,
    plan_mini_batches,
    stale_status,
)
from mlops.workspace.local.batch.runner import POLL_SECONDS, JobRunner
from mlops.workspace.port import JobStatus

__all__ = ["BatchJobProgress", "BatchJobRuntime", "cancel_job", "read_logs", "read_progress", "read_status",
           "run_job", "start_job"]


def read_status(job_dir: Path | str) -> dict[str, Any]:
    """The full status document (``status.json`` plus counters the port does not carry).

    A ``Queued``/``Running`` job whose process is gone is recorded and returned as ``Failed``.
    """
    job_dir = Path(job_dir)
    _reap_children()
    status = read_json(job_dir / STATUS_FILE)
    if status is None:
        if not (job_dir / JOB_FILE).is_file():
            raise NotFoundError(f"no batch job in {job_dir}")
        return {"status": JobStatus.QUEUED}
    if has_ended(status):
        return status
    process = job_process(job_dir, status)
    alive = None if process is None else process_alive(*process)
    if stale_status(status, alive) is None:
        return status
    # The process is dead. It writes its final status before exiting, so read once more.
    status = read_json(job_dir / STATUS_FILE) or status
    if process is not None and not status.get("pid"):
        status = {**status, "pid": process[0]}
    died = stale_status(status, False)
    if died is None:
        return status
    log_tail = tail(job_dir / "logs" / "job-process.log", 20)
    if log_tail:
        died["error"] += f"\n--- logs/job-process.log ---\n{log_tail}"
    died["finished_at"] = utcnow()
    write_json_atomic(job_dir / STATUS_FILE, died)
    return died


def read_progress(job_dir: Path | str) -> BatchJobProgress:
    """The job's progress now; safe to poll while the job runs (see ``read_status``)."""
    return progress_from_status(read_status(job_dir))



_JOB_PROCESS_CODE = "import sys; from mlops.workspace.local.batch.runner import main; sys.exit(main(sys.argv))"
"""Not ``-m mlops.workspace.local.batch.runner``: the package's ``LocalWorkspace`` may import it
first, and runpy would warn about (and run) a second copy of it."""

_children: list[subprocess.Popen] = []
"""Detached job processes this process started: polled now and then so none stays a zombie."""


def _reap_children() -> None:
    _children[:] = [proc for proc in _children if proc.poll() is None]


def start_job(job: BatchJobRuntime) -> int:
    """Write ``job.json`` and a ``Queued`` status, start the job in a DETACHED process, return its pid.

    The process runs in its own session (``start_new_session``), so it survives the CLI that
    started it and a Ctrl-C in that terminal. Poll it with ``read_progress(job.job_dir)``.
    """
    job_dir = Path(job.job_dir)
    (job_dir / "logs").mkdir(parents=True, exist_ok=True)
    write_json_atomic(job_dir / JOB_FILE, job_to_dict(job))
    batches = len(plan_mini_batches(job.input_files, job.mini_batch_size))
    write_json_atomic(job_dir / STATUS_FILE, initial_status(job, batches))
    package_root = str(Path(__file__).resolve().parents[4])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH", "")]))
    _reap_children()
    with (job_dir / "logs" / "job-process.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-c", _JOB_PROCESS_CODE, str(job_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=job_dir, env=env,
            start_new_session=True, close_fds=True,
        )
    _children.append(proc)
    write_json_atomic(job_dir / PID_FILE, {"pid": proc.pid, "identity": process_identity(proc.pid)})
    return proc.pid


def run_job(job: BatchJobRuntime, *, cancel: threading.Event | None = None) -> BatchJobProgress:
    """Run the job in this process until it ends; return its final progress (what the detached
    process runs). ``cancel`` (or a ``cancel.requested`` file in ``job_dir``) stops it as ``Canceled``."""
    return JobRunner(job, cancel or threading.Event()).run()


def cancel_job(job_dir: Path | str, *, wait: float = 15.0) -> BatchJobProgress:
    """Ask the job to stop; it kills its workers and ends ``Canceled``. If the job process does not
    finish within ``wait`` seconds it is killed (with its process group) and marked ``Canceled``.
    A job that already ended is left as it is."""
    job_dir = Path(job_dir)
    status = read_status(job_dir)
    if has_ended(status):
        return progress_from_status(status)
    (job_dir / CANCEL_FILE).touch()
    process = job_process(job_dir, status)
    deadline = time.monotonic() + wait
    while process is not None and process_alive(*process) and time.monotonic() < deadline:
        if has_ended(read_status(job_dir)):
            return read_progress(job_dir)
        time.sleep(POLL_SECONDS)
    if process is not None and process_alive(*process) and process[0] != os.getpid():
        try:
            if os.getpgid(process[0]) == process[0]:  # a detached job: its group is its own
                os.killpg(process[0], signal.SIGKILL)
        except ProcessLookupError:
            pass
    status = read_json(job_dir / STATUS_FILE) or status
    if not has_ended(status):
        status = {**status, "status": JobStatus.CANCELED, "error": "canceled by request", "finished_at": utcnow()}
        write_json_atomic(job_dir / STATUS_FILE, status)
    _reap_children()
    return progress_from_status(status)
