"""The batch runner's pure decisions: how files are split, what a failure leads to, when a job fails."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from mlops.errors import NotFoundError
from mlops.workspace.local.batch import files, jobs, runner
from mlops.workspace.local.batch.plan import (
    Task,
    after_failure,
    name_files,
    plan_mini_batches,
    stale_status,
    threshold_exceeded,
)


def test_files_are_sorted_then_split_into_mini_batches() -> None:
    files = [f"/in/f{i:02d}.csv" for i in range(25)][::-1]
    batches = plan_mini_batches(files, 10)
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [path for b in batches for path in b] == sorted(files)
    assert plan_mini_batches([], 10) == []
    with pytest.raises(ValueError, match="mini_batch_size"):
        plan_mini_batches(files, 0)


@pytest.mark.parametrize(
    ("task", "max_retries", "expected"),
    [
        (Task(0, ("a", "b"), attempt=0), 2, "retry"),
        (Task(0, ("a", "b"), attempt=1), 2, "retry"),
        (Task(0, ("a", "b"), attempt=2), 2, "isolate"),
        (Task(0, ("a",), attempt=2), 2, "fail"),
        (Task(0, ("a",), attempt=0), 0, "fail"),
        (Task(0, ("a", "b"), attempt=0), 0, "isolate"),
        (Task(0, ("a",), attempt=0, single=1), 3, "fail"),  # an isolated file is run once
    ],
)
def test_what_a_failure_leads_to(task: Task, max_retries: int, expected: str) -> None:
    assert after_failure(task, max_retries) == expected


@pytest.mark.parametrize(
    ("failed", "threshold", "exceeded"),
    [(0, 0, False), (1, 0, True), (5, 5, False), (6, 5, True), (1000, -1, False)],
)
def test_error_threshold_counts_failed_files(failed: int, threshold: int, exceeded: bool) -> None:
    assert threshold_exceeded(failed, threshold) is exceeded


@pytest.mark.parametrize(
    ("status", "alive", "becomes_failed"),
    [
        ("Running", False, True),
        ("Queued", False, True),
        ("Running", True, False),
        ("Queued", None, False),  # start_job has not started the process yet
        ("Completed", False, False),
        ("Canceled", False, False),
    ],
)
def test_a_dead_job_process_is_reported_failed(status: str, alive: bool | None, becomes_failed: bool) -> None:
    result = stale_status({"status": status, "pid": 42}, alive)
    if becomes_failed:
        assert result is not None and result["status"] == "Failed"
        assert "job process 42 died" in result["error"]
    else:
        assert result is None


def test_messages_name_at_most_twenty_files() -> None:
    assert name_files(["a", "b"]) == "a, b"
    many = name_files([f"f{i}" for i in range(25)])
    assert many.startswith("f0, f1,") and "f19" in many and "f20" not in many and "5 more" in many


def test_task_ids_are_unique_per_attempt_and_file() -> None:
    ids = {Task(3, ("a", "b"), attempt=a).id for a in range(3)}
    ids |= {Task(3, ("a",), single=i).id for i in range(2)}
    assert len(ids) == 5


def test_read_progress_never_sees_a_half_written_status(tmp_path: Path) -> None:
    (tmp_path / files.JOB_FILE).write_text("{}")
    stop = threading.Event()
    padding = "x" * 20000  # big enough that a non-atomic write would be observed half-done

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            files.write_json_atomic(tmp_path / files.STATUS_FILE,
                                     {"status": "Completed", "mini_batches_done": n, "pad": padding})

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen = [jobs.read_progress(tmp_path).status for _ in range(300)]
    finally:
        stop.set()
        thread.join()
    assert set(seen) <= {"Queued", "Completed"}
    assert json.loads((tmp_path / files.STATUS_FILE).read_text())["status"] == "Completed"


def test_a_missing_job_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        jobs.read_progress(tmp_path / "nope")


def test_output_has_one_header_and_reorders_parts_with_other_column_orders(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("1,x\n2,y\n")
    second.write_text("z,3\n")  # the same columns in another order
    output = runner._Output(tmp_path / "out" / "predictions.csv", enabled=True)
    assert output.append(first, 2, ("n", "s")) == ""
    assert output.append(second, 1, ("s", "n")) == ""
    assert output.finish() == str(tmp_path / "out" / "predictions.csv")
    assert (tmp_path / "out" / "predictions.csv").read_text() == "n,s\n1,x\n2,y\n3,z\n"
    assert not (tmp_path / "out" / ".predictions.csv.partial").exists()
