"""The fresh baseline's pure decisions: which mode, which code, which name."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.release.baseline import BASELINE_SLOT, archived_code_dir, baseline_mode, is_baseline, plan_baseline
from mlops.workspace.port import AssetRef, OnlineDeployment

TAG = "mlops.code_hash"


def live(code_hash: str = "abc", release: str = "r1") -> OnlineDeployment:
    return OnlineDeployment("tcn-dau", "blue", AssetRef("tcn-dau", "1"), AssetRef("tcn-inference", "1"), "Succeeded",
                            instance_count=2, tags={TAG: code_hash, "mlops.release": release})


@pytest.mark.parametrize(("configured", "uri", "mode"), [
    ("auto", "local:.mlops", "fresh"),
    ("auto", "local:/tmp/ws", "fresh"),
    ("auto", "azureml://subscriptions/s/resourceGroups/g/workspaces/w", "live"),
    ("fresh", "azureml://subscriptions/s/resourceGroups/g/workspaces/w", "fresh"),
    ("live", "local:.mlops", "live"),
])
def test_baseline_mode(configured, uri, mode):
    assert baseline_mode(configured, uri) == mode


@pytest.mark.parametrize(("mode", "deployment", "current_hash", "archived", "expected_name", "code", "reason"), [
    ("fresh", live("abc"), "abc", None, BASELINE_SLOT, "current", "live's code is the current scoring code"),
    ("fresh", live("old"), "abc", "archived", BASELINE_SLOT, "archived", "live's code snapshot"),
    ("fresh", live("old"), "abc", None, None, None, "code snapshot is not available here"),
    ("fresh", None, "abc", None, None, None, "first release"),
    ("live", live("abc"), "abc", None, None, None, "relative.baseline: live"),
])
def test_plan_baseline(tmp_path: Path, mode, deployment, current_hash, archived, expected_name, code, reason):
    current = tmp_path / "current"
    snapshot = tmp_path / "archived"
    current.mkdir()
    snapshot.mkdir()
    plan = plan_baseline(mode, deployment, slots=("blue", "green"), current_code_hash=current_hash,
                         current_code=current, archived_code=snapshot if archived else None, code_hash_tag=TAG)
    assert plan.name == expected_name
    assert plan.code == {"current": current, "archived": snapshot, None: None}[code]
    assert reason in plan.reason
    assert plan.mode == ("fresh" if expected_name else "live")


def test_the_baseline_slot_name_is_reserved(tmp_path: Path):
    with pytest.raises(ValueError, match="reserved"):
        plan_baseline("fresh", live(), slots=("blue", BASELINE_SLOT), current_code_hash="abc", current_code=tmp_path,
                      archived_code=None, code_hash_tag=TAG)


def test_archived_code_dir_and_role():
    assert archived_code_dir(Path("recs"), live(release="20260101T000000Z-abcdef")) == \
        Path("recs/20260101T000000Z-abcdef/code/online")
    assert archived_code_dir(Path("recs"), None) is None
    ours = OnlineDeployment("e", BASELINE_SLOT, AssetRef("m", "1"), AssetRef("e", "1"), "Succeeded",
                            tags={"mlops.role": "baseline"})
    assert is_baseline(ours) and not is_baseline(live())
