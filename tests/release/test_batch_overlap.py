"""The batch refresh beside the online release (``mlops.release.batch_overlap``): the pure rules as
tables, then the order of events and every failure path against the in-memory workspace (real
locust, real HTTP, fake registry). The same paths with real processes: ``test_release_local.py``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlops.config import Overrides, load_config
from mlops.errors import Inconclusive, ReleaseFailed
from mlops.release.batch_overlap import overlap_refusal, removal_decision
from mlops.release.pipeline import run_release
from mlops.release.record import Record
from mlops.release.steps.promote import step_rollback
from mlops.workspace.port import AssetRef, BatchDeployment
from tests.release.fakes import Behaviour, FakeWorkspace
from tests.release.helpers import fake_model, write_config


@pytest.mark.parametrize(("default", "target", "refused"), [
    (None, "tcn-v2", "no default deployment yet"),
    ("tcn-v2", "tcn-v2", "is the default already"),
    ("tcn-v1", "tcn-v2", None),
])
def test_overlap_is_refused_only_without_a_default_to_keep_or_on_the_default_itself(default, target, refused) -> None:
    reason = overlap_refusal(default=default, target=target)
    assert (reason is None) if refused is None else (refused in reason)


def _deployment(name: str, release: str | None) -> BatchDeployment:
    return BatchDeployment("tcn-dau-batch", name, AssetRef("tcn-dau", "2"), AssetRef("env", "1"), "Succeeded",
                           tags={"mlops.release": release} if release else {})


@pytest.mark.parametrize(("deployment", "default", "remove", "why"), [
    (None, "tcn-v1", False, "does not exist"),
    (_deployment("tcn-v2", "r1"), "tcn-v1", True, "this release created it"),
    (_deployment("tcn-v2", "r0"), "tcn-v1", False, "existed before this release (made by r0)"),
    (_deployment("tcn-v2", None), "tcn-v1", False, "made by no release"),
    (_deployment("tcn-v2", "r1"), "tcn-v2", False, "the endpoint's default"),
])
def test_a_failed_release_removes_only_the_deployment_it_made(deployment, default, remove, why) -> None:
    decided, reason = removal_decision(deployment, default=default, release_id="r1")
    assert decided is remove and why in reason


# ---------------------------------------------------------------------------------------------
# Against the in-memory workspace


class Recording(FakeWorkspace):
    """The fake, noting the online traffic at each batch call and optionally failing the smoke job."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, dict[str, int]]] = []
        self.smoke_fails = False
        self.smoke_after_s = 0.0  # a batch deployment that takes a while before its smoke job starts

    def _online(self) -> dict[str, int]:
        endpoint = self.endpoints.get("tcn-dau")
        return dict(endpoint.traffic) if endpoint else {}

    def create_batch_deployment(self, spec, *, progress=lambda _m: None):
        self.events.append((f"create {spec.name}", self._online()))
        return super().create_batch_deployment(spec, progress=progress)

    def invoke_batch(self, endpoint_name, input_dir, *, deployment_name=None):
        time.sleep(self.smoke_after_s)
        self.events.append((f"smoke {deployment_name}", self._online()))
        job = super().invoke_batch(endpoint_name, input_dir, deployment_name=deployment_name)
        if self.smoke_fails:
            from dataclasses import replace

            job = replace(job, status="Failed", error="init() raised: no module named azureml")
            self.jobs[job.name] = (job, self.jobs[job.name][1])
        return job

    def set_batch_default(self, endpoint_name, deployment_name):
        self.events.append((f"default {deployment_name}", self._online()))
        return super().set_batch_default(endpoint_name, deployment_name)

    def set_traffic(self, endpoint_name, traffic, mirror_traffic=None, *, progress=lambda _m: None):
        self.events.append((f"traffic {dict(traffic)}", dict(traffic)))
        return super().set_traffic(endpoint_name, traffic, mirror_traffic, progress=progress)



STEPS = [{"traffic": 50}, {"bake": "2s", "check": "health"}, {"traffic": 100}]
"""Half the traffic for 2 s at the health check: enough requests for the candidate on a busy machine."""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("overlap")
    workspace = Recording()
    models = {name: fake_model(root / "models" / name, name) for name in ("v1", "v2", "v3", "v4", "v5", "v6", "v7")}
    config_path = write_config(root / "config", model=models["v1"], run_time="2s", steps=STEPS)
    first = run_release(load_config(config_path, env={}), workspace)
    assert first.status == "succeeded"
    # a first batch release has no default to keep: it ran after the promotion, in sequence
    assert first.batch_prep is None and workspace.batch_endpoints["tcn-dau-batch"].default_deployment == "tcn-v1"
    yield root, workspace, models, config_path
    workspace.close()


def _config(config_path: Path, model: Path):
    return load_config(config_path, env={}, overrides=Overrides(model=str(model)))


def _serving(workspace: Recording) -> dict[str, int]:
    return {name: share for name, share in workspace.endpoints["tcn-dau"].traffic.items() if share}


def _batch(workspace: Recording) -> tuple[str | None, set[str]]:
    return (workspace.batch_endpoints["tcn-dau-batch"].default_deployment,
            set(workspace.batch_deployments["tcn-dau-batch"]))


