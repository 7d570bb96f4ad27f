"""The job folder: the one place where a batch job's description, status, logs and output live.

Everything the runner knows or says about a job lives in ``job_dir``, so any process (the CLI that
started it, a later ``mlops`` command, a test) can read it without talking to the runner::

    job_dir/
      job.json            the BatchJobRuntime, written by start_job before the job process starts
      job.pid             pid (+ kernel start time) of the detached job process
      status.json         progress, replaced atomically (write + rename): never half-written
      cancel.requested    present once someone asked to cancel
      logs/job.log        the runner's own log: mini-batches, retries, timeouts, verdict
      logs/worker-N.log   everything worker N (and each restart of it) printed
      logs/job-process.log  the detached process's stdout/stderr (crashes before logging starts)
      outputs/<output_file_name>   the append_row output: one CSV with a header row
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.errors import NotFoundError, WorkspaceError
from mlops.workspace.local.batch.plan import BatchJobProgress, BatchJobRuntime
from mlops.workspace.port import JobStatus

JOB_FILE = "job.json"
PID_FILE = "job.pid"
STATUS_FILE = "status.json"
CANCEL_FILE = "cancel.requested"


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file beside ``path``, fsync, rename: readers see old or new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The document, or None when the file does not exist. Files are replaced atomically, so a
    bad document can only come from outside damage (a power cut before the data hit the disk)."""
    for attempt in range(3):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as exc:
            if attempt == 2:
                raise WorkspaceError(f"{path} is damaged ({exc}); the job's logs are in {path.parent / 'logs'}") from exc
            time.sleep(0.05)
    return None


def job_to_dict(job: BatchJobRuntime) -> dict[str, Any]:
    data = asdict(job)
    data["input_files"] = list(job.input_files)
    data["environment_variables"] = dict(job.environment_variables)
    data["required_packages"] = list(job.required_packages)
    return data


def load_job(job_dir: Path | str) -> BatchJobRuntime:
    """The ``BatchJobRuntime`` that ``start_job`` wrote into ``job_dir``."""
    data = read_json(Path(job_dir) / JOB_FILE)
    if data is None:
        raise NotFoundError(f"no batch job in {job_dir} ({JOB_FILE} is missing)")
    data["input_files"] = tuple(data.get("input_files", ()))
    data["environment_variables"] = dict(data.get("environment_variables", {}))
    data["required_packages"] = tuple(data.get("required_packages", ()))
    return BatchJobRuntime(**data)


def installed_distributions(python: str) -> set[str]:
    """The distribution names installed for the interpreter ``python``: read from a virtualenv's
    ``site-packages`` (``*.dist-info`` / ``*.egg-info`` folders), else asked of the interpreter."""
    root = Path(python).parent.parent  # not resolved: a venv's python is a link to the base interpreter
    if (root / "pyvenv.cfg").is_file():
        names: set[str] = set()
        for pattern in ("lib*/python*/site-packages/*.dist-info", "lib*/python*/site-packages/*.egg-info"):
            names.update(folder.name.split("-")[0] for folder in root.glob(pattern))
        return names
    import subprocess

    code = "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'] or '' for d in m.distributions()))"
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    return {line.strip() for line in result.stdout.splitlines() if line.strip()}


def job_process(job_dir: Path, status: dict[str, Any]) -> tuple[int, str | None] | None:
    """The job process as recorded by the job itself (status) or by ``start_job`` (pid file)."""
    if status.get("pid"):
        return int(status["pid"]), status.get("pid_identity")
    recorded = read_json(job_dir / PID_FILE)
    if recorded and recorded.get("pid"):
        return int(recorded["pid"]), recorded.get("identity")
    return None


def progress_from_status(status: dict[str, Any]) -> BatchJobProgress:
    return BatchJobProgress(
        status=JobStatus(status.get("status", JobStatus.QUEUED)),
        mini_batches_total=int(status.get("mini_batches_total", 0)),
        mini_batches_done=int(status.get("mini_batches_done", 0)),
        mini_batches_failed=int(status.get("mini_batches_failed", 0)),
        failed_files=tuple(status.get("failed_files", ())),
        error=status.get("error", ""),
        output_file=status.get("output_file", ""),
    )


def tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def read_logs(job_dir: Path | str, *, lines: int = 100) -> str:
    """The tail of the job log followed by the tail of every worker log, each under a title."""
    logs = Path(job_dir) / "logs"
    parts = []
    for path in [logs / "job.log", *sorted(logs.glob("worker-*.log"))]:
        text = tail(path, lines)
        if text:
            parts.append(f"--- {path.name} ---\n{text}")
    return "\n".join(parts)


def initial_status(job: BatchJobRuntime, batches: int) -> dict[str, Any]:
    return {
        "job_name": job.job_name, "status": JobStatus.QUEUED, "created_at": utcnow(),
        "mini_batches_total": batches, "mini_batches_done": 0, "mini_batches_failed": 0,
        "files_total": len(job.input_files), "files_failed": 0, "failed_files": [], "failures": {},
        "rows_written": 0, "error": "", "output_file": "", "workers": {},
    }
