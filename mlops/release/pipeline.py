"""The whole release, in order: register -> environment -> deploy -> loadtest -> gate -> promote -> batch
(the steps: ``mlops.release.steps``).

The batch deployment is prepared (created, smoke-scored) *beside* deploy, loadtest, gate and the
promotion - a thread in ``run_release``, the ``batch-prepare`` job in Actions - and only made the
default by the ``batch`` step after the promotion; a release that does not succeed removes it
(``mlops.release.batch_overlap``).

``run_release`` calls the steps in order, and is what a re-run after a crash calls: finished steps
are skipped, an interrupted promotion resumes at its step, a failed gate is rolled back.

"Nothing to release" - the model, environment and scoring code that would be released already
serve 100% (and the batch default runs them too) - is decided once per release, read-only, before
the release lock is taken (``steps.deploy.decide_serving``, ``steps.batch.batch_current``): such a
release changes nothing anywhere.

Safety: every step that changes the online endpoint runs inside ``lock.holding`` (the endpoint's
release lock, holder = the release id); a second release is refused with the holder and its start
time before it writes anything. The record also names the process running it, so a second process
on the same record is refused too. Any failure after the candidate exists removes it (``_fail``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlops.config import Config
from mlops.errors import Inconclusive, MlopsError, ReleaseFailed
from mlops.release import batch_overlap
from mlops.release.baseline import safe_remove_baseline
from mlops.release.batch_overlap import settles_batch
from mlops.release.context import ReleaseContext
from mlops.release.current import default_record_path, new_record, refuse_if_running
from mlops.release.lock import holding, refuse_if_held
from mlops.release.promote import rollback
from mlops.release.record import Record, ReleaseStatus
from mlops.release.steps.batch import batch_args, batch_current, step_batch
from mlops.release.steps.deploy import decide_serving, step_deploy
from mlops.release.steps.gate import gated
from mlops.release.steps.prepare import step_environment, step_register
from mlops.release.steps.promote import step_promote
from mlops.workspace.port import Progress, Workspace, no_progress


def _start(config: Config, workspace: Workspace, path: Path, progress: Progress) -> tuple[ReleaseContext, bool]:
    """The release to run: the unfinished one at ``path`` (resumed) or a new one."""
    record = Record.load(path)
    refuse_if_running(record)
    if record is not None and not record.finished and record.endpoint == config.online.endpoint.name:
        refuse_if_held(workspace, config.online.endpoint.name, record.holder)
        record.claim()
        progress(f"release {record.release_id}: resuming (status {record.status})")
        ctx = ReleaseContext(config, workspace, record, progress)
        if record.baseline is not None and record.baseline.may_exist:
            with holding(ctx):
                safe_remove_baseline(ctx, reason="the release was interrupted while its baseline existed")
        return ctx, True
    record = new_record(config, workspace, path)
    progress(f"release {record.release_id}: started on {workspace.uri}")
    return ReleaseContext(config, workspace, record, progress), False


def _prepare(ctx: ReleaseContext, resuming: bool) -> None:
    previous_model = ctx.record.model.version if ctx.record.model else None
    step_register(ctx)
    step_environment(ctx)
    current = ctx.record.model.version if ctx.record.model else None
    if resuming and previous_model and previous_model != current:
        raise ReleaseFailed(f"release {ctx.record.release_id} was interrupted with model version {previous_model}, "
                            f"but the model source now gives {current}: the interrupted release is rolled back; "
                            "run the release again to release the new model")


def _pause(ctx: ReleaseContext, message: str) -> Record:
    batch_overlap.join(ctx)  # the process ends here: the preparation's outcome goes into the record first
    ctx.record.set_status(ReleaseStatus.AWAITING_PROMOTION)
    ctx.progress(message)
    return ctx.record


@settles_batch
def _fail(ctx: ReleaseContext, error: MlopsError) -> None:
    """Never leave a failed candidate behind: a failure before the traffic shift completed removes it
    (``promote`` rolls back by itself once traffic moves). The record ends failed or rolled back."""
    record = ctx.record
    if record.finished:
        return
    if "deploy" not in record.steps and not record.slots.candidate:  # never took the lock: nothing to undo
        record.finish(ReleaseStatus.FAILED, error=str(error))
        return
    with holding(ctx):
        safe_remove_baseline(ctx, reason="the release failed")
        if record.slots.candidate and record.rollback is None and not record.promotion.finished:
            try:
                rollback(ctx, reason=f"release failed: {str(error).splitlines()[0] if str(error) else error}")
            except MlopsError as second:
                ctx.progress(f"rollback after the failure also failed: {second}")
        record.finish(ReleaseStatus.ROLLED_BACK if record.rollback else ReleaseStatus.FAILED, error=str(error))


def run_release(config: Config, workspace: Workspace, record_path: Path | None = None, *,
                until: str | None = None, confirm: Callable[[str], bool] | None = None,
                progress: Progress = no_progress) -> Record:
    """Run (or resume) a release. Raises ``ReleaseFailed`` (rolled back), ``Inconclusive`` (paused)
    or ``ConflictError`` (another release holds the endpoint)."""
    ctx, resuming = _start(config, workspace, record_path or default_record_path(config), progress)
    record = ctx.record
    try:
        _prepare(ctx, resuming)
        if decide_serving(ctx) and batch_current(ctx):
            record.finish(ReleaseStatus.NOTHING_TO_RELEASE)
            progress(f"nothing to release: {ctx.model_ref()} on {ctx.environment_ref()} already serves "
                     "100% and is the batch default")
            return record
    except MlopsError as error:
        _fail(ctx, error)
        raise
    with holding(ctx):
        try:
            if not batch_current(ctx):
                batch_overlap.begin(ctx, **batch_args(ctx))  # beside deploy, load test, gate and promotion
            return _release_steps(ctx, until, confirm)
        except Inconclusive:
            raise
        except MlopsError as error:
            _fail(ctx, error)
            raise
        finally:
            batch_overlap.settle(ctx)
            if ctx.batch_preparation is not None:  # interrupted (a signal, a crash): the record says
                ctx.batch_preparation.cancel()     # "preparing"; a resumed release prepares again


def _release_steps(ctx: ReleaseContext, until: str | None, confirm: Callable[[str], bool] | None) -> Record:
    """deploy -> (loadtest -> gate) -> promote -> batch, each skipped when the record says it is done."""
    record, config = ctx.record, ctx.config
    step_deploy(ctx)
    if record.slots.candidate is not None:
        gated(ctx)
        if until == "gate":
            return _pause(ctx, "release: stopped after the gate (--until gate); promote with `mlops promote`")
        if not record.promotion.finished:
            question = (f"Shift traffic to {record.slots.candidate} ({ctx.model_ref()}) in "
                        f"{len(config.online.rollout.steps)} steps?")
            if confirm is not None and not confirm(question):
                return _pause(ctx, "release: promotion declined; the candidate stays at 0% (`mlops promote` later)")
            step_promote(ctx)
    elif until == "gate":
        return _pause(ctx, "release: nothing to gate (already live); `mlops promote` finishes it")
    if config.batch.refresh and not record.step_done("batch"):
        step_batch(ctx)
    endpoint = ctx.workspace.get_online_endpoint(ctx.endpoint)
    record.traffic.after = dict(endpoint.traffic) if endpoint else {}
    record.finish(ReleaseStatus.SUCCEEDED)
    return record
