"""The Azure adapter's defects of issue 13 (the review against azure-ai-ml 1.35, the docs and
azureml-examples), one narrow test each, on the stricter fake (``fake_mlclient``: archived versions
hidden by default lists, azure-core's 409 for a taken model version, batch deployments not
ready at once, the score output on the batch job's child step, a batch environment without
``azureml-core`` failing its job)."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError

from mlops.errors import ConflictError, DeploymentFailedError, NotFoundError
from mlops.workspace.port import EnvironmentSpec
from tests.azure.fake_mlclient import FakeModelOperations, Rig, http_error
from tests.azure.test_release_scenarios import first_release


def _smoke_input(tmp_path: Path) -> Path:
    folder = tmp_path / "smoke"
    folder.mkdir(exist_ok=True)
    (folder / "2018-08.csv").write_text("date,count\n2018-08-01,100\n")
    return folder


# versions ------------------------------------------------------------------------------------
def test_an_archived_model_version_is_not_chosen_again(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    assert ws.register_model("tcn", specs.model_dir("v1")).version == "1"
    azure.archived.add(("models", "tcn", "1"))
    assert ws.register_model("tcn", specs.model_dir("v2")).version == "2", "v1 is archived, not free"
    assert ws.register_model("tcn", specs.model_dir("v1")).version == "1", "the archived version's bytes are found"
    assert len(azure.calls_to("models", "create_or_update")) == 2


def test_a_taken_model_version_is_reported_as_such_not_retried(rig: Rig, specs, monkeypatch) -> None:
    ws, azure = rig.workspace, rig.azure
    ws.register_model("tcn", specs.model_dir("v1"))
    monkeypatch.setattr(FakeModelOperations, "list", lambda self, **kwargs: [])  # v1 made unseen (a race)
    with pytest.raises(ConflictError, match=r"register model tcn:1: that version already exists with other "
                                            r"content .*archived") as caught:
        ws.register_model("tcn", specs.model_dir("v2"))
    assert "in progress" not in str(caught.value)
    # what azure-ai-ml 1.35 lets through (tests/azure/test_fake_fidelity.py), not its AssetPathException
    assert type(caught.value.__cause__) is ResourceExistsError
    assert len(azure.calls_to("models", "create_or_update")) == 2 and rig.clock.slept == [], "no retry"


def test_an_archived_environment_version_is_not_chosen_again(rig: Rig, specs, tmp_path) -> None:
    ws, azure = rig.workspace, rig.azure
    assert ws.ensure_environment(specs.environment).version == "1"
    azure.archived.add(("environments", "tcn-inference", "1"))
    conda = tmp_path / "conda2.yml"
    conda.write_text(specs.environment.conda_file.read_text() + "      - pandas==3.1.1\n")
    changed = EnvironmentSpec(name="tcn-inference", image=specs.environment.image, conda_file=conda)
    assert ws.ensure_environment(changed).version == "2"
    assert [c.method for c in azure.calls_to("environments")].count("create_or_update") == 2


def test_an_environment_version_taken_twice_is_a_version_conflict_not_in_progress(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    azure.fail_next["environments.create_or_update"] = http_error(409, "Conflict: version 1 exists")
    original = azure.record

    def conflict_every_time(group, method, args, kwargs):  # noqa: ANN001
        if (group, method) == ("environments", "create_or_update"):
            azure.fail_next["environments.create_or_update"] = http_error(409, "Conflict: version 1 exists")
        return original(group, method, args, kwargs)

    azure.record = conflict_every_time  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match=r"create environment tcn-inference:1: that version already exists") as caught:
        ws.ensure_environment(specs.environment)
    assert "in progress" not in str(caught.value) and rig.clock.slept == []


# batch ---------------------------------------------------------------------------------------
def test_the_batch_deployment_is_waited_for_until_it_reports_succeeded(rig: Rig, specs, tmp_path) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.ensure_batch_endpoint(specs.batch_endpoint)
    azure.batch_ready_after = 3
    lines: list[str] = []
    deployment = ws.create_batch_deployment(specs.batch_deployment("tcn-v1", model, env), progress=lines.append)
    assert deployment.state == "Succeeded"
    assert sum("waiting for Succeeded" in line for line in lines) == 2 and len(rig.clock.slept) >= 2
    job = ws.invoke_batch("tcn-forecast-batch", _smoke_input(tmp_path), deployment_name="tcn-v1")
    assert ws.get_batch_job(job.name).status == "Completed"


def test_a_batch_deployment_whose_provisioning_fails_is_a_failed_deployment(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.ensure_batch_endpoint(specs.batch_endpoint)
    azure.batch_failing_provisioning.add("tcn-v1")
    with pytest.raises(DeploymentFailedError, match="tcn-v1 on batch endpoint tcn-forecast-batch: provisioning "
                                                    "state Failed"):
        ws.create_batch_deployment(specs.batch_deployment("tcn-v1", model, env))


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_transient_statuses_of_the_batch_invoke_are_retried(rig: Rig, specs, tmp_path, status: int) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.ensure_batch_endpoint(specs.batch_endpoint)
    ws.create_batch_deployment(specs.batch_deployment("tcn-v1", model, env))
    azure.batch_invoke_errors = [http_error(status, "ServiceUnavailable"), http_error(status, "ServiceUnavailable")]
    slept = len(rig.clock.slept)
    job = ws.invoke_batch("tcn-forecast-batch", _smoke_input(tmp_path), deployment_name="tcn-v1")
    assert job.name and len(azure.calls_to("batch_endpoints", "invoke")) == 3 and len(rig.clock.slept) == slept + 2


def test_batch_deployment_yaml_logging_level_and_description_reach_azure(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.ensure_batch_endpoint(specs.batch_endpoint)
    ws.create_batch_deployment(specs.batch_deployment("tcn-v1", model, env, logging_level="warning",
                                                      description="nightly TCN v1"))
    body = azure.calls_to("batch_deployments", "begin_create_or_update")[-1].body
    assert body["properties"]["loggingLevel"].lower() == "warning"
    assert body["properties"]["description"] == "nightly TCN v1"


def test_the_output_is_the_configured_file_from_the_child_step_and_nothing_else(rig: Rig, specs, tmp_path) -> None:
    ws, azure = rig.workspace, rig.azure
    model, env = first_release(rig.workspace, specs)
    ws.ensure_batch_endpoint(specs.batch_endpoint)
    ws.create_batch_deployment(specs.batch_deployment("tcn-v1", model, env))
    job = ws.invoke_batch("tcn-forecast-batch", _smoke_input(tmp_path), deployment_name="tcn-v1")
    assert azure.job_files.get((job.name, "score")) is None, "the pipeline parent holds no score file"
    output = ws.download_batch_output(job.name, tmp_path / "out")
    assert output.name == "predictions.csv" and "2018-08.csv,tcn-v1" in output.read_text()
    # only job_metadata.json there: no other file is taken for the predictions
    azure.job_files[(f"{job.name}-batchscoring", "score")] = {"job_metadata.json": b"{}"}
    with pytest.raises(NotFoundError, match=rf"batch job {job.name} has no output file 'predictions.csv'.*found: "
                                            rf"{job.name}-batchscoring: named-outputs/score/job_metadata.json"):
        ws.download_batch_output(job.name, tmp_path / "out2")


def test_a_batch_environment_without_azureml_core_fails_its_job_naming_the_package(rig: Rig, specs, tmp_path) -> None:
    ws = rig.workspace
    conda = tmp_path / "serving-only.yml"
    conda.write_text("dependencies:\n  - python=3.11\n  - pip:\n      - torch==2.13.0\n")
    env = ws.ensure_environment(EnvironmentSpec(name="serving-only", image=specs.environment.image,
                                                conda_file=conda)).ref
    model = ws.register_model("tcn", specs.model_dir("v1")).ref
    ws.ensure_batch_endpoint(specs.batch_endpoint)
    ws.create_batch_deployment(specs.batch_deployment("tcn-v1", model, env))
    job = ws.invoke_batch("tcn-forecast-batch", _smoke_input(tmp_path), deployment_name="tcn-v1")
    assert ws.get_batch_job(job.name).status == "Failed"
    assert "lacks azureml-core, azureml-dataset-runtime" in ws.get_batch_job_logs(job.name)


# online --------------------------------------------------------------------------------------
def test_an_endpoint_name_taken_in_the_region_is_not_retried_and_says_so(rig: Rig, specs) -> None:
    rig.azure.fail_next["online_endpoints.begin_create_or_update"] = http_error(
        409, "(UserError) The specified endpoint name 'tcn-forecast' is not available. Endpoint names must be "
             "unique within the region. Please choose a different name and try again.")
    with pytest.raises(ConflictError, match="name is taken in this Azure region") as caught:
        rig.workspace.ensure_online_endpoint(specs.endpoint)
    assert "in progress" not in str(caught.value) and rig.clock.slept == []


def test_invoke_reads_uri_and_key_once_and_again_after_regeneration_or_401(rig: Rig, specs) -> None:
    ws, azure = rig.workspace, rig.azure
    first_release(rig.workspace, specs)
    ws.invoke("tcn-forecast", b"{}")
    gets, keys = len(azure.calls_to("online_endpoints", "get")), len(azure.calls_to("online_endpoints", "get_keys"))
    for _ in range(3):
        ws.invoke("tcn-forecast", b"{}")
    assert (len(azure.calls_to("online_endpoints", "get")), len(azure.calls_to("online_endpoints", "get_keys"))) \
        == (gets, keys), "no ARM call per request"
    new = ws.regenerate_key("tcn-forecast", "primary")
    ws.invoke("tcn-forecast", b"{}")
    assert rig.server.requests[-1][2]["Authorization"] == f"Bearer {new.primary_key}"
    azure.keys["tcn-forecast"][0] = "rotated-elsewhere"  # another process regenerated it
    assert b"blue" in ws.invoke("tcn-forecast", b"{}")
    assert rig.server.requests[-1][2]["Authorization"] == "Bearer rotated-elsewhere"
    assert [r[2]["Authorization"] for r in rig.server.requests[-2:]] == [f"Bearer {new.primary_key}",
                                                                       "Bearer rotated-elsewhere"]


def test_an_endpoint_created_empty_by_an_older_lock_takes_the_specs_auth_mode(rig: Rig, specs) -> None:
    """Older versions created a missing endpoint empty (key auth) to hold their lock tag; the lock is a
    blob lease now and creates nothing, but such an endpoint still takes the spec's auth mode."""
    ws, azure = rig.workspace, rig.azure
    ws.acquire_release_lock("tcn-forecast", "gh-run-1")
    assert "tcn-forecast" not in azure.online_endpoints, "the lock creates no endpoint"
    ws.ensure_online_endpoint(type(specs.endpoint)(name="tcn-forecast", auth_mode="key"))  # as the old lock did
    spec = type(specs.endpoint)(name="tcn-forecast", auth_mode="aad_token", description="DAU forecast")
    assert ws.ensure_online_endpoint(spec).auth_mode.lower() == "aad_token"
    body = azure.calls_to("online_endpoints", "begin_create_or_update")[-1].body
    assert body["properties"]["authMode"] == "AADToken", "the REST body Azure receives"
    assert ws.get_release_lock("tcn-forecast").holder == "gh-run-1", "the endpoint update leaves the lease alone"

