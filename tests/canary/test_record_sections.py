"""The canary sections of the typed release record round-trip through JSON and reach both reports."""

from __future__ import annotations

from pathlib import Path

from mlops.release.gates import GateResult, Phase, Verdict
from mlops.release.record import Record
from mlops.release.report import console_report, markdown_summary
from mlops.release.sections.loadtest import BaselineSlot, BaselineState
from mlops.release.sections.promotion import (
    HealthResult,
    PromotionStep,
    ServedView,
    ServedWindow,
    ShadowResult,
)


def _verdict(phase: Phase, reason: str) -> Verdict:
    return Verdict(phase, (reason,), (GateResult("x", phase, 1.0, 2.0, reason),))


def test_baseline_shadow_and_both_health_views_round_trip_and_render(tmp_path: Path) -> None:
    record = Record.create(tmp_path / "current.json", endpoint="tcn-dau")
    record.baseline = BaselineSlot(mode="fresh", deployment="baseline", copy_of="blue", model="tcn-dau:1",
                                   environment="tcn-inference:1", instance_count=2, state=BaselineState.REMOVED,
                                   removed_because="load test over")
    shadow = ShadowResult(verdict=_verdict(Phase.FAILED, "shadow: green failed 4/40"), mirror={"green": 20},
                          candidate=ServedWindow("green", requests=40, failures=4, kinds={"mirrored": 40}, p95_ms=12.5),
                          live=ServedWindow("blue", requests=200, p95_ms=10.0))
    health = HealthResult(verdict=_verdict(Phase.INCONCLUSIVE, "metrics: not complete yet"),
                          synthetic=_verdict(Phase.PASSED, "healthy"),
                          deployment_metrics=ServedView(verdict=_verdict(Phase.INCONCLUSIVE, "not complete yet"),
                                                        candidate=ServedWindow("green", complete=False,
                                                                               note="Azure Monitor ingesting")))
    record.promotion.steps += [PromotionStep(index=1, step="mirror 20% for 60s + shadow check", shadow=shadow),
                               PromotionStep(index=2, step="bake 30s + health check", health=health)]
    record.save()

    loaded = Record.load(tmp_path / "current.json")
    assert loaded.baseline == record.baseline and loaded.baseline.state is BaselineState.REMOVED
    assert not loaded.baseline.may_exist
    assert loaded.promotion.steps[0].shadow == shadow
    assert loaded.promotion.steps[1].health.deployment_metrics.candidate.note == "Azure Monitor ingesting"

    text = console_report(loaded)
    assert "baseline     baseline = fresh copy of blue (tcn-dau:1 on tcn-inference:1, 2 instance(s)), removed" in text
    assert "shadow  green: 40 req (mirrored 40), p95 12.5 ms, errors 4 | live blue: 200 req" in text
    assert "synthetic load Passed: healthy" in text
    assert "deployment metrics Inconclusive: green: 0 req, p95 - ms, errors 0 [incomplete: Azure Monitor" in text
    markdown = markdown_summary(loaded)
    assert "| Deployment metrics (candidate / live) | Synthetic load |" in markdown
    assert "| 1 | mirror 20% for 60s + shadow check | - | Failed |" in markdown
    assert "Baseline: baseline = fresh copy of blue" in markdown


def test_a_baseline_being_deployed_may_exist() -> None:
    assert BaselineSlot(mode="fresh", state=BaselineState.DEPLOYING).may_exist
    assert BaselineSlot(mode="fresh", state=BaselineState.DEPLOYED).may_exist
    assert not BaselineSlot(mode="live").may_exist
