"""The adapter's online release scenarios on the real azure-ai-ml ``MLClient`` against the emulator
(what ``tests/azure/test_release_scenarios.py`` checks on the Python-level fake): the SDK's own
serialization, long-running-operation polling, exceptions and token scopes are real here.

Each scenario drives ``AzureWorkspace`` through the port as the release does (register, pin the
environment, lock, candidate at 0%, traffic in steps, roll back or finish) and asserts on what the
emulator received and serves.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from mlops.errors import DeploymentFailedError
from mlops.workspace.azure_decisions import RELEASE_LOCK_TAG
from tests.azure.test_release_scenarios import first_release, shift
from tests.azure_emulator import RunningEmulator
from tests.release.fakes import Behaviour

BODY = json.dumps({"Inputs": {"data": [{"date": f"2024-01-{d:02d}", "count": 100 + d} for d in range(1, 8)]
                              + [{"date": "2024-01-08"}]}}).encode()


def _puts(emu: RunningEmulator, fragment: str) -> list:
    return [e for e in emu.requests_to(fragment, "PUT")]


def _raw(emu: RunningEmulator, method: str, path: str, body: object) -> int:
    """One ARM request of another client (a token of the emulator's own mint)."""
    now = emu.clock.now()
    token = emu.mint.issue({"aud": emu.arm_audience, "iat": int(now), "nbf": int(now), "exp": int(now + 3600)})
    request = urllib.request.Request(f"{emu.url(path)}?api-version=2024-10-01", data=json.dumps(body).encode(),
                                     method=method, headers={"Authorization": f"Bearer {token}",
                                                             "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the emulator's https URL
        return response.status


def test_first_release_on_the_real_client(workspace, specs, actions: RunningEmulator) -> None:
    emu = actions
    started = emu.clock.now()
    model, env = first_release(workspace, specs)
    assert (str(model), str(env)) == ("tcn:1", "tcn-inference:1")
    endpoint = workspace.get_online_endpoint("tcn-forecast")
    assert endpoint.traffic == {"blue": 100} and RELEASE_LOCK_TAG not in endpoint.tags
    assert endpoint.tags["team"] == "forecasting" and endpoint.scoring_uri.endswith("/_scoring/tcn-forecast/score")
    (put,) = _puts(emu, "/deployments/blue")
    props = put.body["properties"]
    ws_id = emu.workspace.arm_id
    assert props["model"].lower() == f"{ws_id}/models/tcn/versions/1".lower(), "the SDK resolved the pinned model"
    assert props["environmentId"].lower() == f"{ws_id}/environments/tcn-inference/versions/1".lower()
    assert "condaFile" not in json.dumps(put.body), "a deployment references the pinned environment"
    assert props["codeConfiguration"]["scoringScript"] == "score.py"
    # the SDK polled the recorded operation shapes to the end, on the virtual clock
    polls = emu.requests_to("/mfeOperationsStatus/")
    assert any(e.path.split("/")[-1].startswith("odidp:") for e in polls)
    assert emu.clock.now() - started >= 62 + 425 + 92, "endpoint create + deployment + traffic as recorded"
    assert json.loads(workspace.invoke("tcn-forecast", BODY))["Results"]["forecast"]
    assert emu.store("scoring")["untargeted"][("tcn-forecast", "blue")] == 1
    scopes = {t["aud"] for t in emu.store("identity")["access_tokens"]}
    assert scopes == {emu.arm_audience}, "an online release needs only the ARM scope"


def test_nothing_to_release_writes_nothing(workspace, specs, actions: RunningEmulator) -> None:
    first_release(workspace, specs)
    before = len([e for e in actions.exchanges if e.method in ("PUT", "DELETE")])
    assert workspace.register_model("tcn", specs.model_dir("v1")).version == "1"
    assert workspace.ensure_environment(specs.environment).version == "1"
    workspace.ensure_online_endpoint(specs.endpoint)
    writes = [e for e in actions.exchanges if e.method in ("PUT", "DELETE")][before:]
    assert writes == [], f"same bytes, same spec: no write reaches Azure ({[(w.method, w.path) for w in writes]})"


def test_blue_green_steps_beside_a_third_deployment(workspace, specs, actions: RunningEmulator) -> None:
    ws = workspace
    model, env = first_release(ws, specs)
    ws.create_online_deployment(specs.deployment("shadow", model, env))
    ws.set_traffic("tcn-forecast", {"blue": 80, "shadow": 20})
    v2 = ws.register_model("tcn", specs.model_dir("v2")).ref
    assert str(v2) == "tcn:2"
    ws.create_online_deployment(specs.deployment("green", v2, env))
    assert ws.get_online_endpoint("tcn-forecast").traffic == {"blue": 80, "shadow": 20}, "a new deployment gets 0%"
    for percent in (10, 50, 80):
        current = ws.get_online_endpoint("tcn-forecast").traffic
        ws.set_traffic("tcn-forecast", shift(current, "blue", "green", percent))
        assert ws.get_online_endpoint("tcn-forecast").traffic["shadow"] == 20
    assert ws.get_online_endpoint("tcn-forecast").traffic == {"green": 80, "shadow": 20}
    bodies = [e.body["properties"]["traffic"] for e in _puts(actions, "/onlineEndpoints/tcn-forecast")
              if e.path.lower().endswith("/onlineendpoints/tcn-forecast")]
    assert all(b.get("shadow") == 20 for b in bodies[-3:]), "every PUT carried the third deployment's share"
    ws.delete_online_deployment("tcn-forecast", "blue")
    assert [d.name for d in ws.list_online_deployments("tcn-forecast")] == ["shadow", "green"]


def test_gate_failure_rolls_back_traffic_and_mirror(workspace, specs, actions: RunningEmulator) -> None:
    ws = workspace
    model, env = first_release(ws, specs)
    v2 = ws.register_model("tcn", specs.model_dir("v2")).ref
    ws.create_online_deployment(specs.deployment("green", v2, env))
    ws.set_traffic("tcn-forecast", {"blue": 100}, {"green": 20})  # shadow phase
    assert ws.get_online_endpoint("tcn-forecast").mirror_traffic == {"green": 20}
    for _ in range(30):
        ws.invoke("tcn-forecast", BODY)
    served = actions.store("scoring")
    assert served["mirrored"][("tcn-forecast", "green")] > 0 and served["untargeted"][("tcn-forecast", "green")] == 0
    # the gate fails: roll back (mirror off), remove the candidate
    ws.set_traffic("tcn-forecast", {"blue": 100}, {})
    ws.delete_online_deployment("tcn-forecast", "green")
    endpoint = ws.get_online_endpoint("tcn-forecast")
    assert (endpoint.traffic, endpoint.mirror_traffic) == ({"blue": 100}, {})
    assert [d.name for d in ws.list_online_deployments("tcn-forecast")] == ["blue"]


def test_health_failure_under_traffic_rolls_back_to_live(workspace, specs, actions: RunningEmulator) -> None:
    ws = workspace
    model, env = first_release(ws, specs)
    v2 = ws.register_model("tcn", specs.model_dir("v2")).ref
    actions.settings["scoring.behaviours"] = {"2": Behaviour(fail_untargeted=True)}  # fine when targeted
    ws.create_online_deployment(specs.deployment("green", v2, env))
    assert ws.invoke("tcn-forecast", BODY, deployment_name="green"), "the candidate passes a targeted test"
    ws.set_traffic("tcn-forecast", {"blue": 90, "green": 10})
    failures = 0
    for _ in range(60):
        try:
            ws.invoke("tcn-forecast", BODY)
        except Exception as error:  # noqa: BLE001 - counted, then asserted
            assert "HTTP 500" in str(error)
            failures += 1
    assert failures == actions.store("scoring")["untargeted"][("tcn-forecast", "green")] > 0
    ws.set_traffic("tcn-forecast", {"blue": 100, "green": 0})
    for _ in range(20):
        ws.invoke("tcn-forecast", BODY)  # users are served by live again: no failure
    assert ws.get_online_endpoint("tcn-forecast").traffic == {"blue": 100}


def test_a_candidate_that_never_starts_fails_with_its_log_and_takes_no_traffic(workspace, specs,
                                                                              actions: RunningEmulator) -> None:
    ws = workspace
    model, env = first_release(ws, specs)
    v2 = ws.register_model("tcn", specs.model_dir("v2")).ref
    crash = "Traceback (most recent call last):\nRuntimeError: model.pt is not a TorchScript archive\n"
    actions.settings["online.startup"] = lambda endpoint, name, model: crash if model.endswith("/versions/2") else None
    with pytest.raises(DeploymentFailedError) as raised:
        ws.create_online_deployment(specs.deployment("green", v2, env))
    assert "ResourceNotReady" in str(raised.value) and "model.pt is not a TorchScript archive" in raised.value.log_tail
    assert ws.get_online_deployment("tcn-forecast", "green").state == "Failed"
    assert ws.get_online_endpoint("tcn-forecast").traffic == {"blue": 100}
    assert actions.requests_to("/deployments/green/getLogs", "POST"), "the logs came from Azure's getLogs"


def test_a_write_while_an_operation_runs_would_get_409_so_the_adapter_waits_it_out(workspace, specs,
                                                                                    actions: RunningEmulator) -> None:
    """Azure refuses a second write to an endpoint while an operation runs on it (409, for as long as
    it runs); the adapter reads the endpoint ``Updating`` and waits (on the virtual clock) until the
    first has finished, then writes once - refused never (``AzureCalls._wait_idle``)."""
    ws = workspace
    model, env = first_release(ws, specs)
    # another client's update (a raw PUT that nobody polls: an SDK poller in a background thread would
    # move the virtual clock on at once)
    current = actions.store("online")["endpoints"]["tcn-forecast"]["live"]
    body = {"location": "eastus", "tags": {**current["tags"], "owner": "someone-else"},
            "properties": {"authMode": "Key", "traffic": current["traffic"], "mirrorTraffic": {}}}
    assert _raw(actions, "PUT", f"{actions.workspace.arm_id}/onlineEndpoints/tcn-forecast", body) == 201
    lines: list[str] = []
    ws.create_online_deployment(specs.deployment("green", model, env), progress=lines.append)  # waits, then creates
    ws.set_traffic("tcn-forecast", {"blue": 50, "green": 50})
    assert any("(endpoint tcn-forecast is Updating)" in line for line in lines)
    assert [e for e in actions.exchanges if e.status == 409] == [], "it waited instead of being refused"
    endpoint = ws.get_online_endpoint("tcn-forecast")
    assert endpoint.traffic == {"blue": 50, "green": 50} and endpoint.tags["owner"] == "someone-else"


def test_deleting_an_endpoint_is_a_202_operation_then_404(workspace, specs, actions: RunningEmulator) -> None:
    ws = workspace
    first_release(ws, specs)
    ws.set_traffic("tcn-forecast", {"blue": 0})
    ws.delete_online_endpoint("tcn-forecast")
    (delete,) = actions.requests_to("/onlineEndpoints/tcn-forecast", "DELETE")
    assert delete.status == 202
    assert ws.get_online_endpoint("tcn-forecast") is None
    assert actions.requests_to("/onlineEndpoints/tcn-forecast", "GET")[-1].status == 404
