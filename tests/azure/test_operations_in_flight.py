"""While a long-running operation runs, the fake MLClient is no kinder than Azure (rules and their
sources: ``tests/azure/fake_operations.py``), and the adapter does what Azure then requires.

Each test drives the fake once as *another writer* would - a ``begin_*`` whose poller nobody waits
on (a release that timed out, the portal, a second job) - and then the adapter. Every one of them
failed on the fake that applied a change the moment it was asked for (a new endpoint ``Succeeded``
with a scoring URI at once, no 409 while an operation runs, a batch deployment accepted on a batch
endpoint still being created)."""

from __future__ import annotations

import pytest
from azure.ai.ml.entities import (
    BatchEndpoint,
    CodeConfiguration,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    ModelBatchDeployment,
)
from azure.core.exceptions import ResourceExistsError

from mlops.errors import WorkspaceError
from tests.azure.fake_mlclient import Rig
from tests.azure.test_release_scenarios import first_release

ENDPOINT_CREATE_S, DEPLOYMENT_CREATE_S = 62.0, 425.0  # recorded (online_endpoint_e2e, online_deployment_create)


def _another_writers_deployment(rig: Rig, specs, name: str, model, env) -> object:
    """Start creating deployment ``name`` as another writer would, without waiting: the poller."""
    entity = ManagedOnlineDeployment(
        name=name, endpoint_name=specs.endpoint.name, model=f"azureml:{model}", environment=f"azureml:{env}",
        code_configuration=CodeConfiguration(code=str(specs.code), scoring_script="score.py"),
        instance_type="Standard_DS3_v2", instance_count=1)
    return rig.workspace._ml.online_deployments.begin_create_or_update(entity)


def test_a_new_endpoint_is_creating_without_a_scoring_uri_until_its_operation_ends(rig: Rig) -> None:
    ml, started = rig.workspace._ml, rig.clock.now
    poller = ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="tcn-other", auth_mode="key"))
    meanwhile = ml.online_endpoints.get("tcn-other")
    assert (meanwhile.provisioning_state, meanwhile.scoring_uri, poller.done()) == ("Creating", None, False)
    poller.wait(timeout=30)
    assert rig.clock.now == started + 30 and not poller.done(), "wait(timeout) waits that long at most"
    created = poller.result()
    assert created.provisioning_state == "Succeeded" and created.scoring_uri.endswith(".inference.ml.azure.com/score")
    assert rig.clock.now == started + ENDPOINT_CREATE_S and rig.clock.slept == [], "the SDK's wait, not the adapter's"
    assert ml.online_endpoints.get("tcn-other").scoring_uri == created.scoring_uri


def test_the_adapter_creates_an_endpoint_and_reads_its_uri_once_it_is_created(rig: Rig, specs) -> None:
    started = rig.clock.now
    endpoint = rig.workspace.ensure_online_endpoint(specs.endpoint)
    assert endpoint.scoring_uri == "https://tcn-forecast.westeurope.inference.ml.azure.com/score"
    assert rig.clock.now - started >= ENDPOINT_CREATE_S


def test_an_endpoint_another_writer_is_still_creating_is_waited_for_and_never_invoked_at_none(rig: Rig,
                                                                                               specs) -> None:
    ws, ml = rig.workspace, rig.workspace._ml
    ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=specs.endpoint.name, auth_mode="key"))
    with pytest.raises(WorkspaceError, match="no scoring URI yet \\(provisioning state Creating\\)"):
        ws.invoke(specs.endpoint.name, b"{}")
    assert rig.server.requests == [], "nothing was posted to a URI the endpoint does not have"
    lines: list[str] = []
    endpoint = ws.ensure_online_endpoint(specs.endpoint, progress=lines.append)  # adds the spec's tags: a write
    assert endpoint.scoring_uri.startswith("https://") and endpoint.tags["team"] == "forecasting"
    assert any("waiting for an operation already running in Azure to end (endpoint tcn-forecast is Creating)" in line
               for line in lines)
    assert not any("HTTP 409" in line for line in lines), "waited for it instead of being refused"
    with pytest.raises(WorkspaceError, match="HTTP 404"):  # reaches the scoring URI now (no deployment yet)
        ws.invoke(specs.endpoint.name, b"{}")


