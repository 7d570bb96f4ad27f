"""The release orchestration against the in-memory workspace (real locust, real HTTP, fake registry).

One module-scoped workspace holds v1 live on ``blue``; every failing candidate must leave it so
(live at 100%, candidate removed), which is what the next test starts from.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlops.config import Overrides, load_config
from mlops.errors import ConflictError, Inconclusive, ReleaseFailed
from mlops.release.pipeline import run_release
from mlops.release.record import Record
from mlops.release.report import console_report, markdown_summary
from tests.release.fakes import Behaviour, FakeWorkspace
from tests.release.helpers import fake_model, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("fake-release")
    workspace = FakeWorkspace()
    models = {name: fake_model(root / "models" / name, name) for name in ("v1", "v2", "v3", "v4", "v5", "v6", "v7")}
    config_path = write_config(root / "config", model=models["v1"], run_time="2s")
    first = run_release(load_config(config_path, env={}), workspace)
    assert first.status == "succeeded"
    yield root, workspace, models, config_path
    workspace.close()


def _config(config_path: Path, model: Path, **gates):
    if gates:
        write_config(config_path.parent, model=model, run_time="2s", gates=gates)
    return load_config(config_path, env={}, overrides=Overrides(model=str(model)))


def _live(workspace: FakeWorkspace) -> dict[str, int]:
    return {k: v for k, v in workspace.endpoints["tcn-dau"].traffic.items()}


def test_first_release_puts_blue_at_100_and_the_batch_default_on_it(setup) -> None:
    _root, workspace, _models, config_path = setup
    record = Record.load(load_config(config_path, env={}).records / "current.json")
    assert record.status == "succeeded"
    assert record.slots.candidate == "blue" and record.slots.live is None
    assert _live(workspace) == {"blue": 100}
    assert record.verdict.phase == "Passed"
    names = {g.name for g in record.verdict.results}
    assert "p95_vs_live" not in names and "mape" in names  # first release: absolute gates only
    assert workspace.batch_endpoints["tcn-dau-batch"].default_deployment == "tcn-v1"
    assert Path(record.batch.forecast_svg).read_text().startswith("<svg")


@pytest.mark.parametrize(("name", "behaviour", "failed_gate"), [
    ("v2", Behaviour(delay_ms=100), "p95_vs_live"),
    ("v3", Behaviour(fail_rate=0.05), "error_rate"),
    ("v4", Behaviour(bias=1.8), "mape_vs_live"),
])
def test_bad_candidate_fails_its_gate_and_live_is_untouched(setup, name, behaviour, failed_gate) -> None:
    _root, workspace, models, config_path = setup
    workspace.behaviours[name.removeprefix("v")] = behaviour  # versions follow registration order
    history = len(workspace.traffic_history)
    config = _config(config_path, models[name])
    with pytest.raises(ReleaseFailed, match="failed its gates"):
        run_release(config, workspace)
    record = Record.load(config.records / "current.json")
    assert record.status == "rolled_back"
    gates = {g.name: g.phase for g in record.verdict.results}
    assert gates[failed_gate] == "Failed", record.verdict
    assert _live(workspace) == {"blue": 100}
    assert "green" not in workspace.endpoints["tcn-dau"].deployments
    assert len(workspace.traffic_history) == history  # traffic was never touched
    assert workspace.get_release_lock("tcn-dau") is None


def test_candidate_failing_only_under_live_traffic_is_rolled_back_at_the_first_step(setup) -> None:
    _root, workspace, models, config_path = setup
    workspace.behaviours["5"] = Behaviour(fail_untargeted=True)
    config = _config(config_path, models["v5"])
    with pytest.raises(ReleaseFailed, match="health check at step 2"):
        run_release(config, workspace)
    record = Record.load(config.records / "current.json")
    assert record.status == "rolled_back"
    assert [step.step for step in record.promotion.steps] == ["traffic 10%", "bake 1s + health check"]
    assert workspace.traffic_history[-2][1] == {"blue": 90, "green": 10}
    assert _live(workspace) == {"blue": 100}
    assert "green" not in workspace.endpoints["tcn-dau"].deployments


def test_too_few_requests_is_inconclusive_and_nothing_is_promoted(setup) -> None:
    _root, workspace, models, config_path = setup
    config = _config(config_path, models["v6"], absolute={"min_requests": 1_000_000})
    try:
        with pytest.raises(Inconclusive, match="too few"):
            run_release(config, workspace)
    finally:
        write_config(config_path.parent, model=models["v1"], run_time="2s")
    assert Record.load(config.records / "current.json").status == "inconclusive"
    assert _live(workspace)["blue"] == 100 and _live(workspace).get("green", 0) == 0
    assert workspace.get_release_lock("tcn-dau") is None


def test_a_second_release_is_refused_while_one_holds_the_lock(setup) -> None:
    _root, workspace, models, config_path = setup
    workspace.acquire_release_lock("tcn-dau", "release other-run")
    config = _config(config_path, models["v7"])
    before = (config.records / "current.json").read_text()
    try:
        with pytest.raises(ConflictError, match="held by 'release other-run' since"):
            run_release(config, workspace)
    finally:
        workspace.release_release_lock("tcn-dau", "release other-run")
    assert (config.records / "current.json").read_text() == before  # the refused release wrote nothing


def test_good_candidate_is_promoted_stepwise_and_resumes_after_a_crash(setup) -> None:
    _root, workspace, models, config_path = setup
    config = _config(config_path, models["v7"])
    paused = run_release(config, workspace, until="gate")
    assert paused.status == "awaiting_promotion"
    # a crash during the traffic shift: the first step was applied, the process died before recording it
    workspace.set_traffic("tcn-dau", {"blue": 90, "green": 10})
    record = run_release(config, workspace)
    assert record.release_id == paused.release_id and record.status == "succeeded"
    assert _live(workspace) == {"green": 100}
    assert "blue" not in workspace.endpoints["tcn-dau"].deployments
    promotions = [t for name, t in workspace.traffic_history if name == "tcn-dau"][-3:]
    assert promotions == [{"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"blue": 0, "green": 100}]
    assert workspace.batch_endpoints["tcn-dau-batch"].default_deployment == "tcn-v7"
    assert set(workspace.batch_deployments["tcn-dau-batch"]) == {"tcn-v7", "tcn-v1"}  # keep: 2
    # the record: timings per step, gates with values and limits, traffic before/after
    steps = record.steps
    assert set(steps) >= {"register", "environment", "deploy", "loadtest", "gate", "promote", "batch"}
    assert all(step.state == "done" and step.seconds >= 0 for step in steps.values())
    assert record.traffic.before == {"blue": 100, "green": 0}
    report = console_report(record)
    assert "green" in report and "overhead" in report
    markdown = markdown_summary(record)
    assert "| Gate | Result | Value | Limit |" in markdown and "xychart-beta" in markdown


def test_same_model_again_is_nothing_to_release(setup) -> None:
    _root, workspace, models, config_path = setup
    config = _config(config_path, models["v7"])
    calls = len(workspace.calls)
    versions = len(workspace.models["tcn-dau"])
    started = time.monotonic()
    record = run_release(config, workspace)
    assert record.status == "nothing_to_release"
    assert time.monotonic() - started < 10
    created = [c for c in workspace.calls[calls:] if c.startswith(("create", "delete"))]
    assert created == []
    assert len(workspace.models["tcn-dau"]) == versions
    assert _live(workspace) == {"green": 100}


def test_changed_scoring_code_with_the_same_model_is_released(setup, tmp_path: Path) -> None:
    """The scoring code is part of what serves: a new score.py is a release even with the same model."""
    import shutil

    from tests.release.helpers import REPO

    _root, workspace, models, config_path = setup
    code = tmp_path / "online"
    shutil.copytree(REPO / "endpoints/online", code, ignore=shutil.ignore_patterns("__pycache__"))
    with (code / "score.py").open("a") as handle:
        handle.write("\n# a changed scoring script\n")
    write_config(config_path.parent, model=models["v7"], run_time="2s", online_code=code)
    record = run_release(load_config(config_path, env={}, overrides=Overrides(model=str(models["v7"]))), workspace)
    assert record.status == "succeeded"
    assert _live(workspace) == {"blue": 100}
