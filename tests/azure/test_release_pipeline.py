"""The release pipeline (``run_release``) over ``AzureWorkspace`` on the recording fake MLClient.

The same scenarios as the pipeline's own tests - first release, blue/green promotion, gate failure,
a failed health check rolled back, nothing to release, batch refresh - but every workspace call
goes through the Azure adapter into the fake, and the assertions are on what Azure would have
received (the recorded REST bodies): a traffic update never drops another deployment's share or
the mirror, every deployment references the pinned ``azureml:<name>:<version>`` environment (never
an inline conda file), a rollback restores the traffic the endpoint had, "nothing to release"
creates nothing, and the batch default is switched read-modify-write after the smoke job.

The load test (locust subprocess), the health checks and the quality gate make real HTTP requests:
the fake's scoring URIs point at ``ScoringRouter`` on 127.0.0.1, which routes from the fake's state
(keys, traffic, the ``azureml-model-deployment`` header) and serves each model version as its
``Behaviour`` says. Load runs are 2 s and health checks 1 s; the adapter's waits use a fake clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlops.config import Config, Overrides, load_config
from mlops.errors import ReleaseFailed
from mlops.release.pipeline import run_release
from mlops.release.record import Record
from mlops.workspace.azure import _urllib_post
from mlops.workspace.azure_decisions import RELEASE_LOCK_TAG
from tests.azure.fake_mlclient import Call, FakeAzure, Rig, make_workspace
from tests.azure.fake_monitor import FakeLogsQueryClient
from tests.azure.scoring_router import Behaviour, ScoringRouter
from tests.release.helpers import fake_model, write_config

pytestmark = pytest.mark.slow

PINNED = re.compile(r"^azureml:[A-Za-z0-9._-]+:\d+$")
ENDPOINT = "tcn-dau"
BATCH = "tcn-dau-batch"


@dataclass
class Stage:
    """One fake Azure ML workspace with its router, the adapter over it, and release configs."""

    root: Path
    rig: Rig
    router: ScoringRouter
    progress: list[str] = field(default_factory=list)

    @property
    def azure(self) -> FakeAzure:
        return self.rig.azure

    def model(self, label: str) -> Path:
        return fake_model(self.root / "models" / label, f"weights {label}")

    def config(self, label: str) -> Config:
        path = write_config(self.root / "config", model=self.model(label), run_time="2s")
        return load_config(path, env={}, overrides=Overrides(model=str(self.model(label))))

    def release(self, label: str) -> Record:
        return run_release(self.config(label), self.rig.workspace, progress=self.log)

    def log(self, line: str) -> None:
        self.progress.append(line)
        print(line)  # shown by pytest when the test fails

    def seed(self, traffic: Mapping[str, int], mirror: Mapping[str, int] | None = None, *,
             batch: bool = False) -> int:
        """Model v1 live in the deployments named by ``traffic`` (and ``mirror``), set up through
        the adapter as an earlier release would have; returns the call-record mark after it."""
        ws, config = self.rig.workspace, self.config("v1")
        model = ws.register_model(config.model.name, self.model("v1")).ref
        environment = ws.ensure_environment(config.environment).ref
        ws.ensure_online_endpoint(config.online.endpoint)
        for name in [*traffic, *(mirror or {})]:
            ws.create_online_deployment(config.online_deployment_spec(name, model, environment, config.online.code_dir))
        ws.set_traffic(ENDPOINT, traffic, mirror)
        if batch:
            ws.ensure_batch_endpoint(config.batch.endpoint)
            ws.create_batch_deployment(config.batch_deployment_spec(model, environment, config.batch.code_dir))
            ws.set_batch_default(BATCH, config.batch_deployment_name(model))
        return len(self.azure.calls)


class Wall:
    """Epoch time plus whatever the adapter slept on its fake clock (its ingestion waits take no time)."""

    rig: Rig | None = None
    _start = 0.0

    def __call__(self) -> float:
        import time

        return time.time() + (self.rig.clock.now - self._start if self.rig else 0.0)


def new_stage(root: Path) -> Stage:
    azure = FakeAzure()
    router = ScoringRouter(azure).start()
    # per-deployment metrics: the router's answers land in a fake Azure Monitor traffic log
    wall = Wall()
    logs = FakeLogsQueryClient(clock=wall)
    router.traffic_log = logs.rows
    # invoke (the quality gate) goes over real HTTP too, through the adapter's own poster
    rig = make_workspace(azure, http_post=_urllib_post, logs_client=logs, log_workspace_id=logs.workspace_id,
                         wall_clock=wall)
    wall.rig, wall._start = rig, rig.clock.now
    return Stage(root, rig, router)


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    created = new_stage(tmp_path)
    yield created
    created.router.close()


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stage, Record, int]]:
    """A first release of v1 on an empty workspace: (stage, record, call-record mark after it)."""
    created = new_stage(tmp_path_factory.mktemp("azure-first-release"))
    record = created.release("v1")
    yield created, record, len(created.azure.calls)
    created.router.close()


# ---------------------------------------------------------------------------------------------
# what Azure received


def writes(azure: FakeAzure, group: str, start: int = 0, end: int | None = None) -> list[Call]:
    return [c for c in azure.calls[start:end] if c.group == group and c.method == "begin_create_or_update"
            and c.body is not None]


def endpoint_puts(azure: FakeAzure, start: int = 0, end: int | None = None) -> list[dict[str, Any]]:
    """``{"traffic", "mirror", "tags"}`` of every online-endpoint PUT, in order."""
    return [{"traffic": dict(c.body["properties"].get("traffic") or {}),
             "mirror": dict(c.body["properties"].get("mirrorTraffic") or {}),
             "tags": dict(c.body.get("tags") or {})}
            for c in writes(azure, "online_endpoints", start, end)]


def traffic_changes(puts: list[dict[str, Any]], before: Mapping[str, int]) -> list[dict[str, int]]:
    """The traffic maps that differ from the one before them (lock and tag writes carry it unchanged)."""
    changes, current = [], dict(before)
    for put in puts:
        if put["traffic"] != current:
            current = put["traffic"]
            changes.append(current)
    return changes


def assert_pinned(call: Call, model: str, environment: str) -> None:
    properties = call.body["properties"]
    model_ref = properties["model"]["assetId"] if isinstance(properties["model"], dict) else properties["model"]
    assert (model_ref, properties["environmentId"]) == (model, environment), properties
    assert PINNED.match(properties["environmentId"]), properties["environmentId"]
    text = repr(call.body).lower()
    assert "conda" not in text and "image" not in text, "a deployment never carries an inline environment"


# ---------------------------------------------------------------------------------------------
# first release and nothing to release


def test_first_release_pins_everything_and_sends_all_traffic_to_blue(first) -> None:
    stage, record, mark = first
    azure = stage.azure
    assert record.status == "succeeded", record.error
    assert record.slots.candidate == "blue" and record.slots.live is None
    assert record.workspace.startswith("azureml://subscriptions/")
    assert azure.traffic(ENDPOINT) == {"blue": 100} and azure.mirror(ENDPOINT) == {}

    assert [c.args[0].version for c in azure.calls[:mark] if (c.group, c.method) == ("models", "create_or_update")] \
        == ["1"]
    assert [c.args[0].version for c in azure.calls[:mark]
            if (c.group, c.method) == ("environments", "create_or_update")] == ["1"]
    (online,) = writes(azure, "online_deployments", 0, mark)
    assert_pinned(online, "azureml:tcn-dau:1", "azureml:tcn-inference:1")
    assert online.body["properties"]["instanceType"] == "Standard_DS3_v2"

    puts = endpoint_puts(azure, 0, mark)
    assert traffic_changes(puts, {}) == [{"blue": 100}], "no live deployment: 100% at once"
    # the lock is a blob lease in workspaceblobstore, never an endpoint write (the release identity
    # holds no onlineEndpoints/write): taken, then released when the release ended
    assert not any(RELEASE_LOCK_TAG in put["tags"] for put in puts)
    lock_ops = [op for op, name in azure.blobs.calls if name == "mlops-release-locks/" + ENDPOINT]
    assert "acquire" in lock_ops and lock_ops[-1] == "release", lock_ops
    assert all(put["tags"].get("project") == "mlops" for put in puts[1:]), "tags are read-modify-write"
    # the load test targeted blue; the health check after the shift reached blue without a header
    assert stage.router.served.targeted[(ENDPOINT, "blue")] >= 20
    assert stage.router.served.untargeted[(ENDPOINT, "blue")] >= 5
    assert stage.router.served.refused == {}
    verdict = record.verdict
    assert verdict.phase == "Passed" and "p95_vs_live" not in {g.name for g in verdict.results}
    assert stage.rig.credential.requests == [], "key auth: no Entra token was ever asked for"


def test_first_release_refreshes_batch_on_the_same_pinned_assets(first) -> None:
    stage, record, mark = first
    azure = stage.azure
    (deployment,) = writes(azure, "batch_deployments", 0, mark)
    assert deployment.args[0].name == "tcn-v1"
    assert_pinned(deployment, "azureml:tcn-dau:1", "azureml:tcn-inference:1")
    assert deployment.body["properties"]["compute"] == "cpu-cluster"
    smoke = [i for i, c in enumerate(azure.calls[:mark]) if (c.group, c.method) == ("batch_endpoints", "invoke")]
    default_put = [i for i, c in enumerate(azure.calls[:mark])
                   if (c.group, c.method) == ("batch_endpoints", "begin_create_or_update")
                   and (c.body["properties"].get("defaults") or {}).get("deploymentName")]
    assert len(smoke) == 1 and len(default_put) == 1 and smoke[0] < default_put[0], \
        "the smoke job runs before the default moves"
    assert azure.calls[smoke[0]].kwargs["deployment_name"] == "tcn-v1", "the smoke job names the new deployment"
    before = azure.calls[default_put[0] - 1]
    assert (before.group, before.method) == ("batch_endpoints", "get"), "the default is set read-modify-write"
    body = azure.calls[default_put[0]].body["properties"]
    assert body["defaults"] == {"deploymentName": "tcn-v1"}
    assert body["description"].startswith("Rolling daily-active-users"), "the rest of the endpoint is kept"
    assert record.batch.default_after == "tcn-v1" and record.batch.smoke_rows >= 10
    first_line = Path(record.batch.smoke_output).read_text().splitlines()[0]
    assert first_line.split(" ")[:2] == ["2016-09-09", "2016-09-08"], "Azure's append_row shape: no header"
    assert Path(record.batch.forecast_svg).read_text().startswith("<svg")


def test_smoke_check_reads_azures_headerless_append_row_output(tmp_path: Path) -> None:
    """``append_row`` on Azure ML writes the DataFrame's rows with no header, space-separated; the
    smoke check names them by the batch scoring script's own column order."""
    import ast

    from mlops.release.batch import OUTPUT_COLUMNS, check_output
    from tests.release.helpers import REPO

    script = ast.parse((REPO / "endpoints/batch/score.py").read_text())
    (declared,) = [node.value for node in script.body if isinstance(node, ast.Assign)
                   and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["OUTPUT_COLUMNS"]]
    assert tuple(ast.literal_eval(declared)) == OUTPUT_COLUMNS
    azure_shape = tmp_path / "predictions.csv"
    azure_shape.write_text("2017-01-02 2017-01-01 10.5 11.0 a.csv\n" * 12)
    problems, rows = check_output(azure_shape, min_rows=10)
    assert problems == [] and rows[0] == {"date": "2017-01-02", "forecast_origin": "2017-01-01",
                                          "predicted": "10.5", "count": "11.0", "file": "a.csv"}
    negative = tmp_path / "negative.csv"
    negative.write_text("2017-01-02 2017-01-01 -3 11.0 a.csv\n")
    assert check_output(negative, min_rows=1)[0] == ["1 rows with a missing, non-finite or negative prediction"]
    unknown = tmp_path / "other-script.csv"
    unknown.write_text("a.csv 0.3\n" * 12)
    problems, _ = check_output(unknown, min_rows=1)
    assert any("'date' missing" in p for p in problems) and any("'predicted' missing" in p for p in problems)


