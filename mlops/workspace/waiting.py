"""Following a job through the port until it ends: one loop for every caller.

``mlops batch invoke --wait`` (``mlops.cli.workspace``) and the release's batch smoke job
(``mlops.release.batch``) both poll ``Workspace.get_batch_job`` until ``BatchJob.finished``;
``mlops jobs submit --wait`` polls ``Workspace.get_training_job`` until ``TrainingJob.finished``.
They differ only in how often they look, how long they may wait and what they say on the way,
which are arguments here. Works the same on both adapters: the local workspace and Azure ML
report through the same ``BatchJob`` / ``TrainingJob``.

How often a *batch* job is read depends on the target, and the adapter says it
(``Workspace.batch_job_poll``, a member of the port): a local job runs on this machine in seconds
and a read is a SQLite query, so every ``LOCAL_BATCH_POLL_S`` (``mlops.workspace.local.workspace.batch``);
on Azure ML a batch job takes minutes and every read is an ARM call counted against the
subscription's read limits, so the Azure adapter backs off the way azure-ai-ml's own job wait
does. A wait never sleeps past its timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from mlops.workspace.port import BatchJob, TrainingJob, Workspace

J = TypeVar("J", BatchJob, TrainingJob)

PollSchedule = Callable[[float], float]
"""Seconds since the wait began -> seconds to sleep before the next read."""

def every(seconds: float) -> PollSchedule:
    """The same interval all along."""
    return lambda elapsed: seconds


def _follow(job: J, fetch: Callable[[str], J], seen: Callable[[J], Hashable], *, poll: PollSchedule,
            timeout: float | None, on_change: Callable[[J], None], sleep: Callable[[float], None],
            clock: Callable[[], float]) -> J:
    started = clock()
    deadline = None if timeout is None else started + timeout
    last: Hashable | None = None
    while True:
        now_seen = seen(job)
        if now_seen != last:
            on_change(job)
            last = now_seen
        now = clock()
        if job.finished or (deadline is not None and now >= deadline):
            return job
        delay = poll(now - started)
        sleep(delay if deadline is None else min(delay, deadline - now))  # the last read at the deadline
        job = fetch(job.name)


def wait_for_batch_job(workspace: Workspace, job: BatchJob, *, poll: float | PollSchedule | None = None,
                       timeout: float | None = None,
                       on_change: Callable[[BatchJob], None] = lambda job: None,
                       sleep: Callable[[float], None] = time.sleep,
                       clock: Callable[[], float] = time.monotonic) -> BatchJob:
    """Poll ``job`` until it has finished; return its last state. ``poll``: seconds between reads
    or a ``PollSchedule``; by default the workspace's own (``Workspace.batch_job_poll``).

    ``on_change`` sees the job first and then whenever its status or mini-batch counts change.
    With ``timeout`` (seconds from the call) the job returned may not have finished: the caller
    checks ``job.finished`` and says what the timeout means for it.
    """
    return _follow(job, workspace.get_batch_job,
                   lambda j: (j.status, j.mini_batches_done, j.mini_batches_failed, j.mini_batches_total),
                   poll=_schedule(poll) if poll is not None else workspace.batch_job_poll,
                   timeout=timeout, on_change=on_change, sleep=sleep, clock=clock)


def wait_for_training_job(workspace: Workspace, job: TrainingJob, *, poll: float = 30.0,
                          timeout: float | None = None,
                          on_change: Callable[[TrainingJob], None] = lambda job: None,
                          sleep: Callable[[float], None] = time.sleep,
                          clock: Callable[[], float] = time.monotonic) -> TrainingJob:
    """The same for an AutoML job: ``on_change`` sees it whenever its status or the number of
    finished trials changes (an AutoML sweep runs for hours: the default poll is 30 s)."""
    return _follow(job, workspace.get_training_job,
                   lambda j: (j.status, sum(1 for t in j.trials if t.status.finished)),
                   poll=_schedule(poll), timeout=timeout, on_change=on_change, sleep=sleep, clock=clock)


def _schedule(poll: float | PollSchedule) -> PollSchedule:
    return every(float(poll)) if isinstance(poll, (int, float)) else poll
