"""``mlops.yaml`` and the YAML files it points to, tied together as one typed and validated ``Config``.

Precedence (DESIGN.md section 4): the file (``--config``, env ``MLOPS_CONFIG``, default
``./mlops.yaml``), then ``MLOPS_*`` environment variables, then flags (``Overrides``). Everything is
validated when loaded, before any workspace is touched: a problem raises ``ConfigError`` naming the
file, the key and what was expected (exit 2).

Each file is read by the module that holds its kind: the Azure CLI v2 specs (endpoints, deployment
templates, the environment, the AutoML job) by ``mlops.specs``; the release settings (``rollout.yml``,
``profile.yml``, ``gates.yml``) by ``mlops.settings``; the field readers they share are
``mlops.yaml_fields``. The deployment templates are filled in per release with the slot name, the
registered model, the pinned environment and a staged code folder (``Config.online_deployment_spec`` /
``batch_deployment_spec``).

Environment variables:

====================  ==========================================================================
``MLOPS_CONFIG``      the configuration file
``MLOPS_MODEL``       model source: a folder holding ``model.pt``, ``azureml:NAME:VERSION``, or
                      ``job:NAME`` (the best trial of an AutoML job, on Azure ML or local)
``MLOPS_MODEL_NAME``  the registered model's name
``MLOPS_PROFILE``     the rollout/load profile (names in rollout.yml and profile.yml)
``MLOPS_BATCH_REFRESH``  ``true``/``false``: refresh the batch endpoint after promotion
``MLOPS_ENDPOINT``    the online endpoint's name (overrides endpoint.yml)
``MLOPS_BATCH_ENDPOINT``  the batch endpoint's name
====================  ==========================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlops.errors import ConfigError, RuleViolation
from mlops.settings.gates import Gates, read_gates
from mlops.settings.load_profile import LoadProfile, read_load_profile
from mlops.settings.rollout import Rollout, read_rollout
from mlops.specs import deployment
from mlops.specs.deployment import code_configuration
from mlops.specs.endpoint import read_batch_endpoint, read_online_endpoint
from mlops.specs.environment import load_environment_spec
from mlops.workspace.port import (
    AssetRef,
    BatchDeploymentSpec,
    BatchEndpointSpec,
    EnvironmentSpec,
    OnlineDeploymentSpec,
    OnlineEndpointSpec,
)
from mlops.yaml_fields import get_duration, get_int, get_mapping, get_path, get_str, parse_bool, read_yaml

DEFAULT_CONFIG = "mlops.yaml"


# ---------------------------------------------------------------------------------------------
# Typed configuration


@dataclass(frozen=True)
class ModelSource:
    name: str
    path: Path | None = None
    """A folder holding ``model.pt`` (registered by content hash)."""
    ref: AssetRef | None = None
    """An already registered model (``azureml:NAME:VERSION``)."""
    job: str | None = None
    """An AutoML job whose best trial is registered (``job:NAME`` or ``azureml://jobs/NAME/...``):
    an Azure ML job, or a local AutoML-shaped one (``mlops train --trials N --job NAME``)."""

    def describe(self) -> str:
        if self.job is not None:
            return f"job:{self.job}"
        return str(self.path) if self.path is not None else f"azureml:{self.ref}"


@dataclass(frozen=True)
class ModelEnvironment:
    """``environment.from_model`` in mlops.yaml: the serving environment made from the registered
    model's own conda file (an AutoML trial's ``conda_env_v_1_0_0.yml``) on a curated image, with
    the pins of ``unpin`` removed (``mlops.release.conda_file``)."""

    name: str
    image: str
    unpin: str | tuple[str, ...] = "trailing"
    description: str = ""


@dataclass(frozen=True)
class OnlineConfig:
    endpoint: OnlineEndpointSpec
    deployment_file: Path
    deployment: Mapping[str, Any]
    """The template's YAML mapping (name/model/environment are overridden)."""
    code_dir: Path
    scoring_script: str
    slots: tuple[str, ...]
    rollout: Rollout
    rollout_file: Path


BATCH_JOB_TIMEOUT_S = 1800.0
"""Default ``batch.job_timeout``: how long the smoke job may take from its invoke (see ``load_config``)."""


