"""Batch jobs with real worker processes: output, workers, poison files, timeouts, detached jobs.

Scoring scripts are written by each test and run with this interpreter (``sys.executable`` plays
the deployment environment's venv, which has pandas). Every process a job starts is killed by pid
at teardown; the job's logs are printed when a test fails.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.processes import process_alive
from mlops.workspace.local.batch import files
from mlops.workspace.local.batch import jobs as batch_jobs
from mlops.workspace.local.batch.jobs import BatchJobProgress, BatchJobRuntime

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    return process_alive(pid)


class Jobs:
    """Builds jobs under ``tmp_path``; kills whatever they left running; shows their logs."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.dirs: list[Path] = []

    def inputs(self, count: int, *, extra: dict[str, str] | None = None) -> Path:
        folder = self.tmp / "inputs"
        folder.mkdir(exist_ok=True)
        for i in range(count):
            (folder / f"f{i:02d}.csv").write_text(f"day,value\n{i},{i * 10}\n{i},{i * 10 + 1}\n")
        for name, text in (extra or {}).items():
            (folder / name).write_text(text)
        return folder

    def job(self, script: str, inputs: Path, **settings: object) -> BatchJobRuntime:
        name = f"job{len(self.dirs)}"
        code = self.tmp / f"{name}-code"
        code.mkdir()
        (code / "score.py").write_text(textwrap.dedent(script))
        model = self.tmp / "model"
        model.mkdir(exist_ok=True)
        (model / "model.txt").write_text("tcn-v7")
        job_dir = self.tmp / name
        self.dirs.append(job_dir)
        return BatchJobRuntime(
            job_name=name, job_dir=str(job_dir), python=sys.executable, code_dir=str(code),
            scoring_script="score.py", model_dir=str(model),
            input_files=tuple(str(p) for p in sorted(inputs.glob("*.csv"))), **settings)

    def logs(self) -> str:
        return "\n".join(f"===== {d.name} =====\n{batch_jobs.read_logs(d, lines=60)}\n"
                         f"{(d / 'logs' / 'job-process.log').read_text() if (d / 'logs' / 'job-process.log').exists() else ''}"
                         for d in self.dirs if d.exists())

    def cleanup(self) -> None:
        for job_dir in self.dirs:
            status = files.read_json(job_dir / files.STATUS_FILE) or {}
            pids = [p for w in status.get("workers", {}).values() for p in w.get("pids", [])]
            recorded = files.read_json(job_dir / files.PID_FILE) or {}
            if recorded.get("pid"):
                pids.append(recorded["pid"])
            for pid in pids:  # each job and worker process leads its own process group
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        batch_jobs._reap_children()


@pytest.fixture
def jobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Jobs]:
    made = Jobs(tmp_path)
    yield made
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        sys.stderr.write(made.logs())
    made.cleanup()


def wait_for(job_dir: str | Path, predicate, timeout: float = 30.0) -> BatchJobProgress:
    deadline = time.monotonic() + timeout
    while True:
        progress = batch_jobs.read_progress(job_dir)
        if predicate(progress):
            return progress
        assert time.monotonic() < deadline, f"timed out waiting; last progress: {progress}"
        time.sleep(0.1)


def read_rows(path: str) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


SCORE_EVERYTHING = """
    import os
    import sys
    import time

    import pandas as pd

    def init():
        global tag
        tag = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.txt")).read()
        # both workers must be up before either scores, so the test can see both used
        barrier = os.environ["BARRIER_DIR"]
        open(os.path.join(barrier, str(os.getpid())), "w").close()
        deadline = time.time() + 30
        while len(os.listdir(barrier)) < 2 and time.time() < deadline:
            time.sleep(0.05)

    def run(mini_batch):
        print("scoring", len(mini_batch), "files")  # must not disturb the worker protocol
        frames = []
        for path in mini_batch:
            frame = pd.read_csv(path)
            frame["file"] = os.path.basename(path)
            frame["worker_pid"] = os.getpid()
            frame["model"] = tag
            frame["cwd_is_code"] = os.getcwd() == os.path.dirname(os.path.abspath(__file__))
            frames.append(frame)
        time.sleep(0.1)
        return pd.concat(frames)
"""


