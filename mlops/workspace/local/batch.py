"""The local workspace's batch job runner: Azure ML batch deployment semantics with real processes.

A job is a folder (``job_dir``) that the workspace creates; everything the runner knows or says
about the job lives there, so any process (the CLI that started it, a later ``mlops`` command, a
test) can read it without talking to the runner::

    job_dir/
      job.json            the BatchJobRuntime, written by start_job before the job process starts
      job.pid             pid (+ kernel start time) of the detached job process
      status.json         progress, replaced atomically (write + rename): never half-written
      cancel.requested    present once someone asked to cancel
      logs/job.log        the runner's own log: mini-batches, retries, timeouts, verdict
      logs/worker-N.log   everything worker N (and each restart of it) printed
      logs/job-process.log  the detached process's stdout/stderr (crashes before logging starts)
      outputs/<output_file_name>   the append_row output: one CSV with a header row

How a job runs (mirrors Azure ML batch deployments, ``azure.ai.ml.entities.BatchDeployment``):

* The input files (sorted) are split into mini-batches of ``mini_batch_size`` files.
* ``workers`` (= ``instance_count x max_concurrency_per_instance``) long-lived worker processes run
  ``batch_worker.py`` with the deployment environment's interpreter: cwd and ``sys.path`` get the
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
recorded status is stale) are pure functions at the top of this module; the rest is I/O.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mlops.errors import NotFoundError, WorkspaceError
from mlops.processes import process_alive, process_identity
from mlops.workspace.local.runtime import BatchJobProgress, BatchJobRuntime

JOB_FILE = "job.json"
PID_FILE = "job.pid"
STATUS_FILE = "status.json"
CANCEL_FILE = "cancel.requested"
TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Canceled"})

INIT_TIMEOUT_SECONDS = 600.0
"""How long a worker's ``init()`` may take (loading a big model is slow; it is not a mini-batch)."""
_POLL_SECONDS = 0.2
_SAVE_INTERVAL_SECONDS = 0.5
_WORKER_SCRIPT = Path(__file__).with_name("batch_worker.py")
_WORKER_ENV_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
"""The workers run in the deployment's own environment, not in the caller's Python setup."""


# ---------------------------------------------------------------------------------------------
# Pure decisions


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


def stale_status(status: dict[str, Any], process_alive: bool | None) -> dict[str, Any] | None:
    """The status to record when the job process died without saying how the job ended, else None.

    ``process_alive`` is None when no process is known yet (``start_job`` is between writing the
    status and starting the process).
    """
    if status.get("status") in TERMINAL_STATUSES or process_alive is None or process_alive:
        return None
    was = status.get("status", "Queued")
    return {**status, "status": "Failed",
            "error": f"job process {status.get('pid', '?')} died while {was} (killed or crashed); "
                     "see logs/job.log and logs/job-process.log"}


# ---------------------------------------------------------------------------------------------
# Job folder I/O


def _utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file beside ``path``, fsync, rename: readers see old or new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
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
    return data


def load_job(job_dir: Path | str) -> BatchJobRuntime:
    """The ``BatchJobRuntime`` that ``start_job`` wrote into ``job_dir``."""
    data = _read_json(Path(job_dir) / JOB_FILE)
    if data is None:
        raise NotFoundError(f"no batch job in {job_dir} ({JOB_FILE} is missing)")
    data["input_files"] = tuple(data.get("input_files", ()))
    data["environment_variables"] = dict(data.get("environment_variables", {}))
    return BatchJobRuntime(**data)


def _job_process(job_dir: Path, status: dict[str, Any]) -> tuple[int, str | None] | None:
    """The job process as recorded by the job itself (status) or by ``start_job`` (pid file)."""
    if status.get("pid"):
        return int(status["pid"]), status.get("pid_identity")
    recorded = _read_json(job_dir / PID_FILE)
    if recorded and recorded.get("pid"):
        return int(recorded["pid"]), recorded.get("identity")
    return None


