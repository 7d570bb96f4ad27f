"""The batch refresh overlapped with the online release.

On Azure a batch deployment takes minutes to create and its smoke job minutes more (a cluster
scaling from 0 pulls the image first); none of it depends on the online verdict except making it
the default. So the release *prepares* the batch deployment - creates it and smoke-scores it by
name (``batch.prepare_batch``) - while the online candidate is deployed, load-tested, gated and
promoted, and makes it the default only after the online promotion succeeded
(``batch.make_default``, the ``batch`` step).

Rules (each one a function below):

* **When** (``overlap_refusal``, pure): only when the batch endpoint has a default that is not the
  deployment to prepare. A first batch release has no previous default to keep (and a new
  endpoint's first deployment is its default at once in the local workspace), and re-creating the
  current default in place would change what the default runs before the online verdict; both are
  refreshed after the promotion, in sequence, as before.
* **Before traffic moves** (``await_ready``, called by the promotion before each traffic change
  through ``ReleaseContext.before_traffic``): the first traffic change waits for the preparation (a
  shadow step before it moves no traffic, so it overlaps too); a failed creation or smoke job fails
  the release *before any traffic moves* - the promotion is rolled back, the candidate removed and
  the batch default kept, so online and batch never serve different releases because
  of a batch failure. (Decided so: the model, environment and batch code are released together; a
  smoke failure after the promotion would leave online on the new model and batch on the old.)
* **Removal** (``remove_prepared``, ``removal_decision`` pure): a release that does not succeed -
  gate Failed or Inconclusive, a candidate that never starts, a failed health check, a rollback,
  any error - stops the preparation (waiting out a creation already under way: Azure refuses to
  delete a deployment while its create operation runs) and deletes the prepared deployment if this
  release created or changed it (its ``mlops.release`` tag); one that existed before and was only
  smoke-scored is left as it was. The old default is never touched.
* **Crash and resume**: ``BatchPrepared`` is written ``preparing`` before the first call that may
  create the deployment. A release killed meanwhile and resumed prepares again (idempotent: an
  existing deployment on the same model, environment and code is only smoke-scored again); one
  rolled back instead (``mlops rollback``) removes it.

**Threads in one process, jobs in Actions.** ``mlops release`` runs the preparation in a thread of
its own process. The thread writes nothing to the record - the main thread records its outcome when
it joins it - so the record keeps one writer. It shares the ``Workspace``: the local workspace
serializes its one SQLite connection under a lock (``check_same_thread=False``) and runs batch jobs in
processes of their own; on Azure, service clients are meant to be shared across threads (the Azure
SDK's rule, as its .NET guide words it: "All Azure SDK client objects are thread-safe",
learn.microsoft.com/dotnet/azure/sdk/thread-safety); azure-ai-ml does not state it for ``MLClient``
(asked in Azure/azure-sdk-for-python#37780, unanswered), and one
method - ``share`` - swaps client state under other threads (#39502): the adapter never calls it, and
the batch thread uses the batch endpoint, batch deployment and job operations only, the main thread
the online ones. In GitHub Actions the jobs are separate
runners: ``release.yml``'s ``batch-prepare`` job (``mlops batch-prepare``) runs beside ``candidate``
and ``gate``, ``promote`` waits for it, and its record reaches the ``batch`` and ``rollback`` jobs as
an artifact of its own, adopted with ``--prepared`` (``adopt_prepared``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from mlops.errors import MlopsError, NotFoundError, ReleaseFailed, UsageError
from mlops.release.batch import prepare_batch
from mlops.release.record import Record, ReleaseStatus, StepEntry, StepState, utc_now
from mlops.release.sections.batch import BatchPrepared, BatchPrepState, BatchResult
from mlops.release.slots import RELEASE_TAG
from mlops.workspace.port import AssetRef, BatchDeployment

if TYPE_CHECKING:
    from mlops.release.context import ReleaseContext

STEP = "batch_prepare"
_Step = TypeVar("_Step", bound=Callable[..., Any])


class _Cancelled(Exception):
    """The release ended while the preparation was still waiting: stop it."""


# ---------------------------------------------------------------------------------------------
# Pure decisions


def overlap_refusal(*, default: str | None, target: str) -> str | None:
    """Why ``target`` cannot be prepared before the online verdict (``None``: it can)."""
    if default is None:
        return ("the batch endpoint has no default deployment yet: there is no previous default to keep "
                "(a first batch release)")
    if default == target:
        return f"{target} is the default already: changing it now would change the default before the online verdict"
    return None


def removal_decision(deployment: BatchDeployment | None, *, default: str | None, release_id: str) -> tuple[bool, str]:
    """``(remove, why)`` for the prepared deployment of a release that did not succeed."""
    if deployment is None:
        return False, "it does not exist"
    if deployment.name == default:
        return False, "it is the endpoint's default"
    made_by = deployment.tags.get(RELEASE_TAG, "")
    if made_by != release_id:
        return False, f"it existed before this release (made by {made_by or 'no release'}) and was only smoke-scored"
    return True, "this release created it"


# ---------------------------------------------------------------------------------------------
# The preparation (thread or inline)


class Preparation:
    """One preparation of the release's batch deployment, in a thread (``start``) or inline (``run``).
    It touches the workspace only; its outcome reaches the record through ``record_outcome``."""

    def __init__(self, ctx: ReleaseContext, *, model: AssetRef, environment: AssetRef, code_hash: str) -> None:
        self._cancel = threading.Event()
        self._base_sleep = ctx.sleep
        self._ctx = replace(ctx, sleep=self._sleep, lock_depth=0)
        self._args = {"model": model, "environment": environment, "code_hash": code_hash,
                      "release_tag": (RELEASE_TAG, ctx.record.release_id)}
        self._thread: threading.Thread | None = None
        self.result: BatchResult | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        self.finished_at = ""

    def _sleep(self, seconds: float) -> None:
        if self._base_sleep is time.sleep:
            self._cancel.wait(seconds)
        else:  # a virtual clock (tests, benchmarks/azure_timeline.py)
            self._base_sleep(seconds)
        if self._cancel.is_set():
            raise _Cancelled("the release ended while the batch deployment was being prepared")

    def run(self) -> None:
        started = time.monotonic()
        try:
            if self._cancel.is_set():
                raise _Cancelled("the release ended before the batch deployment was prepared")
            self.result = prepare_batch(self._ctx, **self._args)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which decides
            self.error = error
        finally:
            self.seconds = round(time.monotonic() - started, 3)
            self.finished_at = utc_now()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="batch-prepare", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    @property
    def cancelled(self) -> bool:
        return isinstance(self.error, _Cancelled)


def _entry(record: Record) -> StepEntry:
    return record.steps.setdefault(STEP, StepEntry())


def record_outcome(record: Record, preparation: Preparation) -> BatchPrepared:
    """Main thread: write a finished preparation's outcome into the record."""
    prep = record.batch_prep
    assert prep is not None, "a preparation runs only after its record section is written"
    entry = _entry(record)
    prep.seconds = entry.seconds = round(prep.seconds + preparation.seconds, 3)
    entry.finished_at = preparation.finished_at or utc_now()  # when it ended, not when it was joined
    if preparation.error is None:
        prep.state, prep.result, prep.error = BatchPrepState.READY, preparation.result, None
        entry.state = StepState.DONE
    elif preparation.cancelled:
        entry.state, entry.error = StepState.FAILED, str(preparation.error)
    else:
        error = preparation.error
        text = str(error) or type(error).__name__
        prep.state, prep.error = BatchPrepState.FAILED, text
        entry.state, entry.error = StepState.FAILED, text.splitlines()[0]
    record.save()
    return prep