def test_fifty_files_two_workers_one_output_with_header_and_every_row(jobs: Jobs, tmp_path: Path) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    job = jobs.job(SCORE_EVERYTHING, jobs.inputs(50), mini_batch_size=10, workers=2,
                   environment_variables={"BARRIER_DIR": str(barrier)})

    progress = batch_jobs.run_job(job)

    assert progress.status == "Completed", progress.error
    assert (progress.mini_batches_total, progress.mini_batches_done, progress.mini_batches_failed) == (5, 5, 0)
    assert progress.output_file == str(Path(job.job_dir) / "outputs" / "predictions.csv")
    assert [p.name for p in (Path(job.job_dir) / "outputs").iterdir()] == ["predictions.csv"]
    header, rows = read_rows(progress.output_file)
    assert header == ["day", "value", "file", "worker_pid", "model", "cwd_is_code"]
    assert len(rows) == 100
    assert sorted((r[2], r[1]) for r in rows) == sorted(
        (f"f{i:02d}.csv", str(v)) for i in range(50) for v in (i * 10, i * 10 + 1))
    assert {r[4] for r in rows} == {"tcn-v7"} and {r[5] for r in rows} == {"True"}
    assert len({r[3] for r in rows}) == 2, "both workers scored mini-batches"
    assert len(list(barrier.iterdir())) == 2, "init() ran once per worker, not once per mini-batch"
    assert "scoring 10 files" in (Path(job.job_dir) / "logs" / "worker-0.log").read_text()
    assert not (Path(job.job_dir) / "tmp").exists()


POISON = """
    import os
    import pandas as pd

    def run(mini_batch):
        if any("poison" in os.path.basename(path) for path in mini_batch):
            with open(os.environ["ATTEMPTS_FILE"], "a") as log:
                log.write(f"{len(mini_batch)}\\n")
            raise ValueError("unreadable file")
        return pd.concat([pd.read_csv(path).assign(file=os.path.basename(path)) for path in mini_batch])
"""


@pytest.mark.parametrize(("error_threshold", "expected"), [(-1, "Completed"), (5, "Completed"), (0, "Failed")])
def test_a_poison_file_is_reported_by_name(jobs: Jobs, tmp_path: Path, error_threshold: int,
                                           expected: str) -> None:
    inputs = jobs.inputs(20, extra={"f05_poison.csv": "day,value\nnot,a number\n"})
    attempts = tmp_path / f"attempts-{error_threshold}.txt"
    job = jobs.job(POISON, inputs, mini_batch_size=10, workers=2, max_retries=2,
                   error_threshold=error_threshold, environment_variables={"ATTEMPTS_FILE": str(attempts)})
    poison = str(inputs / "f05_poison.csv")

    progress = batch_jobs.run_job(job)

    assert progress.status == expected
    assert progress.failed_files == (poison,)
    # the mini-batch ran 1 + max_retries times, then its files one by one: only the poison one fails
    assert attempts.read_text().split() == ["10", "10", "10", "1"]
    log = (Path(job.job_dir) / "logs" / "job.log").read_text()
    assert f"FAILED file {poison}: ValueError: unreadable file" in log
    if expected == "Failed":
        assert "error_threshold 0 exceeded" in progress.error and poison in progress.error
    else:
        assert progress.error == ""
        assert (progress.mini_batches_done, progress.mini_batches_failed) == (2, 1)
        _, rows = read_rows(progress.output_file)
        assert sorted({r[2] for r in rows}) == [f"f{i:02d}.csv" for i in range(20)]
        assert len(rows) == 40


HANGS = """
    import os
    import time

    def run(mini_batch):
        for path in mini_batch:
            name = os.path.basename(path)
            marker = os.path.join(os.environ["STATE_DIR"], name + ".seen")
            if name == "z_hang_always.csv" or (name == "a_hang_once.csv" and not os.path.exists(marker)):
                open(marker, "w").close()
                with open(os.path.join(os.environ["STATE_DIR"], "hung_pids"), "a") as pids:
                    pids.write(f"{os.getpid()}\\n")
                time.sleep(120)
        return [{"file": os.path.basename(path)} for path in mini_batch]
"""


