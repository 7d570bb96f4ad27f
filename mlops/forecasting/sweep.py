"""AutoML-shaped trials of the TCN: variants, AutoML's forecasting metrics, outputs laid out as AutoML's.

A local sweep (``mlops train --trials N --job NAME`` on the local workspace) trains N variants of
the TCN and, for each trial, writes what an Azure AutoML TCNForecaster trial leaves in its
``outputs/`` (the file names AutoML uses, e.g. a trial's ``model_output_path``,
``conda_env_data_location`` and ``scoring_data_location_v2`` properties):

* ``outputs/model.pt`` - the fitted forecaster **pickled** (``torch.save`` of the object), as
  AutoML saves its TCNForecaster; serving it needs ``MLOPS_TRUST_PICKLED_MODEL=1``;
* ``outputs/conda_env_v_1_0_0.yml`` - shaped like AutoML's: ``python=`` with the full version,
  a ``pip:`` block with the serving runtime pinned (here ``azureml-inference-server-http``,
  ``torch``, ``azureml-core`` and ``azureml-dataset-runtime[fuse]``, in AutoML's
  ``azureml-train-automl-runtime``/``azureml-defaults``), then the
  trailing conda dependencies pinned to the training environment's versions (numpy, pandas),
  then ``channels: [anaconda, conda-forge]``;
* ``outputs/scoring_file_v_2_0_0.py`` - a scoring script for the pickled model (kept with the
  registered model for reference; the deployments run ``endpoints/*/score.py``).

Each trial's metrics are AutoML's forecasting metrics over the holdout's rolling forecast (horizons
1..H, step 1): ``normalized_root_mean_squared_error`` and ``normalized_mean_absolute_error``
(normalised by the range of the actuals), ``r2_score`` and ``spearman_correlation``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .artifact import load_artifact
from .forecaster import TCNForecaster
from .train_config import TrainConfig
from .training import TrainResult, train_model

MODEL_FILE = "outputs/model.pt"
CONDA_FILE = "outputs/conda_env_v_1_0_0.yml"
SCORING_FILE = "outputs/scoring_file_v_2_0_0.py"
ALGORITHM = "TCNForecaster"

PRIMARY_METRICS = ("normalized_root_mean_squared_error", "normalized_mean_absolute_error", "r2_score",
                   "spearman_correlation")
"""AutoML's forecasting primary metrics (``ForecastingPrimaryMetrics``), snake case."""
DEFAULT_PRIMARY_METRIC = "normalized_root_mean_squared_error"
"""AutoML's default for forecasting (``ForecastingJob._DEFAULT_PRIMARY_METRIC``)."""

VARIANTS: tuple[Mapping[str, Any], ...] = (
    {},
    {"channels": 16, "dilations": (1, 2, 4), "dropout": 0.0},
    {"channels": 32, "learning_rate": 1e-3},
    {"dropout": 0.1, "weight_decay": 1e-4},    # lighter regularisation than the defaults
    {"channels": 12, "learning_rate": 5e-3},
    {"channels": 24, "dilations": (1, 2, 4, 8)},  # a shorter context (78 days) than the default 138
)
"""The hyperparameters each trial changes from the base ``TrainConfig`` (trial i uses variant
``i % len(VARIANTS)`` and seed ``base.seed + i``)."""


def trial_configs(trials: int, base: TrainConfig) -> list[TrainConfig]:
    """``trials`` variants of ``base``. Windows and dilations are kept within what ``base`` allows."""
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    configs = []
    for i in range(trials):
        variant = dict(VARIANTS[i % len(VARIANTS)])
        if "dilations" in variant and max(variant["dilations"]) * 2 > base.window:
            variant.pop("dilations")  # keep the receptive field within the window of a tiny base
        if "channels" in variant and base.channels < 16:
            variant["channels"] = max(4, base.channels + (i % 3) * 2)  # tiny bases stay tiny
        configs.append(replace(base, seed=base.seed + i, **variant))
    return configs


def automl_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """AutoML's forecasting metrics of one trial (errors normalised by the actuals' range)."""
    from scipy.stats import spearmanr

    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if actual.size < 2:
        raise ValueError("at least two (origin, date) pairs are needed to score a trial")
    span = float(actual.max() - actual.min()) or 1.0
    residual = actual - predicted
    total = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "normalized_root_mean_squared_error": float(np.sqrt(np.mean(residual**2)) / span),
        "normalized_mean_absolute_error": float(np.mean(np.abs(residual)) / span),
        "r2_score": float(1.0 - np.sum(residual**2) / total) if total > 0 else 0.0,
        "spearman_correlation": float(spearmanr(actual, predicted).statistic),
    }


