"""The emulator's own contract, through the real azure-ai-ml client and plain HTTPS: TLS with the
test CA, the Entra/GitHub token flow, token checks (audience, expiry) with ARM's error shapes,
serving by URL."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from tests.azure_emulator import RunningEmulator
from tests.azure_emulator.tokens import ID_TOKEN_LIFETIME


def _get(emu: RunningEmulator, path: str, token: str | None = None) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(emu.url(path), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback https
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def _token(emu: RunningEmulator, aud: str, lifetime: float = 3599) -> str:
    now = emu.clock.now()
    return emu.mint.issue({"aud": aud, "iat": int(now), "nbf": int(now), "exp": int(now + lifetime)})


def test_real_mlclient_reads_the_workspace_over_tls_with_an_arm_token(emulator: RunningEmulator) -> None:
    client = emulator.ml_client()
    workspace = client.workspaces.get(emulator.workspace.name)
    assert (workspace.name, workspace.location) == ("mlw-mlops", "eastus")
    arm = emulator.requests_to(emulator.workspace.arm_id, "GET")
    assert arm and all(e.status == 200 and e.audience == "arm" for e in arm)
    issued = emulator.store("identity")["access_tokens"]
    assert [t["aud"] for t in issued] == [emulator.arm_audience], "the SDK asked for the custom cloud's ARM scope"
    assert emulator.store("identity")["id_tokens"][0]["aud"] == "api://AzureADTokenExchange"


def test_the_server_is_tls_only_and_untrusted_without_the_test_ca(emulator: RunningEmulator) -> None:
    trusts_nothing = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(emulator.url("/"), timeout=5, context=trusts_nothing)  # noqa: S310
    with pytest.raises(OSError):
        urllib.request.urlopen(emulator.url("/").replace("https://", "http://"), timeout=5)  # noqa: S310


@pytest.mark.parametrize(("audience", "lifetime", "status", "code"), [
    ("arm", 3599, 200, None),
    ("arm", -1, 401, "ExpiredAuthenticationToken"),
    ("ml", 3599, 401, "InvalidAuthenticationTokenAudience"),
    ("storage", 3599, 401, "InvalidAuthenticationTokenAudience"),
    (None, 0, 401, "AuthenticationFailed"),
])
def test_arm_checks_the_bearer_tokens_audience_and_expiry(emulator: RunningEmulator, audience, lifetime,
                                                           status, code) -> None:
    token = None if audience is None else _token(emulator, emulator.audience_url(audience), lifetime)
    got, body, headers = _get(emulator, emulator.workspace.arm_id + "?api-version=2024-10-01-preview", token)
    assert got == status
    if code:
        assert body["error"]["code"] == code and body["error"]["message"]
        assert headers["WWW-Authenticate"].startswith("Bearer ")


def test_tokens_age_on_the_virtual_clock_and_the_sdk_refreshes_them(emulator: RunningEmulator) -> None:
    client = emulator.ml_client()
    client.workspaces.get(emulator.workspace.name)
    emulator.clock.advance(3700)  # past the access token's hour
    client.workspaces.get(emulator.workspace.name)
    issued = emulator.store("identity")["access_tokens"]
    assert len(issued) == 2 and issued[1]["iat"] - issued[0]["iat"] >= 3700


def test_an_assertion_older_than_five_minutes_gets_aadsts700024(emulator: RunningEmulator) -> None:
    first = emulator.github_id_token()  # what `az login --federated-token` keeps: one token, reused
    credential = emulator.credential(func=lambda: first)
    credential.get_token(emulator.arm_audience + "/.default")
    emulator.clock.advance(ID_TOKEN_LIFETIME + 1)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700024"):
        credential.get_token("https://ml.azure.com/.default")


def test_a_fresh_id_token_per_request_keeps_working(emulator: RunningEmulator) -> None:
    credential = emulator.credential()  # func: a new GitHub ID token each time
    credential.get_token(emulator.arm_audience + "/.default")
    emulator.clock.advance(ID_TOKEN_LIFETIME * 3)
    assert credential.get_token("https://ml.azure.com/.default").token


def test_unknown_paths_are_arm_404s_not_a_guess(emulator: RunningEmulator) -> None:
    client = emulator.ml_client()
    with pytest.raises(HttpResponseError) as raised:
        client.compute.get("cpu-cluster")
    assert raised.value.status_code == 404


def test_start_with_azurite_gives_a_whole_workspace_to_the_unchanged_adapter(tmp_path, monkeypatch) -> None:
    """The benchmarks' entry point: emulator + its own Azurite; the adapter as the CLI builds it."""
    import os

    from mlops.workspace.azure import AzureWorkspace
    from tests.azure_emulator import start_with_azurite

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pt").write_bytes(b"weights")
    with start_with_azurite(tmp_path / "emu") as emu:
        for name, value in emu.actions_environment().items():
            monkeypatch.setenv(name, value)
        ws = AzureWorkspace.from_target(sleep=emu.clock.sleep, clock=emu.clock.monotonic)
        assert ws.register_model("tcn", tmp_path / "model").version == "1"
        assert emu.requests_to("/models/tcn/versions/1", "PUT")[0].status == 201
    assert "REQUESTS_CA_BUNDLE" not in os.environ or os.environ["REQUESTS_CA_BUNDLE"] != str(emu.ca_bundle)
