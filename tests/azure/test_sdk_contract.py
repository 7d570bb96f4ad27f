"""The adapter against azure-ai-ml's real contracts: signatures and REST serialization.

* Every method the adapter calls, with every positional and keyword argument it passes, binds to
  the signature of the real operation class in ``azure.ai.ml.operations`` (a keyword the real
  method only takes through ``**kwargs`` must be read from them in its source). An SDK upgrade that
  renames or drops something the adapter uses fails here, not in production.
* The fake's own methods exist on the real classes with compatible parameters, so the fake
  cannot drift from the SDK either.
* Every entity the adapter builds went through the SDK's REST serialization inside the fake;
  here its wire shape is checked field by field, and the batch job input is serialized with the
  schema the SDK's ``invoke`` uses.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import azure.ai.ml.operations as real_operations
import pytest
from azure.ai.ml import Input

from mlops.workspace.port import AutoMLJobRequest, Workspace
from tests.azure.fake_mlclient import FAKE_GROUPS, FakeAzure, make_workspace
from tests.azure.test_automl_registration import seed_automl_job
from tests.conftest import REPO

UNUSED_BY_THE_ADAPTER = {("batch_endpoints", "begin_delete")}
"""Fake methods kept for the release-pipeline tests; the adapter itself never calls them."""


def _real(group: str):
    return getattr(real_operations, FAKE_GROUPS[group][1])


def exercise_everything(specs, tmp_path: Path) -> FakeAzure:
    """Drive every port method (and the AutoML registration) through the adapter."""
    rig = make_workspace()
    ws, azure = rig.workspace, rig.azure
    env = ws.ensure_environment(specs.environment)
    ws.get_environment(env.name, env.version)
    model = ws.register_model("tcn", specs.model_dir("v1"))
    ws.get_model("tcn")
    ws.list_models("tcn")
    seed_automl_job(azure)
    automl = ws.register_model_from_job("tcn-automl", "automl-parent")
    assert (ws.download_model("tcn-automl", automl.version, tmp_path / "dl") / "model" / "model.pt").is_file()
    submitted = ws.submit_automl_job(AutoMLJobRequest(REPO / "jobs" / "automl-tcn-forecasting.yml", name="sweep-1"))
    assert ws.get_training_job(submitted.name).primary_metric == "normalized_root_mean_squared_error"
    assert "sweep-1" in {job.name for job in ws.list_training_jobs()}
    ws.acquire_release_lock("tcn-forecast", "run-1")
    ws.ensure_online_endpoint(specs.endpoint)
    ws.list_online_endpoints()
    ws.create_online_deployment(specs.deployment("blue", model.ref, env.ref))
    azure.failing_deployments["green"] = "boom"
    with pytest.raises(Exception, match="did not become ready"):
        ws.create_online_deployment(specs.deployment("green", model.ref, env.ref))
    ws.set_traffic("tcn-forecast", {"blue": 100}, {})
    ws.list_online_deployments("tcn-forecast")
    ws.get_online_deployment("tcn-forecast", "blue")
    ws.get_keys("tcn-forecast")
    ws.regenerate_key("tcn-forecast", "secondary")
    ws.invoke("tcn-forecast", b"{}", deployment_name="blue")
    ws.get_logs("tcn-forecast", "blue", lines=10)
    ws.delete_online_deployment("tcn-forecast", "green")
    ws.get_release_lock("tcn-forecast")
    ws.release_release_lock("tcn-forecast", "run-1")
    ws.ensure_batch_endpoint(specs.batch_endpoint)
    ws.list_batch_endpoints()
    ws.get_batch_endpoint(specs.batch_endpoint.name)
    ws.create_batch_deployment(specs.batch_deployment("tcn-v1", model.ref, env.ref))
    ws.create_batch_deployment(specs.batch_deployment("tcn-v0", model.ref, env.ref))
    ws.list_batch_deployments(specs.batch_endpoint.name)
    ws.set_batch_default(specs.batch_endpoint.name, "tcn-v1")
    ws.delete_batch_deployment(specs.batch_endpoint.name, "tcn-v0")
    inputs = tmp_path / "smoke"
    inputs.mkdir()
    (inputs / "a.csv").write_text("date,count\n")
    job = ws.invoke_batch(specs.batch_endpoint.name, inputs)
    ws.get_batch_job(job.name)
    ws.download_batch_output(job.name, tmp_path / "out")
    ws.get_batch_job_logs(job.name)
    ws.delete_online_endpoint("tcn-forecast")
    return azure


@pytest.fixture
def azure(specs, tmp_path: Path) -> FakeAzure:
    return exercise_everything(specs, tmp_path)


def test_the_adapter_implements_every_port_method_with_its_signature() -> None:
    from mlops.workspace.azure import AzureWorkspace

    port_methods = {n for n, v in vars(Workspace).items() if callable(v) and not n.startswith("_")}
    assert port_methods, "the port has methods"
    for name in sorted(port_methods):
        ours = inspect.signature(getattr(AzureWorkspace, name))
        theirs = inspect.signature(getattr(Workspace, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        for param, spec in theirs.parameters.items():
            assert ours.parameters[param].kind == spec.kind, (name, param)
            assert ours.parameters[param].default == spec.default, (name, param)


def test_every_sdk_call_binds_to_the_real_signature(azure: FakeAzure) -> None:
    called = {(c.group, c.method) for c in azure.calls}
    offered = {(group, name) for group, (fake, _) in FAKE_GROUPS.items()
               for name, value in vars(fake).items() if callable(value) and not name.startswith("_")}
    assert called == offered - UNUSED_BY_THE_ADAPTER, "every SDK method the adapter uses is checked"
    for call in azure.calls:
        real = getattr(_real(call.group), call.method, None)
        assert real is not None, f"{call.group}.{call.method} does not exist in azure-ai-ml"
        signature = inspect.signature(real)
        try:
            bound = signature.bind(None, *call.args, **call.kwargs)
        except TypeError as exc:
            pytest.fail(f"{call.group}.{call.method}{call.args, call.kwargs} does not fit {signature}: {exc}")
        explicit = set(signature.parameters)
        source = inspect.getsource(real)
        for keyword in call.kwargs:
            if keyword not in explicit:
                assert re.search(rf"kwargs\.(?:get|pop)\(\s*[\"']{keyword}[\"']", source), (
                    f"{call.group}.{call.method} takes {keyword!r} only through **kwargs and never reads it")
        assert bound is not None


def test_the_fake_matches_the_real_operation_classes() -> None:
    for group, (fake, real_name) in FAKE_GROUPS.items():
        real = getattr(real_operations, real_name)
        for name, method in vars(fake).items():
            if name.startswith("_") or not callable(method):
                continue
            assert hasattr(real, name), f"fake {group}.{name} is not in {real_name}"
            fake_params = inspect.signature(method).parameters
            real_params = inspect.signature(getattr(real, name)).parameters
            for param, spec in fake_params.items():
                if spec.kind in (spec.VAR_KEYWORD, spec.VAR_POSITIONAL):
                    assert any(p.kind == spec.kind for p in real_params.values()), (group, name, param)
                    continue
                assert param in real_params, f"fake {group}.{name} has {param!r}, {real_name}.{name} has not"
                assert real_params[param].kind == spec.kind, (group, name, param)


def _bodies(azure: FakeAzure, group: str) -> list[dict]:
    return [c.body for c in azure.calls_to(group, "begin_create_or_update") + azure.calls_to(group, "create_or_update")
            if c.body is not None]


def test_online_entities_serialize_to_the_shape_azure_accepts(azure: FakeAzure) -> None:
    endpoints = _bodies(azure, "online_endpoints")
    assert endpoints and all(b["properties"]["authMode"] == "Key" and b["location"] for b in endpoints)
    deployment = _bodies(azure, "online_deployments")[0]["properties"]
    assert deployment["endpointComputeType"] == "Managed"
    assert deployment["model"] == "azureml:tcn:1"
    assert deployment["environmentId"] == "azureml:tcn-inference:1"
    assert deployment["codeConfiguration"]["scoringScript"] == "score.py"
    assert deployment["instanceType"] == "Standard_DS3_v2"
    assert deployment["requestSettings"] == {"maxQueueWait": "PT0.5S", "maxConcurrentRequestsPerInstance": 1,
                                             "requestTimeout": "PT5S"}
    assert deployment["livenessProbe"]["failureThreshold"] == 30
    assert deployment["readinessProbe"]["initialDelay"] == "PT10S"
    assert _bodies(azure, "online_deployments")[0]["sku"] == {"name": "Default", "capacity": 1}
    traffic_puts = [b["properties"]["traffic"] for b in endpoints]
    assert {"blue": 100} in traffic_puts


def test_assets_serialize_with_their_content_hash_tags(azure: FakeAzure) -> None:
    (environment,) = _bodies(azure, "environments")
    props = environment["properties"]
    assert props["image"].startswith("mcr.microsoft.com/azureml/")
    assert "torch==2.13.0" in props["condaFile"]
    assert re.fullmatch(r"[0-9a-f]{64}", props["tags"]["mlops.content_hash"])
    models = _bodies(azure, "models")
    assert len(models) == 2
    assert all(m["properties"]["modelType"] == "custom_model" for m in models)
    assert all(re.fullmatch(r"[0-9a-f]{64}", m["properties"]["tags"]["mlops.content_hash"]) for m in models)
    assert models[1]["properties"]["tags"]["mlops.automl_child_job"] == "automl-parent_2"


def test_batch_entities_and_job_input_serialize(azure: FakeAzure) -> None:
    from azure.ai.ml._schema._deployment.batch.batch_job import BatchJobSchema
    from azure.ai.ml.constants._common import BASE_PATH_CONTEXT_KEY, PARAMS_OVERRIDE_KEY
    from azure.ai.ml.constants._endpoint import EndpointYamlFields

    deployment = _bodies(azure, "batch_deployments")[0]["properties"]
    assert deployment["compute"] == "cpu-cluster"
    assert deployment["resources"]["instanceCount"] == 1
    assert deployment["miniBatchSize"] == 10 and deployment["maxConcurrencyPerInstance"] == 1
    assert deployment["retrySettings"] == {"maxRetries": 3, "timeout": "PT30S"}
    assert deployment["errorThreshold"] == -1
    assert deployment["outputAction"] == "AppendRow" and deployment["outputFileName"] == "predictions.csv"
    assert deployment["environmentId"] == "azureml:tcn-inference:1"
    defaults = [b["properties"].get("defaults") for b in _bodies(azure, "batch_endpoints")]
    assert defaults[-1] == {"deploymentName": "tcn-v1"}
    (invoke,) = azure.calls_to("batch_endpoints", "invoke")
    given: Input = invoke.kwargs["input"]
    assert Path(given.path).is_absolute(), "a local absolute path: the SDK uploads it"
    # what the SDK sends once it has uploaded the folder (its invoke does exactly this)
    uploaded = Input(type=given.type, path="azureml://datastores/workspaceblobstore/paths/LocalUpload/x/smoke/")
    body = BatchJobSchema(context={BASE_PATH_CONTEXT_KEY: Path("."), PARAMS_OVERRIDE_KEY: [
        {EndpointYamlFields.BATCH_JOB_INPUT_DATA: {"UriFolder": uploaded}}]}).load(data={})
    assert body["inputData"]["UriFolder"]["jobInputType"] == "UriFolder"


def test_the_fake_poller_matches_azure_cores_lropoller() -> None:
    from azure.core.polling import LROPoller

    from tests.azure.fake_mlclient import FakePoller

    for name in ("result", "done", "wait", "status"):
        real = inspect.signature(getattr(LROPoller, name)).parameters
        fake = inspect.signature(getattr(FakePoller, name)).parameters
        assert list(fake) == list(real), name