@pytest.mark.slow
def test_batch_is_prepared_before_traffic_moves_and_made_the_default_only_at_100(setup) -> None:
    _root, workspace, models, config_path = setup
    workspace.events.clear()
    record = run_release(_config(config_path, models["v2"]), workspace)
    assert record.status == "succeeded"
    names = [name for name, _ in workspace.events]
    first_traffic = next(i for i, name in enumerate(names) if name.startswith("traffic"))
    assert names.index("create tcn-v2") < first_traffic and names.index("smoke tcn-v2") < first_traffic
    default_at = names.index("default tcn-v2")
    assert default_at > first_traffic and workspace.events[default_at][1] == {"green": 100}, workspace.events
    assert record.batch_prep.state == "default" and record.batch_prep.result.smoke_rows >= 10
    assert record.steps["batch_prepare"].state == "done" and record.batch.default_after == "tcn-v2"
    assert _batch(workspace) == ("tcn-v2", {"tcn-v1", "tcn-v2"})


@pytest.mark.slow
@pytest.mark.parametrize(("model", "behaviour", "error", "status"), [
    ("v3", Behaviour(delay_ms=100), ReleaseFailed, "rolled_back"),          # the gate fails
    ("v4", Behaviour(fail_untargeted=True), ReleaseFailed, "rolled_back"),  # a health check under traffic fails
])
def test_a_failed_release_removes_the_prepared_batch_deployment_and_keeps_the_default(
        setup, model, behaviour, error, status) -> None:
    _root, workspace, models, config_path = setup
    workspace.behaviours[model.removeprefix("v")] = behaviour
    before = _batch(workspace)
    with pytest.raises(error):
        run_release(_config(config_path, models[model]), workspace)
    record = Record.load(_config(config_path, models[model]).records / "current.json")
    assert record.status == status
    assert record.batch_prep.state == "removed" and record.batch_prep.default_before == before[0]
    assert _batch(workspace) == before  # the prepared tcn-vN is gone, the default untouched
    assert f"delete_batch_deployment tcn-{model}" in workspace.calls


@pytest.mark.slow
def test_an_inconclusive_gate_removes_the_prepared_batch_deployment(setup) -> None:
    _root, workspace, models, config_path = setup
    write_config(config_path.parent, model=models["v1"], run_time="2s", steps=STEPS,
                 gates={"absolute": {"min_requests": 10**6}})
    before = _batch(workspace)
    try:
        with pytest.raises(Inconclusive):
            run_release(_config(config_path, models["v5"]), workspace)
    finally:
        write_config(config_path.parent, model=models["v1"], run_time="2s", steps=STEPS)
    record = Record.load(config_path.parent / "releases/current.json")
    assert record.status == "inconclusive" and record.batch_prep.state == "removed"
    assert _batch(workspace) == before


@pytest.mark.slow
def test_a_failing_batch_smoke_stops_the_release_before_traffic_moves(setup) -> None:
    _root, workspace, models, config_path = setup
    before, online = _batch(workspace), _serving(workspace)
    history = len(workspace.traffic_history)
    workspace.smoke_fails = True
    try:
        with pytest.raises(ReleaseFailed, match="before traffic moves"):
            run_release(_config(config_path, models["v6"]), workspace)
    finally:
        workspace.smoke_fails = False
    record = Record.load(config_path.parent / "releases/current.json")
    assert record.status == "rolled_back" and record.verdict.phase == "Passed"  # the online gate had passed
    assert record.batch_prep.state == "removed" and "no module named azureml" in record.batch_prep.error
    assert len(workspace.traffic_history) == history and _serving(workspace) == online == {"green": 100}
    assert _batch(workspace) == before
    from mlops.release.report import console_report, markdown_summary

    assert "batch prep   tcn-v6 removed beside the online release" in console_report(record)
    assert "Batch deployment `tcn-v6` prepared beside the online release: **removed**" in markdown_summary(record)


@pytest.mark.slow
def test_paused_at_the_gate_the_preparation_is_recorded_and_a_rollback_removes_it(setup) -> None:
    _root, workspace, models, config_path = setup
    before = _batch(workspace)
    config = _config(config_path, models["v6"])
    paused = run_release(config, workspace, until="gate")
    assert paused.status == "awaiting_promotion" and paused.batch_prep.state == "ready"
    assert "tcn-v6" in _batch(workspace)[1] and _batch(workspace)[0] == before[0]
    from mlops.release.context import ReleaseContext

    ctx = ReleaseContext(config, workspace, Record.load(config.records / "current.json"))
    step_rollback(ctx, reason="declined")
    assert ctx.record.batch_prep.state == "removed" and _batch(workspace) == before


@pytest.mark.slow
def test_on_this_machine_the_batch_smoke_job_finishes_before_the_load_test(setup, monkeypatch) -> None:
    """Locally the smoke job would take cores from the deployments being measured (the gate's A/A drift
    is contention, benchmarks/gate_power.py): the load test waits for the preparation. On Azure
    (the other tests: a workspace off this machine) the load test runs beside it."""
    from mlops.release.steps import loadtest

    _root, workspace, models, config_path = setup
    real_run_load = loadtest.run_load

    def run_load(**kwargs):
        workspace.events.append(("load test", workspace._online()))
        return real_run_load(**kwargs)

    monkeypatch.setattr(loadtest, "run_load", run_load)
    monkeypatch.setattr(loadtest, "runs_on_this_machine", lambda uri: True)
    monkeypatch.setattr(workspace, "smoke_after_s", 3.0)
    workspace.events.clear()
    record = run_release(_config(config_path, models["v7"]), workspace)
    assert record.status == "succeeded", record.error
    names = [name for name, _ in workspace.events]
    assert names.index("smoke tcn-v7") < names.index("load test"), names
    assert _batch(workspace)[0] == "tcn-v7"
