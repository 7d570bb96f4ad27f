"""``mlops.yaml`` and the YAML specs it points to, as typed and validated objects.

Precedence (DESIGN.md section 4): the file (``--config``, env ``MLOPS_CONFIG``, default
``./mlops.yaml``), then ``MLOPS_*`` environment variables, then flags (``Overrides``). Everything is
validated when loaded, before any workspace is touched: a problem raises ``ConfigError`` naming the
file, the key and what was expected (exit 2).

The deployment templates (``endpoints/online/deployment.yml``, ``endpoints/batch/deployment.yml``)
are Azure CLI v2 files; the release fills in the slot name, the registered model and the pinned
environment (``Config.online_deployment_spec`` / ``batch_deployment_spec``) and a staged code folder.

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

import yaml

from mlops.errors import ConfigError, RuleViolation
from mlops.settings.durations import parse_duration
from mlops.settings.gates import AbsoluteGates, Gates, QualityGates, RelativeGates
from mlops.settings.rollout import HealthCheck, Rollout, ShadowCheck, parse_steps
from mlops.settings.served import ServedCheck
from mlops.workspace.port import (
    AssetRef,
    BatchDeploymentSpec,
    BatchEndpointSpec,
    BatchRetrySettings,
    EnvironmentSpec,
    OnlineDeploymentSpec,
    OnlineEndpointSpec,
    ProbeSettings,
    RequestSettings,
)

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
class LoadProfile:
    """The shape of a locust run (``load_tests/profile.yml``): the load test's, and - with the health
    check's users and duration - each health check's."""

    users: int = 4
    spawn_rate: float = 4.0
    run_time_s: float = 10.0
    data: Path | None = None
    """A CSV of the series the requests are cut from."""
    context_days: int = 28
    horizon: int = 7
    warmup_s: float = 0.0
    """Run this long first and drop those samples: a deployment that just started (cold caches,
    first allocations) is not judged on its first requests."""


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
        """The template with the slot name, model, pinned environment and staged code filled in;
        ``environment_variables`` win over the template's (e.g. the pickle trust of this model)."""
        data = self.online.deployment
        where = str(self.online.deployment_file)
        return OnlineDeploymentSpec(
            endpoint_name=self.online.endpoint.name,
            name=name,
            model=model,
            environment=environment,
            code_path=code_path,
            scoring_script=self.online.scoring_script,
            instance_type=str(data.get("instance_type", "Standard_DS3_v2")),
            instance_count=_int(data, "instance_count", where, default=1, minimum=1),
            environment_variables={**_str_mapping(data, "environment_variables", where),
                                   **dict(environment_variables or {})},
            request_settings=_request_settings(data.get("request_settings"), where),
            liveness_probe=_probe(data.get("liveness_probe"), where, "liveness_probe"),
            readiness_probe=_probe(data.get("readiness_probe"), where, "readiness_probe"),
            tags={**_str_mapping(data, "tags", where), **(tags or {})},
        )

    def batch_deployment_name(self, model: AssetRef) -> str:
        return f"{self.batch.deployment_prefix}-v{model.version}"

    def batch_deployment_spec(self, model: AssetRef, environment: AssetRef, code_path: Path,
                              *, tags: Mapping[str, str] | None = None,
                              environment_variables: Mapping[str, str] | None = None) -> BatchDeploymentSpec:
        data = self.batch.deployment
        where = str(self.batch.deployment_file)
        retry = data.get("retry_settings") or {}
        resources = data.get("resources") or {}
        return BatchDeploymentSpec(
            endpoint_name=self.batch.endpoint.name,
            name=self.batch_deployment_name(model),
            model=model,
            environment=environment,
            code_path=code_path,
            scoring_script=self.batch.scoring_script,
            compute=str(data.get("compute", "cpu-cluster")).removeprefix("azureml:"),
            instance_count=_int(resources, "instance_count", where, default=1, minimum=1, prefix="resources."),
            max_concurrency_per_instance=_int(data, "max_concurrency_per_instance", where, default=1, minimum=1),
            mini_batch_size=_int(data, "mini_batch_size", where, default=10, minimum=1),
            retry_settings=BatchRetrySettings(
                max_retries=_int(retry, "max_retries", where, default=3, minimum=0, prefix="retry_settings."),
                timeout=_int(retry, "timeout", where, default=30, minimum=1, prefix="retry_settings."),
            ),
            error_threshold=_int(data, "error_threshold", where, default=-1, minimum=-1),
            output_action=data.get("output_action", "append_row"),
            output_file_name=str(data.get("output_file_name", "predictions.csv")),
            environment_variables={**_str_mapping(data, "environment_variables", where),
                                   **dict(environment_variables or {})},
            tags={**_str_mapping(data, "tags", where), **(tags or {})},
            description=str(data.get("description", "") or ""),
            logging_level=str(data.get("logging_level", "info") or "info"),
        )


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
    raw = _read_yaml(file)
    base = file.parent
    where = str(file)

    model_raw = _mapping(raw, "model", where)
    model_name = overrides.model_name or env.get("MLOPS_MODEL_NAME") or _str(model_raw, "name", where, prefix="model.")
    source = overrides.model or env.get("MLOPS_MODEL") or _str(model_raw, "path", where, prefix="model.")
    model = _model_source(model_name, source, base, where)

    env_file, from_model = _environment_config(raw, base, where)
    environment = _environment_spec(env_file)

    profile = overrides.profile or env.get("MLOPS_PROFILE") or str(raw.get("profile", "standard"))

    online_raw = _mapping(raw, "online", where)
    endpoint_file = _path(online_raw, "endpoint", base, where, prefix="online.", must_exist=True)
    endpoint_yaml = _read_yaml(endpoint_file)
    endpoint_name = overrides.endpoint or env.get("MLOPS_ENDPOINT") or _str(endpoint_yaml, "name", str(endpoint_file))
    online_endpoint = OnlineEndpointSpec(
        name=endpoint_name,
        auth_mode=str(endpoint_yaml.get("auth_mode", "key")),
        description=str(endpoint_yaml.get("description", "")),
        tags={str(k): str(v) for k, v in (endpoint_yaml.get("tags") or {}).items()},
    )
    if online_endpoint.auth_mode != "key":
        raise ConfigError(f"expected auth_mode: key, got {online_endpoint.auth_mode!r}", file=str(endpoint_file),
                          key="auth_mode")
    deployment_file = _path(online_raw, "deployment", base, where, prefix="online.", must_exist=True)
    deployment_yaml = _read_yaml(deployment_file)
    code_dir, scoring_script = _code_configuration(deployment_yaml, deployment_file)
    slots_raw = online_raw.get("slots", ["blue", "green"])
    if (not isinstance(slots_raw, list) or len(slots_raw) != 2 or len(set(slots_raw)) != 2
            or not all(isinstance(slot, str) and 3 <= len(slot) <= 32 for slot in slots_raw)):
        raise ConfigError(f"expected two distinct deployment names of 3-32 characters, got {slots_raw!r}",
                          file=where, key="online.slots")
    rollout_file = _path(online_raw, "rollout", base, where, prefix="online.", must_exist=True)
    rollout = _rollout(rollout_file, profile)

    batch_raw = _mapping(raw, "batch", where)
    refresh = overrides.batch_refresh
    if refresh is None and env.get("MLOPS_BATCH_REFRESH"):
        refresh = _bool(env["MLOPS_BATCH_REFRESH"], "MLOPS_BATCH_REFRESH", "environment")
    if refresh is None:
        refresh = _bool(batch_raw.get("refresh", True), "batch.refresh", where)
    batch_endpoint_file = _path(batch_raw, "endpoint", base, where, prefix="batch.", must_exist=True)
    batch_endpoint_yaml = _read_yaml(batch_endpoint_file)
    batch_endpoint = BatchEndpointSpec(
        name=overrides.batch_endpoint or env.get("MLOPS_BATCH_ENDPOINT")
        or _str(batch_endpoint_yaml, "name", str(batch_endpoint_file)),
        description=str(batch_endpoint_yaml.get("description", "")),
    )
    batch_deployment_file = _path(batch_raw, "deployment", base, where, prefix="batch.", must_exist=True)
    batch_deployment_yaml = _read_yaml(batch_deployment_file)
    batch_code_dir, batch_script = _code_configuration(batch_deployment_yaml, batch_deployment_file)
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
        smoke_input=_path(batch_raw, "smoke_input", base, where, prefix="batch.", must_exist=True),
        min_output_rows=_int(batch_raw, "min_output_rows", where, default=1, minimum=1, prefix="batch."),
        keep=_int(batch_raw, "keep", where, default=2, minimum=1, prefix="batch."),
        # 30 min: on Azure the smoke job's clock starts at the invoke, before an AmlCompute cluster at
        # min_instances 0 has allocated a node, pulled the (multi-GB) image and mounted the input -
        # minutes each; the recorded sessions show 7 min for an online deployment's containers alone.
        job_timeout_s=_duration(batch_raw, "job_timeout", where, default=BATCH_JOB_TIMEOUT_S, prefix="batch."),
    )

    load_raw = _mapping(raw, "load_test", where)
    locustfile = _path(load_raw, "locustfile", base, where, prefix="load_test.", must_exist=True)
    profile_file = _path(load_raw, "profile", base, where, prefix="load_test.", must_exist=True)
    gates_file = _path(load_raw, "gates", base, where, prefix="load_test.", must_exist=True)
    load_test = LoadTestConfig(
        locustfile=locustfile,
        profile=_load_profile(profile_file, profile, base),
        gates=_gates(gates_file, base),
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
        online=replace(config.online, rollout=_rollout(config.online.rollout_file, profile)),
        load_test=replace(config.load_test, profile=_load_profile(config.load_test.profile_file, profile,
                                                                  config.file.parent)),
    )