def read_status(job_dir: Path | str) -> dict[str, Any]:
    """The full status document (``status.json`` plus counters the port does not carry).

    A ``Queued``/``Running`` job whose process is gone is recorded and returned as ``Failed``.
    """
    job_dir = Path(job_dir)
    _reap_children()
    status = _read_json(job_dir / STATUS_FILE)
    if status is None:
        if not (job_dir / JOB_FILE).is_file():
            raise NotFoundError(f"no batch job in {job_dir}")
        return {"status": "Queued"}
    if status.get("status") in TERMINAL_STATUSES:
        return status
    process = _job_process(job_dir, status)
    alive = None if process is None else process_alive(*process)
    if stale_status(status, alive) is None:
        return status
    # The process is dead. It writes its final status before exiting, so read once more.
    status = _read_json(job_dir / STATUS_FILE) or status
    if process is not None and not status.get("pid"):
        status = {**status, "pid": process[0]}
    died = stale_status(status, False)
    if died is None:
        return status
    tail = _tail(job_dir / "logs" / "job-process.log", 20)
    if tail:
        died["error"] += f"\n--- logs/job-process.log ---\n{tail}"
    died["finished_at"] = _utcnow()
    _write_json_atomic(job_dir / STATUS_FILE, died)
    return died


def progress_from_status(status: dict[str, Any]) -> BatchJobProgress:
    return BatchJobProgress(
        status=status.get("status", "Queued"),
        mini_batches_total=int(status.get("mini_batches_total", 0)),
        mini_batches_done=int(status.get("mini_batches_done", 0)),
        mini_batches_failed=int(status.get("mini_batches_failed", 0)),
        failed_files=tuple(status.get("failed_files", ())),
        error=status.get("error", ""),
        output_file=status.get("output_file", ""),
    )


def read_progress(job_dir: Path | str) -> BatchJobProgress:
    """The job's progress now; safe to poll while the job runs (see ``read_status``)."""
    return progress_from_status(read_status(job_dir))


def _tail(path: Path, lines: int) -> str:
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
        tail = _tail(path, lines)
        if tail:
            parts.append(f"--- {path.name} ---\n{tail}")
    return "\n".join(parts)


def _initial_status(job: BatchJobRuntime, batches: int) -> dict[str, Any]:
    return {
        "job_name": job.job_name, "status": "Queued", "created_at": _utcnow(),
        "mini_batches_total": batches, "mini_batches_done": 0, "mini_batches_failed": 0,
        "files_total": len(job.input_files), "files_failed": 0, "failed_files": [], "failures": {},
        "rows_written": 0, "error": "", "output_file": "", "workers": {},
    }


# ---------------------------------------------------------------------------------------------
# Starting, running and canceling jobs

_JOB_PROCESS_CODE = "import sys; from mlops.workspace.local.batch import _main; sys.exit(_main(sys.argv))"
"""Not ``-m mlops.workspace.local.batch``: the package imports this module too, and runpy would
warn about (and run) a second copy of it."""

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
    _write_json_atomic(job_dir / JOB_FILE, job_to_dict(job))
    batches = len(plan_mini_batches(job.input_files, job.mini_batch_size))
    _write_json_atomic(job_dir / STATUS_FILE, _initial_status(job, batches))
    package_root = str(Path(__file__).resolve().parents[3])
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
    _write_json_atomic(job_dir / PID_FILE, {"pid": proc.pid, "identity": process_identity(proc.pid)})
    return proc.pid


def run_job(job: BatchJobRuntime, *, cancel: threading.Event | None = None) -> BatchJobProgress:
    """Run the job in this process until it ends; return its final progress (what the detached
    process runs). ``cancel`` (or a ``cancel.requested`` file in ``job_dir``) stops it as ``Canceled``."""
    return _JobRunner(job, cancel or threading.Event()).run()


def cancel_job(job_dir: Path | str, *, wait: float = 15.0) -> BatchJobProgress:
    """Ask the job to stop; it kills its workers and ends ``Canceled``. If the job process does not
    finish within ``wait`` seconds it is killed (with its process group) and marked ``Canceled``.
    A job that already ended is left as it is."""
    job_dir = Path(job_dir)
    status = read_status(job_dir)
    if status.get("status") in TERMINAL_STATUSES:
        return progress_from_status(status)
    (job_dir / CANCEL_FILE).touch()
    process = _job_process(job_dir, status)
    deadline = time.monotonic() + wait
    while process is not None and process_alive(*process) and time.monotonic() < deadline:
        if read_status(job_dir).get("status") in TERMINAL_STATUSES:
            return read_progress(job_dir)
        time.sleep(_POLL_SECONDS)
    if process is not None and process_alive(*process) and process[0] != os.getpid():
        try:
            if os.getpgid(process[0]) == process[0]:  # a detached job: its group is its own
                os.killpg(process[0], signal.SIGKILL)
        except ProcessLookupError:
            pass
    status = _read_json(job_dir / STATUS_FILE) or status
    if status.get("status") not in TERMINAL_STATUSES:
        status = {**status, "status": "Canceled", "error": "canceled by request", "finished_at": _utcnow()}
        _write_json_atomic(job_dir / STATUS_FILE, status)
    _reap_children()
    return progress_from_status(status)


