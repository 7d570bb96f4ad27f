"""The batch job process: worker supervision, scheduling, retries, poison-file isolation, output.

``jobs.start_job`` starts this module's ``main`` in a detached process; ``JobRunner`` runs the job
the way ``jobs.py``'s docstring describes: it starts ``workers`` long-lived ``worker.py``
processes with the deployment environment's interpreter, hands them mini-batches over a pipe,
retries, isolates and counts failures by the decisions of ``plan.py``, gathers the ``append_row``
output, and records its status in the job folder (``files.py``).
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from mlops.errors import WorkspaceError
from mlops.processes import process_identity
from mlops.workspace.local.batch.files import (
    CANCEL_FILE,
    STATUS_FILE,
    initial_status,
    installed_distributions,
    load_job,
    progress_from_status,
    read_json,
    tail,
    utcnow,
    write_json_atomic,
)
from mlops.workspace.local.batch.plan import (
    BatchJobProgress,
    BatchJobRuntime,
    Task,
    after_failure,
    missing_packages,
    missing_packages_error,
    name_files,
    plan_mini_batches,
    threshold_exceeded,
)
from mlops.workspace.port import JobStatus

INIT_TIMEOUT_SECONDS = 600.0
"""How long a worker's ``init()`` may take (loading a big model is slow; it is not a mini-batch)."""
POLL_SECONDS = 0.2
_SAVE_INTERVAL_SECONDS = 0.5
_WORKER_SCRIPT = Path(__file__).with_name("worker.py")
_WORKER_ENV_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
"""The workers run in the deployment's own environment, not in the caller's Python setup."""


# ---------------------------------------------------------------------------------------------
# One worker process, seen from the job process


@dataclass(frozen=True)
class _Reply:
    kind: Literal["ok", "error", "timeout", "crashed", "stopped", "ready"]
    error: str = ""
    rows: int = 0
    columns: tuple[str, ...] | None = None


class _Worker:
    """A ``worker.py`` process and a thread that turns its stdout into a queue of replies."""

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
                message = self._replies.get(timeout=min(POLL_SECONDS, remaining))
            except queue.Empty:
                continue
            if message is None:
                try:
                    code = self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                log_tail = tail(self.log_path, 20)
                return _Reply("crashed", error=f"{log_tail}\nworker process {self.pid} exited (code {code})")
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
            return _Reply("crashed", error=f"{tail(self.log_path, 20)}\nworker process {self.pid} is gone ({exc})")
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


class JobRunner:
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
        self.stop: tuple[JobStatus, str] | None = None
        self.output = _Output(self.dir / "outputs" / job.output_file_name, job.output_action == "append_row")
        self.status = read_json(self.dir / STATUS_FILE) or {}
        self.status.update(initial_status(job, len(self.batches)) | {
            "created_at": self.status.get("created_at", utcnow())})
        self._log = (self.dir / "logs" / "job.log").open("a", encoding="utf-8")
        self._log_lock = threading.Lock()
        self._dirty = False
        self._saved_at = 0.0

    # -- bookkeeping (call with self.cond held) ------------------------------------------------
    def log(self, message: str) -> None:
        with self._log_lock:
            self._log.write(f"{utcnow()} {message}\n")
            self._log.flush()

    def _save(self, *, force: bool = False) -> None:
        """Record the status; at most every ``_SAVE_INTERVAL_SECONDS`` unless forced (a job of ten
        thousand one-file mini-batches must not spend its time in fsync). The main loop flushes."""
        self._dirty = True
        if force or time.monotonic() - self._saved_at >= _SAVE_INTERVAL_SECONDS:
            self.status["rows_written"] = self.output.rows
            write_json_atomic(self.dir / STATUS_FILE, self.status)
            self._dirty = False
            self._saved_at = time.monotonic()

    def _halt(self, status: JobStatus, error: str) -> None:
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
                self.cond.wait(POLL_SECONDS)
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
                self._halt(JobStatus.FAILED, f"error_threshold {self.job.error_threshold} exceeded: "
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
                    self._halt(JobStatus.FAILED, f"cannot start a batch worker with {self.job.python}: {exc}")
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
            self._halt(JobStatus.FAILED, f"init() of {self.job.scoring_script} failed on worker {slot} "
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
                self._halt(JobStatus.FAILED, f"batch runner error on worker {slot}:\n{traceback.format_exc()}")
        finally:
            if worker is not None:
                worker.close()

    def run(self) -> BatchJobProgress:
        job = self.job
        with self.cond:
            self.status.update({"status": JobStatus.RUNNING, "pid": os.getpid(),
                                "pid_identity": process_identity(os.getpid()), "started_at": utcnow()})
            self._save(force=True)
        self.log(f"job {job.job_name}: {len(job.input_files)} files in {len(self.batches)} mini-batches of "
                 f"{job.mini_batch_size}; {job.workers} worker(s); max_retries {job.max_retries}; "
                 f"timeout {job.timeout}s; error_threshold {job.error_threshold}; {job.output_action}")
        try:
            missing = missing_packages(job.required_packages, installed_distributions(job.python))
            if missing:
                with self.cond:
                    self._halt(JobStatus.FAILED, missing_packages_error(missing, job.python))
                return self._finish()
            if not self.batches:
                with self.cond:
                    self._halt(JobStatus.FAILED, "the job has no input files (the input folder is empty)")
            threads = [threading.Thread(target=self._dispatch, args=(slot,), name=f"batch-worker-{slot}")
                       for slot in range(min(max(job.workers, 1), len(self.batches)))]
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                if self.cancel.is_set() or (self.dir / CANCEL_FILE).exists():
                    with self.cond:
                        self._halt(JobStatus.CANCELED, "canceled by request")
                for thread in threads:
                    thread.join(timeout=POLL_SECONDS / max(len(threads), 1))
                with self.cond:
                    if self._dirty:
                        self._save(force=True)
            with self.cond:
                if self.stop is None and self.unresolved > 0:
                    self._halt(JobStatus.FAILED, "every worker stopped before the job finished; see logs/")
        except Exception:  # record the failure; the job must end with a status
            with self.cond:
                self._halt(JobStatus.FAILED, f"batch runner error:\n{traceback.format_exc()}")
        return self._finish()

    def _finish(self) -> BatchJobProgress:
        with self.cond:
            status, error = self.stop or (JobStatus.COMPLETED, "")
            try:
                self.status["output_file"] = self.output.finish()
            except OSError as exc:
                status, error = JobStatus.FAILED, f"could not write the output file: {exc}"
            shutil.rmtree(self.dir / "tmp", ignore_errors=True)
            self.status.update({"status": status, "error": error, "finished_at": utcnow()})
            self._save(force=True)
            failed = self.status["failed_files"]
            self.log(f"job {status}: {self.status['mini_batches_done']} mini-batches done, "
                     f"{self.status['mini_batches_failed']} failed, {self.output.rows} rows"
                     + (f"; failed files: {', '.join(failed)}" if failed else ""))
            self._log.close()
            return progress_from_status(self.status)


def main(argv: list[str]) -> int:
    """The detached job process (``start_job``): ``argv`` is ``[program, JOB_DIR]``."""
    if len(argv) != 2:
        sys.stderr.write("usage: python -c 'from mlops.workspace.local.batch.runner import main; ...' JOB_DIR\n")
        return 2
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        job = load_job(argv[1])
    except (WorkspaceError, TypeError, ValueError) as exc:
        sys.stderr.write(f"cannot load the batch job in {argv[1]}: {exc}\n")
        return 2
    progress = JobRunner(job, cancel).run()
    return 0 if progress.status is JobStatus.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
