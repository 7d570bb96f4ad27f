"""The batch steps: ``batch-prepare`` (the release's batch deployment created and smoke-scored beside
the online release, ``mlops.release.batch_overlap``) and ``batch`` (made the default after the promotion)."""

from __future__ import annotations

from typing import Any

from mlops.errors import ReleaseFailed
from mlops.release import batch_overlap
from mlops.release.batch import make_default, prepare_batch
from mlops.release.context import ReleaseContext
from mlops.release.record import ReleaseStatus
from mlops.release.sections.batch import BatchPrepared, BatchPrepState, BatchResult
from mlops.release.slots import RELEASE_TAG
from mlops.release.staging import CODE_HASH_TAG
from mlops.release.steps.prepare import ensure_prepared


def batch_args(ctx: ReleaseContext) -> dict[str, Any]:
    return {"model": ctx.model_ref(), "environment": ctx.environment_ref(), "code_hash": ctx.batch_code_hash()}


def batch_current(ctx: ReleaseContext) -> bool:
    """True when the batch default already runs this release's model, environment and batch code
    (or batch is off). Read-only."""
    if not ctx.config.batch.refresh:
        return True
    endpoint = ctx.workspace.get_batch_endpoint(ctx.config.batch.endpoint.name)
    if endpoint is None or not endpoint.default_deployment:
        return False
    for deployment in ctx.workspace.list_batch_deployments(endpoint.name):
        if deployment.name == endpoint.default_deployment:
            deployed_code = deployment.tags.get(CODE_HASH_TAG)
            return (deployment.model == ctx.model_ref() and deployment.environment == ctx.environment_ref()
                    and (deployed_code is None or deployed_code == ctx.batch_code_hash()))
    return False


def step_batch_prepare(ctx: ReleaseContext) -> BatchPrepared | None:
    """Create and smoke-score the release's batch deployment without making it the default (``mlops
    batch-prepare``: beside the online release; ``mlops batch-refresh`` makes it the default after the
    promotion). ``None`` when there is nothing to prepare beside it (see ``batch_overlap.overlap_refusal``)."""
    ensure_prepared(ctx)
    record = ctx.record
    if not ctx.config.batch.refresh:
        ctx.progress("batch: the batch refresh is off - nothing to prepare")
        return None
    prep = record.batch_prep
    if prep is not None and prep.state in (BatchPrepState.READY, BatchPrepState.DEFAULT):
        ctx.progress(f"batch: {prep.deployment} is prepared already ({prep.state})")
        return prep
    if batch_current(ctx):
        ctx.progress("batch: the batch default already runs this release - nothing to prepare")
        return None
    prep = batch_overlap.prepare_now(ctx, **batch_args(ctx))
    if prep is not None and prep.state is BatchPrepState.FAILED:
        raise ReleaseFailed(f"batch deployment {prep.deployment} failed its preparation: {prep.error}; the batch "
                            f"default {prep.default_before} is unchanged (the release's rollback removes it)")
    return prep


def step_batch(ctx: ReleaseContext) -> BatchResult:
    """Make the release's batch deployment the default: the one prepared beside the online release
    when there is one (ready), else prepared now, in sequence."""
    ensure_prepared(ctx)
    record = ctx.record
    args = batch_args(ctx)
    batch_overlap.await_ready(ctx, **args)
    with record.step("batch") as entry:
        summary = batch_overlap.ready_result(record) or prepare_batch(
            ctx, release_tag=(RELEASE_TAG, record.release_id), **args)
        summary = make_default(ctx, summary)
        entry.deployment = summary.deployment
        record.batch = summary
        batch_overlap.mark_default(record)
    if record.status in (ReleaseStatus.PROMOTED, ReleaseStatus.RUNNING):
        record.finish(ReleaseStatus.SUCCEEDED)
    return summary
