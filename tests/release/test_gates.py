"""evaluate(gates, measurements) -> Verdict: pure and table-tested."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlops.release.gates import LatencyStats, Measurements, Phase, QualityMeasurement, evaluate
from mlops.settings.gates import AbsoluteGates, Gates, QualityGates, RelativeGates

GATES = Gates(
    absolute=AbsoluteGates(p50_ms=100, p95_ms=200, p99_ms=400, max_error_rate=0.01, min_rps=5, min_requests=50),
    relative=RelativeGates(p95_tolerance=0.5, p95_slack_ms=10, mann_whitney_alpha=0.01, min_shift_ms=10),
    quality=QualityGates(max_mape=0.5, max_mape_increase=0.02, relative_tolerance=0.1),
)


def stats(center: float = 20.0, *, n: int = 400, failures: int = 0, seconds: float = 10.0, seed: int = 0,
          spread: float = 3.0) -> LatencyStats:
    rng = np.random.default_rng(seed)
    samples = np.abs(rng.normal(center, spread, size=n - failures))
    return LatencyStats.from_samples(samples.tolist(), failures, seconds)


def phase_of(verdict, name):
    return next(r.phase for r in verdict.results if r.name == name)


CASES = [
    # (id, candidate, live, quality, expected phase, gate that decides)
    ("healthy first release", stats(), None, None, Phase.PASSED, None),
    ("healthy vs live", stats(seed=1), stats(seed=2), None, Phase.PASSED, None),
    ("p95 over the absolute limit", stats(250, spread=5), None, None, Phase.FAILED, "p95_ms"),
    ("p50 over the absolute limit", stats(150, spread=1), None, None, Phase.FAILED, "p50_ms"),
    ("error rate 5%", stats(n=400, failures=20), None, None, Phase.FAILED, "error_rate"),
    ("too slow to reach min rps", stats(n=60, seconds=60), None, None, Phase.FAILED, "min_rps"),
    ("too few requests", stats(n=10), None, None, Phase.INCONCLUSIVE, "min_requests"),
    ("+100 ms vs live", stats(120, seed=1), stats(20, seed=2), None, Phase.FAILED, "p95_vs_live"),
    ("+15 ms median shift, p95 within tolerance", stats(40, seed=1, spread=2), stats(25, seed=2, spread=10),
     None, Phase.FAILED, "mann_whitney"),
    ("a 1 ms shift is significant but immaterial", stats(21, seed=1, n=5000), stats(20, seed=2, n=5000),
     None, Phase.PASSED, None),
    ("quality: worse than live", stats(seed=1), stats(seed=2), QualityMeasurement(0.30, 0.10), Phase.FAILED,
     "mape_vs_live"),
    ("quality: within tolerance", stats(seed=1), stats(seed=2), QualityMeasurement(0.12, 0.10), Phase.PASSED, None),
    ("quality: absolute ceiling on a first release", stats(), None, QualityMeasurement(0.8), Phase.FAILED, "mape"),
    ("failed beats inconclusive", stats(n=10, failures=5), None, None, Phase.FAILED, "error_rate"),
]


@pytest.mark.parametrize(("candidate", "live", "quality", "expected", "deciding"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_evaluate(candidate, live, quality, expected, deciding) -> None:
    verdict = evaluate(GATES, Measurements(candidate, live, quality))
    assert verdict.phase is expected, verdict.reasons
    if deciding:
        assert phase_of(verdict, deciding) is expected
        assert any(deciding.split("_")[0] in reason for reason in verdict.reasons)


def test_first_release_is_judged_on_absolute_gates_only() -> None:
    verdict = evaluate(GATES, Measurements(stats()))
    names = {result.name for result in verdict.results}
    assert "p95_vs_live" not in names and "mann_whitney" not in names
    assert {"min_requests", "error_rate", "p50_ms", "p95_ms", "p99_ms", "min_rps"} <= names


def test_every_result_carries_value_and_limit() -> None:
    verdict = evaluate(GATES, Measurements(stats(120, seed=1), stats(20, seed=2), QualityMeasurement(0.1, 0.1)))
    as_dict = verdict.to_dict()
    assert as_dict["phase"] == "Failed"
    for gate in as_dict["gates"]:
        assert {"name", "phase", "value", "limit", "reason"} <= set(gate)
    p95 = next(g for g in as_dict["gates"] if g["name"] == "p95_vs_live")
    assert p95["limit"] == pytest.approx(20 * 1.5 + 10, rel=0.2)


def test_no_successful_request_is_not_a_pass() -> None:
    candidate = LatencyStats.from_samples([], 100, 10.0)
    assert math.isnan(candidate.p95_ms)
    verdict = evaluate(GATES, Measurements(candidate))
    assert verdict.phase is Phase.FAILED  # error rate 100%


def test_rank_test_needs_samples() -> None:
    candidate = LatencyStats(100, 0, 20, 30, 40, 10.0, samples_ms=(20.0,) * 5)
    live = LatencyStats(100, 0, 20, 30, 40, 10.0, samples_ms=(20.0,) * 5)
    verdict = evaluate(Gates(relative=RelativeGates(mann_whitney_alpha=0.01)), Measurements(candidate, live))
    assert verdict.phase is Phase.INCONCLUSIVE


def test_failed_holdout_requests_fail_the_quality_gate() -> None:
    verdict = evaluate(GATES, Measurements(stats(), None, QualityMeasurement(0.1, None, 20, candidate_failures=1)))
    assert verdict.phase is Phase.FAILED
    assert phase_of(verdict, "quality_requests") is Phase.FAILED


@pytest.mark.parametrize(("ratio", "seconds", "expected"), [
    (0.125, 60.0, 0.125),               # the reference: the standard profile's 60 s
    (0.125, 58.0, 0.125),               # a 60 s run's measured span (first to last sample)
    (0.125, 120.0, 0.125),              # never tighter than configured
    (0.125, 30.0, 0.25),                # half the time: twice the ratio
    (0.125, 8.0, 0.9375),               # the fast profile: gross slowdowns only
    (0.125, 0.0, 0.125),                # length unknown (no rps): as configured
    (0.0, 3.0, 0.0),                    # no ratio configured stays none
])
def test_the_material_shift_ratio_grows_for_shorter_runs(ratio, seconds, expected) -> None:
    from mlops.release.gates import material_ratio

    assert material_ratio(ratio, seconds) == pytest.approx(expected)


@pytest.mark.parametrize(("seconds", "shift_ms", "expected"), [
    (60.0, 16.0, Phase.FAILED),   # +16% of a 100 ms median over 60 s: material at 12.5%
    (60.0, 10.0, Phase.PASSED),   # +10%: not material
    (8.0, 16.0, Phase.PASSED),    # the same +16% over 8 s: within the drift an 8 s run shows
    (8.0, 50.0, Phase.PASSED),    # +50% too (the limit is 94% for 8 s)
    (8.0, 120.0, Phase.FAILED),
])
def test_the_rank_test_judges_a_short_run_by_a_larger_shift(seconds, shift_ms, expected) -> None:
    gates = Gates(relative=RelativeGates(mann_whitney_alpha=0.01, min_shift_ms=2, min_shift_ratio=0.125))
    candidate = stats(100 + shift_ms, n=3000, seconds=seconds, seed=1, spread=10)
    baseline = stats(100, n=3000, seconds=seconds, seed=2, spread=10)
    result = next(r for r in evaluate(gates, Measurements(candidate, baseline)).results if r.name == "mann_whitney")
    assert result.phase is expected, result.reason
    assert ("for a 8 s run" in result.reason) == (seconds == 8.0)


def test_the_reference_run_is_the_standard_profiles() -> None:
    from pathlib import Path

    from mlops.release.gates import REFERENCE_RUN_S
    from mlops.settings.load_profile import read_load_profile

    repo = Path(__file__).resolve().parents[2]
    assert read_load_profile(repo / "load_tests/profile.yml", "standard", repo).run_time_s == REFERENCE_RUN_S
