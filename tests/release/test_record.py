"""The release record: atomic saves, step states and timings, who runs it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.release.record import Record, ReleaseStatus, trigger
from mlops.workspace.port import AssetRef


def test_steps_are_timed_and_failures_recorded(tmp_path: Path) -> None:
    record = Record.create(tmp_path / "current.json", endpoint="tcn-dau")
    with record.step("loadtest", configured_wait_s=2.0) as entry:
        entry.html_report = "x"
    with pytest.raises(RuntimeError), record.step("gate"):
        raise RuntimeError("boom")
    saved = json.loads((tmp_path / "current.json").read_text())
    assert saved["steps"]["loadtest"]["state"] == "done" and saved["steps"]["loadtest"]["html_report"] == "x"
    assert saved["steps"]["gate"] == {**saved["steps"]["gate"], "state": "failed", "error": "boom"}
    assert record.timings()["loadtest"]["configured_wait_s"] == 2.0
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp file


def test_finish_archives_the_record(tmp_path: Path) -> None:
    record = Record.create(tmp_path / "current.json")
    record.finish(ReleaseStatus.SUCCEEDED)
    archived = json.loads((tmp_path / f"{record.release_id}.json").read_text())
    assert archived["status"] == "succeeded" and archived["finished_at"]
    assert Record.load(tmp_path / "current.json").finished


def test_a_live_process_running_the_release_is_detected(tmp_path: Path) -> None:
    record = Record.create(tmp_path / "current.json")
    assert not Record.load(record.path).running_elsewhere()  # this process
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        record.pid = other.pid
        record.save()
        assert Record.load(record.path).running_elsewhere()
    finally:
        other.kill()
        other.wait()
    assert not Record.load(record.path).running_elsewhere()  # killed: the release may be resumed


def test_trigger_names_github_or_the_user() -> None:
    github = trigger({"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octo", "GITHUB_SHA": "abc", "GITHUB_RUN_ID": "7"})
    assert github == {"by": "github-actions", "actor": "octo", "sha": "abc", "run_id": "7"}
    assert trigger({})["by"] == "user"


def test_a_torn_record_is_not_loaded(tmp_path: Path) -> None:
    (tmp_path / "current.json").write_text('{"release_id": "x", "status": ')
    assert Record.load(tmp_path / "current.json") is None


SCHEMA_1 = {
    "schema": 1, "release_id": "20261126T144704Z-3a9eed", "pid": 1, "host": "ci", "status": "promoted",
    "started_at": "2026-11-26T14:47:04Z", "finished_at": None, "trigger": {"by": "user", "user": "u", "host": "h"},
    "steps": {"deploy": {"state": "done", "seconds": 3.2, "configured_wait_s": 0.0, "started_at": "x"},
              "promote": {"state": "done", "seconds": 9.0, "configured_wait_s": 8.0, "rolled_back": False}},
    "workspace": "local:.mlops", "endpoint": "tcn-dau", "code_hash": "abc",
    "model": {"name": "tcn-dau", "version": "2", "content_hash": "h", "source": "out/model", "created": True},
    "environment": {"name": "tcn-inference", "version": "1", "content_hash": "e", "image": "img"},
    "slots": {"candidate": "green", "live": "blue", "live_model": "tcn-dau:1", "live_environment": "tcn-inference:1"},
    "traffic": {"before": {"blue": 100}, "after": {"green": 100}},
    "loadtest": {"seconds": 8.1, "requests": 200, "failures": 1, "html_report": "r.html", "errors_by_status": {"500": 1},
                 "deployments": {"green": {"requests": 100, "failures": 1, "error_rate": 0.01, "p50_ms": 9.2,
                                           "p95_ms": 13.3, "p99_ms": None, "rps": 12.5},
                                 "blue": {"requests": 100, "failures": 0, "error_rate": 0.0, "p50_ms": 9.1,
                                          "p95_ms": 14.1, "p99_ms": 19.7, "rps": 12}},
                 "samples_ms": {"green": [9.0, 9.5], "blue": [9.1]}, "targets": ["green", "blue"]},
    "quality": {"candidate_mape": 0.099, "live_mape": 0.098, "points": 56, "candidate_failures": 0, "holdout": "h.csv"},
    "verdict": {"phase": "Passed", "reasons": ["every gate passed"],
                "gates": [{"name": "p95_vs_live", "phase": "Passed", "value": 13.3, "limit": 46.18, "reason": "ok"}]},
    "promotion": {"done": 1, "state": "done", "old_deployment": "deleted",
                  "steps": [{"index": 1, "step": "traffic 100%", "started_at": "t", "seconds": 0.1,
                             "traffic": {"green": 100}},
                            {"index": 2, "step": "bake 2s + health check", "seconds": 2.3,
                             "health": {"verdict": {"phase": "Passed", "reasons": ["healthy"], "gates": []},
                                        "load": {"requests": 20, "deployments": {}}}}]},
    "a_key_from_a_newer_version": {"kept": [1, 2]},
}


def test_a_schema_1_record_loads_typed_and_saves_back_the_same_keys(tmp_path: Path) -> None:
    path = tmp_path / "current.json"
    path.write_text(json.dumps(SCHEMA_1))
    record = Record.load(path)
    assert record is not None and record.status is ReleaseStatus.PROMOTED and not record.finished
    assert record.model.ref == AssetRef("tcn-dau", "2") and record.slots.live == "blue"
    assert record.verdict.passed and record.verdict.results[0].limit == 46.18
    green = record.loadtest.stats("green")
    assert (green.requests, green.failures, green.samples_ms) == (100, 1, (9.0, 9.5)) and math.isnan(green.p99_ms)
    assert record.loadtest.stats("absent") is None
    assert record.promotion.finished and record.promotion.steps[1].health.verdict.phase == "Passed"
    assert record.steps["promote"].configured_wait_s == 8.0 and record.overhead_seconds() == pytest.approx(4.2)
    record.save()
    saved = json.loads(path.read_text())
    assert saved["schema"] == 2
    assert saved["a_key_from_a_newer_version"] == {"kept": [1, 2]}, "unknown keys survive a round trip"
    for key in ("model", "environment", "slots", "traffic", "quality", "verdict"):
        assert saved[key] == {**saved[key], **SCHEMA_1[key]}, key
    assert saved["loadtest"]["deployments"]["blue"]["rps"] == 12.0
    assert Record.load(path).to_dict() == saved, "load/save is a fixed point"


def test_status_says_whether_the_release_still_holds_the_endpoint() -> None:
    holds = {status for status in ReleaseStatus if status.holds_endpoint}
    finished = {status for status in ReleaseStatus if status.finished}
    assert holds == {ReleaseStatus.RUNNING, ReleaseStatus.AWAITING_PROMOTION}
    assert ReleaseStatus.PROMOTED not in finished | holds  # online done, batch to do: the lock is free
    assert not holds & finished
