"""The adapter's credential in GitHub Actions: a fresh GitHub ID token whenever Entra ID needs one.

azure-identity's real ``ClientAssertionCredential`` runs here, offline: its HTTP pipeline gets a
transport that answers as Microsoft Entra ID's token endpoint does (the client-assertion grant,
``POST /{tenant}/oauth2/v2.0/token``), and refuses an assertion older than GitHub's ID-token
lifetime with AADSTS700024, on a virtual clock. GitHub's ID-token endpoint is a function with the
request shape of ``@actions/core``'s ``getIDToken`` (see ``mlops.workspace.azure.credential``).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import HttpResponse, HttpTransport

from mlops.errors import AuthError
from mlops.workspace import AzureTarget
from mlops.workspace.azure import AzureWorkspace
from mlops.workspace.azure.credential import GITHUB_AUDIENCE, github_assertion, make_credential
from tests.azure.fake_mlclient import make_workspace

ID_TOKEN_LIFETIME_S = 300.0
"""A GitHub ID token is valid for about 5 minutes (issue 13: "valid about 5 minutes")."""
ARM = "https://management.azure.com/.default"
AML = "https://ml.azure.com/.default"

ACTIONS_ENV = {
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token-123",
    "AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "AZURE_TENANT_ID": "66666666-7777-8888-9999-000000000000",
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0


class FakeGitHub:
    """GitHub's ID-token endpoint: each request mints a token stamped with the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.requests: list[tuple[str, dict]] = []

    def __call__(self, url: str, headers, timeout: float) -> tuple[int, bytes]:  # noqa: ANN001, ARG002
        self.requests.append((url, dict(headers)))
        if headers.get("Authorization") != f"Bearer {ACTIONS_ENV['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}":
            return 401, b'{"message": "bad request token"}'
        return 200, json.dumps({"value": f"gh-jwt@{self.clock.now}"}).encode()


class _Response(HttpResponse):
    def __init__(self, request, status: int, body: dict) -> None:  # noqa: ANN001
        super().__init__(request, None)
        self.status_code = status
        self.reason = "OK" if status == 200 else "Bad Request"
        self.headers = {"Content-Type": "application/json"}
        self.content_type = "application/json"
        self._body = json.dumps(body).encode()

    def body(self) -> bytes:
        return self._body


class FakeEntra(HttpTransport):
    """Entra ID's token endpoint for the client-assertion grant: an assertion past its lifetime is
    refused with AADSTS700024 (the answer issue 13 quotes); else an access token for the scope."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.grants: list[dict] = []

    def __enter__(self) -> FakeEntra:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request, **kwargs):  # noqa: ANN001, ANN201, ARG002
        form = dict(request.body)
        self.grants.append(form)
        assert request.method == "POST" and urlsplit(request.url).path.endswith("/oauth2/v2.0/token")
        issued = float(form["client_assertion"].rpartition("@")[2])
        if self.clock.now - issued > ID_TOKEN_LIFETIME_S:
            return _Response(request, 400, {
                "error": "invalid_client",
                "error_description": "AADSTS700024: Client assertion is not within its valid time range. "
                                     f"Current time: {self.clock.now}, expiry time of assertion {issued + 300}."})
        return _Response(request, 200, {"access_token": f"at-{form['scope']}", "expires_in": 3600,
                                        "token_type": "Bearer"})


def test_in_actions_every_new_token_uses_a_fresh_github_id_token() -> None:
    clock = Clock()
    github, entra = FakeGitHub(clock), FakeEntra(clock)
    credential = make_credential(ACTIONS_ENV, http_get=github, transport=entra)
    assert type(credential).__name__ == "ClientAssertionCredential"
    assert credential.get_token(ARM).token == f"at-{ARM}"
    clock.now += 12 * 60  # a deployment's long-running operation later: the first ID token is stale
    assert credential.get_token(AML).token == f"at-{AML}", "the ML scope is first asked for now"
    assert credential.get_token(ARM).token == f"at-{ARM}", "access tokens are still cached"
    assert [g["client_assertion"] for g in entra.grants] == ["gh-jwt@0.0", "gh-jwt@720.0"]
    url, headers = github.requests[0]
    assert url == ACTIONS_ENV["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=api%3A%2F%2FAzureADTokenExchange"
    assert headers["Authorization"] == "Bearer request-token-123" and len(github.requests) == 2
    assert {g["client_id"] for g in entra.grants} == {ACTIONS_ENV["AZURE_CLIENT_ID"]}


def test_a_stale_assertion_is_refused_with_aadsts700024_and_reported_with_its_cause() -> None:
    """What ``azure/login`` + the Azure CLI amount to: one ID token, reused after it expired."""
    clock = Clock()
    entra = FakeEntra(clock)
    first = github_assertion(ACTIONS_ENV, http_get=FakeGitHub(clock))()
    from azure.identity import ClientAssertionCredential

    stale = ClientAssertionCredential(ACTIONS_ENV["AZURE_TENANT_ID"], ACTIONS_ENV["AZURE_CLIENT_ID"],
                                      lambda: first, transport=entra)
    stale.get_token(ARM)
    clock.now += 12 * 60
    with pytest.raises(ClientAuthenticationError) as caught:
        stale.get_token(AML)
    error = make_workspace().workspace._translate("list steps of batch job b-1", caught.value)
    assert isinstance(error, AuthError)
    assert "AADSTS700024" in str(error) and "about 5 minutes" in str(error)
    assert "ACTIONS_ID_TOKEN_REQUEST_URL" in str(error) and "az login" not in str(error)


@pytest.mark.parametrize("missing", sorted(ACTIONS_ENV))
def test_without_any_of_the_four_variables_it_is_default_azure_credential(missing: str) -> None:
    environ = {k: v for k, v in ACTIONS_ENV.items() if k != missing}
    assert type(make_credential(environ)).__name__ == "DefaultAzureCredential"


def test_github_refusing_an_id_token_names_the_missing_permission() -> None:
    def refuse(url, headers, timeout):  # noqa: ANN001, ARG001
        return 403, b'{"message": "Can\'t issue ID_TOKEN for audience"}'

    with pytest.raises(AuthError, match="permissions: id-token: write"):
        github_assertion(ACTIONS_ENV, http_get=refuse)()


def test_the_audience_is_the_token_exchange_one_and_joins_an_existing_query() -> None:
    github = FakeGitHub(Clock())
    github_assertion({**ACTIONS_ENV, "ACTIONS_ID_TOKEN_REQUEST_URL": "https://gh.example/idtoken"}, http_get=github)()
    query = parse_qs(urlsplit(github.requests[0][0]).query)
    assert query == {"audience": [GITHUB_AUDIENCE]}


def test_the_adapter_built_in_actions_signs_in_with_the_assertion_credential(monkeypatch) -> None:
    for name, value in ACTIONS_ENV.items():
        monkeypatch.setenv(name, value)
    workspace = AzureWorkspace.from_target(AzureTarget("sub", "rg", "ws"))
    assert type(workspace._credential).__name__ == "ClientAssertionCredential"
