"""The adapter's boundary: construction without network, credentials never asked, SDK exceptions
translated into the project's with the fix in the message."""

from __future__ import annotations

import pytest
from azure.ai.ml.exceptions import ErrorTarget, ValidationException
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.identity import CredentialUnavailableError

from mlops.errors import AuthError, NotFoundError, RuleViolation, UsageError, WorkspaceError
from mlops.workspace import AzureTarget, connect
from mlops.workspace.azure import AzureWorkspace, target_from_environment
from mlops.workspace.port import Workspace
from tests.azure.fake_mlclient import Rig, http_error

URI = "azureml://subscriptions/1111-2222/resourceGroups/rg-ml/workspaces/ws-forecast"


def test_connect_builds_the_adapter_without_touching_the_network(_no_tenant: list) -> None:
    workspace = connect(URI)
    assert isinstance(workspace, AzureWorkspace) and isinstance(workspace, Workspace)
    assert workspace.uri == URI
    assert _no_tenant == [], "no token was requested at construction"


def test_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE"):
        AzureWorkspace.from_environment()
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "1111-2222")
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "rg-ml")
    with pytest.raises(UsageError, match="AZUREML_WORKSPACE") as caught:
        AzureWorkspace.from_environment()
    assert "AZURE_RESOURCE_GROUP" not in str(caught.value)
    monkeypatch.setenv("AZUREML_WORKSPACE", "ws-forecast")
    assert target_from_environment() == AzureTarget("1111-2222", "rg-ml", "ws-forecast")
    assert AzureWorkspace.from_environment().uri == URI


def test_a_real_client_without_credentials_fails_with_login_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real MLClient and DefaultAzureCredential with nothing to log in with: the first
    operation asks for a token, which is unavailable, and the user reads how to log in. A request
    leaving the machine would trip the socket guard (AssertionError) instead."""
    from azure.identity import DefaultAzureCredential

    asked: list[tuple] = []

    def unavailable(self, *scopes, **kwargs):  # noqa: ANN001, ARG001
        asked.append(scopes)
        raise CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token from the included "
                                         "credentials.")

    monkeypatch.setattr(DefaultAzureCredential, "get_token", unavailable)
    monkeypatch.setattr(DefaultAzureCredential, "get_token_info", unavailable)
    workspace = AzureWorkspace.from_target(AzureTarget("1111-2222", "rg-ml", "ws-forecast"))
    assert asked == []
    with pytest.raises(AuthError, match="az login") as caught:
        workspace.get_online_endpoint("tcn-forecast")
    assert "azure/login" in str(caught.value) and "id-token: write" in str(caught.value)
    assert len(asked) == 1


@pytest.mark.parametrize(("error", "cls", "needle"), [
    (CredentialUnavailableError("EnvironmentCredential authentication unavailable"), AuthError, "az login"),
    (ClientAuthenticationError("AADSTS70021: No matching federated identity record found for presented assertion "
                               "subject 'repo:acme/forecast:environment:production'"), AuthError,
     "repo:<owner>/<repo>:environment:<environment>"),
    (http_error(403, "AuthorizationFailed: The client does not have authorization to perform action "
                     "'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write'"), AuthError,
     "AzureML Data Scientist"),
    (http_error(404, "ResourceNotFound"), NotFoundError, "not found in the workspace"),
    (http_error(400, "BadArgument: bad"), RuleViolation, "BadArgument"),
    (http_error(501, "NotImplemented"), WorkspaceError, "HTTP 501"),  # 500 is transient: retried
    (ServiceRequestError("Failed to resolve 'management.azure.com'"), WorkspaceError, "cannot reach Azure ML"),
    (ValidationException(message="name is invalid", no_personal_data_message="invalid",
                         target=ErrorTarget.ONLINE_ENDPOINT), RuleViolation, "name is invalid"),
])
def test_sdk_errors_become_project_errors(rig: Rig, error: Exception, cls: type, needle: str) -> None:
    rig.azure.fail_next["online_endpoints.get_keys"] = error
    with pytest.raises(cls) as caught:
        rig.workspace.get_keys("tcn-forecast")
    assert type(caught.value) is cls
    assert needle in str(caught.value) and "get keys of online endpoint tcn-forecast" in str(caught.value)
    assert caught.value.__cause__ is error


def test_missing_resources_are_none_or_not_found(rig: Rig) -> None:
    assert rig.workspace.get_online_endpoint("tcn-forecast") is None
    assert rig.workspace.get_batch_endpoint("tcn-forecast-batch") is None
    assert rig.workspace.list_models("tcn") == []
    with pytest.raises(NotFoundError, match="get keys of online endpoint tcn-forecast"):
        rig.workspace.get_keys("tcn-forecast")
    with pytest.raises(NotFoundError, match="get batch job nope"):
        rig.workspace.get_batch_job("nope")


def test_a_403_is_not_retried(rig: Rig) -> None:
    rig.azure.fail_next["online_endpoints.list"] = http_error(403, "AuthorizationFailed")
    with pytest.raises(AuthError, match="Storage Blob Data Contributor"):
        rig.workspace.list_online_endpoints()
    assert rig.clock.slept == []
    assert len(rig.azure.calls_to("online_endpoints", "list")) == 1


def test_bad_input_is_refused_before_any_call(rig: Rig, tmp_path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        rig.workspace.register_model("tcn", tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="at least one file"):
        rig.workspace.invoke_batch("tcn-forecast-batch", empty)
    with pytest.raises(RuleViolation, match="endpoint name"):
        rig.workspace.acquire_release_lock("-bad-", "me")
    assert rig.azure.calls == []


def test_cli_status_against_azure_without_login_exits_1_with_advice(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    """``mlops --workspace azureml://... status`` with nobody logged in: exit 1, the advice on
    stderr, nothing on stdout, and no request left the machine (socket guard)."""
    from azure.identity import DefaultAzureCredential

    from mlops.cli import main

    def unavailable(self, *scopes, **kwargs):  # noqa: ANN001, ARG001
        raise CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token")

    monkeypatch.setattr(DefaultAzureCredential, "get_token", unavailable)
    monkeypatch.setattr(DefaultAzureCredential, "get_token_info", unavailable)
    assert main(["--workspace", URI, "status"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "az login" in err and "azure/login" in err
