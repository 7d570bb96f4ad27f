"""The steps that move traffic: ``promote`` (the stepwise shift of ``mlops.release.promote``, after the
batch deployment prepared beside it is ready) and ``rollback`` (the candidate removed, live restored)."""

from __future__ import annotations

from mlops.errors import ReleaseFailed
from mlops.release import batch_overlap
from mlops.release.batch_overlap import settles_batch
from mlops.release.context import ReleaseContext
from mlops.release.lock import holding
from mlops.release.promote import checked_rollback_plan, promote, rollback
from mlops.release.record import ReleaseStatus
from mlops.release.sections.promotion import Promotion
from mlops.release.steps.batch import batch_args


@settles_batch
def step_promote(ctx: ReleaseContext) -> Promotion:
    """The stepwise traffic shift. A batch deployment prepared beside it must be ready before the first
    traffic change (a shadow step before it still overlaps the preparation): a failed preparation
    rolls the promotion back before any traffic moves (``batch_overlap``)."""
    with holding(ctx):
        try:
            ctx.before_traffic = lambda: batch_overlap.await_ready(ctx, **batch_args(ctx))
            promotion = promote(ctx)
        except ReleaseFailed as error:
            if not ctx.record.finished:
                ctx.record.finish(ReleaseStatus.ROLLED_BACK, error=str(error))
            raise
        finally:
            ctx.before_traffic = None
        if ctx.config.batch.refresh and not ctx.record.step_done("batch"):
            ctx.record.set_status(ReleaseStatus.PROMOTED)
        else:
            ctx.record.finish(ReleaseStatus.SUCCEEDED)
    return promotion


@settles_batch
def step_rollback(ctx: ReleaseContext, *, reason: str = "requested") -> dict[str, object]:
    if not ctx.record.slots.candidate:
        batch_overlap.remove_prepared(ctx, reason=f"rollback: {reason}")
        ctx.progress("rollback: this release deployed no online candidate - nothing to roll back online")
        return {"reason": reason, "candidate": "none"}
    candidate, live = ctx.slots()
    checked_rollback_plan(ctx, candidate, live, manual=True)  # a refused rollback takes no lock
    with holding(ctx):
        summary = rollback(ctx, reason=reason, manual=True)
        ctx.record.finish(ReleaseStatus.ROLLED_BACK, error=reason)
    return {"reason": summary.reason, "traffic_before": summary.traffic_before,
            "traffic_after": summary.traffic_after, "candidate": summary.candidate}
