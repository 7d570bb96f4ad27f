"""Release-like scenarios through ``AzureWorkspace`` over the stateful fake MLClient.

Each scenario drives the adapter through the port as the release pipeline does (register, pin
the environment, lock, deploy the candidate at 0%, shift traffic in steps, roll back or finish,
refresh batch) and then asserts on what Azure would have received: the recorded REST bodies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from mlops.errors import ConflictError, DeploymentFailedError, NotFoundError, RuleViolation, WorkspaceError
from mlops.workspace.azure_decisions import RELEASE_LOCK_TAG
from mlops.workspace.port import AssetRef, Workspace
from tests.azure.fake_mlclient import Rig

PINNED = re.compile(r"^azureml:[A-Za-z0-9._-]+:\d+$")


def shift(current: Mapping[str, int], live: str, candidate: str, percent: int) -> dict[str, int]:
    """Move ``percent`` of the live deployment's share to the candidate; others keep theirs."""
    new = dict(current)
    pool = new.get(live, 0) + new.get(candidate, 0)
    new[candidate] = min(percent, pool)
    new[live] = pool - new[candidate]
    return new


def endpoint_puts(azure) -> list[dict]:
    return [c.body for c in azure.calls_to("online_endpoints", "begin_create_or_update")]


def first_release(ws: Workspace, specs) -> tuple[AssetRef, AssetRef]:
    """The first release, step by step, on an Azure adapter (over the fake MLClient here, over the
    wire emulator in ``tests/azure_wire``): environment and model version 1, the endpoint, blue at
    100%, under the release lock."""
    env = ws.ensure_environment(specs.environment)
    model = ws.register_model("tcn", specs.model_dir("v1"))
    ws.ensure_online_endpoint(specs.endpoint)
    ws.acquire_release_lock(specs.endpoint.name, "ci-run-1")
    ws.create_online_deployment(specs.deployment("blue", model.ref, env.ref))
    ws.set_traffic(specs.endpoint.name, {"blue": 100})
    ws.release_release_lock(specs.endpoint.name, "ci-run-1")
    return model.ref, env.ref


def test_first_release_creates_pinned_assets_and_sends_traffic_to_blue(rig: Rig, specs) -> None:
    model, env = first_release(rig.workspace, specs)
    azure = rig.azure
    assert (str(model), str(env)) == ("tcn:1", "tcn-inference:1")
    assert azure.traffic("tcn-forecast") == {"blue": 100}
    body = azure.calls_to("online_deployments", "begin_create_or_update")[0].body
    assert body["properties"]["model"] == "azureml:tcn:1"
    assert body["properties"]["environmentId"] == "azureml:tcn-inference:1"
    assert "condaFile" not in str(body), "deployments reference the pinned environment, never an inline conda file"
    endpoint = rig.workspace.get_online_endpoint("tcn-forecast")
    assert endpoint.scoring_uri.startswith("https://tcn-forecast.")
    assert RELEASE_LOCK_TAG not in endpoint.tags and endpoint.tags["team"] == "forecasting"
    assert rig.credential.requests == []


def test_nothing_to_release_creates_nothing(rig: Rig, specs) -> None:
    first_release(rig.workspace, specs)
    before = len(rig.azure.writes())
    ws = rig.workspace
    assert ws.register_model("tcn", specs.model_dir("v1")).version == "1"
    assert ws.ensure_environment(specs.environment).version == "1"
    ws.ensure_online_endpoint(specs.endpoint)
    assert rig.azure.writes()[before:] == [], "same bytes, same spec: no write reaches Azure"


