"""Judging what a deployment actually served, from the endpoint's own per-deployment metrics.

Two rollout checks use it, with their own limits (``ServedCheck``):

* the **shadow** step (``{mirror: 20, bake: 60s, check: shadow}``): live's requests - users' and
  the release's own header-less load - are mirrored to the candidate, whose answers nobody sees;
  the candidate is judged on *its* answers to them (the router, or Azure Monitor, recorded them);
* every **health** step at 10%, 50%, 100%: what users' requests got from the candidate over the
  bake window, beside the release's synthetic load (``promote.judge_health``).

``judge_served`` is pure (Argo Rollouts' analysis: measurements in, a phase with reasons out):

* metrics that are not complete (Azure Monitor's ingestion delay, a host restart inside the
  window) -> Inconclusive: no data is never a pass;
* fewer than ``min_requests`` requests -> Inconclusive (``too_few="inconclusive"``, the shadow step:
  its whole evidence is these requests), or latency not compared and said so (``too_few="report"``,
  the health steps: at 10% a short bake may see few, and the step's synthetic load judges too) -
  errors are judged either way;
* error rate (5xx, 408, 429) above ``max_error_rate`` -> Failed;
* p95 above ``max_p95_ms`` -> Failed;
* p95 above live's p95 in the *same window* x (1 + ``p95_tolerance``) + ``p95_slack_ms`` -> Failed
  (skipped when either side served fewer than ``min_requests`` or ``MIN_LATENCY_SAMPLES``: reported,
  not judged).
"""

from __future__ import annotations

import math

from mlops.release.gates import GateResult, Phase, Verdict
from mlops.settings.served import ServedCheck
from mlops.workspace.port import DeploymentMetrics

MIN_LATENCY_SAMPLES = 10
"""The fewest requests on each side for a p95 comparison: below it a "p95" is the slowest of a
handful of requests, and one slow request on a busy machine would fail a healthy candidate."""


def judge_served(check: ServedCheck, candidate: DeploymentMetrics, live: DeploymentMetrics | None = None, *,
                 what: str = "served") -> Verdict:
    """Is what ``candidate`` served in the window good enough? (see the module docstring)"""
    name = candidate.deployment_name
    results: list[GateResult] = []
    if not candidate.complete:
        results.append(GateResult(f"{what}_complete", Phase.INCONCLUSIVE, None, None,
                                  f"{what}: {name}'s metrics are not complete yet ({candidate.note or 'no data'})"))
    enough = candidate.requests >= check.min_requests
    if enough or check.too_few == "inconclusive":
        results.append(GateResult(
            f"{what}_requests", Phase.PASSED if enough else Phase.INCONCLUSIVE, candidate.requests,
            check.min_requests,
            f"{what}: {name} answered {candidate.requests} requests {'>=' if enough else '<'} {check.min_requests}"
            + ("" if enough else ": too few to judge")))
    else:
        results.append(GateResult(
            f"{what}_requests", Phase.PASSED, candidate.requests, check.min_requests,
            f"{what}: {name} answered {candidate.requests} requests < {check.min_requests}: too few to compare "
            "latency (reported only; errors judged)"))
    if candidate.requests:
        ok = candidate.error_rate <= check.max_error_rate
        results.append(GateResult(
            f"{what}_error_rate", Phase.PASSED if ok else Phase.FAILED, candidate.error_rate, check.max_error_rate,
            f"{what}: {name} failed {candidate.failures}/{candidate.requests} "
            f"({'<=' if ok else '>'} {check.max_error_rate:g}; status {_codes(candidate)})"))
    p95 = candidate.p95_ms
    if check.max_p95_ms is not None and enough and not math.isnan(p95):
        ok = p95 <= check.max_p95_ms
        results.append(GateResult(f"{what}_p95_ms", Phase.PASSED if ok else Phase.FAILED, p95, check.max_p95_ms,
                                  f"{what}: {name} p95 {p95:.4g} ms {'<=' if ok else '>'} {check.max_p95_ms:g} ms"))
    comparable = enough and candidate.requests >= MIN_LATENCY_SAMPLES
    if check.p95_tolerance is not None and live is not None and comparable and not math.isnan(p95):
        if live.requests >= max(check.min_requests, MIN_LATENCY_SAMPLES) and not math.isnan(live.p95_ms):
            limit = live.p95_ms * (1 + check.p95_tolerance) + check.p95_slack_ms
            ok = p95 <= limit
            results.append(GateResult(
                f"{what}_p95_vs_live", Phase.PASSED if ok else Phase.FAILED, p95, limit,
                f"{what}: {name} p95 {p95:.4g} ms {'<=' if ok else '>'} {limit:.4g} ms "
                f"(live {live.deployment_name} p95 {live.p95_ms:.4g} ms over {live.requests} requests, same window)"))
        else:
            results.append(GateResult(f"{what}_p95_vs_live", Phase.PASSED, p95, None,
                                      f"{what}: live {live.deployment_name} served {live.requests} requests in the "
                                      "window: too few to compare with (reported only)"))
    failed = tuple(r.reason for r in results if r.phase is Phase.FAILED)
    unsure = tuple(r.reason for r in results if r.phase is Phase.INCONCLUSIVE)
    if failed:
        return Verdict(Phase.FAILED, failed, tuple(results))
    if unsure:
        return Verdict(Phase.INCONCLUSIVE, unsure, tuple(results))
    return Verdict(Phase.PASSED, (f"{what}: {name} served {candidate.requests} requests well",), tuple(results))


def _codes(metrics: DeploymentMetrics) -> str:
    return " ".join(f"{code}x{count}" for code, count in sorted(metrics.status_codes.items())) or "none"


def metrics_summary(metrics: DeploymentMetrics) -> dict[str, object]:
    """The record's form of one deployment's window (``record.ServedWindow``'s fields)."""

    def ms(value: float) -> float | None:
        return None if math.isnan(value) else round(value, 3)

    return {"deployment": metrics.deployment_name, "requests": metrics.requests, "failures": metrics.failures,
            "error_rate": round(metrics.error_rate, 5), "status_classes": metrics.status_classes(),
            "p50_ms": ms(metrics.p50_ms), "p95_ms": ms(metrics.p95_ms), "p99_ms": ms(metrics.p99_ms),
            "kinds": dict(metrics.kinds), "complete": metrics.complete, "note": metrics.note,
            "source": metrics.source, "window_s": round(metrics.until - metrics.since, 3)}


def combine(*verdicts: Verdict) -> Verdict:
    """One verdict from several (Failed beats Inconclusive beats Passed), results concatenated."""
    results = tuple(r for v in verdicts for r in v.results)
    for phase in (Phase.FAILED, Phase.INCONCLUSIVE):
        reasons = tuple(reason for v in verdicts if v.phase is phase for reason in v.reasons)
        if reasons:
            return Verdict(phase, reasons, results)
    return Verdict(Phase.PASSED, tuple(reason for v in verdicts for reason in v.reasons), results)