# ---------------------------------------------------------------------------------------------
# One worker process, seen from the job process


@dataclass(frozen=True)
class _Reply:
    kind: Literal["ok", "error", "timeout", "crashed", "stopped", "ready"]
    error: str = ""
    rows: int = 0
    columns: tuple[str, ...] | None = None


class _Worker:
    """A ``batch_worker.py`` process and a thread that turns its stdout into a queue of replies."""

    def __init__(self, proc: subprocess.Popen, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @classmethod
    def start(cls, job: BatchJobRuntime, slot: int, log_path: Path) -> _Worker:
        env = {k: v for k, v in os.environ.items() if k not in _WORKER_ENV_DROPPED}
        env.update(job.environment_variables)
        env.update({"AZUREML_MODEL_DIR": job.model_dir, "PYTHONUNBUFFERED": "1"})
        config = {"code_dir": job.code_dir, "scoring_script": job.scoring_script, "slot": slot}
        with log_path.open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - the deployment's interpreter, from the store
                [job.python, str(_WORKER_SCRIPT), json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=job.code_dir, env=env,
                text=True, encoding="utf-8", bufsize=1, start_new_session=True, close_fds=True,
            )
        return cls(proc, log_path)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        """Replies until EOF (the worker exited or was killed); this thread alone closes stdout."""
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                try:
                    self._replies.put(json.loads(line))
                except json.JSONDecodeError:
                    continue
        except (OSError, ValueError):
            pass
        finally:
            self._replies.put(None)
            self.proc.stdout.close()

    def _await(self, timeout: float, stopping: Callable[[], bool], expect_id: str | None) -> _Reply | dict:
        deadline = time.monotonic() + timeout
        while True:
            if stopping():
                return _Reply("stopped")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _Reply("timeout", error=f"timed out after {timeout:g}s")
            try:
                message = self._replies.get(timeout=min(_POLL_SECONDS, remaining))
            except queue.Empty:
                continue
            if message is None:
                try:
                    code = self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                tail = _tail(self.log_path, 20)
                return _Reply("crashed", error=f"{tail}\nworker process {self.pid} exited (code {code})")
            if expect_id is None or message.get("id") == expect_id:
                return message

    def wait_ready(self, stopping: Callable[[], bool]) -> _Reply:
        reply = self._await(INIT_TIMEOUT_SECONDS, stopping, None)
        if isinstance(reply, _Reply):
            return reply
        if reply.get("event") == "ready":
            return _Reply("ready")
        return _Reply("error", error=str(reply.get("error", reply)))

    def run(self, task: Task, part: Path | None, timeout: float, stopping: Callable[[], bool]) -> _Reply:
        request = {"id": task.id, "files": list(task.files), "part": str(part) if part else None}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            return _Reply("crashed", error=f"{_tail(self.log_path, 20)}\nworker process {self.pid} is gone ({exc})")
        reply = self._await(timeout, stopping, task.id)
        if isinstance(reply, _Reply):
            return reply
        if reply.get("event") == "done":
            columns = reply.get("columns")
            return _Reply("ok", rows=int(reply.get("rows", 0)),
                          columns=tuple(columns) if columns is not None else None)
        return _Reply("error", error=str(reply.get("error", reply)))

    def kill(self) -> None:
        """Kill the worker and anything its scoring script started (its own process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._close_pipes()

    def close(self) -> None:
        """Let the worker finish: closing stdin makes it exit; kill it if it does not."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        try:  # its scoring script may have left children in the group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._close_pipes()

    def _close_pipes(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:  # the worker died with unread input in the pipe
            pass


# ---------------------------------------------------------------------------------------------
# The append_row output


class _Output:
    """One CSV: the header (first DataFrame's columns) once, then the rows of each part as it lands."""

    def __init__(self, final: Path, enabled: bool) -> None:
        self.final = final
        self.partial = final.with_name(f".{final.name}.partial")
        self.enabled = enabled
        self.columns: tuple[str, ...] | None = None
        self.rows = 0
        self._handle = None

    def append(self, part: Path | None, rows: int, columns: tuple[str, ...] | None) -> str:
        """Add a part's rows; returns a warning when its columns do not match the header."""
        self.rows += rows
        if not self.enabled or part is None:
            return ""
        if self._handle is None:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.partial.open("w", newline="", encoding="utf-8")
        writer = csv.writer(self._handle, lineterminator="\n")
        if self.columns is None and columns is not None and self.rows == rows:
            self.columns = columns
            writer.writerow(columns)
        warning = ""
        with part.open(newline="", encoding="utf-8") as source:
            if columns is None or self.columns is None or columns == self.columns:
                shutil.copyfileobj(source, self._handle)
            else:
                where = {name: i for i, name in enumerate(columns)}
                extra = [name for name in columns if name not in self.columns]
                if extra:
                    warning = f"columns {extra} are not in the output header {list(self.columns)}; dropped"
                for row in csv.reader(source):
                    writer.writerow([row[where[name]] if name in where else "" for name in self.columns])
        self._handle.flush()
        return warning

    def finish(self) -> str:
        """Move the rows under the final name; return that path ('' for summary_only)."""
        if not self.enabled:
            return ""
        if self._handle is None:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self.partial.touch()
        else:
            self._handle.close()
            self._handle = None
        os.replace(self.partial, self.final)
        return str(self.final)


# ---------------------------------------------------------------------------------------------
# The job process


@dataclass
class _MiniBatchState:
    files: tuple[str, ...]
    singles_left: int = 0
    failed: list[str] = field(default_factory=list)


class _JobRunner:
    def __init__(self, job: BatchJobRuntime, cancel: threading.Event) -> None:
        self.job = job
        self.dir = Path(job.job_dir)
        for sub in ("logs", "outputs", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.cancel = cancel
        self.batches = plan_mini_batches(job.input_files, job.mini_batch_size)
        self.states = {i: _MiniBatchState(files) for i, files in enumerate(self.batches)}
        self.pending: deque[Task] = deque(Task(i, files) for i, files in enumerate(self.batches))
        self.unresolved = len(self.batches)
        self.cond = threading.Condition()
        self.stop: tuple[str, str] | None = None
        self.output = _Output(self.dir / "outputs" / job.output_file_name, job.output_action == "append_row")
        self.status = _read_json(self.dir / STATUS_FILE) or {}
        self.status.update(_initial_status(job, len(self.batches)) | {
            "created_at": self.status.get("created_at", _utcnow())})
        self._log = (self.dir / "logs" / "job.log").open("a", encoding="utf-8")
        self._log_lock = threading.Lock()
        self._dirty = False
        self._saved_at = 0.0

    # -- bookkeeping (call with self.cond held) ------------------------------------------------
    def log(self, message: str) -> None:
        with self._log_lock:
            self._log.write(f"{_utcnow()} {message}\n")
            self._log.flush()

    def _save(self, *, force: bool = False) -> None:
        """Record the status; at most every ``_SAVE_INTERVAL_SECONDS`` unless forced (a job of ten
        thousand one-file mini-batches must not spend its time in fsync). The main loop flushes."""
        self._dirty = True
        if force or time.monotonic() - self._saved_at >= _SAVE_INTERVAL_SECONDS:
            self.status["rows_written"] = self.output.rows
            _write_json_atomic(self.dir / STATUS_FILE, self.status)
            self._dirty = False
            self._saved_at = time.monotonic()

    def _halt(self, status: str, error: str) -> None:
        if self.stop is None:
            self.stop = (status, error)
            self.log(f"stopping: {status}: {error}")
            self.cond.notify_all()

    def _stopping(self) -> bool:
        return self.stop is not None

    def _resolve(self, task: Task, failed_files: Sequence[str]) -> None:
        state = self.states[task.mini_batch]
        state.failed.extend(failed_files)
        if task.isolated:
            state.singles_left -= 1
            if state.singles_left > 0:
                return
        key = "mini_batches_failed" if state.failed else "mini_batches_done"
        self.status[key] += 1
        self.unresolved -= 1
        self.cond.notify_all()

    # -- the scheduler --------------------------------------------------------------------------
    def _next_task(self) -> Task | None:
        with self.cond:
            while not self.pending and self.unresolved > 0 and self.stop is None:
                self.cond.wait(_POLL_SECONDS)
            if self.stop is not None or self.unresolved == 0:
                return None
            return self.pending.popleft()

    def _report(self, task: Task, reply: _Reply, slot: int, part: Path | None) -> None:
        if reply.kind == "ok":
            with self.cond:  # one writer at a time: the output file is shared by every worker
                warning = self.output.append(part, reply.rows, reply.columns)
                if warning:
                    self.log(f"{task.id}: {warning}")
                self.log(f"{task.id} ({len(task.files)} files) done on worker {slot}: {reply.rows} rows")
                self.status["workers"][str(slot)]["mini_batches"] += 1
                self._resolve(task, ())
                self._save()
            return
        reason = (reply.error.strip().splitlines() or [reply.kind])[-1]  # the exception / exit line
        with self.cond:
            action = after_failure(task, self.job.max_retries)
            self.log(f"{task.id} ({len(task.files)} files) {reply.kind} on worker {slot}: {reason}")
            if reply.kind in ("error", "crashed"):
                self.log(reply.error.rstrip())
            if action == "retry":
                self.log(f"{task.id}: retry {task.attempt + 1} of {self.job.max_retries}")
                self.pending.appendleft(replace(task, attempt=task.attempt + 1))
                self.cond.notify_all()
                return
            if action == "isolate":
                self.log(f"mini-batch {task.mini_batch} failed after {task.attempt + 1} attempts; "
                         f"re-running its {len(task.files)} files one by one to find the failing file(s)")
                self.states[task.mini_batch].singles_left = len(task.files)
                singles = [Task(task.mini_batch, (path,), single=i) for i, path in enumerate(task.files)]
                self.pending.extendleft(reversed(singles))
                self.cond.notify_all()
                return
            self.log(f"FAILED file {task.files[0]}: {reason}")
            self.status["failed_files"].append(task.files[0])
            self.status["failures"][task.files[0]] = reason
            self.status["files_failed"] = len(self.status["failed_files"])
            self._resolve(task, task.files)
            if threshold_exceeded(self.status["files_failed"], self.job.error_threshold):
                self._halt("Failed", f"error_threshold {self.job.error_threshold} exceeded: "
                                     f"{self.status['files_failed']} failed file(s): "
                                     + name_files(self.status["failed_files"]))
            self._save()

    # -- one dispatcher thread per worker ---------------------------------------------------------
    def _start_worker(self, slot: int) -> _Worker | None:
        log_path = self.dir / "logs" / f"worker-{slot}.log"
        attempts = self.job.max_retries + 1
        error = ""
        for attempt in range(1, attempts + 1):
            if self._stopping():
                return None
            try:
                worker = _Worker.start(self.job, slot, log_path)
            except OSError as exc:
                with self.cond:
                    self._halt("Failed", f"cannot start a batch worker with {self.job.python}: {exc}")
                return None
            with self.cond:
                self.status["workers"].setdefault(str(slot), {"pids": [], "mini_batches": 0})
                self.status["workers"][str(slot)]["pids"].append(worker.pid)
                self.log(f"worker {slot} started (pid {worker.pid}), running init()")
                self._save()
            reply = worker.wait_ready(self._stopping)
            if reply.kind == "ready":
                self.log(f"worker {slot} ready (pid {worker.pid})")
                return worker
            worker.kill()
            if reply.kind == "stopped":
                return None
            error = reply.error or reply.kind
            self.log(f"worker {slot} init() failed (attempt {attempt} of {attempts}):\n{error.rstrip()}")
        with self.cond:
            self._halt("Failed", f"init() of {self.job.scoring_script} failed on worker {slot} "
                                 f"after {attempts} attempts:\n{error.rstrip()}")
        return None

    def _dispatch(self, slot: int) -> None:
        """Feed one worker until no work is left. Workers start eagerly (their ``init()`` runs in
        parallel); one killed after a timeout or crash is restarted only when a next task needs it."""
        worker: _Worker | None = None
        try:
            worker = self._start_worker(slot)
            if worker is None:
                return
            while (task := self._next_task()) is not None:
                if worker is None and (worker := self._start_worker(slot)) is None:
                    break  # the job is stopping (canceled, or init() keeps failing)
                part = self.dir / "tmp" / f"{task.id}.csv" if self.output.enabled else None
                reply = worker.run(task, part, float(self.job.timeout), self._stopping)
                if reply.kind in ("timeout", "crashed", "stopped"):
                    worker.kill()
                    what = {"timeout": "killed: mini-batch timed out", "crashed": "exited",
                            "stopped": "killed: the job is stopping"}[reply.kind]
                    self.log(f"worker {slot} (pid {worker.pid}) {what}")
                    worker = None
                if reply.kind == "stopped":
                    break
                self._report(task, reply, slot, part)
                if part is not None:
                    part.unlink(missing_ok=True)
        except Exception:  # a runner bug must end the job as Failed, not hang it
            with self.cond:
                self._halt("Failed", f"batch runner error on worker {slot}:\n{traceback.format_exc()}")
        finally:
            if worker is not None:
                worker.close()

    def run(self) -> BatchJobProgress:
        job = self.job
        with self.cond:
            self.status.update({"status": "Running", "pid": os.getpid(),
                                "pid_identity": process_identity(os.getpid()), "started_at": _utcnow()})
            self._save(force=True)
        self.log(f"job {job.job_name}: {len(job.input_files)} files in {len(self.batches)} mini-batches of "
                 f"{job.mini_batch_size}; {job.workers} worker(s); max_retries {job.max_retries}; "
                 f"timeout {job.timeout}s; error_threshold {job.error_threshold}; {job.output_action}")
        try:
            if not self.batches:
                with self.cond:
                    self._halt("Failed", "the job has no input files (the input folder is empty)")
            threads = [threading.Thread(target=self._dispatch, args=(slot,), name=f"batch-worker-{slot}")
                       for slot in range(min(max(job.workers, 1), len(self.batches)))]
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                if self.cancel.is_set() or (self.dir / CANCEL_FILE).exists():
                    with self.cond:
                        self._halt("Canceled", "canceled by request")
                for thread in threads:
                    thread.join(timeout=_POLL_SECONDS / max(len(threads), 1))
                with self.cond:
                    if self._dirty:
                        self._save(force=True)
            with self.cond:
                if self.stop is None and self.unresolved > 0:
                    self._halt("Failed", "every worker stopped before the job finished; see logs/")
        except Exception:  # record the failure; the job must end with a status
            with self.cond:
                self._halt("Failed", f"batch runner error:\n{traceback.format_exc()}")
        return self._finish()

    def _finish(self) -> BatchJobProgress:
        with self.cond:
            status, error = self.stop or ("Completed", "")
            try:
                self.status["output_file"] = self.output.finish()
            except OSError as exc:
                status, error = "Failed", f"could not write the output file: {exc}"
            shutil.rmtree(self.dir / "tmp", ignore_errors=True)
            self.status.update({"status": status, "error": error, "finished_at": _utcnow()})
            self._save(force=True)
            failed = self.status["failed_files"]
            self.log(f"job {status}: {self.status['mini_batches_done']} mini-batches done, "
                     f"{self.status['mini_batches_failed']} failed, {self.output.rows} rows"
                     + (f"; failed files: {', '.join(failed)}" if failed else ""))
            self._log.close()
            return progress_from_status(self.status)


def _main(argv: list[str]) -> int:
    """The detached job process (``start_job``): ``argv`` is ``[program, JOB_DIR]``."""
    if len(argv) != 2:
        sys.stderr.write("usage: python -m mlops.workspace.local.batch JOB_DIR\n")
        return 2
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        job = load_job(argv[1])
    except (WorkspaceError, TypeError, ValueError) as exc:
        sys.stderr.write(f"cannot load the batch job in {argv[1]}: {exc}\n")
        return 2
    progress = run_job(job, cancel=cancel)
    return 0 if progress.status == "Completed" else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
