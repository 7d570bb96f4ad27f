"""Stepwise promotion with health checks, and the rollback that any failure triggers.

``promote`` interprets the rollout steps from the record's resume point (``promotion.done``):

* a **shadow** step (before any live traffic) mirrors a share of live's requests to the candidate
  (``rollout.mirror_plan``, read-modify-write), runs a header-less load meanwhile so there is traffic
  to mirror, removes the mirror, and judges the candidate's own answers to the mirrored requests
  from the endpoint's per-deployment metrics (``served.judge_served``);
* a **traffic** step reads the endpoint's traffic, asks ``rollout.traffic_plan`` for the whole new
  map and writes it (read-modify-write, never a reset);
* a **health** check runs a short header-less load and attributes each response to its deployment
  by the response header (``judge_health``, pure) *and* judges the candidate's per-deployment
  metrics over the same window - everything it served, users' requests included - against live's
  in that window; both views are recorded.

A failed check - or any error while traffic is moving - calls ``rollback``: the mirror removed, live
back to its full share, the candidate deleted (or kept at 0%); an Inconclusive check (too little
data, metrics not ingested yet) rolls back too and exits 3. A release killed half-way resumes at
the step it was in: re-applying a traffic step is idempotent, a shadow step mirrors again and
removes the mirror, and the health check runs again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace

from mlops.errors import Inconclusive, MlopsError, ReleaseFailed, UsageError
from mlops.release.baseline import safe_remove_baseline
from mlops.release.context import ReleaseContext
from mlops.release.gates import GateResult, LatencyStats, Phase, Verdict
from mlops.release.loadtest import UNATTRIBUTED, LoadResult, run_load
from mlops.release.lock import holding
from mlops.release.record import ReleaseStatus, utc_now
from mlops.release.rollout import (
    first_release_steps,
    mirror_plan,
    rollback_plan,
    rollback_refusal,
    traffic_plan,
)
from mlops.release.sections.endpoint import RollbackResult
from mlops.release.sections.loadtest import LoadTestResult
from mlops.release.sections.promotion import (
    HealthResult,
    Promotion,
    PromotionStep,
    ServedView,
    ServedWindow,
    ShadowResult,
)
from mlops.release.served import combine, judge_served, metrics_summary
from mlops.release.slots import RELEASE_TAG
from mlops.release.typed_json import from_json
from mlops.settings.rollout import BakeStep, HealthCheck, ShadowStep, TrafficStep
from mlops.settings.served import ServedCheck
from mlops.workspace.port import OnlineDeployment


def judge_health(health: HealthCheck, stats: Mapping[str, LatencyStats], candidate: str,
                 candidate_share: int) -> Verdict:
    """Pure: is the endpoint healthy under its current split?

    Fails when any deployment's error rate is above ``max_error_rate``, when responses came back
    from no deployment at all (router refusals), when the candidate's p95 exceeds ``max_p95_ms``, or
    when too few requests (or none for a candidate that holds traffic) leave nothing to vouch for.
    """
    results: list[GateResult] = []
    total = sum(s.requests for s in stats.values())
    enough = total >= health.min_requests
    results.append(GateResult("health_requests", Phase.PASSED if enough else Phase.FAILED, total,
                              health.min_requests,
                              f"health check requests {total} {'>=' if enough else '<'} {health.min_requests}"))
    for name, s in sorted(stats.items()):
        if name == UNATTRIBUTED:
            ok = s.failures == 0
            results.append(GateResult("unattributed_errors", Phase.PASSED if ok else Phase.FAILED, s.failures, 0,
                                      f"{s.failures} responses came from no deployment"))
            continue
        ok = s.error_rate <= health.max_error_rate
        results.append(GateResult(f"{name}_error_rate", Phase.PASSED if ok else Phase.FAILED, s.error_rate,
                                  health.max_error_rate,
                                  f"{name}: {s.failures}/{s.requests} failed "
                                  f"({'<=' if ok else '>'} {health.max_error_rate:g})"))
    served = stats.get(candidate)
    if candidate_share > 0 and (served is None or served.requests == 0):
        results.append(GateResult("candidate_served", Phase.FAILED, 0, 1,
                                  f"{candidate} holds {candidate_share}% but served no request"))
    if health.max_p95_ms is not None and served is not None and not math.isnan(served.p95_ms):
        ok = served.p95_ms <= health.max_p95_ms
        results.append(GateResult("candidate_p95_ms", Phase.PASSED if ok else Phase.FAILED, served.p95_ms,
                                  health.max_p95_ms, f"{candidate} p95 {served.p95_ms:.4g} ms "
                                  f"{'<=' if ok else '>'} {health.max_p95_ms:g} ms"))
    failed = tuple(r.reason for r in results if r.phase is Phase.FAILED)
    if failed:
        return Verdict(Phase.FAILED, failed, tuple(results))
    return Verdict(Phase.PASSED, ("healthy",), tuple(results))


def _existing(ctx: ReleaseContext) -> set[str]:
    return {d.name for d in ctx.workspace.list_online_deployments(ctx.endpoint)}


def _traffic(ctx: ReleaseContext) -> dict[str, int]:
    endpoint = ctx.workspace.get_online_endpoint(ctx.endpoint)
    return dict(endpoint.traffic) if endpoint is not None else {}


def _mirror(ctx: ReleaseContext) -> dict[str, int]:
    endpoint = ctx.workspace.get_online_endpoint(ctx.endpoint)
    return {k: int(v) for k, v in endpoint.mirror_traffic.items() if v} if endpoint is not None else {}


def _set_mirror(ctx: ReleaseContext, candidate: str, percent: int) -> dict[str, int]:
    """Mirror ``percent``% to the candidate (0: stop mirroring to it), traffic unchanged (read-modify-write)."""
    current = _mirror(ctx)
    try:
        plan = mirror_plan(current, candidate, percent)
    except ValueError as error:
        raise UsageError(f"shadow step on {ctx.endpoint}: {error}") from None
    if plan != current:
        ctx.workspace.set_traffic(ctx.endpoint, _traffic(ctx), plan, progress=ctx.progress)
    return plan


def _window(metrics) -> ServedWindow:  # noqa: ANN001 - a port DeploymentMetrics
    return from_json(ServedWindow, metrics_summary(metrics))


def _served_view(ctx: ReleaseContext, check: ServedCheck, candidate: str, live: str | None, since: float,
                 until: float, what: str) -> ServedView:
    """Judge what the candidate served in [since, until), beside live in the same window."""
    served = ctx.workspace.deployment_metrics(ctx.endpoint, candidate, since, until)
    beside = ctx.workspace.deployment_metrics(ctx.endpoint, live, since, until) if live else None
    return ServedView(verdict=judge_served(check, served, beside, what=what), candidate=_window(served),
                      live=_window(beside) if beside is not None else None)


def _shadow(ctx: ReleaseContext, step: ShadowStep, candidate: str, live: str | None, name: str) -> ShadowResult:
    """Mirror, load, un-mirror, judge: the mirror is gone before this returns or raises."""
    shadow = ctx.config.online.rollout.shadow
    plan = _set_mirror(ctx, candidate, step.percent)
    ctx.progress(f"promote: shadow - mirroring {step.percent}% of live's requests to {candidate} for "
                 f"{step.seconds:g}s (answers discarded)")
    since = time.time()
    try:
        result = _health_load(ctx, step.seconds, name, users=shadow.users)
    finally:
        until = time.time()
        _set_mirror(ctx, candidate, 0)
    view = _served_view(ctx, shadow.served, candidate, live, since, until, "shadow")
    return ShadowResult(verdict=view.verdict, mirror=plan, candidate=view.candidate, live=view.live,
                        load=LoadTestResult.of(result.summary()))


def _stop_unless_passed(judged: Verdict, item: PromotionStep, started: float, promotion: Promotion,
                        record, index: int, step, check: str) -> None:  # noqa: ANN001
    """Record the step and raise ``ReleaseFailed`` (Failed) or ``Inconclusive`` unless it passed."""
    if judged.phase is Phase.PASSED:
        return
    item.seconds = round(time.monotonic() - started, 3)
    promotion.steps.append(item)
    record.save()
    what = f"{check} check at step {index + 1} ({step.describe()})"
    if judged.phase is Phase.INCONCLUSIVE:
        raise Inconclusive(f"{what} could not judge the candidate: " + "; ".join(judged.reasons))
    raise ReleaseFailed(f"{what} failed: " + "; ".join(judged.reasons))


def promote(ctx: ReleaseContext) -> Promotion:
    """Run the rollout steps; returns the promotion. Raises ``ReleaseFailed`` after a rollback."""
    record, config = ctx.record, ctx.config
    verdict = record.verdict
    if verdict is None or not verdict.passed:
        raise UsageError(f"the candidate's gate verdict is {verdict.phase if verdict else 'missing'}: only a Passed "
                         "candidate is promoted (run `mlops loadtest` and `mlops gate`)")
    candidate, live = ctx.slots()
    promotion = record.promotion
    if promotion.finished:
        ctx.progress(f"promote: already done ({candidate} serves 100%)")
        return promotion
    rollout = config.online.rollout
    with holding(ctx):
        if live is not None and live not in _existing(ctx):
            live = None  # the old live deployment vanished: nothing to shift from
        steps = rollout.steps if live is not None else first_release_steps(rollout.steps)
        percent = 0
        for step in steps[:promotion.done]:
            if isinstance(step, TrafficStep):
                percent = step.percent
        remaining_wait = sum(s.seconds for s in steps[promotion.done:] if isinstance(s, BakeStep | ShadowStep))
        with record.step("promote", configured_wait_s=remaining_wait) as entry:
            try:
                for index in range(promotion.done, len(steps)):
                    step = steps[index]
                    if isinstance(step, TrafficStep) and ctx.before_traffic is not None:
                        ctx.before_traffic()  # the batch deployment prepared beside it must be ready
                    started = time.monotonic()
                    item = PromotionStep(index=index + 1, step=step.describe(), started_at=utc_now())
                    if isinstance(step, TrafficStep):
                        percent = step.percent
                        plan = traffic_plan(_traffic(ctx), live, candidate, step.percent)
                        ctx.workspace.set_traffic(ctx.endpoint, plan, progress=ctx.progress)
                        item.traffic = plan
                        ctx.progress(f"promote: step {index + 1}/{len(steps)} traffic "
                                     + " ".join(f"{k}={v}%" for k, v in sorted(plan.items())))
                    elif isinstance(step, ShadowStep):
                        item.shadow = _shadow(ctx, step, candidate, live, f"shadow-{index + 1}")
                        judged = item.shadow.verdict
                        ctx.progress(f"promote: step {index + 1}/{len(steps)} shadow {judged.phase}: "
                                     + "; ".join(judged.reasons))
                        _stop_unless_passed(judged, item, started, promotion, record, index, step, "shadow")
                    elif step.check == "health":
                        seconds = step.seconds or rollout.health.duration_s
                        since = time.time()
                        result = _health_load(ctx, seconds, f"health-{index + 1}")
                        until = time.time()
                        share = _traffic(ctx).get(candidate, 0)
                        synthetic = judge_health(rollout.health, result.stats, candidate, share)
                        view = _served_view(ctx, rollout.health.metrics, candidate, live, since, until, "metrics")
                        judged = combine(synthetic, view.verdict)
                        item.health = HealthResult(verdict=judged, load=LoadTestResult.of(result.summary()),
                                                   synthetic=synthetic, deployment_metrics=view)
                        ctx.progress(f"promote: step {index + 1}/{len(steps)} health {judged.phase} (synthetic load "
                                     f"{synthetic.phase}, deployment metrics {view.verdict.phase}): "
                                     + "; ".join(judged.reasons))
                        _stop_unless_passed(judged, item, started, promotion, record, index, step, "health")
                    else:
                        ctx.progress(f"promote: step {index + 1}/{len(steps)} bake {step.seconds:g}s")
                        ctx.sleep(step.seconds)
                    item.seconds = round(time.monotonic() - started, 3)
                    promotion.steps.append(item)
                    promotion.done = index + 1
                    record.save()
            except (MlopsError, KeyboardInterrupt) as error:
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                ctx.progress(f"promote: failed at {percent}% - rolling back ({reason})")
                summary = rollback(ctx, reason=reason)
                entry.rolled_back = True
                inconclusive = isinstance(error, Inconclusive)
                record.finish(ReleaseStatus.INCONCLUSIVE if inconclusive else ReleaseStatus.ROLLED_BACK, error=reason)
                if isinstance(error, KeyboardInterrupt):
                    raise
                if inconclusive:
                    raise Inconclusive(f"promotion of {candidate} stopped and was rolled back "
                                       f"({summary.traffic_after}): {reason}") from None
                raise ReleaseFailed(f"promotion of {candidate} failed and was rolled back "
                                    f"({summary.traffic_after}): {reason}") from None
            traffic_after = _traffic(ctx)
            if live is not None and live != candidate and traffic_after.get(live, 0) == 0:
                if rollout.old_deployment == "delete":
                    ctx.workspace.delete_online_deployment(ctx.endpoint, live, progress=ctx.progress)
                    ctx.progress(f"promote: deleted the previous deployment {live}")
                    promotion.old_deployment = "deleted"
                else:
                    ctx.progress(f"promote: kept the previous deployment {live} at 0% for an instant rollback")
                    promotion.old_deployment = "kept at 0%"
            promotion.state = "done"
            record.traffic.after = _traffic(ctx)
            record.save()
    return promotion


def _health_load(ctx: ReleaseContext, seconds: float, name: str, *, users: int | None = None) -> LoadResult:
    config = ctx.config
    endpoint = ctx.workspace.get_online_endpoint(ctx.endpoint)
    if endpoint is None:
        raise UsageError(f"online endpoint {ctx.endpoint} does not exist")
    keys = ctx.workspace.get_keys(ctx.endpoint)
    users = users or config.online.rollout.health.users
    shape = replace(config.load_test.profile, users=users, spawn_rate=float(users), run_time_s=seconds,
                    warmup_s=0.0)
    return run_load(scoring_uri=endpoint.scoring_uri, key=keys.primary_key, targets=[], shape=shape,
                    locustfile=config.load_test.locustfile, out_dir=ctx.artifacts, name=name, progress=ctx.progress)


def checked_rollback_plan(ctx: ReleaseContext, candidate: str, live: str | None, *, manual: bool
                  ) -> tuple[str | None, dict[str, int], OnlineDeployment | None, dict[str, int]]:
    """``(live, traffic now, the candidate deployment, traffic after)`` of a rollback, or ``UsageError``
    when ``rollout.rollback_refusal`` refuses it. Reads only: callers check before they take the lock."""
    deployments = {d.name: d for d in ctx.workspace.list_online_deployments(ctx.endpoint)}
    if live is not None and live not in deployments:
        live = None
    before = _traffic(ctx)
    present = deployments.get(candidate)
    plan = rollback_plan(before, live, candidate) if present is not None and before.get(candidate, 0) > 0 else before
    refusal = rollback_refusal(
        release_id=ctx.record.release_id, candidate=candidate,
        candidate_release=None if present is None else present.tags.get(RELEASE_TAG, ""),
        before=before, after=plan, may_empty=not manual and not any((ctx.record.traffic.before or {}).values()))
    if refusal is not None:
        raise UsageError(f"rollback of release {ctx.record.release_id} on {ctx.endpoint} refused: {refusal}")
    return live, before, present, plan


def rollback(ctx: ReleaseContext, *, reason: str = "requested", manual: bool = False) -> RollbackResult:
    """Give live its traffic back and remove the candidate (or keep it at 0%). Idempotent.

    Refuses (``UsageError``, exit 2, nothing changed) when the candidate deployment was not
    created by this release (its ``mlops.release`` tag names another release, or none) or when the
    rollback would leave no deployment serving (``rollout.rollback_refusal``); a release's own
    automatic rollback of a first release may return the endpoint to serving nothing, a ``manual``
    one (``mlops rollback``, whose record may be old or crafted) never."""
    candidate, live = ctx.slots()
    if ctx.lock_depth == 0:  # not holding the lock yet: a refusal must take none and change nothing
        checked_rollback_plan(ctx, candidate, live, manual=manual)
    with holding(ctx):
        safe_remove_baseline(ctx, reason=f"rollback: {reason}")
        if candidate in _mirror(ctx) and candidate in _existing(ctx):
            _set_mirror(ctx, candidate, 0)  # a deployment with mirrored traffic cannot be deleted
            ctx.progress(f"rollback: stopped mirroring to {candidate}")
        live, before, present, plan = checked_rollback_plan(ctx, candidate, live, manual=manual)
        if plan != before:
            ctx.workspace.set_traffic(ctx.endpoint, plan, progress=ctx.progress)
            ctx.progress("rollback: traffic " + " ".join(f"{k}={v}%" for k, v in sorted(plan.items())))
        removed = "absent"
        if present is not None and candidate != live:
            if ctx.config.online.rollout.failed_candidate == "delete":
                ctx.workspace.delete_online_deployment(ctx.endpoint, candidate, progress=ctx.progress)
                ctx.progress(f"rollback: deleted the candidate {candidate}")
                removed = "deleted"
            else:
                removed = "kept at 0%"
        summary = RollbackResult(reason=reason, at=utc_now(), traffic_before=before, traffic_after=_traffic(ctx),
                                 candidate=removed)
        ctx.record.rollback = summary
        ctx.record.traffic.after = summary.traffic_after
        ctx.record.save()
    return summary