def test_same_model_again_is_nothing_to_release(first) -> None:
    stage, _record, _mark = first
    azure = stage.azure
    start, served = len(azure.calls), stage.router.served.total()
    record = stage.release("v1")
    assert record.status == "nothing_to_release"
    new = azure.calls[start:]
    created = [f"{c.group}.{c.method}" for c in new if c.method in ("create_or_update", "begin_create_or_update",
                                                                     "begin_delete", "invoke")
               and c.group != "online_endpoints"]
    assert created == [], "no model, environment, deployment or batch write"
    puts = endpoint_puts(azure, start)
    # decided read-only before the release lock: not even the lock's take and release write the endpoint
    assert puts == []
    assert stage.router.served.total() == served, "no load test, no health check"
    assert azure.traffic(ENDPOINT) == {"blue": 100}


# ---------------------------------------------------------------------------------------------
# blue/green with a third deployment


def test_blue_green_promotion_never_drops_the_third_deployments_share(stage: Stage) -> None:
    azure = stage.azure
    mark = stage.seed({"blue": 80, "shadow": 20}, batch=True)
    azure.traffic_lag = 2  # Azure reports a new split a little after the PUT: the adapter waits for it
    record = stage.release("v2")
    assert record.status == "succeeded", record.error
    assert record.slots.candidate == "green" and record.slots.live == "blue"

    (green,) = writes(azure, "online_deployments", mark)
    assert_pinned(green, "azureml:tcn-dau:2", "azureml:tcn-inference:1")
    assert "environments.create_or_update" not in {f"{c.group}.{c.method}" for c in azure.calls[mark:]}, \
        "the unchanged environment spec is reused, not rebuilt"

    puts = endpoint_puts(azure, mark)
    assert all(put["traffic"].get("shadow") == 20 and sum(put["traffic"].values()) == 100 for put in puts), puts
    assert traffic_changes(puts, {"blue": 80, "shadow": 20}) == [
        {"blue": 72, "green": 8, "shadow": 20}, {"blue": 40, "green": 40, "shadow": 20}, {"green": 80, "shadow": 20}]
    assert azure.traffic(ENDPOINT) == {"green": 80, "shadow": 20}
    assert stage.rig.clock.slept.count(5.0) >= 2 * 3, "every traffic step waited until Azure reported it"
    assert (ENDPOINT, "blue") not in azure.online_deployments, "the old slot is deleted after success"
    assert record.traffic.before == {"blue": 80, "shadow": 20}
    # the gate compared candidate and live side by side; health checks reached green by weight
    assert "p95_vs_live" in {g.name for g in record.verdict.results}
    assert stage.router.served.targeted[(ENDPOINT, "green")] >= 20
    assert stage.router.served.targeted[(ENDPOINT, "blue")] >= 20
    assert stage.router.served.untargeted[(ENDPOINT, "green")] > 0

    # batch: a new deployment on the same pinned model/environment becomes the default, read-modify-write
    (batch,) = writes(azure, "batch_deployments", mark)
    assert_pinned(batch, "azureml:tcn-dau:2", "azureml:tcn-inference:1")
    default_puts = writes(azure, "batch_endpoints", mark)
    assert [c.body["properties"]["defaults"] for c in default_puts] == [{"deploymentName": "tcn-v2"}]
    assert default_puts[0].body["properties"]["description"].startswith("Rolling daily-active-users")
    assert {d for (e, d) in azure.batch_deployments if e == BATCH} == {"tcn-v1", "tcn-v2"}, "keep: 2"
    assert RELEASE_LOCK_TAG not in azure.online_endpoints[ENDPOINT].tags


