"""Issue 13's defects on the online and asset surface, at the wire: the real azure-ai-ml client
against the emulator, whose rules are the service's (``tests/azure_emulator``). Each test failed on
the adapter of main before helper azfix's fixes (run against a scratch worktree of main; the
failure seen is named in each docstring) and passes with them.
"""

from __future__ import annotations

import json

import pytest

from mlops.errors import ConflictError
from tests.azure.test_release_scenarios import first_release
from tests.azure_emulator import RunningEmulator
from tests.azure_wire.test_online_release import BODY


def _arm_requests(emu: RunningEmulator, since: int) -> list:
    return [e for e in emu.exchanges[since:] if e.audience == "arm"]


def test_an_archived_model_version_keeps_its_number(workspace, specs, actions: RunningEmulator) -> None:
    """main: ``models.list`` shows active versions only, so version 2 (archived) is chosen again and
    the service refuses the new path. Seen on main: ``ConflictError: register model tcn:2: another
    operation is in progress (HTTP 409) ... Azure said: (UserError) Asset paths cannot be updated.``
    (the SDK passes the ``ResourceExistsError`` through: see ``routes/assets.py``)."""
    ws = workspace
    ws.register_model("tcn", specs.model_dir("v1"))
    ws.register_model("tcn", specs.model_dir("v2"))
    ws._ml.models.archive(name="tcn", version="2")  # someone archived it in the studio
    assert [m.version for m in ws._ml.models.list(name="tcn")] == ["1"], "the SDK's default list hides it"
    model = ws.register_model("tcn", specs.model_dir("v3"))
    assert model.version == "3"
    assert ws._ml.models.get(name="tcn", version="2").stage == "Archived", "the archived version is untouched"
    lists = [e.query.get("listViewType") for e in actions.requests_to("/models/tcn/versions", "GET")
             if not e.path.endswith(("/1", "/2", "/3"))]
    assert "All" in lists


def test_an_archived_environment_version_keeps_its_number(workspace, specs, actions: RunningEmulator) -> None:
    """main: ``environments.list`` shows active versions only; version 1 (archived) is chosen again and
    the service answers 409. Seen on main: ``ConflictError: create environment tcn-inference:1:
    another operation is in progress (HTTP 409)``."""
    ws = workspace
    assert ws.ensure_environment(specs.environment).version == "1"
    ws._ml.environments.archive(name="tcn-inference", version="1")
    specs.environment.conda_file.write_text(specs.environment.conda_file.read_text() + "      - numpy==2.1.0\n")
    assert ws.ensure_environment(specs.environment).version == "2"


def test_a_taken_endpoint_name_is_reported_at_once(workspace, specs, actions: RunningEmulator) -> None:
    """main: the 409 is taken for "operation in progress" and retried with backoff. Seen on main:
    ``ConflictError: create online endpoint tcn-forecast: another operation is in progress (HTTP 409);
    gave up after 8 attempt(s)``, Azure's "is not available ... unique within the region" inside."""
    actions.settings["online.taken_names"] = {"tcn-forecast"}
    started = actions.clock.now()
    with pytest.raises(ConflictError, match="name is taken") as raised:
        workspace.ensure_online_endpoint(specs.endpoint)
    assert "not available" in str(raised.value), "Azure's words travel with the error"
    assert len(actions.requests_to("/onlineEndpoints/tcn-forecast", "PUT")) == 1, "not retried"
    assert actions.clock.now() - started < 5


def test_a_scaling_deployment_is_updating_not_creating(workspace, specs, actions: RunningEmulator) -> None:
    """main: ``provisioning_state`` ``Scaling`` maps to ``Creating`` - a serving deployment reported as
    one that never served. Seen on main: ``assert 'Creating' == 'Updating'``."""
    ws = workspace
    first_release(ws, specs)
    entity = ws._ml.online_deployments.get(name="blue", endpoint_name="tcn-forecast")
    entity.instance_count = 2
    ws._ml.online_deployments.begin_create_or_update(entity)  # scale out, not waited for
    assert ws._ml.online_deployments.get(name="blue", endpoint_name="tcn-forecast").provisioning_state == "Scaling"
    assert ws.get_online_deployment("tcn-forecast", "blue").state == "Updating"
    assert json.loads(ws.invoke("tcn-forecast", BODY)), "a scaling deployment keeps serving"


