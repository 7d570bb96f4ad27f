"""A batch job's status on the port: one enum, its terminal set on the type, one wait loop."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from mlops.workspace.local.workspace.batch import LOCAL_BATCH_POLL_S
from mlops.workspace.local.workspace.batch import BatchOps as LocalBatchOps
from mlops.workspace.port import BatchJob, JobStatus, Workspace
from mlops.workspace.waiting import wait_for_batch_job


@pytest.mark.parametrize(("status", "finished"), [
    ("Queued", False), ("Running", False), ("Completed", True), ("Failed", True), ("Canceled", True),
])
def test_the_terminal_set_lives_on_the_type(status: str, finished: bool) -> None:
    job = BatchJob("j", "ep", "dep", status)  # adapters may hand in the string
    assert job.status is JobStatus(status)
    assert job.finished is finished and JobStatus(status).finished is finished


def test_statuses_read_as_the_strings_they_were() -> None:
    job = BatchJob("j", "ep", "dep", JobStatus.COMPLETED, 3, 3, 0)
    assert job.status == "Completed" and f"{job.status}" == "Completed"
    assert json.loads(json.dumps(asdict(job)))["status"] == "Completed"
    with pytest.raises(ValueError, match="'Done' is not a valid JobStatus"):
        BatchJob("j", "ep", "dep", "Done")


class ScriptedWorkspace:
    """``get_batch_job`` answers the scripted states in turn (then the last one forever); read at
    the local workspace's pace (its own ``batch_job_poll``)."""

    batch_job_poll = staticmethod(LocalBatchOps.batch_job_poll)

    def __init__(self, *states: tuple[str, int]) -> None:
        self.states = list(states)
        self.calls = 0

    def get_batch_job(self, name: str) -> BatchJob:
        status, done = self.states[min(self.calls, len(self.states) - 1)]
        self.calls += 1
        return BatchJob(name, "ep", "dep", status, 4, done)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_reports_each_change_once_and_returns_the_finished_job() -> None:
    workspace = ScriptedWorkspace(("Running", 0), ("Running", 2), ("Running", 2), ("Completed", 4))
    clock, seen = Clock(), []
    job = wait_for_batch_job(workspace, BatchJob("j", "ep", "dep", "Queued", 4), poll=0.5,  # type: ignore[arg-type]
                             on_change=lambda j: seen.append((j.status, j.mini_batches_done)),
                             sleep=clock.sleep, clock=clock)
    assert job.status is JobStatus.COMPLETED and job.finished
    assert seen == [("Queued", 0), ("Running", 0), ("Running", 2), ("Completed", 4)]
    assert workspace.calls == 4 and clock.now == 2.0


def test_a_finished_job_is_not_polled() -> None:
    workspace = ScriptedWorkspace(("Running", 0))
    job = wait_for_batch_job(workspace, BatchJob("j", "ep", "dep", "Failed"),  # type: ignore[arg-type]
                             sleep=lambda s: pytest.fail("slept"))
    assert job.status is JobStatus.FAILED and workspace.calls == 0


def test_the_timeout_returns_the_unfinished_job() -> None:
    workspace = ScriptedWorkspace(("Running", 1))
    clock = Clock()
    job = wait_for_batch_job(workspace, BatchJob("j", "ep", "dep", "Running"), poll=1.0, timeout=3.0,  # type: ignore[arg-type]
                             sleep=clock.sleep, clock=clock)
    assert not job.finished and job.status is JobStatus.RUNNING
    assert clock.now == 3.0 and workspace.calls == 3, "read last at the deadline, never slept past it"


class PacedWorkspace(ScriptedWorkspace):
    """An adapter that says how often its batch jobs may be read (as ``AzureWorkspace`` does)."""

    @staticmethod
    def batch_job_poll(elapsed: float) -> float:
        return 2.0 if elapsed < 10 else 30.0


@pytest.mark.parametrize(("workspace", "poll", "timeout", "slept"), [
    (ScriptedWorkspace(("Running", 0)), None, 2.0, [0.5, 0.5, 0.5, 0.5]),  # local: every 0.5 s
    (PacedWorkspace(("Running", 0)), None, 75.0, [2.0] * 5 + [30.0, 30.0, 5.0]),  # its own pace, cut at the deadline
    (PacedWorkspace(("Running", 0)), 1.0, 3.0, [1.0, 1.0, 1.0]),  # an explicit poll wins
    (ScriptedWorkspace(("Running", 0)), lambda elapsed: 0.25 + elapsed, 2.0, [0.25, 0.5, 1.0, 0.25]),
])
def test_how_often_a_batch_job_is_read_is_the_workspaces_pace(workspace, poll, timeout, slept) -> None:
    clock, sleeps = Clock(), []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.sleep(seconds)

    job = wait_for_batch_job(workspace, BatchJob("j", "ep", "dep", "Queued", 4), poll=poll, timeout=timeout,
                             sleep=sleep, clock=clock)
    assert not job.finished and sleeps == slept and clock.now == timeout
    assert workspace.calls == len(slept), "one read after each sleep"


def test_both_adapters_declare_their_pace_as_members_of_the_port() -> None:
    """``batch_job_poll`` is part of ``Workspace``: an adapter without it is no ``Workspace`` and a
    wait on it fails loudly instead of quietly reading at some default pace."""
    from mlops.workspace.azure import AzureWorkspace
    from mlops.workspace.local import LocalWorkspace

    assert callable(vars(Workspace).get("batch_job_poll")), "declared on the port itself"
    assert [LocalWorkspace.batch_job_poll(t) for t in (0.0, 60.0, 3600.0)] == [LOCAL_BATCH_POLL_S] * 3
    assert AzureWorkspace.batch_job_poll(0.0) == 2.0 < AzureWorkspace.batch_job_poll(600.0)

    class Paceless:
        def get_batch_job(self, name: str) -> BatchJob:
            return BatchJob(name, "ep", "dep", "Running")

    with pytest.raises(AttributeError, match="batch_job_poll"):
        wait_for_batch_job(Paceless(), BatchJob("j", "ep", "dep", "Running"), timeout=1.0)  # type: ignore[arg-type]


def test_azure_batch_jobs_are_read_at_the_sdks_backoff_not_twice_a_second() -> None:
    """A batch job on Azure runs for minutes; each read is an ARM GET (subscription read limits).
    The schedule is azure-ai-ml's own job wait (``_job_ops_helper._wait_before_polling``)."""
    from mlops.workspace.azure import AzureWorkspace

    schedule = AzureWorkspace.batch_job_poll
    delays = [schedule(t) for t in range(0, 601, 10)]
    assert delays[0] == 2.0 and delays == sorted(delays) and delays[-1] >= 59.0
    workspace, clock = ScriptedWorkspace(("Running", 0)), Clock()
    wait_for_batch_job(workspace, BatchJob("j", "ep", "dep", "Running"), poll=schedule, timeout=600.0,  # type: ignore[arg-type]
                       sleep=clock.sleep, clock=clock)
    assert clock.now == 600.0 and 15 <= workspace.calls <= 40, "a ten-minute job: tens of reads, not 1200"