def test_a_hanging_mini_batch_is_killed_at_timeout_retried_and_reported(jobs: Jobs, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    inputs = jobs.inputs(2, extra={"z_hang_always.csv": "day\n1\n", "a_hang_once.csv": "day\n1\n"})
    job = jobs.job(HANGS, inputs, mini_batch_size=2, workers=2, max_retries=1, timeout=2,
                   environment_variables={"STATE_DIR": str(state)})

    started = time.monotonic()
    progress = batch_jobs.run_job(job)
    elapsed = time.monotonic() - started

    hang_always = str(inputs / "z_hang_always.csv")
    assert progress.status == "Completed", progress.error
    assert progress.failed_files == (hang_always,)
    assert elapsed < 40, f"the job took {elapsed:.1f}s: hung mini-batches were not cut off at the timeout"
    _, rows = read_rows(progress.output_file)
    assert sorted(r[0] for r in rows) == ["a_hang_once.csv", "f00.csv", "f01.csv"]  # retried and scored
    hung = [int(p) for p in (state / "hung_pids").read_text().split()]
    assert len(hung) == 4  # hang_once once; hang_always twice as a mini-batch, once alone
    assert not any(_alive(pid) for pid in hung), "every timed-out worker was killed"
    log = (Path(job.job_dir) / "logs" / "job.log").read_text()
    assert log.count("timeout on worker") == 4 and "timed out after 2s" in log
    status = batch_jobs.read_status(job.job_dir)
    # both first attempts timed out and their retries needed workers: each worker was restarted
    assert all(len(w["pids"]) >= 2 for w in status["workers"].values())


CRASHES_ONCE = """
    import os

    def run(mini_batch):
        marker = os.path.join(os.environ["STATE_DIR"], "crashed")
        if any(os.path.basename(p) == "f03.csv" for p in mini_batch) and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(7)  # the worker process dies mid-mini-batch
        return [os.path.basename(p) for p in mini_batch]
"""


def test_a_worker_that_dies_is_restarted_and_its_mini_batch_retried(jobs: Jobs, tmp_path: Path) -> None:
    job = jobs.job(CRASHES_ONCE, jobs.inputs(6), mini_batch_size=2, workers=1, max_retries=1,
                   environment_variables={"STATE_DIR": str(tmp_path)})
    progress = batch_jobs.run_job(job)
    assert progress.status == "Completed", progress.error
    assert progress.failed_files == ()
    assert sorted(Path(progress.output_file).read_text().split()) == [f"f{i:02d}.csv" for i in range(6)]
    log = (Path(job.job_dir) / "logs" / "job.log").read_text()
    assert "mb00001-a0 (2 files) crashed on worker 0" in log and "exited (code 7)" in log
    assert len(batch_jobs.read_status(job.job_dir)["workers"]["0"]["pids"]) == 2


SLOW = """
    import os
    import time

    def run(mini_batch):
        time.sleep(float(os.environ.get("SLEEP", "0.3")))
        return [os.path.basename(path) for path in mini_batch]
"""


def test_a_detached_job_survives_its_parent_and_is_polled_to_completion(jobs: Jobs) -> None:
    job = jobs.job(SLOW, jobs.inputs(12), mini_batch_size=2, workers=2, environment_variables={"SLEEP": "0.3"})
    launcher = (
        "import json, sys\n"
        "from mlops.workspace.local.batch import jobs\n"
        "from mlops.workspace.local.batch.jobs import BatchJobRuntime\n"
        "job = BatchJobRuntime(**json.loads(sys.argv[1]))\n"
        "print(jobs.start_job(job))\n"
    )
    started = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", launcher, json.dumps(files.job_to_dict(job))],
        capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    pid = int(started.stdout.strip())

    assert _alive(pid), "the job process outlived the process that started it"
    assert files.load_job(job.job_dir) == job
    assert batch_jobs.read_progress(job.job_dir).status in ("Queued", "Running")

    progress = wait_for(job.job_dir, lambda p: p.status.finished, timeout=45)
    assert progress.status == "Completed", progress.error
    assert progress.mini_batches_done == 6
    # a list of strings has no header: every element is one row
    lines = Path(progress.output_file).read_text().splitlines()
    assert sorted(lines) == [f"f{i:02d}.csv" for i in range(12)]


def test_a_killed_job_process_is_reported_failed_and_its_workers_exit(jobs: Jobs) -> None:
    job = jobs.job(SLOW, jobs.inputs(4), mini_batch_size=1, workers=2, environment_variables={"SLEEP": "120"})
    pid = batch_jobs.start_job(job)
    wait_for(job.job_dir, lambda p: p.status == "Running")
    deadline = time.monotonic() + 30
    while len(batch_jobs.read_status(job.job_dir).get("workers", {})) < 2:
        assert time.monotonic() < deadline, "workers never started"
        time.sleep(0.1)
    workers = [p for w in batch_jobs.read_status(job.job_dir)["workers"].values() for p in w["pids"]]

    os.kill(pid, signal.SIGKILL)

    progress = wait_for(job.job_dir, lambda p: p.status != "Running", timeout=10)
    assert progress.status == "Failed"
    assert f"job process {pid} died while Running" in progress.error
    assert batch_jobs.read_progress(job.job_dir).status == "Failed"  # recorded, not just computed
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers):
        assert time.monotonic() < deadline, "workers outlived their job process"
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["cancel_job", "SIGTERM"])
def test_cancel_stops_a_running_job_and_its_workers(jobs: Jobs, how: str) -> None:
    job = jobs.job(SLOW, jobs.inputs(4), mini_batch_size=1, workers=2, environment_variables={"SLEEP": "120"})
    pid = batch_jobs.start_job(job)
    deadline = time.monotonic() + 30
    while len(batch_jobs.read_status(job.job_dir).get("workers", {})) < 2:
        assert time.monotonic() < deadline, "workers never started"
        time.sleep(0.1)
    workers = [p for w in batch_jobs.read_status(job.job_dir)["workers"].values() for p in w["pids"]]

    if how == "SIGTERM":
        os.kill(pid, signal.SIGTERM)
        progress = wait_for(job.job_dir, lambda p: p.status.finished, timeout=15)
    else:
        progress = batch_jobs.cancel_job(job.job_dir)

    assert progress.status == "Canceled"
    deadline = time.monotonic() + 10
    while _alive(pid) or any(_alive(w) for w in workers):
        assert time.monotonic() < deadline, "the job or its workers outlived the cancel"
        time.sleep(0.1)
    assert batch_jobs.read_progress(job.job_dir).status == "Canceled"
    assert "stopping: Canceled" in (Path(job.job_dir) / "logs" / "job.log").read_text()


def test_init_failure_fails_the_job_with_the_traceback(jobs: Jobs) -> None:
    script = """
        def init():
            raise RuntimeError("model file missing")

        def run(mini_batch):
            return mini_batch
    """
    job = jobs.job(script, jobs.inputs(3), mini_batch_size=1, workers=1, max_retries=1)
    progress = batch_jobs.run_job(job)
    assert progress.status == "Failed"
    assert "init() of score.py failed on worker 0 after 2 attempts" in progress.error
    assert "RuntimeError: model file missing" in progress.error


def test_summary_only_writes_no_output_file(jobs: Jobs) -> None:
    script = """
        import pandas as pd

        def run(mini_batch):
            return pd.DataFrame({"file": mini_batch})
    """
    job = jobs.job(script, jobs.inputs(5), mini_batch_size=2, output_action="summary_only")
    progress = batch_jobs.run_job(job)
    assert progress.status == "Completed" and progress.output_file == ""
    assert list((Path(job.job_dir) / "outputs").iterdir()) == []
    assert batch_jobs.read_status(job.job_dir)["rows_written"] == 5
