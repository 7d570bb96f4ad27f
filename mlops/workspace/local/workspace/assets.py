"""Models, AutoML-shaped jobs and environments of the local workspace (``registry/``: models,
AutoML-shaped jobs, environments as real virtualenvs)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.errors import ConfigError, UsageError
from mlops.workspace.local.registry import automl_jobs, environments, models
from mlops.workspace.local.workspace.base import LocalBase
from mlops.workspace.port import (
    AutoMLJobRequest,
    Environment,
    EnvironmentSpec,
    Model,
    Progress,
    TrainingJob,
    no_progress,
)

SYNTHETIC = "synthetic"
"""The training data named ``synthetic`` (``mlops train --data``, ``mlops jobs submit --data``,
``AutoMLJobRequest.data``): the built-in seeded DAU-like series instead of a CSV. Only
``load_training_data`` tells it from a path."""


def load_training_data(data: str, *, fast: bool = False, days: int | None = None,
                       seed: int = 0) -> tuple[Any, str]:
    """``(frame, source)`` from a CSV (date,count[,holiday]) or ``SYNTHETIC`` (the seeded series of
    ``days`` days and ``seed``; by default 1095 days, ``fast``: 420). Bad input is a ``UsageError``
    naming the file and the column."""
    from mlops.forecasting.data import load_series_csv
    from mlops.forecasting.errors import ForecastInputError
    from mlops.forecasting.synthetic import generate_dau
    from mlops.forecasting.train_config import MAX_IMPUTED_GAP

    if data == SYNTHETIC:
        return generate_dau(days or (420 if fast else 1095), seed=seed), SYNTHETIC
    try:
        return load_series_csv(data, fill_gaps=MAX_IMPUTED_GAP), str(data)
    except ForecastInputError as error:
        raise UsageError(str(error)) from None


class AssetOps(LocalBase):
    """Models (registered by content hash), local AutoML-shaped sweeps and their jobs, environments."""

    def register_model(self, name: str, path: Path, *, tags: Mapping[str, str] | None = None,
                       progress: Progress = no_progress) -> Model:
        return models.register_model(self.store, self.artifacts, name, Path(path), tags=tags, progress=progress)

    def register_model_from_job(self, name: str, job_name: str, *, tags: Mapping[str, str] | None = None,
                                progress: Progress = no_progress) -> Model:
        """The best trial of a local AutoML-shaped job (``automl_jobs.register_best_trial``)."""
        return automl_jobs.register_best_trial(
            self.store, name, job_name,
            lambda model_name, folder, all_tags: self.register_model(model_name, folder, tags=all_tags,
                                                                     progress=progress),
            tags=tags, progress=progress)

    def download_model(self, name: str, version: str, dest: Path) -> Path:
        model = self.get_model(name, version)
        target = Path(dest) / name
        shutil.copytree(model.path, target, dirs_exist_ok=True)
        return target

    @property
    def automl_dir(self) -> Path:
        return self.dir / "automl"

    def run_automl_sweep(self, name: str, frame: Any, settings: automl_jobs.SweepSettings, base_config: Any, *,
                         progress: Progress = no_progress) -> TrainingJob:
        """A local AutoML sweep: ``settings.trials`` TCN variants of ``base_config`` (a
        ``TrainConfig``) trained on ``frame`` as the trials of job ``name``."""
        run, hyperparameters = automl_jobs.trial_runner(frame, settings.source, base_config)
        return automl_jobs.run_sweep(self.store, self.automl_dir, name, settings, run,
                                     hyperparameters=hyperparameters, progress=progress)

    def submit_automl_job(self, request: AutoMLJobRequest, *, progress: Progress = no_progress) -> TrainingJob:
        """Run the spec's sweep here: its primary metric, horizon and ``limits.max_trials`` (or
        ``request.trials``) on ``request.data`` (a data asset exists only on Azure)."""
        from dataclasses import replace as _replace

        from mlops.forecasting.train_config import TrainConfig
        from mlops.specs.automl_job import load_automl_job_spec

        spec = load_automl_job_spec(request.spec_file)
        if (spec.time_column, spec.target_column) != ("date", "count"):
            raise ConfigError(f"the local sweep trains the TCN on a daily series with columns date,count; the spec "
                              f"names time column {spec.time_column!r} and target {spec.target_column!r}",
                              file=str(spec.file), key="target_column_name")
        if not request.data:
            raise UsageError(f"the local workspace cannot read the data asset {spec.training_data!r}: pass --data "
                             "CSV|synthetic (a CSV with date,count[,holiday])")
        frame, source = load_training_data(request.data, fast=request.fast)
        trials = request.trials or min(spec.max_trials, 3)
        base = TrainConfig(horizon=spec.horizon)
        if request.fast:
            base = _replace(base, epochs=3, patience=2)
        name = request.name or f"{spec.experiment_name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
        settings = automl_jobs.SweepSettings(trials=trials, primary_metric=spec.primary_metric, horizon=spec.horizon,
                                             source=source, experiment_name=spec.experiment_name)
        return self.run_automl_sweep(name, frame, settings, base, progress=progress)

    def get_training_job(self, name: str) -> TrainingJob:
        return automl_jobs.get_job(self.store, name)

    def list_training_jobs(self) -> list[TrainingJob]:
        return automl_jobs.list_jobs(self.store)

    def get_model(self, name: str, version: str = "latest") -> Model:
        return models.get_model(self.store, name, version)

    def list_models(self, name: str) -> list[Model]:
        return models.list_models(self.store, name)

    def ensure_environment(self, spec: EnvironmentSpec, *, progress: Progress = no_progress) -> Environment:
        return environments.ensure_environment(self.store, self.venvs, spec, progress=progress)

    def get_environment(self, name: str, version: str) -> Environment:
        return environments.get_environment(self.store, name, version)
