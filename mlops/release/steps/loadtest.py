"""The ``loadtest`` step: candidate, baseline (``mlops.release.baseline``) and live loaded side by side,
then the quality holdout scored through candidate and live."""

from __future__ import annotations

import math
from pathlib import Path

from mlops.errors import UsageError
from mlops.release import batch_overlap
from mlops.release.baseline import (
    archived_code_dir,
    baseline_mode,
    deploy_baseline,
    plan_baseline,
    remove_baseline,
)
from mlops.release.context import ReleaseContext
from mlops.release.loadtest import run_load
from mlops.release.lock import holding
from mlops.release.quality import build_requests, read_rows, score_deployment
from mlops.release.record import ReleaseStatus
from mlops.release.sections.loadtest import BaselineSlot, LoadTestResult, QualityResult
from mlops.release.staging import CODE_HASH_TAG, stage_code
from mlops.workspace import runs_on_this_machine


def _plan_baseline(ctx: ReleaseContext, live: str | None):
    """What the gate compares the candidate with (``mlops.release.baseline``), and live's deployment."""
    config = ctx.config
    live_deployment = ctx.workspace.get_online_deployment(ctx.endpoint, live) if live else None
    mode = baseline_mode(config.load_test.gates.relative.baseline, ctx.workspace.uri)
    current = ctx.artifacts / "code" / "online"
    if live_deployment is not None and mode == "fresh" and not current.is_dir():  # a later job elsewhere
        stage_code(config.online.code_dir, current)
    plan = plan_baseline(mode, live_deployment, slots=tuple(config.online.slots), current_code_hash=ctx.code_hash(),
                         current_code=current, archived_code=archived_code_dir(config.records, live_deployment),
                         code_hash_tag=CODE_HASH_TAG)
    return plan, live_deployment


def step_loadtest(ctx: ReleaseContext) -> LoadTestResult:
    """Load candidate, fresh baseline and live side by side (header-targeted, the same users each),
    then score the holdout through candidate and live. The baseline is removed right after the load."""
    config, workspace, record = ctx.config, ctx.workspace, ctx.record
    candidate, live = ctx.slots()
    names = {d.name for d in workspace.list_online_deployments(ctx.endpoint)}
    if candidate not in names:
        raise UsageError(f"the candidate {candidate} is not deployed on {ctx.endpoint}: run `mlops deploy`")
    if live not in names:
        live = None
    endpoint = workspace.get_online_endpoint(ctx.endpoint)
    keys = workspace.get_keys(ctx.endpoint)
    profile = config.load_test.profile
    if record.status is not ReleaseStatus.RUNNING:
        record.status = ReleaseStatus.RUNNING
    if ctx.batch_preparation is not None and runs_on_this_machine(workspace.uri):
        # On this machine the batch smoke job would take cores from the deployments being measured and
        # skew the comparison (the A/A drift of benchmarks/gate_power.py is contention): let it finish
        # first. On Azure it runs on the batch cluster, beside the load test.
        batch_overlap.join(ctx)
    with record.step("loadtest", configured_wait_s=profile.run_time_s + profile.warmup_s) as entry:
        plan, live_deployment = _plan_baseline(ctx, live)
        with holding(ctx):
            if plan.name is not None and live_deployment is not None:
                deploy_baseline(ctx, plan, live_deployment, CODE_HASH_TAG)
            else:
                record.baseline = BaselineSlot(mode="live", reason=plan.reason)
                record.save()
            targets = [candidate] + ([plan.name] if plan.name else []) + ([live] if live else [])
            try:
                result = run_load(scoring_uri=endpoint.scoring_uri, key=keys.primary_key, targets=targets,
                                  shape=profile, locustfile=config.load_test.locustfile, out_dir=ctx.artifacts,
                                  name="loadtest", progress=ctx.progress)
            finally:
                remove_baseline(ctx, reason="load test over")
        loadtest = LoadTestResult.of(result.summary())
        loadtest.samples_ms = {name: [round(v, 2) for v in stats.samples_ms] for name, stats in result.stats.items()
                               if name in targets}
        loadtest.targets = targets
        record.loadtest = loadtest
        entry.html_report = loadtest.html_report
        quality_gates = config.load_test.gates.quality
        record.quality = None
        if quality_gates.holdout:
            requests = build_requests(read_rows(Path(quality_gates.holdout)), origins=quality_gates.origins,
                                      context_days=quality_gates.context_days, horizon=quality_gates.horizon)
            candidate_mape, points, failures = score_deployment(workspace, ctx.endpoint, candidate, requests,
                                                                ctx.progress)
            live_mape = score_deployment(workspace, ctx.endpoint, live, requests, ctx.progress)[0] if live else None
            record.quality = QualityResult(candidate_mape=_finite(candidate_mape), live_mape=_finite(live_mape),
                                           points=points, candidate_failures=failures, holdout=quality_gates.holdout)
    return loadtest


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value