# ---------------------------------------------------------------------------------------------
# failures


def test_gate_failure_removes_the_candidate_and_never_touches_traffic(stage: Stage) -> None:
    azure = stage.azure
    mark = stage.seed({"blue": 100})
    stage.router.behaviours["2"] = Behaviour(delay_ms=100)
    with pytest.raises(ReleaseFailed, match="failed its gates"):
        stage.release("v2")
    record = Record.load(stage.config("v1").records / "current.json")
    assert record.status == "rolled_back"
    gates = {g.name: g.phase for g in record.verdict.results}
    assert gates["p95_vs_live"] == "Failed", record.verdict

    (green,) = writes(azure, "online_deployments", mark)
    assert_pinned(green, "azureml:tcn-dau:2", "azureml:tcn-inference:1")
    deletes = [c.kwargs for c in azure.calls[mark:] if (c.group, c.method) == ("online_deployments", "begin_delete")]
    assert deletes == [{"name": "green", "endpoint_name": ENDPOINT}]
    puts = endpoint_puts(azure, mark)
    assert puts == [], "no endpoint write at all: deploy, gate and rollback need no onlineEndpoints/write"
    assert azure.traffic(ENDPOINT) == {"blue": 100}
    assert stage.router.served.untargeted == {}, "no health check: traffic never moved"
    assert writes(azure, "batch_deployments", mark) == [], "a failed release refreshes no batch deployment"
    assert RELEASE_LOCK_TAG not in azure.online_endpoints[ENDPOINT].tags


