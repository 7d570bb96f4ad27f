"""What the adapter sends equals what ``az ml ... create -f <the YAML>`` would send.

The release reads ``endpoints/*/deployment.yml`` through ``mlops.config`` into the port's specs;
the adapter turns those specs back into SDK entities. Here the REST body the adapter produces is
compared with the body of the same YAML loaded by azure-ai-ml's own loaders (with the release's
overrides: slot name, model, pinned environment). A field the YAML sets that the spec or the
adapter drops shows up as a difference.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

from azure.ai.ml import (
    load_batch_deployment,
    load_batch_endpoint,
    load_online_deployment,
    load_online_endpoint,
)

from mlops.config import load_config
from mlops.workspace.port import AssetRef
from tests.azure.fake_mlclient import make_workspace

REPO = Path(__file__).resolve().parents[2]
MODEL = AssetRef("tcn-dau", "3")
ENVIRONMENT = AssetRef("tcn-inference", "2")


def _normalized(body: dict[str, Any]) -> dict[str, Any]:
    """Drop what legitimately differs: where the code comes from (uploaded by the SDK either way)
    and the ``azureml:`` prefix, which the loaders strip and the operations resolve alike."""
    props = dict(body["properties"])
    props["codeConfiguration"] = {**props["codeConfiguration"], "codeId": "<uploaded>"}
    for key in ("environmentId", "compute"):
        if isinstance(props.get(key), str):
            props[key] = props[key].removeprefix("azureml:")
    model = props.get("model")
    if isinstance(model, str):
        props["model"] = model.removeprefix("azureml:")
    elif isinstance(model, dict):
        props["model"] = {**model, "assetId": model["assetId"].removeprefix("azureml:")}
    if props.get("loggingLevel") == "info":  # the service default; the port's spec has no logging level
        props.pop("loggingLevel")
    props = {k: v for k, v in props.items() if v not in ({}, None)}
    return {**body, "properties": props}


def _release_with_repo_config(tmp_path: Path):
    config = load_config(REPO / "mlops.yaml", env={})
    rig = make_workspace()
    azure, ws = rig.azure, rig.workspace
    # the assets the deployments pin exist in the workspace
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.pt").write_bytes(b"weights")
    for version in ("1", "2", "3"):
        (model_dir / "model.pt").write_bytes(f"weights {version}".encode())
        ws.register_model(MODEL.name, model_dir)
    conda = tmp_path / "conda.yml"
    shutil.copy(config.environment.conda_file, conda)
    ws.ensure_environment(config.environment)
    conda.write_text(conda.read_text() + "\n# changed\n")
    ws.ensure_environment(type(config.environment)(name=config.environment.name, image=config.environment.image,
                                                   conda_file=conda))
    ws.ensure_online_endpoint(config.online.endpoint)
    ws.create_online_deployment(config.online_deployment_spec("green", MODEL, ENVIRONMENT, config.online.code_dir))
    ws.ensure_batch_endpoint(config.batch.endpoint)
    ws.create_batch_deployment(config.batch_deployment_spec(MODEL, ENVIRONMENT, config.batch.code_dir))
    return config, azure


def test_online_and_batch_bodies_equal_the_sdk_loaded_yaml(tmp_path: Path) -> None:
    warnings.simplefilter("ignore")
    config, azure = _release_with_repo_config(tmp_path)
    overrides = [{"model": f"azureml:{MODEL}"}, {"environment": f"azureml:{ENVIRONMENT}"}]

    online = load_online_deployment(config.online.deployment_file, params_override=[{"name": "green"}, *overrides])
    ours = azure.calls_to("online_deployments", "begin_create_or_update")[0].body
    assert _normalized(ours) == _normalized(online._to_rest_object(location="westeurope").as_dict())

    name = config.batch_deployment_name(MODEL)
    batch = load_batch_deployment(config.batch.deployment_file, params_override=[{"name": name}, *overrides])
    ours = azure.calls_to("batch_deployments", "begin_create_or_update")[0].body
    assert _normalized(ours) == _normalized(batch._to_rest_object(location="westeurope").as_dict())


def test_endpoint_bodies_equal_the_sdk_loaded_yaml(tmp_path: Path) -> None:
    warnings.simplefilter("ignore")
    config, azure = _release_with_repo_config(tmp_path)
    online = load_online_endpoint(REPO / "endpoints/online/endpoint.yml")
    (create,) = [c.body for c in azure.calls_to("online_endpoints", "begin_create_or_update")]
    assert create == online._to_rest_online_endpoint(location="westeurope").as_dict()
    batch = load_batch_endpoint(REPO / "endpoints/batch/endpoint.yml")
    (create,) = [c.body for c in azure.calls_to("batch_endpoints", "begin_create_or_update")]
    expected = batch._to_rest_batch_endpoint(location="westeurope").as_dict()
    assert create["properties"]["description"] == expected["properties"]["description"]
    assert create["properties"]["authMode"] == expected["properties"]["authMode"] == "aadToken"


def test_environment_body_equals_the_sdk_loaded_yaml(tmp_path: Path) -> None:
    from azure.ai.ml import load_environment

    warnings.simplefilter("ignore")
    config = load_config(REPO / "mlops.yaml", env={})
    rig = make_workspace()
    rig.workspace.ensure_environment(config.environment)
    (create,) = rig.azure.calls_to("environments", "create_or_update")
    loaded = load_environment(config.environment_file)._to_rest_object().as_dict()["properties"]
    ours = create.body["properties"]
    assert (ours["image"], ours["condaFile"]) == (loaded["image"], loaded["condaFile"])
    assert ours["tags"]["mlops.content_hash"] == config.environment.content_hash()