@dataclass(frozen=True)
class BatchConfig:
    refresh: bool
    endpoint: BatchEndpointSpec
    deployment_file: Path
    deployment: Mapping[str, Any]
    code_dir: Path
    scoring_script: str
    deployment_prefix: str
    smoke_input: Path
    min_output_rows: int
    keep: int
    job_timeout_s: float


@dataclass(frozen=True)
class LoadTestConfig:
    locustfile: Path
    profile: LoadProfile
    gates: Gates
    profile_file: Path
    gates_file: Path


@dataclass(frozen=True)
class Config:
    file: Path
    model: ModelSource
    environment: EnvironmentSpec
    """The fixed spec (``environment.spec``): used when the model carries no conda file."""
    environment_file: Path
    online: OnlineConfig
    batch: BatchConfig
    load_test: LoadTestConfig
    profile: str
    records: Path
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    environment_from_model: ModelEnvironment | None = None
    """``environment.from_model``: a model that carries a conda file gets its own environment."""

    def online_deployment_spec(self, name: str, model: AssetRef, environment: AssetRef, code_path: Path,
                               *, tags: Mapping[str, str] | None = None,
                               environment_variables: Mapping[str, str] | None = None) -> OnlineDeploymentSpec:
        """The online template with the slot name, model, pinned environment and staged code filled in
        (``mlops.specs.deployment``); ``environment_variables`` win over the template's."""
        return deployment.online_deployment_spec(
            self.online.deployment, self.online.deployment_file, endpoint_name=self.online.endpoint.name,
            name=name, model=model, environment=environment, code_path=code_path,
            scoring_script=self.online.scoring_script, tags=tags, environment_variables=environment_variables)

    def batch_deployment_name(self, model: AssetRef) -> str:
        return f"{self.batch.deployment_prefix}-v{model.version}"

    def batch_deployment_spec(self, model: AssetRef, environment: AssetRef, code_path: Path,
                              *, tags: Mapping[str, str] | None = None,
                              environment_variables: Mapping[str, str] | None = None) -> BatchDeploymentSpec:
        """The batch template filled in the same way, named ``batch_deployment_name(model)``."""
        return deployment.batch_deployment_spec(
            self.batch.deployment, self.batch.deployment_file, endpoint_name=self.batch.endpoint.name,
            name=self.batch_deployment_name(model), model=model, environment=environment, code_path=code_path,
            scoring_script=self.batch.scoring_script, tags=tags, environment_variables=environment_variables)


@dataclass(frozen=True)
class Overrides:
    """Flags that win over the file and the environment (``None``: not given)."""

    model: str | None = None
    model_name: str | None = None
    profile: str | None = None
    batch_refresh: bool | None = None
    endpoint: str | None = None
    batch_endpoint: str | None = None


# ---------------------------------------------------------------------------------------------
# Loading