def test_a_second_write_while_a_deployment_is_being_created_is_refused_with_409(rig: Rig, specs) -> None:
    model, env = first_release(rig.workspace, specs)
    ml = rig.workspace._ml
    poller = _another_writers_deployment(rig, specs, "green", model, env)
    assert ml.online_deployments.get(name="green", endpoint_name=specs.endpoint.name).provisioning_state == "Creating"
    endpoint = ml.online_endpoints.get(specs.endpoint.name)
    endpoint.tags = {**endpoint.tags, "note": "x"}
    with pytest.raises(ResourceExistsError, match="another operation on same entity is already running"):
        ml.online_endpoints.begin_create_or_update(endpoint)  # e.g. a traffic update
    with pytest.raises(ResourceExistsError, match="another operation on same entity is already running"):
        _another_writers_deployment(rig, specs, "red", model, env)
    assert rig.azure.traffic(specs.endpoint.name) == {"blue": 100}, "refused, not queued: nothing changed"
    poller.result()
    ml.online_endpoints.begin_create_or_update(endpoint).result()  # accepted once the operation ended
    assert ml.online_endpoints.get(specs.endpoint.name).tags["note"] == "x"


def test_a_deployment_on_an_endpoint_being_updated_is_refused_naming_its_state(rig: Rig, specs) -> None:
    model, env = first_release(rig.workspace, specs)
    ml = rig.workspace._ml
    endpoint = ml.online_endpoints.get(specs.endpoint.name)
    endpoint.tags = {**endpoint.tags, "note": "x"}
    ml.online_endpoints.begin_create_or_update(endpoint)
    assert ml.online_endpoints.get(specs.endpoint.name).provisioning_state == "Updating"
    with pytest.raises(ResourceExistsError, match="Cannot create a deployment in endpoint tcn-forecast because it "
                                                  "is in Updating provisioning state"):
        _another_writers_deployment(rig, specs, "green", model, env)


def test_the_adapter_waits_for_another_writers_operation_before_moving_traffic(rig: Rig, specs) -> None:
    """A 409 lasts as long as the other operation - a deployment create ran 7 min 5 s in the recorded
    session - longer than the backoff of a refused call (5 s doubling to 60 s, eight tries: 255 s).
    The adapter waits until Azure reports no operation running, then writes once."""
    ws = rig.workspace
    model, env = first_release(ws, specs)
    _another_writers_deployment(rig, specs, "green", model, env)
    started, puts = rig.clock.now, len(rig.azure.calls_to("online_endpoints", "begin_create_or_update"))
    lines: list[str] = []
    endpoint = ws.set_traffic(specs.endpoint.name, {"blue": 90, "green": 10}, progress=lines.append)
    assert endpoint.traffic == {"blue": 90, "green": 10}
    assert rig.clock.now - started >= DEPLOYMENT_CREATE_S
    assert any("(deployment green is Creating)" in line for line in lines)
    assert not any("HTTP 409" in line for line in lines)
    assert len(rig.azure.calls_to("online_endpoints", "begin_create_or_update")) == puts + 1, "one write, accepted"


def test_an_operation_nobody_waits_for_still_ends_on_time(rig: Rig, specs) -> None:
    model, env = first_release(rig.workspace, specs)
    _another_writers_deployment(rig, specs, "green", model, env)
    rig.clock.advance(DEPLOYMENT_CREATE_S)
    deployment = rig.workspace.get_online_deployment(specs.endpoint.name, "green")
    assert deployment is not None and deployment.state == "Succeeded"
    rig.workspace.set_traffic(specs.endpoint.name, {"blue": 50, "green": 50})
    assert rig.azure.traffic(specs.endpoint.name) == {"blue": 50, "green": 50}


def test_a_batch_deployment_on_a_batch_endpoint_still_being_created_is_refused(rig: Rig, specs) -> None:
    ws, ml = rig.workspace, rig.workspace._ml
    env = ws.ensure_environment(specs.environment)
    model = ws.register_model("tcn", specs.model_dir("v1"))
    name = specs.batch_endpoint.name
    ml.batch_endpoints.begin_create_or_update(BatchEndpoint(name=name))  # another writer, not waited for
    meanwhile = ml.batch_endpoints.get(name)
    assert (meanwhile.provisioning_state, meanwhile.scoring_uri) == ("Creating", None)
    entity = ModelBatchDeployment(name="tcn-v1", endpoint_name=name, model=f"azureml:{model.ref}",
                                  environment=f"azureml:{env.ref}", compute="cpu-cluster",
                                  code_configuration=CodeConfiguration(code=str(specs.code),
                                                                       scoring_script="batch_score.py"))
    with pytest.raises(ResourceExistsError, match="because it is in Creating provisioning state"):
        ml.batch_deployments.begin_create_or_update(entity)
    assert rig.azure.batch_deployments == {}
    lines: list[str] = []
    endpoint = ws.ensure_batch_endpoint(specs.batch_endpoint, progress=lines.append)
    assert endpoint.scoring_uri.endswith("/jobs") and any("batch endpoint tcn-forecast-batch is Creating" in line
                                                          for line in lines)
    deployment = ws.create_batch_deployment(specs.batch_deployment("tcn-v1", model.ref, env.ref), progress=lines.append)
    assert deployment.state == "Succeeded" and not any("HTTP 409" in line for line in lines)
