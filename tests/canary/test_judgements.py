"""Pure canary judgements: what a deployment served (shadow and health), shadow steps, mirror plans."""

from __future__ import annotations

import math

import pytest

from mlops.release.gates import Phase
from mlops.release.rollout import mirror_plan
from mlops.release.served import combine, judge_served, metrics_summary
from mlops.settings.rollout import ShadowStep, TrafficStep, parse_steps
from mlops.settings.served import ServedCheck
from mlops.workspace.port import DeploymentMetrics

NAN = math.nan


def served(name: str = "green", *, ok: int = 100, codes: dict[int, int] | None = None, p95: float = 20.0,
           complete: bool = True, note: str = "") -> DeploymentMetrics:
    status = {200: ok, **(codes or {})} if ok else dict(codes or {})
    return DeploymentMetrics("ep", name, 0.0, 10.0, sum(status.values()), status, p50_ms=p95 / 2, p95_ms=p95,
                             p99_ms=p95 * 1.2, complete=complete, note=note)


CHECK = ServedCheck(min_requests=20, max_error_rate=0.0, max_p95_ms=None, p95_tolerance=0.5, p95_slack_ms=25)


@pytest.mark.parametrize(("candidate", "live", "check", "phase", "reason"), [
    (served(), served("blue"), CHECK, Phase.PASSED, "served 100 requests well"),
    # no data is never a pass
    (served(ok=0), None, CHECK, Phase.INCONCLUSIVE, "answered 0 requests < 20: too few"),
    (served(ok=19), None, CHECK, Phase.INCONCLUSIVE, "too few to judge"),
    (served(complete=False, note="ingesting"), None, CHECK, Phase.INCONCLUSIVE, "not complete yet (ingesting)"),
    # errors: 5xx, and the router's 408/429, are failures; a client's 400 is not the deployment's fault
    (served(codes={500: 1}), None, CHECK, Phase.FAILED, "failed 1/101"),
    (served(codes={408: 2}), None, CHECK, Phase.FAILED, "failed 2/102"),
    (served(codes={429: 1}), None, CHECK, Phase.FAILED, "failed 1/101"),
    (served(codes={400: 5}), None, CHECK, Phase.PASSED, "served 105 requests well"),
    (served(codes={503: 1}), None, ServedCheck(max_error_rate=0.02), Phase.PASSED, "served 101 requests well"),
    # failures are judged even below the minimum count: 5 of 5 failing is a failure, not "too few"
    (served(ok=0, codes={500: 5}), None, CHECK, Phase.FAILED, "failed 5/5"),
    # latency vs live in the same window: 20 ms * 1.5 + 25 = 55 ms
    (served(p95=55.0), served("blue", p95=20.0), CHECK, Phase.PASSED, "well"),
    (served(p95=56.0), served("blue", p95=20.0), CHECK, Phase.FAILED, "p95 56 ms > 55 ms"),
    (served(p95=500.0), served("blue", ok=5, p95=20.0), CHECK, Phase.PASSED, "well"),  # live too quiet: reported
    (served(p95=500.0), None, CHECK, Phase.PASSED, "well"),
    (served(p95=2001.0), None, ServedCheck(max_p95_ms=2000), Phase.FAILED, "p95 2001 ms > 2000 ms"),
    (served(p95=NAN, ok=0, codes={500: 30}), served("blue"), CHECK, Phase.FAILED, "failed 30/30"),
])
def test_judge_served(candidate, live, check, phase, reason):
    verdict = judge_served(check, candidate, live, what="shadow")
    assert verdict.phase is phase, verdict.reasons
    assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_judge_served_reports_live_when_it_cannot_compare():
    verdict = judge_served(CHECK, served(p95=500.0), served("blue", ok=5), what="health")
    (row,) = [r for r in verdict.results if r.name == "health_p95_vs_live"]
    assert row.phase is Phase.PASSED and "too few to compare with (reported only)" in row.reason


def test_combine_precedence():
    passed = judge_served(CHECK, served())
    unsure = judge_served(CHECK, served(ok=3))
    failed = judge_served(CHECK, served(codes={500: 3}))
    assert combine(passed, unsure).phase is Phase.INCONCLUSIVE
    assert combine(unsure, failed, passed).phase is Phase.FAILED
    assert combine(passed, passed).phase is Phase.PASSED
    assert len(combine(passed, failed).results) == len(passed.results) + len(failed.results)


def test_metrics_summary_is_json_clean():
    summary = metrics_summary(served(ok=0, p95=NAN))
    assert summary["p95_ms"] is None and summary["requests"] == 0 and summary["complete"] is True


