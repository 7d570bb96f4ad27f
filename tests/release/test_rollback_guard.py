"""A rollback can never take the endpoint down (issue 14): it touches only the deployments its own
release created (tag ``mlops.release``), and refuses - exit 2, nothing changed - when afterwards no
deployment would take traffic. The three ways in that emptied an endpoint before, reproduced on the
in-memory workspace, plus the rollback that must still work."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.config import load_config
from mlops.errors import UsageError
from mlops.release.context import ReleaseContext
from mlops.release.record import Record, ReleaseStatus
from mlops.release.rollout import rollback_refusal
from mlops.release.sections.endpoint import Slots, TrafficSplit
from mlops.release.slots import RELEASE_TAG
from mlops.release.steps.promote import step_rollback
from mlops.workspace.port import AssetRef, OnlineDeployment, OnlineEndpointSpec
from tests.release.fakes import FakeWorkspace
from tests.release.helpers import fake_model, write_config

ENDPOINT = "tcn-dau"


@pytest.mark.parametrize(("candidate_release", "before", "after", "may_empty", "refused"), [
    ("r1", {"blue": 90, "green": 10}, {"blue": 100, "green": 0}, False, None),       # an ordinary rollback
    (None, {"blue": 100}, {"blue": 100}, False, None),                                # candidate already gone
    ("r3", {"green": 100}, {"green": 0}, False, "created by release r3"),             # slot reused by r3
    ("", {"green": 100}, {"green": 0}, False, "no mlops.release tag"),                # not ours at all
    ("r1", {"green": 100}, {"green": 0}, False, "no deployment taking traffic"),      # old live deleted
    ("r1", {"green": 100}, {"green": 0}, True, None),                                 # first release undone
    ("r1", {}, {"green": 0}, False, None),                                            # nothing served anyway
    ("r1", {"green": 50, "third": 50}, {"green": 0, "third": 100}, False, None),      # a third keeps serving
])
def test_rollback_refusal(candidate_release, before, after, may_empty, refused) -> None:
    reason = rollback_refusal(release_id="r1", candidate="green", candidate_release=candidate_release,
                              before=before, after=after, may_empty=may_empty)
    assert (reason is None) if refused is None else (refused in (reason or "")), reason


@pytest.fixture
def stage(tmp_path: Path):
    workspace = FakeWorkspace()
    workspace.ensure_online_endpoint(OnlineEndpointSpec(ENDPOINT))
    config = load_config(write_config(tmp_path / "config", model=fake_model(tmp_path / "model")), env={})
    yield workspace, config
    workspace.close()


def _deploy(workspace: FakeWorkspace, name: str, release_id: str | None) -> None:
    tags = {RELEASE_TAG: release_id} if release_id else {}
    workspace.endpoints[ENDPOINT].deployments[name] = OnlineDeployment(
        ENDPOINT, name, AssetRef("tcn-dau", "1"), AssetRef("tcn-inference", "1"), "Succeeded", tags=tags)


def _record(config, release_id: str, candidate: str, live: str | None, status: ReleaseStatus,
            before: dict[str, int]) -> Record:
    record = Record.create(config.records / f"{release_id}-artifact.json", release_id=release_id, endpoint=ENDPOINT)
    record.slots = Slots(candidate=candidate, live=live)
    record.traffic = TrafficSplit(before=before)
    record.status = status
    record.save()
    return record


def _rollback(workspace, config, record: Record):
    return step_rollback(ReleaseContext(config, workspace, record), reason="manual")


def _state(workspace: FakeWorkspace) -> tuple[dict[str, int], set[str]]:
    endpoint = workspace.endpoints[ENDPOINT]
    return dict(endpoint.traffic), set(endpoint.deployments)


def test_an_old_record_whose_slot_a_later_release_reused_is_refused(stage) -> None:
    workspace, config = stage
    _deploy(workspace, "blue", "r3")  # release r3 put its model on blue, the slot r1 once used
    workspace.endpoints[ENDPOINT].traffic = {"blue": 100}
    old = _record(config, "r1", candidate="blue", live=None, status=ReleaseStatus.PROMOTED, before={})
    with pytest.raises(UsageError, match="created by release r3, not by release r1") as error:
        _rollback(workspace, config, old)
    assert error.value.exit_code == 2
    assert _state(workspace) == ({"blue": 100}, {"blue"}) and workspace.get_release_lock(ENDPOINT) is None


def test_a_release_whose_batch_step_failed_cannot_be_rolled_back_to_nothing(stage) -> None:
    workspace, config = stage
    _deploy(workspace, "green", "r2")  # r2 promoted green to 100% and deleted blue; its batch step failed
    workspace.endpoints[ENDPOINT].traffic = {"green": 100}
    promoted = _record(config, "r2", candidate="green", live="blue", status=ReleaseStatus.PROMOTED,
                       before={"blue": 100, "green": 0})
    with pytest.raises(UsageError, match="no deployment taking traffic .*now green=100%"):
        _rollback(workspace, config, promoted)
    assert _state(workspace) == ({"green": 100}, {"green"})


def test_a_crafted_record_is_refused(stage) -> None:
    workspace, config = stage
    _deploy(workspace, "blue", "r3")
    workspace.endpoints[ENDPOINT].traffic = {"blue": 100}
    crafted = _record(config, "r9", candidate="blue", live="green", status=ReleaseStatus.RUNNING, before={})
    with pytest.raises(UsageError, match="created by release r3"):
        _rollback(workspace, config, crafted)
    # even naming the right release id, a manual rollback never empties a serving endpoint
    crafted.release_id = "r3"
    with pytest.raises(UsageError, match="no deployment taking traffic"):
        _rollback(workspace, config, crafted)
    assert _state(workspace) == ({"blue": 100}, {"blue"})


def test_the_rollback_of_a_release_in_progress_still_works(stage) -> None:
    workspace, config = stage
    _deploy(workspace, "blue", "r1")
    _deploy(workspace, "green", "r4")
    workspace.endpoints[ENDPOINT].traffic = {"blue": 90, "green": 10}
    current = _record(config, "r4", candidate="green", live="blue", status=ReleaseStatus.RUNNING,
                      before={"blue": 100, "green": 0})
    summary = _rollback(workspace, config, current)
    assert summary["traffic_after"] == {"blue": 100} and summary["candidate"] == "deleted"
    assert _state(workspace) == ({"blue": 100}, {"blue"})
    assert Record.load(current.path).status is ReleaseStatus.ROLLED_BACK
    assert workspace.get_release_lock(ENDPOINT) is None, "the lock is released on the way out"
