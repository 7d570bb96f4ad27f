"""The ``gate`` step: the record's load test and quality results judged (``mlops.release.gates``);
Failed rolls back, Inconclusive pauses with nothing promoted."""

from __future__ import annotations

import math

from mlops.errors import Inconclusive, ReleaseFailed, UsageError
from mlops.release.baseline import BASELINE_SLOT
from mlops.release.batch_overlap import settles_batch
from mlops.release.context import ReleaseContext
from mlops.release.gates import LatencyStats, Measurements, Phase, QualityMeasurement, Verdict, evaluate
from mlops.release.lock import holding
from mlops.release.promote import rollback
from mlops.release.record import Record, ReleaseStatus, StepState
from mlops.release.sections.loadtest import LoadTestResult
from mlops.release.steps.loadtest import step_loadtest


def measurements(record: Record) -> Measurements:
    """What the gate judges, read from the record's load test and quality sections: the relative gates
    compare with the fresh baseline when there was one in the load test, else with live."""
    candidate, live = record.slots.candidate, record.slots.live
    loadtest = record.loadtest or LoadTestResult()
    candidate_stats = loadtest.stats(candidate) or LatencyStats(0, 0, math.nan, math.nan, math.nan, 0.0)
    fresh = record.baseline is not None and record.baseline.mode == "fresh" and BASELINE_SLOT in loadtest.targets
    comparator = BASELINE_SLOT if fresh else live
    compared = loadtest.stats(comparator) if comparator in loadtest.targets else None
    quality = record.quality
    return Measurements(
        candidate=candidate_stats, live=compared, comparator="baseline" if fresh else "live",
        quality=QualityMeasurement(math.nan if quality.candidate_mape is None else quality.candidate_mape,
                                   quality.live_mape, quality.points, quality.candidate_failures)
        if quality else None)


@settles_batch
def step_gate(ctx: ReleaseContext) -> Verdict:
    """Judge the load test. Failed -> rollback + ``ReleaseFailed``; Inconclusive -> ``Inconclusive``
    (nothing promoted; the candidate stays at 0%)."""
    config, record = ctx.config, ctx.record
    candidate, _live = ctx.slots()
    if record.loadtest is None:
        raise UsageError("no load test in the release record: run `mlops loadtest` first")
    with record.step("gate"):
        verdict = evaluate(config.load_test.gates, measurements(record))
        record.verdict = verdict
    ctx.progress(f"gate: {verdict.phase}")
    for result in verdict.results:
        ctx.progress(f"  [{result.phase}] {result.reason}")
    reasons = "; ".join(verdict.reasons)
    if verdict.phase is Phase.FAILED:
        with holding(ctx):
            rollback(ctx, reason="gate failed: " + reasons)
            record.finish(ReleaseStatus.ROLLED_BACK, error="gate failed: " + reasons)
        raise ReleaseFailed(f"the candidate {candidate} failed its gates and was removed; live traffic is "
                            f"untouched: {reasons}")
    if verdict.phase is Phase.INCONCLUSIVE:
        with holding(ctx):
            record.finish(ReleaseStatus.INCONCLUSIVE, error=reasons)
        raise Inconclusive(f"not enough evidence to judge {candidate}: {reasons} - nothing "
                           "promoted, live traffic untouched; the candidate is left at 0% to be judged again "
                           "(`mlops loadtest`, then `mlops gate`) or removed (`mlops rollback`, which the "
                           "release workflow's rollback job runs)")
    return verdict


def gated(ctx: ReleaseContext) -> Verdict:
    """The candidate's Passed verdict: the recorded one, or a new load test and gate."""
    record = ctx.record
    if record.step_done("gate") and record.verdict is not None and record.verdict.passed:
        return record.verdict
    if not record.step_done("loadtest") or record.step_state("gate") is StepState.FAILED:
        step_loadtest(ctx)
    return step_gate(ctx)