def test_invoke_reads_the_endpoint_once_not_three_times_a_request(workspace, specs,
                                                                   actions: RunningEmulator) -> None:
    """main: every ``invoke`` makes three ARM calls (endpoint GET, then GET + ``listKeys`` for the key).
    Seen on main: 20 ARM requests for 5 invokes (the SDK's ``get_keys`` adds a workspace GET)."""
    ws = workspace
    first_release(ws, specs)
    ws.invoke("tcn-forecast", BODY)
    before = len(actions.exchanges)
    for _ in range(5):
        ws.invoke("tcn-forecast", BODY)
    assert _arm_requests(actions, before) == []
    ws._ml.online_endpoints.begin_regenerate_keys(name="tcn-forecast", key_type="primary").result()
    assert json.loads(ws.invoke("tcn-forecast", BODY)), "a key regenerated elsewhere is read again after a 401"


def test_an_endpoint_created_by_the_release_lock_takes_the_specs_auth_mode(workspace, specs,
                                                                           actions: RunningEmulator) -> None:
    """main: the lock creates the endpoint with the default auth (key) and ``ensure_online_endpoint``
    leaves it so ("left unchanged"), whatever the spec says. Seen on main: ``assert 'key' == 'aad_token'``."""
    ws = workspace
    ws.acquire_release_lock("tcn-forecast", "ci-run-1")
    spec = type(specs.endpoint)(name="tcn-forecast", auth_mode="aad_token", tags={"team": "forecasting"})
    assert ws.ensure_online_endpoint(spec).auth_mode.lower() == "aad_token"
    endpoint = actions.store("online")["endpoints"]["tcn-forecast"]
    assert endpoint["live"]["authMode"] == "AADToken"


def test_the_ml_scope_token_first_asked_after_five_minutes_still_comes(workspace, specs,
                                                                       actions: RunningEmulator) -> None:
    """main: ``DefaultAzureCredential`` falls through to the Azure CLI that azure/login logged in with
    one GitHub ID token; the ML-scope token for invoking an ``aad_token`` endpoint is first asked for
    after the deployment's 7-minute operation and Entra ID refuses the stale assertion. Seen on main:
    ``AuthError: get a Microsoft Entra token for Azure ML: no usable Azure credential ... Azure said:
    ERROR: AADSTS700024: Client assertion is not within its valid time range`` (through the ``az`` of
    ``tests.azure_emulator.azure_cli``)."""
    ws = workspace
    env = ws.ensure_environment(specs.environment)
    model = ws.register_model("tcn", specs.model_dir("v1"))
    spec = type(specs.endpoint)(name="tcn-forecast", auth_mode="aad_token")
    ws.ensure_online_endpoint(spec)
    ws.create_online_deployment(specs.deployment("blue", model.ref, env.ref))
    ws.set_traffic("tcn-forecast", {"blue": 100})
    first_id_token = actions.store("identity")["id_tokens"][0]
    assert actions.clock.now() > first_id_token["exp"], "the first GitHub ID token has expired by now"
    assert json.loads(ws.invoke("tcn-forecast", BODY))
    ml_tokens = [t for t in actions.store("identity")["access_tokens"] if t["aud"] == "https://ml.azure.com"]
    assert ml_tokens and ml_tokens[0]["iat"] > first_id_token["exp"]


def test_a_model_version_taken_meanwhile_is_reported_as_taken(workspace, specs, actions: RunningEmulator,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A race: another release registered version 1 with other files between this one's list and its
    PUT (played by a stale ``next_version``). Found at the wire: azure-ai-ml 1.35 raises
    ``AssetPathException`` only when ``str(error)`` equals "(UserError) Asset paths cannot be
    updated.", but azure-core renders the ARM error with ``Code:``/``Message:`` lines, so the adapter
    got a ``ResourceExistsError`` and said "another operation is in progress" (after retrying it);
    ``azure_decisions.asset_version_taken`` now reads the text, whichever exception carries it."""
    from mlops.workspace.azure import assets

    ws = workspace
    ws.register_model("tcn", specs.model_dir("v1"))
    monkeypatch.setattr(assets.decide, "next_version", lambda versions: "1")
    with pytest.raises(ConflictError, match="already exists with other content"):
        ws.register_model("tcn", specs.model_dir("v2"))
