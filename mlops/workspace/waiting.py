"""Following a batch job through the port until it ends: one loop for every caller.

``mlops batch invoke --wait`` (``mlops.cli.workspace``) and the release's batch smoke job
(``mlops.release.batch``) both poll ``Workspace.get_batch_job`` until ``BatchJob.finished``;
they differ only in how often they look, how long they may wait and what they say on the way,
which are arguments here. Works the same on both adapters: the local job runner and Azure ML
batch jobs report through the same ``BatchJob``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mlops.workspace.port import BatchJob, Workspace


def wait_for_batch_job(workspace: Workspace, job: BatchJob, *, poll: float = 1.0, timeout: float | None = None,
                       on_change: Callable[[BatchJob], None] = lambda job: None,
                       sleep: Callable[[float], None] = time.sleep,
                       clock: Callable[[], float] = time.monotonic) -> BatchJob:
    """Poll ``job`` every ``poll`` seconds until it has finished; return its last state.

    ``on_change`` sees the job first and then whenever its status or mini-batch counts change.
    With ``timeout`` (seconds from the call) the job returned may not have finished: the caller
    checks ``job.finished`` and says what the timeout means for it.
    """
    deadline = None if timeout is None else clock() + timeout
    last: tuple[object, ...] | None = None
    while True:
        seen = (job.status, job.mini_batches_done, job.mini_batches_failed, job.mini_batches_total)
        if seen != last:
            on_change(job)
            last = seen
        if job.finished or (deadline is not None and clock() > deadline):
            return job
        sleep(poll)
        job = workspace.get_batch_job(job.name)
