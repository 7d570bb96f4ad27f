"""The release record's serialised form, pinned: a record with every section and every field set
writes exactly ``full_record.json`` (byte for byte), and that file loads back to the same typed
record and saves back unchanged. A change to a field's name, order or encoding fails here first:
records are read by other versions (GitHub jobs carry them as artifacts), so the JSON changes only
on purpose - regenerate the file then, and say why in the commit."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mlops.release.gates import GateResult, Phase, Verdict
from mlops.release.record import Record, ReleaseStatus, StepEntry, StepState
from mlops.release.sections.batch import BatchPrepared, BatchPrepState, BatchResult
from mlops.release.sections.endpoint import RollbackResult, Slots, TrafficSplit
from mlops.release.sections.loadtest import (
    BaselineSlot,
    BaselineState,
    DeploymentLoad,
    LoadTestResult,
    QualityResult,
)
from mlops.release.sections.pins import EnvironmentPin, ModelPin, TrialPick, UnpinnedDependency
from mlops.release.sections.promotion import (
    HealthResult,
    Promotion,
    PromotionStep,
    ServedView,
    ServedWindow,
    ShadowResult,
)

PINNED = Path(__file__).with_name("full_record.json")


def _verdict(phase: Phase, reason: str) -> Verdict:
    return Verdict(phase, (reason,), (GateResult("p95_vs_live", phase, 13.3, 46.18, reason),))


def _window(deployment: str, requests: int) -> ServedWindow:
    return ServedWindow(deployment, requests=requests, failures=1, error_rate=0.025, status_classes={"2xx": 39, "5xx": 1},
                        p50_ms=8.5, p95_ms=12.5, p99_ms=20.25, kinds={"mirrored": requests}, complete=False,
                        note="Azure Monitor ingesting", source="azure-monitor", window_s=60.0,
                        extra={"a_newer_window_key": 1})


def _load(requests: int) -> LoadTestResult:
    green = DeploymentLoad(requests=requests, failures=1, error_rate=0.01, p50_ms=9.2, p95_ms=13.3, p99_ms=19.7,
                           rps=12.5, extra={"a_newer_load_key": "x"})
    return LoadTestResult(seconds=8.1, requests=requests, failures=1, deployments={"green": green},
                          html_report="loadtest.html", errors_by_status={"500": 1}, targets=["green"],
                          samples_ms={"green": [9.0, 9.5]}, extra={"a_newer_loadtest_key": [1]})


def full_record(path: Path) -> Record:
    """A record in which every field of every section differs from its default."""
    step = StepEntry(state=StepState.DONE, started_at="2026-12-01T10:00:00Z", finished_at="2026-12-01T10:00:09Z",
                     seconds=9.5, configured_wait_s=8.0, error="none", reason="resumed", html_report="r.html",
                     deployment="green", rolled_back=True, extra={"a_newer_step_key": True})
    health = HealthResult(verdict=_verdict(Phase.PASSED, "healthy"), load=_load(20),
                          synthetic=_verdict(Phase.PASSED, "synthetic healthy"),
                          deployment_metrics=ServedView(verdict=_verdict(Phase.INCONCLUSIVE, "not complete yet"),
                                                        candidate=_window("green", 40), live=_window("blue", 200),
                                                        extra={"a_newer_view_key": 2}),
                          extra={"a_newer_health_key": 3})
    shadow = ShadowResult(verdict=_verdict(Phase.PASSED, "shadow ok"), mirror={"green": 20},
                          candidate=_window("green", 40), live=_window("blue", 200), load=_load(30),
                          extra={"a_newer_shadow_key": 4})
    batch = BatchResult(endpoint="tcn-dau-batch", deployment="tcn-dau-3", model="tcn-dau:3",
                        environment="tcn-inference:2", default_before="tcn-dau-2", default_after="tcn-dau-3",
                        changed=True, removed=["tcn-dau-1"], smoke_job="job-1", smoke_rows=56,
                        smoke_output="batch/predictions.csv", forecast_svg="batch/forecast-vs-actual.svg",
                        smoke_seconds=41.5, extra={"a_newer_batch_key": 5})
    return Record(
        path=path, release_id="20261201T100000Z-abcdef", status=ReleaseStatus.PROMOTED, pid=4242, host="ci",
        started_at="2026-12-01T10:00:00Z", finished_at="2026-12-01T10:09:00Z",
        trigger={"by": "github-actions", "actor": "octo", "sha": "abc"}, workspace="local:.mlops", endpoint="tcn-dau",
        batch_endpoint="tcn-dau-batch", config="mlops.yaml", profile="fast", error="an earlier attempt failed",
        code_hash="code-1", batch_code_hash="batch-code-1", steps={"deploy": step},
        model=ModelPin(name="tcn-dau", version="3", content_hash="m-hash", source="job:automl-1", created=True,
                       trusted_pickles=True,
                       trial=TrialPick(job="automl-1", trial="automl-1_4", primary_metric="nrmse", score="0.0812"),
                       extra={"a_newer_model_key": 6}),
        environment=EnvironmentPin(name="tcn-inference", version="2", content_hash="e-hash", image="mcr/img:1",
                                   source="model tcn-dau:3 conda.yaml",
                                   unpinned=[UnpinnedDependency(name="torch", was="torch==2.0", now="torch",
                                                                section="pip")],
                                   unpin_not_found=["numpy"], extra={"a_newer_environment_key": 7}),
        slots=Slots(candidate="green", live="blue", live_model="tcn-dau:2", live_environment="tcn-inference:1",
                    extra={"a_newer_slots_key": 8}),
        traffic=TrafficSplit(before={"blue": 100}, after={"green": 100}, extra={"a_newer_traffic_key": 9}),
        baseline=BaselineSlot(mode="fresh", deployment="baseline", copy_of="blue", model="tcn-dau:2",
                              environment="tcn-inference:1", instance_count=2, code="code-0", reason="fresh copy",
                              state=BaselineState.REMOVED, removed_because="load test over", seconds=95.5,
                              extra={"a_newer_baseline_key": 10}),
        loadtest=_load(200),
        quality=QualityResult(candidate_mape=0.099, live_mape=0.098, points=56, candidate_failures=1,
                              holdout="holdout.csv", extra={"a_newer_quality_key": 11}),
        verdict=_verdict(Phase.PASSED, "every gate passed"),
        promotion=Promotion(done=2, state="done", old_deployment="deleted", extra={"a_newer_promotion_key": 12},
                            steps=[PromotionStep(index=1, step="mirror 20% for 60s + shadow check",
                                                 started_at="2026-12-01T10:05:00Z", seconds=61.5,
                                                 traffic={"blue": 100}, health=health, shadow=shadow,
                                                 extra={"a_newer_promotion_step_key": 13})]),
        batch=batch,
        batch_prep=BatchPrepared(endpoint="tcn-dau-batch", deployment="tcn-dau-3", state=BatchPrepState.DEFAULT,
                                 default_before="tcn-dau-2", result=batch, error="smoke retried",
                                 started_at="2026-12-01T10:01:00Z", seconds=120.5, removed_because="n/a",
                                 extra={"a_newer_batch_prep_key": 14}),
        rollback=RollbackResult(reason="p95 over the limit", at="2026-12-01T10:08:00Z", traffic_before={"green": 10},
                                traffic_after={"blue": 100}, candidate="kept at 0%",
                                extra={"a_newer_rollback_key": 15}),
        extra={"a_key_from_a_newer_version": {"kept": [1, 2]}},
    )


def _unset_fields(value: Any, where: str) -> list[str]:
    """Every field (at any depth) still at its default or ``None``: places the pinned file does not cover."""
    if isinstance(value, dict):
        return [hole for key, item in value.items() for hole in _unset_fields(item, f"{where}[{key!r}]")]
    if isinstance(value, list | tuple):
        return [hole for index, item in enumerate(value) for hole in _unset_fields(item, f"{where}[{index}]")]
    if not dataclasses.is_dataclass(value):
        return []
    holes = []
    for f in dataclasses.fields(value):
        if f.name == "schema" or not f.metadata.get("json", True):
            continue
        item = getattr(value, f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if item is None or item == default:
            holes.append(f"{where}.{f.name}")
        holes += _unset_fields(item, f"{where}.{f.name}")
    return holes


def test_the_full_record_sets_every_field_of_every_section(tmp_path: Path) -> None:
    assert _unset_fields(full_record(tmp_path / "current.json"), "record") == []


def test_a_full_record_writes_the_pinned_json_byte_for_byte(tmp_path: Path) -> None:
    record = full_record(tmp_path / "current.json")
    record.save()
    assert (tmp_path / "current.json").read_text() == PINNED.read_text()


def test_the_pinned_json_loads_as_the_full_record_and_saves_back_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "current.json"
    path.write_text(PINNED.read_text())
    record = Record.load(path)
    assert record == full_record(path), "every section reads back as its type, with its extra keys"
    record.save()
    assert path.read_text() == PINNED.read_text()