def config_path(flag: str | None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(flag or env.get("MLOPS_CONFIG") or DEFAULT_CONFIG)


def load_config(path: str | Path | None = None, *, overrides: Overrides | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Load and validate everything ``mlops.yaml`` points to. Raises ``ConfigError`` (exit 2)."""
    env = os.environ if env is None else env
    overrides = overrides or Overrides()
    file = config_path(str(path) if path else None, env).resolve()
    raw = read_yaml(file, missing="file not found (pass --config or set MLOPS_CONFIG)"
                    if file.name == DEFAULT_CONFIG else "file not found")
    base = file.parent
    where = str(file)

    model_raw = get_mapping(raw, "model", where)
    model_name = overrides.model_name or env.get("MLOPS_MODEL_NAME") or get_str(model_raw, "name", where, prefix="model.")
    source = overrides.model or env.get("MLOPS_MODEL") or get_str(model_raw, "path", where, prefix="model.")
    model = _model_source(model_name, source, base, where)

    env_file, from_model = _environment_config(raw, base, where)
    environment = load_environment_spec(env_file)

    profile = overrides.profile or env.get("MLOPS_PROFILE") or str(raw.get("profile", "standard"))

    online_raw = get_mapping(raw, "online", where)
    endpoint_file = get_path(online_raw, "endpoint", base, where, prefix="online.", must_exist=True)
    online_endpoint = read_online_endpoint(endpoint_file, overrides.endpoint or env.get("MLOPS_ENDPOINT"))
    deployment_file = get_path(online_raw, "deployment", base, where, prefix="online.", must_exist=True)
    deployment_yaml = read_yaml(deployment_file)
    code_dir, scoring_script = code_configuration(deployment_yaml, deployment_file)
    slots_raw = online_raw.get("slots", ["blue", "green"])
    if (not isinstance(slots_raw, list) or len(slots_raw) != 2 or len(set(slots_raw)) != 2
            or not all(isinstance(slot, str) and 3 <= len(slot) <= 32 for slot in slots_raw)):
        raise ConfigError(f"expected two distinct deployment names of 3-32 characters, got {slots_raw!r}",
                          file=where, key="online.slots")
    rollout_file = get_path(online_raw, "rollout", base, where, prefix="online.", must_exist=True)
    rollout = read_rollout(rollout_file, profile)

    batch_raw = get_mapping(raw, "batch", where)
    refresh = overrides.batch_refresh
    if refresh is None and env.get("MLOPS_BATCH_REFRESH"):
        refresh = parse_bool(env["MLOPS_BATCH_REFRESH"], "MLOPS_BATCH_REFRESH", "environment")
    if refresh is None:
        refresh = parse_bool(batch_raw.get("refresh", True), "batch.refresh", where)
    batch_endpoint_file = get_path(batch_raw, "endpoint", base, where, prefix="batch.", must_exist=True)
    batch_endpoint = read_batch_endpoint(batch_endpoint_file,
                                         overrides.batch_endpoint or env.get("MLOPS_BATCH_ENDPOINT"))
    batch_deployment_file = get_path(batch_raw, "deployment", base, where, prefix="batch.", must_exist=True)
    batch_deployment_yaml = read_yaml(batch_deployment_file)
    batch_code_dir, batch_script = code_configuration(batch_deployment_yaml, batch_deployment_file)
    if batch_deployment_yaml.get("output_action", "append_row") not in ("append_row", "summary_only"):
        raise ConfigError("expected append_row or summary_only", file=str(batch_deployment_file), key="output_action")
    prefix = str(batch_raw.get("deployment_prefix", "tcn"))
    batch = BatchConfig(
        refresh=refresh,
        endpoint=batch_endpoint,
        deployment_file=batch_deployment_file,
        deployment=batch_deployment_yaml,
        code_dir=batch_code_dir,
        scoring_script=batch_script,
        deployment_prefix=prefix,
        smoke_input=get_path(batch_raw, "smoke_input", base, where, prefix="batch.", must_exist=True),
        min_output_rows=get_int(batch_raw, "min_output_rows", where, default=1, minimum=1, prefix="batch."),
        keep=get_int(batch_raw, "keep", where, default=2, minimum=1, prefix="batch."),
        # 30 min: on Azure the smoke job's clock starts at the invoke, before an AmlCompute cluster at
        # min_instances 0 has allocated a node, pulled the (multi-GB) image and mounted the input -
        # minutes each; the recorded sessions show 7 min for an online deployment's containers alone.
        job_timeout_s=get_duration(batch_raw, "job_timeout", where, default=BATCH_JOB_TIMEOUT_S, prefix="batch."),
    )

    load_raw = get_mapping(raw, "load_test", where)
    locustfile = get_path(load_raw, "locustfile", base, where, prefix="load_test.", must_exist=True)
    profile_file = get_path(load_raw, "profile", base, where, prefix="load_test.", must_exist=True)
    gates_file = get_path(load_raw, "gates", base, where, prefix="load_test.", must_exist=True)
    load_test = LoadTestConfig(
        locustfile=locustfile,
        profile=read_load_profile(profile_file, profile, base),
        gates=read_gates(gates_file, base),
        profile_file=profile_file,
        gates_file=gates_file,
    )

    records = base / str(raw.get("records", ".mlops/releases"))
    config = Config(file=file, model=model, environment=environment, environment_file=env_file,
                    online=OnlineConfig(online_endpoint, deployment_file, deployment_yaml, code_dir, scoring_script,
                                        tuple(slots_raw), rollout, rollout_file),
                    batch=batch, load_test=load_test, profile=profile, records=records, raw=raw,
                    environment_from_model=from_model)
    _check_templates(config)
    return config


def _check_templates(config: Config) -> None:
    """Build each deployment spec once with placeholders, so every template value is checked up front
    (a bad value stops the release before any change) by the same code that builds the real ones."""
    placeholder = AssetRef("check", "1")
    config.online_deployment_spec("check", placeholder, placeholder, config.online.code_dir)
    config.batch_deployment_spec(placeholder, placeholder, config.batch.code_dir)


def with_profile(config: Config, profile: str) -> Config:
    """The same configuration with another rollout/load profile (used by the demo)."""
    return replace(
        config,
        profile=profile,
        online=replace(config.online, rollout=read_rollout(config.online.rollout_file, profile)),
        load_test=replace(config.load_test, profile=read_load_profile(config.load_test.profile_file, profile,
                                                                      config.file.parent)),
    )


def _environment_config(raw: Mapping[str, Any], base: Path, where: str) -> tuple[Path, ModelEnvironment | None]:
    """``environment: PATH`` (a spec), or ``environment: {spec: PATH, from_model: {name, image, unpin}}``."""
    value = raw.get("environment")
    if isinstance(value, str):
        return get_path(raw, "environment", base, where, must_exist=True), None
    if not isinstance(value, dict):
        raise ConfigError(f"expected a spec path or a mapping with spec and from_model, got {value!r}", file=where,
                          key="environment")
    spec = get_path(value, "spec", base, where, prefix="environment.", must_exist=True)
    from_model = value.get("from_model")
    if from_model is None:
        return spec, None
    if not isinstance(from_model, dict):
        raise ConfigError("expected a mapping with name, image and unpin", file=where, key="environment.from_model")
    prefix = "environment.from_model."
    unpin = from_model.get("unpin", "trailing")
    if isinstance(unpin, list) and all(isinstance(u, str) and u.strip() for u in unpin):
        unpin_value: str | tuple[str, ...] = tuple(unpin)
    elif unpin == "trailing":
        unpin_value = "trailing"
    else:
        raise ConfigError(f"expected 'trailing' (the conda dependencies after the pip: block) or a list of "
                          f"dependency names, got {unpin!r}", file=where, key=prefix + "unpin")
    from mlops.workspace.rules import check_asset_name

    name = get_str(from_model, "name", where, prefix=prefix)
    try:
        check_asset_name("environment", name)
    except RuleViolation as error:
        raise ConfigError(str(error), file=where, key=prefix + "name") from None
    return spec, ModelEnvironment(name=name, image=get_str(from_model, "image", where, prefix=prefix),
                                  unpin=unpin_value, description=str(from_model.get("description", "")))


def _model_source(name: str, source: str, base: Path, where: str) -> ModelSource:
    if source.startswith(("job:", "azureml://jobs/")):
        job = source.removeprefix("job:").removeprefix("azureml://jobs/").split("/")[0]
        if not job:
            raise ConfigError(f"expected job:NAME or azureml://jobs/NAME/..., got {source!r}", file=where,
                              key="model.path")
        return ModelSource(name=name, job=job)
    if source.startswith("azureml:"):
        try:
            return ModelSource(name=name, ref=AssetRef.parse(source))
        except ValueError as error:
            raise ConfigError(str(error), file=where, key="model.path") from None
    return ModelSource(name=name, path=(base / source).resolve())


def require_model_folder(config: Config) -> Path:
    """The model folder, checked: it exists and holds ``model.pt`` (somewhere inside)."""
    path = config.model.path
    if path is None:
        raise ConfigError("the model is a registered reference or a job, not a folder", file=str(config.file),
                          key="model.path")
    if not path.is_dir():
        raise ConfigError(f"expected a folder holding model.pt, {path} is not a folder "
                          "(train one: mlops train --data synthetic --out out/model)", file=str(config.file),
                          key="model.path")
    if not any(path.rglob("model.pt")):
        raise ConfigError(f"no model.pt under {path}", file=str(config.file), key="model.path")
    return path