def _version(distribution: str) -> str:
    return metadata.version(distribution).split("+")[0]


AUTOML_BATCH_RUNTIME = ("azureml-core==1.61.0.post4", "azureml-dataset-runtime[fuse]==1.62.0.post1")
"""What AutoML's own conda file brings through ``azureml-defaults`` and Azure requires in a batch
deployment's environment (``mlops.workspace.local.batch.plan.BATCH_REQUIRED_PACKAGES``): without
them the environment made from this file could serve online but fail every batch job, on Azure
and locally. Pinned as in ``environments/tcn-inference/conda.yml``."""


def automl_conda_file() -> str:
    """The trial's conda file, shaped like AutoML's, pinned to this (training) environment."""
    python = ".".join(str(part) for part in sys.version_info[:3])
    return (
        "# Conda environment specification. The dependencies defined in this file will\n"
        "# be automatically provisioned for runs with userManagedDependencies=False.\n\n"
        "# Details about the Conda environment file format:\n"
        "# https://conda.io/docs/user-guide/tasks/manage-environments.html#create-env-file-manually\n\n"
        "name: project_environment\n"
        "dependencies:\n"
        "  # The python interpreter version.\n"
        f"- python={python}\n\n"
        "- pip:\n"
        f"  - azureml-inference-server-http=={_version('azureml-inference-server-http')}\n"
        f"  - torch=={_version('torch')}\n"
        + "".join(f"  - {pin}\n" for pin in AUTOML_BATCH_RUNTIME) +
        f"- numpy=={_version('numpy')}\n"
        f"- pandas=={_version('pandas')}\n"
        "channels:\n"
        "- anaconda\n"
        "- conda-forge\n"
    )


SCORING_FILE_TEXT = '''"""Scoring file of an AutoML-shaped TCNForecaster trial (kept with the model for reference).

The deployments run the repository's endpoints/online/score.py and endpoints/batch/score.py, which
serve this model when MLOPS_TRUST_PICKLED_MODEL=1 (model.pt is a pickle, like AutoML's).
"""
import json
import os

import pandas as pd
import torch

model = None


def init():
    global model
    path = os.path.join(os.getenv("AZUREML_MODEL_DIR", "."), "model.pt")
    model = torch.load(path, map_location="cpu", weights_only=False)  # a trusted pickle


def run(raw_data):
    data = json.loads(raw_data)["data"]
    frame = pd.DataFrame(data)
    frame["date"] = pd.to_datetime(frame["date"])
    y_pred, _ = model.forecast(frame[["date"]], None)
    return {"forecast": [float(v) for v in y_pred], "index": frame["date"].dt.strftime("%Y-%m-%d").tolist()}
'''


@dataclass(frozen=True)
class TrialResult:
    metrics: dict[str, float]
    train: TrainResult
    config: TrainConfig


def run_trial(frame: pd.DataFrame, trial_dir: Path, config: TrainConfig, *, source: str = "",
              progress: Callable[[str], None] | None = None) -> TrialResult:
    """Train one variant into ``trial_dir``: ``outputs/`` as AutoML lays it out, ``train/`` the
    project's own ``model.pt`` + ``metrics.json`` of the same fit."""
    trial_dir = Path(trial_dir)
    result = train_model(frame, trial_dir / "train", config=config, progress=progress, source=source)
    if result.holdout_pairs is None or result.holdout_pairs.empty:
        raise ValueError("the trial produced no holdout forecasts to score")
    metrics = automl_metrics(result.holdout_pairs["count"].to_numpy(), result.holdout_pairs["predicted"].to_numpy())
    outputs = trial_dir / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    forecaster = TCNForecaster(load_artifact(result.model_path), source=MODEL_FILE)
    torch.save(forecaster, trial_dir / MODEL_FILE)  # a pickle of the fitted object, as AutoML saves it
    (trial_dir / CONDA_FILE).write_text(automl_conda_file())
    (trial_dir / SCORING_FILE).write_text(SCORING_FILE_TEXT)
    return TrialResult(metrics=metrics, train=result, config=config)


def hyperparameters(config: TrainConfig) -> dict[str, Any]:
    """What a trial's ``run_properties`` shows: the hyperparameters the variants change."""
    return {"channels": config.channels, "dilations": list(config.dilations), "dropout": config.dropout,
            "learning_rate": config.learning_rate, "weight_decay": config.weight_decay, "seed": config.seed,
            "epochs": config.epochs}
