"""The AutoML forecasting job spec (``jobs/automl-tcn-forecasting.yml``, an Azure CLI v2 file): what the
local sweep reads of it, checked the way the TCN needs it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops.errors import ConfigError
from mlops.yaml_fields import get_int, get_mapping, get_str, parse_bool, read_yaml


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
    data = read_yaml(file)
    where = str(file)
    if data.get("type") != "automl":
        raise ConfigError(f"expected type: automl, got {data.get('type')!r}", file=where, key="type")
    if data.get("task") != "forecasting":
        raise ConfigError(f"expected task: forecasting, got {data.get('task')!r}", file=where, key="task")
    metric = metric_name(data.get("primary_metric") or "normalized_root_mean_squared_error")
    if metric not in PRIMARY_METRICS:
        raise ConfigError(f"expected one of {', '.join(PRIMARY_METRICS)}, got {data.get('primary_metric')!r}",
                          file=where, key="primary_metric")
    forecasting = get_mapping(data, "forecasting", where)
    training = data.get("training") or {}
    limits = data.get("limits") or {}
    training_data = get_mapping(data, "training_data", where)
    allowed = tuple(str(a) for a in (training.get("allowed_training_algorithms") or ()))
    dnn = parse_bool(training.get("enable_dnn_training", False), "training.enable_dnn_training", where)
    if ALGORITHM not in allowed or not dnn:
        raise ConfigError(f"the TCN needs training.allowed_training_algorithms to include {ALGORITHM} and "
                          "training.enable_dnn_training: true", file=where, key="training")
    return AutoMLJobSpec(
        file=file,
        experiment_name=str(data.get("experiment_name") or file.stem),
        primary_metric=metric,
        target_column=get_str(data, "target_column_name", where),
        time_column=get_str(forecasting, "time_column_name", where, prefix="forecasting."),
        horizon=get_int(forecasting, "forecast_horizon", where, default=14, minimum=1, prefix="forecasting."),
        max_trials=get_int(limits, "max_trials", where, default=1000, minimum=1, prefix="limits."),
        compute=str(data.get("compute", "")).removeprefix("azureml:"),
        training_data=get_str(training_data, "path", where, prefix="training_data."),
        allowed_algorithms=allowed,
        enable_dnn_training=dnn,
    )
