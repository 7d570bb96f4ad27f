"""The fake MLClient is no kinder than Azure: each rule here is one the wire emulator
(``tests/azure_emulator``, replaying the SDK's own HTTP) or azure-ai-ml 1.35's source shows, and each
test failed on the fake before it modelled the rule.

* What the caller of ``models.create_or_update`` gets for a taken version is azure-core's
  ``ResourceExistsError``, rendered ``"(UserError) ...\\nCode: UserError\\nMessage: ..."`` - never the
  SDK's ``AssetPathException`` (``ModelOperations.create_or_update`` compares ``str(e)`` with
  ``ASSET_PATH_ERROR``, which that rendering never equals; seen at the wire, commit bbf208b).
* A re-PUT of an asset version with the same files / definition is an update, not an error
  (``tests/azure_emulator/routes/assets.py`` ``_put``).
* At most 20 deployments per endpoint, the traffic rules in one place (``tests/azure_emulator/online_rules.py``).
* ``get_keys`` follows the endpoint's auth mode (``OnlineEndpointOperations._get_online_credentials``);
  ``regenerateKeys`` of a token endpoint is a 400 (``routes/online.py``).
"""

from __future__ import annotations

import pytest
from azure.ai.ml._artifacts._constants import ASSET_PATH_ERROR
from azure.ai.ml.entities import Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model
from azure.ai.ml.entities._endpoint.online_endpoint import EndpointAuthKeys, EndpointAuthToken
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from mlops.errors import MlopsError, UsageError
from tests.azure.fake_mlclient import FakeMLClient, Rig, http_error
from tests.azure.test_release_scenarios import first_release

TAKEN = "(UserError) Asset paths cannot be updated.\nCode: UserError\nMessage: Asset paths cannot be updated."
"""``str()`` of the error the adapter got at the wire for a taken model version (tests/azure_wire/test_defects.py)."""


@pytest.mark.parametrize(("status", "message", "cls", "text"), [
    (409, "Asset paths cannot be updated.", ResourceExistsError, TAKEN),
    (404, "ResourceNotFound: model tcn:9 not found", HttpResponseError,
     "(ResourceNotFound) model tcn:9 not found\nCode: ResourceNotFound\nMessage: model tcn:9 not found"),
    (400, "BadRequest: no", HttpResponseError, "(BadRequest) no\nCode: BadRequest\nMessage: no"),
])
def test_errors_are_rendered_as_azure_core_renders_an_arm_error(status, message, cls, text) -> None:
    error = http_error(status, message)
    assert isinstance(error, cls) and error.status_code == status
    assert str(error) == text and error.message == text


def test_a_taken_model_version_is_azure_cores_409_not_the_sdks_asset_path_exception(specs) -> None:
    client = FakeMLClient()
    client.models.create_or_update(Model(name="tcn", version="1", path=str(specs.model_dir("v1"))))
    with pytest.raises(ResourceExistsError) as caught:
        client.models.create_or_update(Model(name="tcn", version="1", path=str(specs.model_dir("v2"))))
    assert type(caught.value) is ResourceExistsError and caught.value.status_code == 409
    assert str(caught.value) == TAKEN != ASSET_PATH_ERROR
    assert {k[1] for k in client.azure.models} == {"1"}, "nothing changed"
    assert b"weights v1" in client.azure.model_files[("tcn", "1")]["model-v1/model.pt"]


def test_a_model_version_put_again_with_the_same_files_is_an_update(specs) -> None:
    client = FakeMLClient()
    first = client.models.create_or_update(Model(name="tcn", version="1", path=str(specs.model_dir("v1"))))
    again = client.models.create_or_update(Model(name="tcn", version="1", path=str(specs.model_dir("v1")),
                                                 tags={"stage": "prod"}))
    assert again.path == first.path and "/LocalUpload/" in first.path and first.path.endswith("/model-v1")
    assert again.tags == {"stage": "prod"}