def test_failed_health_check_rolls_back_to_the_previous_traffic_and_mirror(stage: Stage) -> None:
    azure = stage.azure
    mark = stage.seed({"blue": 70, "shadow": 30}, {"probe": 10})
    stage.router.behaviours["2"] = Behaviour(fail_untargeted=True)  # fine when targeted, fails under live traffic
    with pytest.raises(ReleaseFailed, match="health check at step 2"):
        stage.release("v2")
    record = Record.load(stage.config("v1").records / "current.json")
    assert record.status == "rolled_back"
    assert record.verdict.phase == "Passed", "the header-targeted load test could not see it"

    puts = endpoint_puts(azure, mark)
    assert traffic_changes(puts, {"blue": 70, "shadow": 30}) == [
        {"blue": 63, "green": 7, "shadow": 30}, {"blue": 70, "shadow": 30}]
    assert all(put["mirror"] == {"probe": 10} for put in puts), "no write drops the mirror"
    assert all(put["traffic"].get("shadow") == 30 for put in puts), "no write drops the third deployment"
    assert (azure.traffic(ENDPOINT), azure.mirror(ENDPOINT)) == ({"blue": 70, "shadow": 30}, {"probe": 10})
    rollback = record.rollback
    assert rollback.traffic_before == {"blue": 63, "green": 7, "shadow": 30}
    assert rollback.traffic_after == {"blue": 70, "shadow": 30} and rollback.candidate == "deleted"
    assert (ENDPOINT, "green") not in azure.online_deployments
    assert stage.router.served.untargeted[(ENDPOINT, "green")] > 0, "green did serve live traffic at 7%"
    assert stage.router.served.mirrored[(ENDPOINT, "probe")] > 0 and stage.router.served.untargeted[
        (ENDPOINT, "probe")] == 0, "the mirror kept receiving copies, never live requests"
    assert RELEASE_LOCK_TAG not in azure.online_endpoints[ENDPOINT].tags


def test_candidate_that_never_starts_is_removed_with_its_log_and_traffic_untouched(stage: Stage) -> None:
    azure = stage.azure
    mark = stage.seed({"blue": 80, "shadow": 20})
    azure.failing_deployments["green"] = "Traceback (most recent call last):\nRuntimeError: model.pt is corrupt\n"
    with pytest.raises(ReleaseFailed, match="candidate green did not start") as caught:
        stage.release("v2")
    assert "model.pt is corrupt" in str(caught.value), "the container log tail travels with the error"
    record = Record.load(stage.config("v1").records / "current.json")
    assert record.status == "rolled_back" and record.rollback.candidate == "deleted"
    assert (ENDPOINT, "green") not in azure.online_deployments
    assert all(put["traffic"] == {"blue": 80, "shadow": 20} for put in endpoint_puts(azure, mark))
    assert stage.router.served.total() == 0, "nothing was load-tested"
    assert RELEASE_LOCK_TAG not in azure.online_endpoints[ENDPOINT].tags
