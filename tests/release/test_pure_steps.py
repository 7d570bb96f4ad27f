"""Pure pieces of the steps: health judgement, sample parsing, batch output checks, pruning, reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.release.batch import check_output, prune_plan
from mlops.release.gates import LatencyStats, Phase
from mlops.release.loadtest import UNATTRIBUTED, parse_samples, stats_by_deployment
from mlops.release.promote import judge_health
from mlops.release.quality import build_requests, mape, parse_forecast
from mlops.release.record import Record
from mlops.release.report import console_report, forecast_svg, markdown_summary
from mlops.settings.rollout import HealthCheck

HEALTH = HealthCheck(duration_s=2, users=4, max_error_rate=0.0, max_p95_ms=500, min_requests=20)


def ok(n: int, ms: float = 20.0, failures: int = 0) -> LatencyStats:
    return LatencyStats.from_samples([ms] * n, failures, 2.0)


@pytest.mark.parametrize(("stats", "share", "expected", "why"), [
    ({"blue": ok(90), "green": ok(10)}, 10, Phase.PASSED, "healthy"),
    ({"blue": ok(90), "green": ok(5, failures=5)}, 10, Phase.FAILED, "green: 5/10 failed"),
    ({"blue": ok(100)}, 10, Phase.FAILED, "served no request"),
    ({"blue": ok(90), "green": ok(10), UNATTRIBUTED: ok(0, failures=2)}, 10, Phase.FAILED, "from no deployment"),
    ({"blue": ok(5), "green": ok(5)}, 50, Phase.FAILED, "10 < 20"),
    ({"blue": ok(50), "green": ok(50, ms=900)}, 50, Phase.FAILED, "p95 900 ms > 500 ms"),
    ({"green": ok(40)}, 100, Phase.PASSED, "healthy"),
])
def test_judge_health(stats, share, expected, why) -> None:
    verdict = judge_health(HEALTH, stats, "green", share)
    assert verdict.phase is expected
    assert any(why in reason for reason in verdict.reasons), verdict.reasons


def test_samples_are_attributed_to_target_or_responder() -> None:
    lines = ["1.0,green,green,10.0,1,200", "1.5,blue,blue,12.0,1,200", "2.0,,green,30.0,0,500",
             "2.5,,,1.0,0,0", "torn,line", "3.0,green,green,11.0,1,200"]
    samples = parse_samples(lines)
    assert len(samples) == 5
    stats = stats_by_deployment(samples, seconds=2.0)
    assert set(stats) == {"green", "blue", UNATTRIBUTED}
    assert (stats["green"].requests, stats["green"].failures) == (3, 1)
    assert stats["green"].rps == 1.5
    assert stats[UNATTRIBUTED].failures == 1


def test_check_output(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("date,forecast_origin,predicted,count,file\n" + "2017-01-02,2017-01-01,10.5,11,a.csv\n" * 12)
    assert check_output(good, min_rows=10)[0] == []
    bad = tmp_path / "bad.csv"
    bad.write_text("date,value\n2017-01-02,nan\n")
    problems, _ = check_output(bad, min_rows=10)
    assert any("'predicted' missing" in p for p in problems) and any("1 output rows" in p for p in problems)
    nan = tmp_path / "nan.csv"
    nan.write_text("date,predicted\n2017-01-02,nan\n2017-01-03,-1\n2017-01-04,3\n")
    assert check_output(nan, min_rows=1)[0] == ["2 rows with a missing, non-finite or negative prediction"]


@pytest.mark.parametrize(("names", "default", "keep", "expected"), [
    (["tcn-v1", "tcn-v2", "tcn-v3"], "tcn-v3", 2, ["tcn-v1"]),
    (["tcn-v1", "tcn-v2", "tcn-v3"], "tcn-v3", 1, ["tcn-v2", "tcn-v1"]),
    (["tcn-v1", "tcn-v10", "tcn-v9"], "tcn-v10", 2, ["tcn-v1"]),          # numeric, not text, order
    (["tcn-v5", "tcn-v7", "handmade"], "tcn-v5", 1, ["tcn-v7"]),          # never the default; not ours: kept
    (["tcn-v1"], "tcn-v1", 2, []),
])
def test_prune_plan(names, default, keep, expected) -> None:
    assert prune_plan(names, default=default, keep=keep, prefix="tcn") == expected


def test_quality_requests_and_mape() -> None:
    rows = [{"date": f"2017-01-{day:02d}", "count": str(100 + day), "day_of_week": "0.0", "month_of_year": "0.0",
             "holiday": "0.0"} for day in range(1, 31)]
    requests = build_requests(rows, origins=3, context_days=14, horizon=7)
    assert len(requests) == 3 and all(len(r.actuals) == 7 for r in requests)
    assert requests[-1].actuals[-1] == 130.0
    assert mape([100, 200], [110, 180]) == pytest.approx(0.1)
    assert parse_forecast(b'{"Results": {"forecast": [1, 2.5]}}') == [1.0, 2.5]
    with pytest.raises(ValueError):
        parse_forecast(b'{"error": "bad"}')


RECORD = {
    "release_id": "r1", "status": "rolled_back", "endpoint": "tcn-dau",
    "trigger": {"by": "github-actions", "event_name": "push", "actor": "octo", "run_id": "42", "sha": "abc"},
    "model": {"name": "tcn-dau", "version": "3"}, "environment": {"name": "tcn-inference", "version": "1"},
    "slots": {"candidate": "green", "live": "blue"},
    "traffic": {"before": {"blue": 100}, "after": {"blue": 100}},
    "loadtest": {"deployments": {"green": {"requests": 100, "failures": 0, "p50_ms": 120.0, "p95_ms": 150.0,
                                           "p99_ms": 160.0}, "blue": {"requests": 100, "failures": 0, "p50_ms": 20.0,
                                                                      "p95_ms": 30.0, "p99_ms": 40.0}}},
    "verdict": {"phase": "Failed", "reasons": ["p95_vs_live 150 ms > 55 ms"], "gates": [
        {"name": "p95_vs_live", "phase": "Failed", "value": 150.0, "limit": 55.0, "reason": "p95 | 150 > 55"}]},
    "steps": {"deploy": {"state": "done", "seconds": 3.0}, "loadtest": {"state": "done", "seconds": 12.0,
                                                                       "configured_wait_s": 10.0}},
    "rollback": {"reason": "gate failed", "traffic_after": {"blue": 100}, "candidate": "deleted"},
}


def test_reports() -> None:
    record = Record.parse(Path("r1.json"), RECORD)  # a schema-1 record, as written before the typed record
    markdown = markdown_summary(record)
    assert "**rolled_back**" in markdown and "GitHub Actions: push by octo" in markdown
    assert "| p95_vs_live | FAIL | 150 | 55 | p95 \\| 150 > 55 |" in markdown
    assert "bar [120.0, 150.0, 160.0]" in markdown and "line [20.0, 30.0, 40.0]" in markdown
    assert "### Rolled back: gate failed" in markdown
    text = console_report(record)
    assert "overhead     5.0s" in text and "[Failed" in text


def test_forecast_svg_plots_the_one_day_ahead_forecast() -> None:
    rows = [{"date": "2017-01-03", "forecast_origin": "2017-01-01", "predicted": "50", "count": "10"},
            {"date": "2017-01-03", "forecast_origin": "2017-01-02", "predicted": "11", "count": "10"},
            {"date": "2017-01-04", "forecast_origin": "2017-01-03", "predicted": "12", "count": "13"}]
    svg = forecast_svg(rows)
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert ">50<" not in svg  # the 2-day-ahead value is not what is plotted
    assert "no forecast rows" in forecast_svg([])
