"""Model and environment versions at the wire, against the recorded sequences
(``shared/azure-recordings/model_archive_restore.jsonl``): the real SDK's requests and its reading
of the answers."""

from __future__ import annotations

from azure.ai.ml.constants import ListViewType

from tests.azure_emulator import RunningEmulator


def test_model_versions_as_recorded(workspace, specs, actions: RunningEmulator) -> None:
    ws, ml = workspace, workspace._ml
    v1 = ws.register_model("tcn", specs.model_dir("v1"))
    first = actions.requests_to("/models/tcn/versions", "GET")[0]
    assert first.status == 404, "before the first version the list is a 404 (ModelNotFound)"
    put = actions.requests_to("/models/tcn/versions/1", "PUT")[0]
    assert put.status == 201 and put.body["properties"]["modelUri"].startswith("azureml://subscriptions/")
    assert "/datastores/workspaceblobstore/paths/LocalUpload/" in put.body["properties"]["modelUri"]
    ws.register_model("tcn", specs.model_dir("v2"))
    ml.models.archive(name="tcn", version="1")
    archive = actions.requests_to("/models/tcn/versions/1", "PUT")[-1]
    assert archive.status == 200 and archive.body["properties"]["isArchived"] is True
    assert [m.version for m in ml.models.list(name="tcn")] == ["2"]
    assert [m.version for m in ml.models.list(name="tcn", list_view_type=ListViewType.ARCHIVED_ONLY)] == ["1"]
    assert sorted(m.version for m in ml.models.list(name="tcn", list_view_type=ListViewType.ALL)) == ["1", "2"]
    assert ml.models.get(name="tcn", version="1").stage == "Archived", "an archived version is still readable"
    assert ws.get_model("tcn").version == "2", "latest is $orderBy=createdtime desc, $top=1"
    ml.models.restore(name="tcn", version="1")
    assert sorted(m.version for m in ml.models.list(name="tcn")) == ["1", "2"]
    assert ws.register_model("tcn", specs.model_dir("v1")).version == v1.version, "same bytes, same version"


def test_an_environment_version_is_built_from_the_conda_file_once(workspace, specs, actions: RunningEmulator) -> None:
    ws = workspace
    env = ws.ensure_environment(specs.environment)
    (put,) = actions.requests_to("/environments/tcn-inference/versions/1", "PUT")
    assert put.status == 201 and "azureml-inference-server-http" in put.body["properties"]["condaFile"]
    assert put.body["properties"]["image"] == specs.environment.image
    assert ws._ml.environments.get(name="tcn-inference", version="1").conda_file["name"] == "tcn-inference"
    assert ws.ensure_environment(specs.environment) == env
    assert len(actions.requests_to("/environments/tcn-inference/versions/1", "PUT")) == 1
