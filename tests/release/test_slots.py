"""Blue/green slot choice: pure, table-tested."""

from __future__ import annotations

import pytest

from mlops.release.slots import NoFreeSlot, SlotChoice, already_live, choose_slots, live_deployment
from mlops.workspace.port import AssetRef, OnlineDeployment

SLOTS = ("blue", "green")


@pytest.mark.parametrize(("traffic", "expected"), [
    ({}, SlotChoice("blue", None)),                         # first release on an empty endpoint
    ({"blue": 0}, SlotChoice("blue", None)),                # a failed first attempt left blue at 0%
    ({"blue": 100}, SlotChoice("green", "blue")),
    ({"blue": 100, "green": 0}, SlotChoice("green", "blue")),
    ({"green": 100, "blue": 0}, SlotChoice("blue", "green")),
    ({"legacy": 100}, SlotChoice("blue", "legacy")),        # a hand-made deployment is live
    ({"blue": 70, "legacy": 30}, SlotChoice("green", "blue")),
])
def test_choose_slots(traffic, expected) -> None:
    assert choose_slots(SLOTS, traffic) == expected


def test_no_free_slot_mid_rollout() -> None:
    with pytest.raises(NoFreeSlot, match="half-way"):
        choose_slots(SLOTS, {"blue": 50, "green": 50})


def test_live_deployment_ties_are_stable() -> None:
    assert live_deployment({"green": 50, "blue": 50}) == "blue"
    assert live_deployment({"blue": 0}) is None


def test_already_live() -> None:
    model, env = AssetRef("tcn", "2"), AssetRef("env", "1")
    green = OnlineDeployment("e", "green", model, env, "Succeeded")
    blue = OnlineDeployment("e", "blue", AssetRef("tcn", "1"), env, "Succeeded")
    assert already_live([blue, green], {"green": 100, "blue": 0}, model, env)
    assert not already_live([blue, green], {"green": 90, "blue": 10}, model, env)
    assert not already_live([blue, green], {"green": 100}, model, AssetRef("env", "2"))
    assert not already_live([blue, green], {"blue": 100}, model, env)


def test_already_live_compares_the_code_hash_when_the_workspace_reports_tags() -> None:
    from dataclasses import dataclass, field

    model, env = AssetRef("tcn", "2"), AssetRef("env", "1")

    @dataclass(frozen=True)
    class Tagged(OnlineDeployment):
        tags: dict = field(default_factory=dict)

    green = Tagged("e", "green", model, env, "Succeeded", tags={"mlops.code_hash": "abc"})
    assert already_live([green], {"green": 100}, model, env, code_hash="abc")
    assert not already_live([green], {"green": 100}, model, env, code_hash="changed")
    untagged = OnlineDeployment("e", "green", model, env, "Succeeded")
    assert already_live([untagged], {"green": 100}, model, env, code_hash="changed")  # unknown: model+env decide


def test_code_hash_follows_the_scoring_code(tmp_path) -> None:
    from mlops.release.staging import code_hash

    scoring = tmp_path / "scoring"
    scoring.mkdir()
    (scoring / "score.py").write_text("def init(): pass\n")
    first = code_hash(scoring)
    assert code_hash(scoring) == first
    (scoring / "score.py").write_text("def init(): return None\n")
    assert code_hash(scoring) != first