def test_blue_green_steps_never_drop_a_third_deployments_share(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.create_online_deployment(specs.deployment("shadow", model, env))
    ws.set_traffic("tcn-forecast", {"blue": 80, "shadow": 20})
    v2 = ws.register_model("tcn", specs.model_dir("v2")).ref
    assert str(v2) == "tcn:2"
    puts_before = len(endpoint_puts(azure))
    ws.create_online_deployment(specs.deployment("green", v2, env))
    assert azure.traffic("tcn-forecast") == {"blue": 80, "shadow": 20}, "a new deployment takes no traffic"
    for percent in (10, 50, 80):
        current = ws.get_online_endpoint("tcn-forecast").traffic
        ws.set_traffic("tcn-forecast", shift(current, "blue", "green", percent))
    assert azure.traffic("tcn-forecast") == {"green": 80, "shadow": 20}
    for body in endpoint_puts(azure)[puts_before:]:
        traffic = body["properties"]["traffic"]
        assert traffic.get("shadow") == 20 and sum(traffic.values()) == 100, traffic
    ws.delete_online_deployment("tcn-forecast", "blue")
    assert [d.name for d in ws.list_online_deployments("tcn-forecast")] == ["shadow", "green"]


def test_gate_failure_rollback_restores_previous_traffic_and_mirror(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    v2 = ws.register_model("tcn", specs.model_dir("v2")).ref
    ws.create_online_deployment(specs.deployment("green", v2, env))
    ws.set_traffic("tcn-forecast", {"blue": 100, "green": 0}, {"green": 20})
    before = ws.get_online_endpoint("tcn-forecast")
    ws.set_traffic("tcn-forecast", {"blue": 90, "green": 10}, {})
    ws.set_traffic("tcn-forecast", dict(before.traffic), dict(before.mirror_traffic))  # the rollback
    assert azure.traffic("tcn-forecast") == {"blue": 100}
    assert azure.mirror("tcn-forecast") == {"green": 20}
    ws.set_traffic("tcn-forecast", {"blue": 100}, {})
    ws.delete_online_deployment("tcn-forecast", "green")
    assert azure.traffic("tcn-forecast") == {"blue": 100} and azure.mirror("tcn-forecast") == {}


def test_set_traffic_without_mirror_keeps_the_mirror(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.create_online_deployment(specs.deployment("green", model, env))
    ws.set_traffic("tcn-forecast", {"blue": 100}, {"green": 10})
    ws.set_traffic("tcn-forecast", {"blue": 100})
    assert azure.mirror("tcn-forecast") == {"green": 10}
    assert endpoint_puts(azure)[-1]["properties"]["mirrorTraffic"] == {"green": 10}


def test_no_write_other_than_set_traffic_changes_traffic(rig: Rig, specs) -> None:
    """Endpoint tag updates and deployments go read-modify-write: every endpoint PUT that is not a
    traffic update carries exactly the traffic the endpoint had; the lock writes no endpoint at all."""
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    before = len(endpoint_puts(azure))
    changed = type(specs.endpoint)(name="tcn-forecast", auth_mode="key", description="new text",
                                   tags={"owner": "ml-platform"})
    ws.ensure_online_endpoint(changed)
    ws.acquire_release_lock("tcn-forecast", "laptop-anna")
    ws.create_online_deployment(specs.deployment("green", model, env))
    ws.release_release_lock("tcn-forecast", "laptop-anna")
    puts = endpoint_puts(azure)[before:]
    assert len(puts) == 1, "the tag update only: the lock and the deployment write no endpoint"
    assert all(body["properties"]["traffic"] == {"blue": 100} for body in puts)
    assert azure.traffic("tcn-forecast") == {"blue": 100}
    assert ws.get_online_endpoint("tcn-forecast").tags == {"team": "forecasting", "owner": "ml-platform"}


def test_set_traffic_waits_until_the_endpoint_reports_the_split(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.create_online_deployment(specs.deployment("green", model, env))
    azure.traffic_lag = 3
    gets_before = len(azure.calls_to("online_endpoints", "get"))
    result = ws.set_traffic("tcn-forecast", {"blue": 50, "green": 50})
    assert result.traffic == {"blue": 50, "green": 50}
    assert len(azure.calls_to("online_endpoints", "get")) - gets_before >= 4
    assert rig.clock.slept.count(5.0) >= 3


def test_set_traffic_gives_up_when_the_split_never_shows(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.create_online_deployment(specs.deployment("green", model, env))
    azure.traffic_lag = 10_000
    with pytest.raises(WorkspaceError, match="did not report the change within 600s"):
        ws.set_traffic("tcn-forecast", {"blue": 50, "green": 50})


def test_rule_violations_are_refused_before_any_write(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.create_online_deployment(specs.deployment("green", model, env))
    writes = len(azure.writes())
    for traffic, mirror in (({"blue": 90}, None), ({"blue": 100, "ghost": 0}, None),
                            ({"blue": 100}, {"green": 60}), ({"blue": 50, "green": 50}, {"green": 10})):
        with pytest.raises(RuleViolation):
            ws.set_traffic("tcn-forecast", traffic, mirror)
    with pytest.raises(RuleViolation, match="live traffic"):
        ws.delete_online_deployment("tcn-forecast", "blue")
    with pytest.raises(RuleViolation):
        ws.create_online_deployment(specs.deployment("Bad_Name", model, env))
    assert len(azure.writes()) == writes
    assert azure.traffic("tcn-forecast") == {"blue": 100}


def test_failed_deployment_raises_with_log_tail_and_takes_no_traffic(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    azure.failing_deployments["green"] = "Traceback (most recent call last):\nValueError: init() exploded\n"
    with pytest.raises(DeploymentFailedError) as caught:
        ws.create_online_deployment(specs.deployment("green", model, env))
    assert "init() exploded" in caught.value.log_tail
    assert "User container has crashed" in str(caught.value)
    assert ws.get_online_deployment("tcn-forecast", "green").state == "Failed"
    assert azure.traffic("tcn-forecast") == {"blue": 100}
    with pytest.raises(RuleViolation, match="Failed"):
        ws.set_traffic("tcn-forecast", {"blue": 90, "green": 10})


def test_operation_in_progress_is_retried_with_backoff(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.create_online_deployment(specs.deployment("green", model, env))
    azure.conflicts["online_endpoints.begin_create_or_update"] = 2
    azure.conflicts["online_deployments.begin_create_or_update"] = 1
    messages: list[str] = []
    ws.set_traffic("tcn-forecast", {"blue": 50, "green": 50}, progress=messages.append)
    assert rig.clock.slept[:2] == [5.0, 10.0]
    assert sum("HTTP 409" in m for m in messages) == 2
    ws.create_online_deployment(specs.deployment("green", model, env))
    assert azure.traffic("tcn-forecast") == {"blue": 50, "green": 50}


def test_conflict_that_never_clears_becomes_conflict_error(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    first_release(rig.workspace, specs)
    azure.conflicts["online_endpoints.begin_create_or_update"] = 100
    with pytest.raises(ConflictError, match="gave up after 8 attempt"):
        ws.set_traffic("tcn-forecast", {"blue": 100}, {})
    assert rig.clock.slept == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0]


def test_release_lock_names_the_holder_and_survives_traffic_changes(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    first_release(rig.workspace, specs)
    lock = ws.acquire_release_lock("tcn-forecast", "gh-run-42")
    assert ws.acquire_release_lock("tcn-forecast", "gh-run-42") == lock, "the same holder resumes"
    with pytest.raises(ConflictError, match="gh-run-42") as caught:
        ws.acquire_release_lock("tcn-forecast", "laptop-bob")
    assert lock.acquired_at in str(caught.value)
    ws.set_traffic("tcn-forecast", {"blue": 100})
    assert ws.get_release_lock("tcn-forecast").holder == "gh-run-42"
    with pytest.raises(ConflictError, match="held by 'gh-run-42'"):
        ws.release_release_lock("tcn-forecast", "laptop-bob")
    assert ws.get_release_lock("tcn-forecast").holder == "gh-run-42"
    ws.release_release_lock("tcn-forecast", "gh-run-42")
    assert ws.get_release_lock("tcn-forecast") is None
    assert azure.traffic("tcn-forecast") == {"blue": 100}


def test_release_lock_on_a_new_endpoint_writes_no_endpoint(rig: Rig, specs) -> None:
    """The lock is a lease on a blob of workspaceblobstore: taking it creates no endpoint and
    writes none (creating one needs onlineEndpoints/write, the production identity's)."""
    ws, azure = rig.workspace, rig.azure
    assert ws.get_release_lock("tcn-forecast") is None
    taken = ws.acquire_release_lock("tcn-forecast", "gh-run-1")
    assert ws.get_release_lock("tcn-forecast") == taken and taken.holder == "gh-run-1"
    assert "tcn-forecast" not in azure.online_endpoints and endpoint_puts(azure) == []
    ws.release_release_lock("tcn-forecast", "gh-run-1")
    assert ws.get_release_lock("tcn-forecast") is None


def test_invoke_sends_key_and_deployment_header_and_regenerated_key_replaces_old(rig: Rig, specs) -> None:
    ws = rig.workspace
    model, env = first_release(rig.workspace, specs)
    ws.create_online_deployment(specs.deployment("green", model, env))
    assert b'"deployment": "blue"' in ws.invoke("tcn-forecast", b'{"data": []}')
    assert b'"deployment": "green"' in ws.invoke("tcn-forecast", b'{"data": []}', deployment_name="green")
    assert b'"deployment": "blue"' in ws.invoke("tcn-forecast", b'{"data": []}'), "no header leaks between calls"
    url, body, headers = rig.server.requests[1]
    assert url == "https://tcn-forecast.westeurope.inference.ml.azure.com/score" and body == b'{"data": []}'
    assert headers["azureml-model-deployment"] == "green"
    old = ws.get_keys("tcn-forecast")
    new = ws.regenerate_key("tcn-forecast", "primary")
    assert new.primary_key != old.primary_key and new.secondary_key == old.secondary_key
    assert "***" in repr(new) and new.primary_key not in repr(new)
    assert rig.server.requests[-1][2]["Authorization"] == f"Bearer {old.primary_key}"
    ws.invoke("tcn-forecast", b"{}")
    assert rig.server.requests[-1][2]["Authorization"] == f"Bearer {new.primary_key}"
    rig.server.fail_with = (400, b'{"error": "input must hold 30 days"}')
    with pytest.raises(WorkspaceError, match="HTTP 400: .*30 days"):
        ws.invoke("tcn-forecast", b"{}")
    assert rig.credential.requests == []


def test_logs_and_missing_things(rig: Rig, specs) -> None:
    ws = rig.workspace
    first_release(rig.workspace, specs)
    assert "Listening" in ws.get_logs("tcn-forecast", "blue", lines=5)
    assert ws.get_online_deployment("tcn-forecast", "nope") is None
    assert ws.get_online_endpoint("nope") is None
    with pytest.raises(NotFoundError, match="get model tcn:9"):
        ws.get_model("tcn", "9")
    with pytest.raises(NotFoundError, match="online endpoint missing-ep"):
        ws.create_online_deployment(type(specs.deployment("x1", AssetRef("tcn", "1"), AssetRef("e", "1")))(
            endpoint_name="missing-ep", name="blue", model=AssetRef("tcn", "1"),
            environment=AssetRef("tcn-inference", "1"), code_path=specs.code, scoring_script="score.py"))


def test_batch_refresh_sets_the_new_default_read_modify_write(rig: Rig, specs, tmp_path) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.ensure_batch_endpoint(specs.batch_endpoint)
    ws.create_batch_deployment(specs.batch_deployment("tcn-v1", model, env))
    ws.set_batch_default("tcn-forecast-batch", "tcn-v1")
    inputs = tmp_path / "smoke"
    inputs.mkdir()
    (inputs / "2018-08.csv").write_text("date,count\n2018-08-01,100\n")
    job = ws.invoke_batch("tcn-forecast-batch", inputs)
    assert (job.deployment_name, job.status) == ("tcn-v1", "Queued")
    invoke = azure.calls_to("batch_endpoints", "invoke")[-1]
    assert invoke.kwargs["deployment_name"] == "tcn-v1", "the default is resolved and named explicitly"
    assert invoke.kwargs["input"].type == "uri_folder" and invoke.kwargs["input"].path == str(inputs.resolve())

    v2 = ws.register_model("tcn", specs.model_dir("v2")).ref
    ws.create_batch_deployment(specs.batch_deployment("tcn-v2", v2, env, output_file_name="forecast.csv"))
    smoke = ws.invoke_batch("tcn-forecast-batch", inputs, deployment_name="tcn-v2")
    assert ws.get_batch_job(smoke.name).status == "Completed"
    output = ws.download_batch_output(smoke.name, tmp_path / "out")
    assert output.name == "forecast.csv" and "2018-08.csv,tcn-v2" in output.read_text()
    assert ws.get_batch_endpoint("tcn-forecast-batch").default_deployment == "tcn-v1"
    ws.set_batch_default("tcn-forecast-batch", "tcn-v2")
    batch_put = azure.calls_to("batch_endpoints", "begin_create_or_update")[-1].body
    assert batch_put["properties"]["defaults"] == {"deploymentName": "tcn-v2"}
    assert batch_put["properties"]["description"] == "nightly forecast", "read-modify-write keeps the rest"
    with pytest.raises(RuleViolation, match="default"):
        ws.delete_batch_deployment("tcn-forecast-batch", "tcn-v2")
    ws.delete_batch_deployment("tcn-forecast-batch", "tcn-v1")
    assert [d.name for d in ws.list_batch_deployments("tcn-forecast-batch")] == ["tcn-v2"]
    assert ws.get_batch_job(job.name).endpoint_name == "tcn-forecast-batch"
    assert "processed all mini-batches" in ws.get_batch_job_logs(smoke.name)


def test_failed_batch_job_reports_failure_and_logs(rig: Rig, specs, tmp_path) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.ensure_batch_endpoint(specs.batch_endpoint)
    ws.create_batch_deployment(specs.batch_deployment("tcn-v1", model, env))
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.csv").write_text("x\n")
    with pytest.raises(RuleViolation, match="no default deployment"):
        ws.invoke_batch("tcn-forecast-batch", inputs)
    azure.batch_job_status = "Failed"
    job = ws.invoke_batch("tcn-forecast-batch", inputs, deployment_name="tcn-v1")
    assert ws.get_batch_job(job.name).status == "Failed"
    assert "bad file" in ws.get_batch_job_logs(job.name)
    with pytest.raises(WorkspaceError, match="Failed"):
        ws.download_batch_output(job.name, tmp_path / "out")


def test_long_deployment_reports_progress_and_times_out(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    azure.lro_seconds["online_deployments.create"] = 90.0  # three of the adapter's 30 s waits
    messages: list[str] = []
    ws.create_online_deployment(specs.deployment("green", model, env), progress=messages.append)
    assert [m for m in messages if "in progress" in m] == [
        "create deployment green on online endpoint tcn-forecast: in progress (30s)",
        "create deployment green on online endpoint tcn-forecast: in progress (60s)"]
    slow = type(ws)(ws._ml, sleep=rig.clock.sleep, clock=rig.clock, lro_timeout=100.0)
    azure.lro_seconds["online_deployments.update"] = 30_000.0
    with pytest.raises(WorkspaceError, match="still running after 100s"):
        slow.create_online_deployment(specs.deployment("green", model, env))


def test_a_request_azure_refuses_up_front_is_not_a_failed_deployment(rig: Rig, specs) -> None:
    ws = rig.workspace
    _, env = first_release(rig.workspace, specs)
    with pytest.raises(RuleViolation, match="model azureml:tcn:42 not found") as caught:
        ws.create_online_deployment(specs.deployment("green", AssetRef("tcn", "42"), env))
    assert not isinstance(caught.value, DeploymentFailedError)
    assert rig.azure.calls_to("online_deployments", "get_logs") == []


@pytest.mark.parametrize(("same_content", "version", "creates"), [
    (False, "2", 2),  # other content: 409 (immutable), listed again at once, the next free version made
    (True, "1", 1),  # the same definition: the PUT is an update (routes/assets.py), version 1 it is
])
def test_environment_version_taken_meanwhile_is_looked_up_again_not_retried(rig: Rig, specs, monkeypatch, tmp_path,
                                                                            same_content, version, creates) -> None:
    """Another release creates version 1 between our list and our create. With other content the
    create's 409 is a lasting conflict, so the adapter lists again at once (no backoff) and makes
    the next version; with the same content the service takes the PUT as an update."""
    from azure.ai.ml.entities import Environment

    from tests.azure.fake_mlclient import FakeEnvironmentOperations

    azure = rig.azure
    original = FakeEnvironmentOperations.create_or_update
    other = tmp_path / "other-conda.yml"
    other.write_text(specs.environment.conda_file.read_text() + "      - pandas==3.1.1\n")
    conda = specs.environment.conda_file if same_content else other
    digest = specs.environment.content_hash() if same_content else "0" * 64

    def racing_create(self, environment):  # noqa: ANN001
        azure.environments.setdefault(("tcn-inference", "1"), Environment(  # the other release's version
            name="tcn-inference", version="1", image=specs.environment.image, conda_file=str(conda),
            tags={"mlops.content_hash": digest}))
        return original(self, environment)

    monkeypatch.setattr(FakeEnvironmentOperations, "create_or_update", racing_create)
    env = rig.workspace.ensure_environment(specs.environment)
    assert env.version == version
    assert rig.clock.slept == []
    assert len(azure.calls_to("environments", "create_or_update")) == creates
    assert len(azure.calls_to("environments", "list")) == creates


def test_a_later_process_finds_the_batch_jobs_endpoint_and_output(rig: Rig, specs, tmp_path) -> None:
    """``mlops batch status JOB`` runs in a new process: the job's own properties name its endpoint
    and deployment, and the deployment names the output file."""
    from tests.azure.fake_mlclient import make_workspace

    ws = rig.workspace
    model, env = first_release(rig.workspace, specs)
    ws.ensure_batch_endpoint(specs.batch_endpoint)
    ws.create_batch_deployment(specs.batch_deployment("tcn-v1", model, env, output_file_name="out.csv"))
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.csv").write_text("x\n")
    job = ws.invoke_batch("tcn-forecast-batch", inputs, deployment_name="tcn-v1")
    later = make_workspace(rig.azure).workspace
    status = later.get_batch_job(job.name)
    assert (status.endpoint_name, status.deployment_name, status.status) == ("tcn-forecast-batch", "tcn-v1",
                                                                             "Completed")
    assert later.download_batch_output(job.name, tmp_path / "out").name == "out.csv"


def test_aad_token_endpoints_are_invoked_with_an_entra_token(specs) -> None:
    from types import SimpleNamespace

    from tests.azure.fake_mlclient import make_workspace

    class TokenCredential:
        scopes: list = []

        def get_token(self, *scopes, **kwargs):  # noqa: ANN001, ARG002
            self.scopes.append(scopes)
            return SimpleNamespace(token="entra-token", expires_on=0)

    credential = TokenCredential()
    rig = make_workspace(credential=credential)
    ws = rig.workspace
    env = ws.ensure_environment(specs.environment)
    model = ws.register_model("tcn", specs.model_dir("v1"))
    ws.ensure_online_endpoint(type(specs.endpoint)(name="tcn-forecast", auth_mode="aad_token"))
    ws.create_online_deployment(specs.deployment("blue", model.ref, env.ref))
    ws.set_traffic("tcn-forecast", {"blue": 100})
    rig.azure.keys["tcn-forecast"] = ["entra-token", "unused"]  # what the fake router accepts
    assert b"blue" in ws.invoke("tcn-forecast", b"{}")
    assert credential.scopes == [("https://ml.azure.com/.default",)]
    assert rig.server.requests[-1][2]["Authorization"] == "Bearer entra-token"


def test_an_environment_with_conda_packages_and_another_python_is_created_on_azure(rig: Rig, specs) -> None:
    """The local workspace's venv rules (this Python only, no conda packages) are not Azure's: Azure
    builds the conda file as a conda environment, so the adapter sends it as it is."""
    from dataclasses import replace

    conda = specs.root / "conda_env_v_1_0_0.yml"
    conda.write_text("channels: [conda-forge]\ndependencies:\n  - python=3.9\n  - pip\n  - numpy~=1.23.5\n"
                     "  - pip:\n      - azureml-defaults==1.56.0\n")
    env = rig.workspace.ensure_environment(replace(specs.environment, conda_file=conda))
    assert env.ref == AssetRef("tcn-inference", "1")
    body = rig.azure.calls_to("environments", "create_or_update")[0].body
    assert "numpy~=1.23.5" in str(body) and "python=3.9" in str(body)


def test_an_identity_that_may_not_create_the_endpoint_is_told_the_setup_command(rig: Rig, specs) -> None:
    """The release identity's role has NotActions onlineEndpoints/write: Azure answers the create with
    403 AuthorizationFailed, and the release says the endpoint is created once in setup, and how."""
    from mlops.errors import AuthError
    from tests.azure.fake_mlclient import http_error

    rig.azure.fail_next["online_endpoints.begin_create_or_update"] = http_error(
        403, "AuthorizationFailed: The client 'release' does not have authorization to perform action "
             "'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write'")
    with pytest.raises(AuthError) as refused:
        rig.workspace.ensure_online_endpoint(specs.endpoint)
    message = str(refused.value)
    assert "online endpoint tcn-forecast does not exist, and this identity may not create it" in message
    assert "az ml online-endpoint create -f endpoints/online/endpoint.yml" in message
    assert "AuthorizationFailed" in message and "tcn-forecast" not in rig.azure.online_endpoints