@pytest.mark.parametrize(("extra", "refused"), [("", False), ("      - pandas==3.1.1\n", True)])
def test_an_environment_version_put_again_is_an_update_unless_its_definition_changes(specs, tmp_path, extra,
                                                                                      refused) -> None:
    client = FakeMLClient()
    spec = specs.environment
    client.environments.create_or_update(Environment(name=spec.name, version="1", image=spec.image,
                                                     conda_file=str(spec.conda_file)))
    conda = tmp_path / "again.yml"
    conda.write_text(spec.conda_file.read_text() + extra)
    again = Environment(name=spec.name, version="1", image=spec.image, conda_file=str(conda), tags={"k": "v"})
    if refused:
        with pytest.raises(ResourceExistsError, match=r"\(UserError\) Environment tcn-inference:1 already exists "
                                                      r"with a different definition"):
            client.environments.create_or_update(again)
        assert client.azure.environments[(spec.name, "1")].tags == {}
    else:
        assert client.environments.create_or_update(again).tags == {"k": "v"}


def test_a_21st_deployment_of_an_endpoint_is_refused_by_the_service_too(rig: Rig, specs) -> None:
    """The adapter checks the quota first (``mlops.workspace.rules``); the service refuses anyway
    (another process may have added one meanwhile). (Names need no rule of the fake's: the SDK's own
    serialization refuses a bad endpoint or deployment name before sending - ``_to_rest_object``,
    ``validate_endpoint_or_deployment_name``.)"""
    model, env = first_release(rig.workspace, specs)
    for index in range(19):
        rig.workspace.create_online_deployment(specs.deployment(f"dep{index:02d}", model, env))
    assert len([k for k in rig.azure.online_deployments if k[0] == "tcn-forecast"]) == 20
    extra = ManagedOnlineDeployment(name="one-too-many", endpoint_name="tcn-forecast", model=f"azureml:{model}",
                                    environment=f"azureml:{env}", instance_type="Standard_DS3_v2", instance_count=1)
    with pytest.raises(HttpResponseError, match="Endpoint 'tcn-forecast' already has 20 deployments") as caught:
        FakeMLClient(rig.azure).online_deployments.begin_create_or_update(extra)
    assert caught.value.status_code == 400
    FakeMLClient(rig.azure).online_deployments.begin_create_or_update(  # an update of one of the 20 is fine
        ManagedOnlineDeployment(name="dep00", endpoint_name="tcn-forecast", model=f"azureml:{model}",
                                environment=f"azureml:{env}", instance_type="Standard_DS3_v2", instance_count=1))


@pytest.mark.parametrize(("mode", "credentials"), [("key", EndpointAuthKeys), ("aml_token", EndpointAuthToken)])
def test_get_keys_follows_the_auth_mode(mode: str, credentials: type) -> None:
    client = FakeMLClient()
    client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="tcn-forecast", auth_mode=mode))
    assert type(client.online_endpoints.get_keys("tcn-forecast")) is credentials


def test_a_token_endpoint_has_no_keys_to_get_or_regenerate(rig: Rig, specs) -> None:
    rig.workspace.ensure_online_endpoint(type(specs.endpoint)(name="tcn-forecast", auth_mode="aml_token"))
    with pytest.raises(UsageError, match="does not use key auth"):
        rig.workspace.get_keys("tcn-forecast")
    with pytest.raises(MlopsError, match="Keys are not available for endpoint 'tcn-forecast'"):
        rig.workspace.regenerate_key("tcn-forecast", "primary")


def test_an_aad_token_endpoints_credentials_come_from_the_clients_credential(rig: Rig, specs) -> None:
    rig.workspace.ensure_online_endpoint(type(specs.endpoint)(name="tcn-forecast", auth_mode="aad_token"))
    with pytest.raises(AssertionError, match="asked for an Azure token"):
        FakeMLClient(rig.azure).online_endpoints.get_keys("tcn-forecast")
    assert rig.credential.requests, "the client's credential was asked, not a key list"