def _open(ctx: ReleaseContext, model: AssetRef) -> BatchPrepared | None:
    """Write ``preparing`` (or reuse the section of an interrupted run); ``None`` when the overlap is refused."""
    config, record = ctx.config, ctx.record
    target = config.batch_deployment_name(model)
    prep = record.batch_prep
    if prep is None or prep.deployment != target:
        endpoint = ctx.workspace.get_batch_endpoint(config.batch.endpoint.name)
        default = endpoint.default_deployment if endpoint is not None else None
        refusal = overlap_refusal(default=default, target=target)
        if refusal is not None:
            ctx.progress(f"batch: refreshed after the online promotion, not beside it: {refusal}")
            return None
        prep = record.batch_prep = BatchPrepared(endpoint=config.batch.endpoint.name, deployment=target,
                                                 default_before=default)
    prep.state, prep.error, prep.started_at = BatchPrepState.PREPARING, None, utc_now()
    entry = _entry(record)
    entry.state, entry.started_at, entry.error = StepState.RUNNING, prep.started_at, None
    record.save()
    return prep


def begin(ctx: ReleaseContext, *, model: AssetRef, environment: AssetRef, code_hash: str) -> bool:
    """Start preparing in a thread beside the online release; ``False`` when there is nothing to
    prepare now (batch off, already prepared or failed, or the overlap refused)."""
    if not ctx.config.batch.refresh or ctx.batch_preparation is not None:
        return False
    prep = ctx.record.batch_prep
    if prep is not None and prep.state is not BatchPrepState.PREPARING:
        return False  # ready, failed (the release fails at the promotion), default or removed
    if _open(ctx, model) is None:
        return False
    preparation = Preparation(ctx, model=model, environment=environment, code_hash=code_hash)
    ctx.batch_preparation = preparation
    ctx.progress(f"batch: preparing {ctx.record.batch_prep.deployment} beside the online release")
    preparation.start()
    return True


def prepare_now(ctx: ReleaseContext, *, model: AssetRef, environment: AssetRef, code_hash: str) -> BatchPrepared | None:
    """Prepare inline (``mlops batch-prepare``, or a preparation whose process is gone); ``None`` when refused."""
    if _open(ctx, model) is None:
        return None
    preparation = Preparation(ctx, model=model, environment=environment, code_hash=code_hash)
    preparation.run()
    return record_outcome(ctx.record, preparation)