@pytest.mark.parametrize(("raw", "expected"), [
    ([{"mirror": 20, "bake": "60s", "check": "shadow"}, {"traffic": 100}], (ShadowStep(20, 60.0), TrafficStep(100))),
    ([{"mirror": 50, "bake": "4s"}, {"traffic": 10}, {"traffic": 100}],
     (ShadowStep(50, 4.0), TrafficStep(10), TrafficStep(100))),
    ([{"traffic": 0}, {"mirror": 1, "bake": "1s", "check": "shadow"}, {"traffic": 100}],
     (TrafficStep(0), ShadowStep(1, 1.0), TrafficStep(100))),
])
def test_parse_shadow_steps(raw, expected):
    assert parse_steps(raw) == expected


@pytest.mark.parametrize(("raw", "message"), [
    ([{"mirror": 51, "bake": "4s"}, {"traffic": 100}], "mirror must be an integer 1-50"),
    ([{"mirror": 0, "bake": "4s"}, {"traffic": 100}], "mirror must be an integer 1-50"),
    ([{"mirror": True, "bake": "4s"}, {"traffic": 100}], "mirror must be an integer 1-50"),
    ([{"mirror": 20}, {"traffic": 100}], "needs `bake`"),
    ([{"mirror": 20, "bake": "0s"}, {"traffic": 100}], "longer than 0s"),
    ([{"mirror": 20, "bake": "4s", "check": "health"}, {"traffic": 100}], "check is `shadow`"),
    ([{"mirror": 20, "bake": "4s", "traffic": 10}, {"traffic": 100}], "a mirror step holds"),
    ([{"traffic": 10}, {"mirror": 20, "bake": "4s"}, {"traffic": 100}], "before any live traffic"),
    ([{"bake": "4s", "check": "shadow"}, {"traffic": 100}], "check must be one of"),
])
def test_parse_shadow_steps_refuses(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_steps(raw)


@pytest.mark.parametrize(("current", "percent", "expected"), [
    ({}, 20, {"green": 20}),
    ({"green": 10}, 20, {"green": 20}),
    ({"green": 20}, 0, {}),
    ({"other": 10}, 0, {"other": 10}),  # removing ours keeps someone else's mirror
    ({"green": 0, "other": 0}, 30, {"green": 30}),
])
def test_mirror_plan(current, percent, expected):
    assert mirror_plan(current, "green", percent) == expected


def test_mirror_plan_never_replaces_another_mirror():
    with pytest.raises(ValueError, match="already mirrors traffic to other"):
        mirror_plan({"other": 10}, "green", 20)
    with pytest.raises(ValueError, match="0-50"):
        mirror_plan({}, "green", 60)


@pytest.mark.parametrize(("candidate", "phase", "reason"), [
    (served(ok=3), Phase.PASSED, "too few to compare latency (reported only; errors judged)"),
    (served(ok=3, codes={500: 1}), Phase.FAILED, "failed 1/4"),
    (served(ok=3, complete=False, note="ingesting"), Phase.INCONCLUSIVE, "not complete yet"),
    (served(ok=0), Phase.PASSED, "too few to compare latency"),
])
def test_health_metrics_below_the_minimum_report_latency_but_judge_errors(candidate, phase, reason):
    check = ServedCheck(min_requests=10, too_few="report")
    verdict = judge_served(check, candidate, served("blue", p95=1.0), what="metrics")
    assert verdict.phase is phase, verdict.reasons
    assert any(reason in r.reason for r in verdict.results), verdict.results
    assert not any(r.name == "metrics_p95_vs_live" for r in verdict.results)


@pytest.mark.parametrize(("candidate_ok", "live_ok", "compared"), [
    (4, 4, False),    # a "p95" of 4 requests is the slowest of four: never compared, whatever min_requests says
    (9, 50, False),
    (50, 9, False),
    (10, 10, True),
    (50, 50, True),
])
def test_p95_vs_live_needs_enough_requests_on_both_sides(candidate_ok, live_ok, compared):
    lax = ServedCheck(min_requests=1, p95_tolerance=0.5, p95_slack_ms=25, too_few="report")
    verdict = judge_served(lax, served(ok=candidate_ok, p95=300.0), served("blue", ok=live_ok, p95=20.0),
                           what="metrics")
    failed = {r.name for r in verdict.results if r.phase is Phase.FAILED}
    assert failed == ({"metrics_p95_vs_live"} if compared else set()), verdict
    assert (verdict.phase is Phase.FAILED) == compared