def _str_mapping(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping of names to values", file=where, key=key)
    return {str(k): str(v) for k, v in value.items()}


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError("file not found (pass --config or set MLOPS_CONFIG)" if path.name == DEFAULT_CONFIG
                          else "file not found", file=str(path))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {error}", file=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"expected a YAML mapping at the top, got {type(data).__name__}", file=str(path))
    return data


def _mapping(data: Mapping[str, Any], key: str, where: str, prefix: str = "") -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"expected a mapping, got {value!r}", file=where, key=prefix + key)
    return value


def _str(data: Mapping[str, Any], key: str, where: str, prefix: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"expected a non-empty string, got {value!r}", file=where, key=prefix + key)
    return value


def _int(data: Mapping[str, Any], key: str, where: str, *, default: int, minimum: int, prefix: str = "") -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"expected an integer >= {minimum}, got {value!r}", file=where, key=prefix + key)
    return value


def _float(data: Mapping[str, Any], key: str, where: str, *, default: float | None, prefix: str = "") -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"expected a non-negative number, got {value!r}", file=where, key=prefix + key)
    return float(value)


def _bool(value: object, key: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise ConfigError(f"expected true or false, got {value!r}", file=where, key=key)


def _duration(data: Mapping[str, Any], key: str, where: str, *, default: float, prefix: str = "") -> float:
    if key not in data:
        return default
    try:
        return parse_duration(data[key])
    except ValueError as error:
        raise ConfigError(str(error), file=where, key=prefix + key) from None


def _path(data: Mapping[str, Any], key: str, base: Path, where: str, *, prefix: str = "",
          must_exist: bool = False) -> Path:
    value = _str(data, key, where, prefix)
    path = (base / value).resolve()
    if must_exist and not path.exists():
        raise ConfigError(f"{path} does not exist", file=where, key=prefix + key)
    return path


def _environment_config(raw: Mapping[str, Any], base: Path, where: str) -> tuple[Path, ModelEnvironment | None]:
    """``environment: PATH`` (a spec), or ``environment: {spec: PATH, from_model: {name, image, unpin}}``."""
    value = raw.get("environment")
    if isinstance(value, str):
        return _path(raw, "environment", base, where, must_exist=True), None
    if not isinstance(value, dict):
        raise ConfigError(f"expected a spec path or a mapping with spec and from_model, got {value!r}", file=where,
                          key="environment")
    spec = _path(value, "spec", base, where, prefix="environment.", must_exist=True)
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

    name = _str(from_model, "name", where, prefix=prefix)
    try:
        check_asset_name("environment", name)
    except RuleViolation as error:
        raise ConfigError(str(error), file=where, key=prefix + "name") from None
    return spec, ModelEnvironment(name=name, image=_str(from_model, "image", where, prefix=prefix),
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


def _environment_spec(path: Path) -> EnvironmentSpec:
    from mlops.environment_spec import load_environment_spec

    return load_environment_spec(path)


def _code_configuration(data: Mapping[str, Any], file: Path) -> tuple[Path, str]:
    code = _mapping(data, "code_configuration", str(file))
    code_dir = (file.parent / _str(code, "code", str(file), "code_configuration.")).resolve()
    script = _str(code, "scoring_script", str(file), "code_configuration.")
    if not (code_dir / script).is_file():
        raise ConfigError(f"scoring script {code_dir / script} does not exist", file=str(file),
                          key="code_configuration.scoring_script")
    return code_dir, script


def _request_settings(data: object, where: str) -> RequestSettings:
    if data is None:
        return RequestSettings()
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", file=where, key="request_settings")
    defaults = RequestSettings()
    return RequestSettings(**{
        name: _int(data, name, where, default=getattr(defaults, name), minimum=1, prefix="request_settings.")
        for name in ("request_timeout_ms", "max_concurrent_requests_per_instance", "max_queue_wait_ms")})


def _probe(data: object, where: str, key: str) -> ProbeSettings:
    if data is None:
        return ProbeSettings()
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", file=where, key=key)
    defaults = ProbeSettings()
    return ProbeSettings(**{
        name: _int(data, name, where, default=getattr(defaults, name), minimum=0, prefix=f"{key}.")
        for name in ("initial_delay", "period", "timeout", "success_threshold", "failure_threshold")})


def _profile_entry(data: Mapping[str, Any], profile: str, where: str) -> Any:
    profiles = _mapping(data, "profiles", where)
    if profile not in profiles:
        raise ConfigError(f"no profile {profile!r}; expected one of {sorted(profiles)} "
                          "(--profile, MLOPS_PROFILE or `profile:` in mlops.yaml)", file=where, key="profiles")
    return profiles[profile]


def _rollout(path: Path, profile: str) -> Rollout:
    data = _read_yaml(path)
    where = str(path)
    try:
        steps = parse_steps(_profile_entry(data, profile, where))
    except ValueError as error:
        raise ConfigError(str(error), file=where, key=f"profiles.{profile}") from None
    after = data.get("after_success") or {}
    failure = data.get("on_failure") or {}
    old = after.get("old_deployment", "delete")
    failed = failure.get("candidate", "delete")
    if old not in ("delete", "keep"):
        raise ConfigError(f"expected delete or keep, got {old!r}", file=where, key="after_success.old_deployment")
    if failed not in ("delete", "keep"):
        raise ConfigError(f"expected delete or keep, got {failed!r}", file=where, key="on_failure.candidate")
    health_raw = data.get("health") or {}
    if not isinstance(health_raw, dict):
        raise ConfigError("expected a mapping", file=where, key="health")
    health = HealthCheck(
        duration_s=_duration(health_raw, "duration", where, default=5.0, prefix="health."),
        users=_int(health_raw, "users", where, default=4, minimum=1, prefix="health."),
        max_error_rate=_float(health_raw, "max_error_rate", where, default=0.0, prefix="health.") or 0.0,
        max_p95_ms=_float(health_raw, "max_p95_ms", where, default=None, prefix="health."),
        min_requests=_int(health_raw, "min_requests", where, default=20, minimum=1, prefix="health."),
        metrics=_served(health_raw.get("deployment_metrics"), where, "health.deployment_metrics.", too_few="report"),
    )
    shadow_raw = data.get("shadow") or {}
    if not isinstance(shadow_raw, dict):
        raise ConfigError("expected a mapping", file=where, key="shadow")
    shadow = ShadowCheck(users=_int(shadow_raw, "users", where, default=4, minimum=1, prefix="shadow."),
                         served=_served(shadow_raw, where, "shadow."))
    return Rollout(steps=steps, old_deployment=old, failed_candidate=failed, health=health, shadow=shadow)


def _served(raw: Any, where: str, prefix: str, *, too_few: str = "inconclusive") -> ServedCheck:
    """Limits on what a deployment served (``mlops.release.served``): shadow step, health metrics."""
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping", file=where, key=prefix.rstrip("."))
    return ServedCheck(
        min_requests=_int(raw, "min_requests", where, default=20, minimum=1, prefix=prefix),
        max_error_rate=_float(raw, "max_error_rate", where, default=0.0, prefix=prefix) or 0.0,
        max_p95_ms=_float(raw, "max_p95_ms", where, default=None, prefix=prefix),
        p95_tolerance=_float(raw, "p95_tolerance", where, default=0.5, prefix=prefix),
        p95_slack_ms=_float(raw, "p95_slack_ms", where, default=25.0, prefix=prefix) or 0.0,
        too_few=too_few,
    )


def _load_profile(path: Path, profile: str, base: Path) -> LoadProfile:
    data = _read_yaml(path)
    where = str(path)
    entry = _profile_entry(data, profile, where)
    if not isinstance(entry, dict):
        raise ConfigError("expected a mapping with users, spawn_rate, run_time", file=where, key=f"profiles.{profile}")
    prefix = f"profiles.{profile}."
    payload = data.get("payload") or {}
    data_path = None
    if payload.get("data"):
        data_path = (base / str(payload["data"])).resolve()
        if not data_path.is_file():
            raise ConfigError(f"{data_path} does not exist", file=where, key="payload.data")
    return LoadProfile(
        users=_int(entry, "users", where, default=4, minimum=1, prefix=prefix),
        spawn_rate=_float(entry, "spawn_rate", where, default=4.0, prefix=prefix) or 1.0,
        run_time_s=_duration(entry, "run_time", where, default=10.0, prefix=prefix),
        warmup_s=_duration(entry, "warmup", where, default=0.0, prefix=prefix),
        data=data_path,
        context_days=_int(payload, "context_days", where, default=28, minimum=1, prefix="payload."),
        horizon=_int(payload, "horizon", where, default=7, minimum=1, prefix="payload."),
    )


def _gates(path: Path, base: Path) -> Gates:
    data = _read_yaml(path)
    where = str(path)
    absolute_raw = data.get("absolute") or {}
    relative_raw = data.get("relative") or {}
    quality_raw = data.get("quality") or {}
    for key, value in (("absolute", absolute_raw), ("relative", relative_raw), ("quality", quality_raw)):
        if not isinstance(value, dict):
            raise ConfigError("expected a mapping", file=where, key=key)
    absolute = AbsoluteGates(
        p50_ms=_float(absolute_raw, "p50_ms", where, default=None, prefix="absolute."),
        p95_ms=_float(absolute_raw, "p95_ms", where, default=None, prefix="absolute."),
        p99_ms=_float(absolute_raw, "p99_ms", where, default=None, prefix="absolute."),
        max_error_rate=_float(absolute_raw, "max_error_rate", where, default=None, prefix="absolute."),
        min_rps=_float(absolute_raw, "min_rps", where, default=None, prefix="absolute."),
        min_requests=_int(absolute_raw, "min_requests", where, default=1, minimum=1, prefix="absolute."),
    )
    mann_whitney = relative_raw.get("mann_whitney") or {}
    if not isinstance(mann_whitney, dict):
        raise ConfigError("expected a mapping with alpha, min_shift_ms", file=where, key="relative.mann_whitney")
    alpha = _float(mann_whitney, "alpha", where, default=None, prefix="relative.mann_whitney.")
    if alpha is not None and not 0 < alpha < 1:
        raise ConfigError(f"expected a probability between 0 and 1, got {alpha}", file=where,
                          key="relative.mann_whitney.alpha")
    baseline = relative_raw.get("baseline", "auto")
    if baseline not in ("auto", "fresh", "live"):
        raise ConfigError(f"expected auto, fresh or live, got {baseline!r}", file=where, key="relative.baseline")
    relative = RelativeGates(
        baseline=baseline,
        p95_tolerance=_float(relative_raw, "p95_tolerance", where, default=None, prefix="relative."),
        p95_slack_ms=_float(relative_raw, "p95_slack_ms", where, default=0.0, prefix="relative.") or 0.0,
        mann_whitney_alpha=alpha,
        min_shift_ms=_float(mann_whitney, "min_shift_ms", where, default=0.0, prefix="relative.mann_whitney.") or 0.0,
        min_shift_ratio=_float(mann_whitney, "min_shift_ratio", where, default=0.0,
                               prefix="relative.mann_whitney.") or 0.0,
    )
    holdout = None
    if quality_raw.get("holdout"):
        holdout_path = (base / str(quality_raw["holdout"])).resolve()
        if not holdout_path.is_file():
            raise ConfigError(f"{holdout_path} does not exist", file=where, key="quality.holdout")
        holdout = str(holdout_path)
    quality = QualityGates(
        holdout=holdout,
        origins=_int(quality_raw, "origins", where, default=8, minimum=1, prefix="quality."),
        horizon=_int(quality_raw, "horizon", where, default=7, minimum=1, prefix="quality."),
        context_days=_int(quality_raw, "context_days", where, default=56, minimum=1, prefix="quality."),
        max_mape=_float(quality_raw, "max_mape", where, default=None, prefix="quality."),
        max_mape_increase=_float(quality_raw, "max_mape_increase", where, default=0.0, prefix="quality.") or 0.0,
        relative_tolerance=_float(quality_raw, "relative_tolerance", where, default=0.0, prefix="quality.") or 0.0,
    )
    return Gates(absolute=absolute, relative=relative, quality=quality)


# ---------------------------------------------------------------------------------------------
# The AutoML job spec (jobs/automl-tcn-forecasting.yml)


@dataclass(frozen=True)
class AutoMLJobSpec:
    """What the local sweep reads from a CLI v2 AutoML forecasting job spec (Azure ML reads the
    whole file with ``azure.ai.ml.load_job``; a test checks both agree)."""

    file: Path
    experiment_name: str
    primary_metric: str
    target_column: str
    time_column: str
    horizon: int
    max_trials: int
    compute: str
    training_data: str
    allowed_algorithms: tuple[str, ...]
    enable_dnn_training: bool


def load_automl_job_spec(path: str | Path) -> AutoMLJobSpec:
    """Read and check a forecasting AutoML job spec; ``ConfigError`` names the file and the key."""
    from mlops.forecasting.sweep import ALGORITHM, PRIMARY_METRICS
    from mlops.workspace.automl import metric_name

    file = Path(path).resolve()
    data = _read_yaml(file)
    where = str(file)
    if data.get("type") != "automl":
        raise ConfigError(f"expected type: automl, got {data.get('type')!r}", file=where, key="type")
    if data.get("task") != "forecasting":
        raise ConfigError(f"expected task: forecasting, got {data.get('task')!r}", file=where, key="task")
    metric = metric_name(data.get("primary_metric") or "normalized_root_mean_squared_error")
    if metric not in PRIMARY_METRICS:
        raise ConfigError(f"expected one of {', '.join(PRIMARY_METRICS)}, got {data.get('primary_metric')!r}",
                          file=where, key="primary_metric")
    forecasting = _mapping(data, "forecasting", where)
    training = data.get("training") or {}
    limits = data.get("limits") or {}
    training_data = _mapping(data, "training_data", where)
    allowed = tuple(str(a) for a in (training.get("allowed_training_algorithms") or ()))
    dnn = _bool(training.get("enable_dnn_training", False), "training.enable_dnn_training", where)
    if ALGORITHM not in allowed or not dnn:
        raise ConfigError(f"the TCN needs training.allowed_training_algorithms to include {ALGORITHM} and "
                          "training.enable_dnn_training: true", file=where, key="training")
    return AutoMLJobSpec(
        file=file,
        experiment_name=str(data.get("experiment_name") or file.stem),
        primary_metric=metric,
        target_column=_str(data, "target_column_name", where),
        time_column=_str(forecasting, "time_column_name", where, prefix="forecasting."),
        horizon=_int(forecasting, "forecast_horizon", where, default=14, minimum=1, prefix="forecasting."),
        max_trials=_int(limits, "max_trials", where, default=1000, minimum=1, prefix="limits."),
        compute=str(data.get("compute", "")).removeprefix("azureml:"),
        training_data=_str(training_data, "path", where, prefix="training_data."),
        allowed_algorithms=allowed,
        enable_dnn_training=dnn,
    )