def join(ctx: ReleaseContext) -> BatchPrepared | None:
    """Wait for this process's preparation thread, if any, and record its outcome."""
    preparation = ctx.batch_preparation
    if preparation is not None:
        if preparation.running:
            ctx.progress("batch: waiting for the batch deployment's preparation")
        preparation.join()
        ctx.batch_preparation = None
        record_outcome(ctx.record, preparation)
    return ctx.record.batch_prep


def await_ready(ctx: ReleaseContext, *, model: AssetRef, environment: AssetRef, code_hash: str) -> BatchPrepared | None:
    """The prepared deployment before the promotion or the default switch: joins the thread, prepares
    again inline when the process that prepared it is gone, and raises ``ReleaseFailed`` when the
    preparation failed."""
    prep = join(ctx)
    if prep is not None and prep.state is BatchPrepState.PREPARING:
        ctx.progress(f"batch: the preparation of {prep.deployment} was interrupted - preparing it again")
        prep = prepare_now(ctx, model=model, environment=environment, code_hash=code_hash)
    if prep is not None and prep.state is BatchPrepState.FAILED:
        raise ReleaseFailed(f"batch deployment {prep.deployment}, prepared beside the online release, failed - the "
                            "release stops before traffic moves to the online candidate, and the batch default "
                            f"{prep.default_before} is unchanged: {prep.error}")
    return prep


def ready_result(record: Record) -> BatchResult | None:
    """The smoke-scored deployment's summary, when the preparation is done and still to be made the default."""
    prep = record.batch_prep
    return prep.result if prep is not None and prep.state is BatchPrepState.READY else None


def mark_default(record: Record) -> None:
    if record.batch_prep is not None and record.batch_prep.state is BatchPrepState.READY:
        record.batch_prep.state = BatchPrepState.DEFAULT
        record.save()


def remove_prepared(ctx: ReleaseContext, *, reason: str) -> None:
    """The release did not succeed: stop the preparation (after a creation under way), delete the
    prepared deployment if this release made it, keep the old default. Idempotent; a failing removal
    is reported and left for ``mlops rollback`` (it never hides the release's own error)."""
    preparation = ctx.batch_preparation
    if preparation is not None:
        preparation.cancel()
        if preparation.running:
            ctx.progress("batch: the release ended - stopping the batch deployment's preparation")
    join(ctx)
    record, prep = ctx.record, ctx.record.batch_prep
    if prep is None or not prep.may_exist:
        return
    try:
        endpoint = ctx.workspace.get_batch_endpoint(prep.endpoint)
        found = {d.name: d for d in ctx.workspace.list_batch_deployments(prep.endpoint)} if endpoint else {}
        remove, why = removal_decision(found.get(prep.deployment), release_id=record.release_id,
                                       default=endpoint.default_deployment if endpoint else None)
        if remove:
            ctx.workspace.delete_batch_deployment(prep.endpoint, prep.deployment, progress=ctx.progress)
            ctx.progress(f"batch: removed the prepared deployment {prep.deployment} ({reason}); the default "
                         f"{prep.default_before} is unchanged")
        else:
            ctx.progress(f"batch: left {prep.deployment} as it was ({why}); the default {prep.default_before} "
                         "is unchanged")
    except NotFoundError:
        pass  # gone already
    except MlopsError as error:
        ctx.progress(f"batch: could not remove the prepared deployment {prep.deployment} ({error}); "
                     "`mlops rollback` with this record removes it")
        return
    prep.state, prep.removed_because = BatchPrepState.REMOVED, reason
    record.save()


def settle(ctx: ReleaseContext) -> None:
    """After a step: a release that has ended without succeeding removes its prepared deployment."""
    record = ctx.record
    if record.finished and record.status not in (ReleaseStatus.SUCCEEDED, ReleaseStatus.NOTHING_TO_RELEASE):
        remove_prepared(ctx, reason=f"the release ended {record.status}")


def settles_batch(step: _Step) -> _Step:
    """The step, then: if it ended the release without success, the batch deployment prepared beside
    the online release is removed (``settle``) - on every exit path, exceptions included."""
    @wraps(step)
    def wrapper(ctx: ReleaseContext, *args: Any, **kwargs: Any) -> Any:
        try:
            return step(ctx, *args, **kwargs)
        finally:
            settle(ctx)
    return wrapper  # type: ignore[return-value]


def adopt_prepared(record: Record, other: Record | None, *, source: str) -> None:
    """``--prepared PATH``: take the batch preparation of the same release from another record (the
    ``batch-prepare`` job's), when this record has none of its own yet."""
    if other is None:
        raise UsageError(f"--prepared {source}: no release record there")
    if other.release_id != record.release_id:
        raise UsageError(f"--prepared {source} is a record of release {other.release_id}, not {record.release_id}")
    if other.batch_prep is None or record.batch_prep is not None:
        return
    record.batch_prep = other.batch_prep
    if STEP in other.steps:
        record.steps[STEP] = other.steps[STEP]
    record.save()

