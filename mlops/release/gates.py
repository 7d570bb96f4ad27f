"""Gates: a pure function from measurements to a verdict (Argo Rollouts' analysis and Kayenta's judge).

``evaluate(gates, measurements) -> Verdict`` with a phase ``Passed`` / ``Failed`` /
``Inconclusive`` and one ``GateResult`` per gate (measured value, limit, outcome), so the release
record and the reports can show *why*.

* **Absolute** gates judge the candidate alone: p50/p95/p99 latency, error rate, requests/s and a
  minimum number of requests (below it the latency gates cannot judge: ``Inconclusive``).
* **Relative** gates compare the candidate with the live deployment *measured in the same run*
  (Kayenta: a baseline under the same load, not yesterday's numbers): candidate p95 within a
  tolerance of live p95, and a one-sided Mann-Whitney U test (scipy) on the latency samples, which
  fails only when the candidate is significantly slower *and* its median shift matters.
* **Quality**: the candidate's holdout MAPE may not exceed live's by more than a tolerance.

A first release has no live deployment: absolute gates (and the absolute MAPE ceiling) only.
Phase precedence: any failed gate -> ``Failed``; else any gate that could not judge ->
``Inconclusive``; else ``Passed``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlops.settings.gates import AbsoluteGates, Gates, QualityGates, RelativeGates

MIN_SAMPLES_FOR_RANK_TEST = 20

REFERENCE_RUN_S = 60.0
"""The load-test length ``relative.mann_whitney.min_shift_ratio`` is stated for: the standard profile's
``run_time`` (``load_tests/profile.yml``; a test keeps the two equal). A shorter run of ``T`` seconds
needs ``ratio x REFERENCE_RUN_S / T`` to count as material (never less than the ratio; runs within
5% of the reference, whose measured span is a little under it, count as the reference). Why: with
thousands of requests a side the rank test's p is ~0 for any shift, so this limit decides, and
identical deployments in one locust run drift apart for seconds at a time as the 2 cores' share moves
between busy processes, the first seconds after the warm-up the most (issue 12; measured with
``benchmarks/gate_power.py --releases``): their medians differed by -10%..+7% over 60 s, but by up
to +42% over an 8 s ``fast`` run (the workflow rehearsal's A/A release on an idle machine) - a
spread closer to 1/T than to the 1/sqrt(T) of independent stretches. So an 8 s run judges only a
shift of 7.5x the ratio (gross slowdowns; its p95 gate still judges), a 60 s run the ratio itself."""


class Phase(StrEnum):
    PASSED = "Passed"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"


@dataclass(frozen=True)
class LatencyStats:
    """One deployment's side of a load test."""

    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rps: float
    samples_ms: tuple[float, ...] = field(default=(), repr=False)
    """Latencies of the successful requests (for the rank test)."""

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @classmethod
    def from_samples(cls, latencies_ms: Sequence[float], failures: int, seconds: float) -> LatencyStats:
        """Percentiles (numpy's linear interpolation) over the successful requests' latencies."""
        import numpy as np

        ok = tuple(float(value) for value in latencies_ms)
        requests = len(ok) + failures
        if ok:
            p50, p95, p99 = (float(value) for value in np.percentile(ok, [50, 95, 99]))
        else:
            p50 = p95 = p99 = math.nan
        rps = requests / seconds if seconds > 0 else 0.0
        return cls(requests, failures, p50, p95, p99, rps, ok)

    def summary(self) -> dict[str, float | int]:
        return {"requests": self.requests, "failures": self.failures, "error_rate": round(self.error_rate, 5),
                "p50_ms": _round(self.p50_ms), "p95_ms": _round(self.p95_ms), "p99_ms": _round(self.p99_ms),
                "rps": round(self.rps, 2)}


@dataclass(frozen=True)
class QualityMeasurement:
    candidate_mape: float
    live_mape: float | None = None
    points: int = 0
    candidate_failures: int = 0
    """Holdout requests the candidate failed: any is a failed quality gate."""


@dataclass(frozen=True)
class Measurements:
    candidate: LatencyStats
    live: LatencyStats | None = None
    """What the relative gates compare with: the fresh baseline or the live deployment (``comparator``)."""
    quality: QualityMeasurement | None = None
    comparator: str = "live"
    """``baseline`` (a fresh copy of live, same load) or ``live``: names the relative gates and reasons."""


@dataclass(frozen=True)
class GateResult:
    name: str
    phase: Phase
    value: float | None
    limit: float | None
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "phase": str(self.phase), "value": _round(self.value),
                "limit": _round(self.limit), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(str(data["name"]), Phase(data["phase"]), number("value"), number("limit"), str(data["reason"]))


@dataclass(frozen=True)
class Verdict:
    phase: Phase
    reasons: tuple[str, ...]
    results: tuple[GateResult, ...] = ()

    @property
    def passed(self) -> bool:
        return self.phase is Phase.PASSED

    def to_dict(self) -> dict[str, object]:
        return {"phase": str(self.phase), "reasons": list(self.reasons),
                "gates": [result.to_dict() for result in self.results]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """The verdict as ``to_dict`` wrote it (a release record read back)."""
        return cls(Phase(data["phase"]), tuple(str(reason) for reason in data.get("reasons") or ()),
                   tuple(GateResult.from_dict(gate) for gate in data.get("gates") or ()))


def _round(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 3)


def _upper(name: str, value: float, limit: float, unit: str = "") -> GateResult:
    if math.isnan(value):
        return GateResult(name, Phase.INCONCLUSIVE, None, limit, f"{name}: no successful request to measure")
    ok = value <= limit
    verb = "<=" if ok else ">"
    return GateResult(name, Phase.PASSED if ok else Phase.FAILED, value, limit,
                      f"{name} {value:.4g}{unit} {verb} {limit:.4g}{unit}")


def _absolute(gates: AbsoluteGates, stats: LatencyStats) -> list[GateResult]:
    results: list[GateResult] = []
    enough = stats.requests >= gates.min_requests
    results.append(GateResult(
        "min_requests", Phase.PASSED if enough else Phase.INCONCLUSIVE, stats.requests, gates.min_requests,
        f"candidate requests {stats.requests} {'>=' if enough else '<'} {gates.min_requests}"
        + ("" if enough else ": too few to judge")))
    if gates.max_error_rate is not None and stats.requests:
        results.append(_upper("error_rate", stats.error_rate, gates.max_error_rate))
    for name, value, limit in (("p50_ms", stats.p50_ms, gates.p50_ms), ("p95_ms", stats.p95_ms, gates.p95_ms),
                               ("p99_ms", stats.p99_ms, gates.p99_ms)):
        if limit is None:
            continue
        if not enough:
            results.append(GateResult(name, Phase.INCONCLUSIVE, _round(value), limit,
                                      f"{name}: too few requests to judge"))
        else:
            results.append(_upper(name, value, limit, " ms"))
    if gates.min_rps is not None:
        if not enough:
            results.append(GateResult("min_rps", Phase.INCONCLUSIVE, stats.rps, gates.min_rps,
                                      "min_rps: too few requests to judge"))
        else:
            ok = stats.rps >= gates.min_rps
            results.append(GateResult("min_rps", Phase.PASSED if ok else Phase.FAILED, stats.rps, gates.min_rps,
                                      f"min_rps: candidate {stats.rps:.3g} req/s {'>=' if ok else '<'} {gates.min_rps:g}"))
    return results


def _relative(gates: RelativeGates, candidate: LatencyStats, live: LatencyStats, min_requests: int,
              comparator: str = "live") -> list[GateResult]:
    results: list[GateResult] = []
    enough = candidate.requests >= min_requests and live.requests >= min_requests
    name = f"p95_vs_{comparator}"
    if gates.p95_tolerance is not None:
        limit = live.p95_ms * (1 + gates.p95_tolerance) + gates.p95_slack_ms
        if not enough or math.isnan(limit):
            results.append(GateResult(name, Phase.INCONCLUSIVE, _round(candidate.p95_ms), _round(limit),
                                      f"{name}: too few requests to compare with {comparator}"))
        else:
            result = _upper(name, candidate.p95_ms, limit, " ms")
            results.append(GateResult(result.name, result.phase, result.value, result.limit,
                                      result.reason + f" ({comparator} p95 {live.p95_ms:.4g} ms)"))
    if gates.mann_whitney_alpha is not None:
        results.append(_mann_whitney(gates, candidate, live, comparator))
    return results


def _mann_whitney(gates: RelativeGates, candidate: LatencyStats, live: LatencyStats,
                  comparator: str = "live") -> GateResult:
    name = "mann_whitney"
    alpha = gates.mann_whitney_alpha or 0.0
    if min(len(candidate.samples_ms), len(live.samples_ms)) < MIN_SAMPLES_FOR_RANK_TEST:
        return GateResult(name, Phase.INCONCLUSIVE, None, alpha,
                          f"{name}: fewer than {MIN_SAMPLES_FOR_RANK_TEST} latency samples on a side")
    from scipy.stats import mannwhitneyu

    p_value = float(mannwhitneyu(candidate.samples_ms, live.samples_ms, alternative="greater").pvalue)
    shift = candidate.p50_ms - live.p50_ms
    seconds = run_seconds(candidate)
    ratio = material_ratio(gates.min_shift_ratio, seconds)
    material = max(gates.min_shift_ms, ratio * live.p50_ms)
    slower = p_value < alpha and shift > material
    scaled = f", {ratio:.3g} x median for a {seconds:.3g} s run" if ratio != gates.min_shift_ratio else ""
    if slower:
        reason = (f"{name}: candidate is slower than {comparator} (one-sided p={p_value:.2g} < {alpha:g}, "
                  f"median +{shift:.3g} ms > {material:.3g} ms{scaled})")
    else:
        reason = (f"{name}: no material slowdown vs {comparator} (p={p_value:.2g}, median shift {shift:+.3g} ms, "
                  f"limit {material:.3g} ms{scaled} at alpha {alpha:g})")
    return GateResult(name, Phase.FAILED if slower else Phase.PASSED, p_value, alpha, reason)


def run_seconds(stats: LatencyStats) -> float:
    """How long the load that measured ``stats`` ran (requests / requests per second); 0 if unknown."""
    return stats.requests / stats.rps if stats.rps > 0 else 0.0


def material_ratio(ratio: float, seconds: float) -> float:
    """``min_shift_ratio`` for a run of ``seconds``: scaled up for runs shorter than ``REFERENCE_RUN_S``
    (see there), as configured for longer ones and when the length is unknown."""
    if seconds <= 0 or seconds >= 0.95 * REFERENCE_RUN_S:
        return ratio
    return ratio * REFERENCE_RUN_S / seconds


def _quality(gates: QualityGates, quality: QualityMeasurement) -> list[GateResult]:
    results: list[GateResult] = []
    if quality.candidate_failures:
        results.append(GateResult("quality_requests", Phase.FAILED, quality.candidate_failures, 0,
                                  f"quality_requests: the candidate failed {quality.candidate_failures} holdout "
                                  "requests"))
    if gates.max_mape is not None:
        results.append(_upper("mape", quality.candidate_mape, gates.max_mape))
    if quality.live_mape is not None and not math.isnan(quality.live_mape):
        limit = quality.live_mape * (1 + gates.relative_tolerance) + gates.max_mape_increase
        result = _upper("mape_vs_live", quality.candidate_mape, limit)
        results.append(GateResult(result.name, result.phase, result.value, result.limit,
                                  result.reason + f" (live MAPE {quality.live_mape:.4g})"))
    return results


def evaluate(gates: Gates, measurements: Measurements) -> Verdict:
    """Judge the candidate. Pure: the same inputs always give the same verdict."""
    results = _absolute(gates.absolute, measurements.candidate)
    if measurements.live is not None:
        results += _relative(gates.relative, measurements.candidate, measurements.live, gates.absolute.min_requests,
                             measurements.comparator)
    if measurements.quality is not None:
        results += _quality(gates.quality, measurements.quality)
    failed = [result.reason for result in results if result.phase is Phase.FAILED]
    unsure = [result.reason for result in results if result.phase is Phase.INCONCLUSIVE]
    if failed:
        return Verdict(Phase.FAILED, tuple(failed), tuple(results))
    if unsure:
        return Verdict(Phase.INCONCLUSIVE, tuple(unsure), tuple(results))
    return Verdict(Phase.PASSED, ("every gate passed",), tuple(results))
