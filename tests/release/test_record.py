"""The release record: atomic saves, step states and timings, who runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.release.record import Record, trigger


def test_steps_are_timed_and_failures_recorded(tmp_path: Path) -> None:
    record = Record.create(tmp_path / "current.json", endpoint="tcn-dau")
    with record.step("loadtest", configured_wait_s=2.0) as entry:
        entry["note"] = "x"
    with pytest.raises(RuntimeError), record.step("gate"):
        raise RuntimeError("boom")
    saved = json.loads((tmp_path / "current.json").read_text())
    assert saved["steps"]["loadtest"]["state"] == "done" and saved["steps"]["loadtest"]["note"] == "x"
    assert saved["steps"]["gate"] == {**saved["steps"]["gate"], "state": "failed", "error": "boom"}
    assert record.timings()["loadtest"]["configured_wait_s"] == 2.0
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp file


def test_finish_archives_the_record(tmp_path: Path) -> None:
    record = Record.create(tmp_path / "current.json")
    record.finish("succeeded")
    archived = json.loads((tmp_path / f"{record.release_id}.json").read_text())
    assert archived["status"] == "succeeded" and archived["finished_at"]
    assert Record.load(tmp_path / "current.json").finished


def test_a_live_process_running_the_release_is_detected(tmp_path: Path) -> None:
    record = Record.create(tmp_path / "current.json")
    assert not Record.load(record.path).running_elsewhere()  # this process
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        record.data["pid"] = other.pid
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
