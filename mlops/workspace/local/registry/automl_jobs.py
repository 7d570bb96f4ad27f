"""AutoML-shaped jobs of the local workspace: a parent job, its trials, and the best trial's files.

What Azure AutoML leaves behind, and what this module writes the same way (rows of the store's
``training_jobs`` table, files under ``<workspace>/automl/<job>/<trial>/``):

* the **parent** job: status ``Running`` -> ``Completed`` (``Failed`` when no trial succeeded),
  property ``primary_metric`` and ``AMLSettingsJsonString`` (task, metric, horizon, algorithms),
  and - once the sweep is done - the tag ``automl_best_child_run_id`` naming AutoML's choice;
* one **trial** per variant, named ``<parent>_<iteration>`` like AutoML's children, with AutoML's
  child properties (``runTemplate: automl_child``, ``iteration``, ``run_algorithm:
  TCNForecaster``, ``score`` = the primary metric's value, ``primary_metric``, ``goal`` =
  ``<metric>_min|_max``, ``model_output_path``, ``conda_env_data_location``,
  ``scoring_data_location_v2``), its metrics, and ``outputs/`` as AutoML lays it out
  (``mlops.forecasting.sweep``). A trial that fails is recorded ``Failed`` and the sweep goes on.

The best trial is decided by the same pure function the Azure adapter uses
(``azure_decisions.choose_best_child``), and ``register_best_trial`` registers it the way
``AzureWorkspace.register_model_from_job`` does: AutoML's tag first, the files picked by AutoML's
names, the same model tags, idempotent by content hash.

A sweep runs in the calling process (``mlops train --trials N --job NAME``); its pid is kept, so a
sweep whose process died is reported ``Failed`` rather than ``Running`` forever.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.errors import ConflictError, NotFoundError, UsageError
from mlops.processes import process_alive
from mlops.workspace import automl
from mlops.workspace import azure_decisions as decide
from mlops.workspace.local.registry.store import Store, dumps, loads, now, private_dir
from mlops.workspace.port import Model, Progress, TrainingJob, Trial, no_progress

JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
"""Azure ML job names: letters, digits, ``-`` and ``_``, starting with a letter or digit."""


def check_job_name(name: str) -> None:
    if not JOB_NAME.fullmatch(name or ""):
        raise UsageError(f"job name {name!r}: use letters, digits, '-' and '_' (starting with a letter or digit), "
                         "at most 255 characters")


@dataclass(frozen=True)
class SweepSettings:
    """What one local AutoML sweep does."""

    trials: int
    primary_metric: str
    horizon: int
    source: str
    """Where the data came from (a CSV path or ``synthetic``), kept as a property."""
    experiment_name: str = "local-automl"


# ---------------------------------------------------------------------------------------------
# rows


def _insert(conn: Any, name: str, *, parent: str | None, status: str, primary_metric: str,
            properties: Mapping[str, Any], job_dir: Path) -> None:
    conn.execute("INSERT INTO training_jobs (name, parent, status, primary_metric, properties, job_dir, pid, "
                 "created_at) VALUES (?,?,?,?,?,?,?,?)",
                 (name, parent, status, primary_metric, dumps(properties), str(job_dir), os.getpid(), now()))


def _update(store: Store, name: str, **values: Any) -> None:
    columns = {key: (dumps(value) if key in ("properties", "tags", "metrics") else value)
               for key, value in values.items()}
    assignments = ", ".join(f"{column} = ?" for column in columns)
    with store.transaction() as conn:
        conn.execute(f"UPDATE training_jobs SET {assignments} WHERE name = ?",  # noqa: S608 - our column names
                     (*columns.values(), name))


def _row(store: Store, name: str) -> Any:
    with store.read() as conn:
        return conn.execute("SELECT * FROM training_jobs WHERE name = ?", (name,)).fetchone()


def _status(row: Any) -> tuple[str, str]:
    """The stored status, or ``Failed`` for a running job whose process is gone."""
    status, error = row["status"], row["error"]
    if status in ("Queued", "Running") and row["pid"] and not process_alive(int(row["pid"])):
        return "Failed", error or f"the sweep process (pid {row['pid']}) died before the job finished"
    return status, error


def _trial(row: Any) -> Trial:
    properties = {str(k): str(v) for k, v in loads(row["properties"]).items()}
    status, _ = _status(row)
    score = automl.parse_score(properties.get("score")) if "score" in properties else None
    return Trial(name=row["name"], status=status, score=score,  # type: ignore[arg-type]
                 algorithm=properties.get("run_algorithm", ""),
                 metrics={k: float(v) for k, v in loads(row["metrics"]).items()}, properties=properties)


def _job(row: Any, trials: tuple[Trial, ...] = ()) -> TrainingJob:
    properties = {str(k): str(v) for k, v in loads(row["properties"]).items()}
    tags = {str(k): str(v) for k, v in loads(row["tags"]).items()}
    status, error = _status(row)
    try:
        goal = automl.metric_goal(row["primary_metric"]) if row["primary_metric"] else None
    except UsageError:
        goal = None
    return TrainingJob(name=row["name"], status=status, primary_metric=row["primary_metric"],  # type: ignore[arg-type]
                       goal=goal, best_child=tags.get(automl.AUTOML_BEST_CHILD_TAG), trials=trials,
                       created_at=row["created_at"], properties=properties, tags=tags, error=error)


def get_job(store: Store, name: str) -> TrainingJob:
    row = _row(store, name)
    if row is None or row["parent"] is not None:
        raise NotFoundError(f"job {name!r} does not exist in this workspace (mlops jobs list shows its jobs)")
    with store.read() as conn:
        children = conn.execute("SELECT * FROM training_jobs WHERE parent = ? ORDER BY created_at, rowid",
                                (name,)).fetchall()
    return _job(row, tuple(_trial(child) for child in children))


def list_jobs(store: Store) -> list[TrainingJob]:
    with store.read() as conn:
        rows = conn.execute("SELECT * FROM training_jobs WHERE parent IS NULL ORDER BY created_at DESC, rowid DESC"
                            ).fetchall()
    return [_job(row) for row in rows]


# ---------------------------------------------------------------------------------------------
# the sweep

TrialRunner = Callable[[int, Path, Progress], Mapping[str, float]]
"""``(iteration, trial folder, progress) -> AutoML metrics``: trains one trial into its folder
(``outputs/`` laid out as AutoML's) - ``mlops.forecasting.sweep.run_trial`` in production; a test
may plant trials with chosen metrics."""


def run_sweep(store: Store, root: Path, name: str, settings: SweepSettings, run_trial: TrialRunner, *,
              hyperparameters: Callable[[int], Mapping[str, Any]] | None = None,
              progress: Progress = no_progress) -> TrainingJob:
    """Create the parent job, run ``settings.trials`` trials, tag the best, and return the job."""
    check_job_name(name)
    goal = automl.metric_goal(settings.primary_metric)
    job_dir = private_dir(root / name)
    amlsettings = {"task_type": "forecasting", "primary_metric": settings.primary_metric, "metric_operation": goal,
                   "forecast_horizon": settings.horizon, "allowed_training_algorithms": ["TCNForecaster"],
                   "enable_dnn": True, "experiment_name": settings.experiment_name}
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM training_jobs WHERE name = ?", (name,)).fetchone() is not None \
                or conn.execute("SELECT 1 FROM jobs WHERE name = ?", (name,)).fetchone() is not None:
            raise ConflictError(f"a job named {name!r} already exists in this workspace (jobs are immutable): "
                                "pick another --job name")
        _insert(conn, name, parent=None, status="Running", primary_metric=settings.primary_metric,
                properties={"primary_metric": settings.primary_metric, "runTemplate": "automl",
                            "AMLSettingsJsonString": json.dumps(amlsettings, sort_keys=True),
                            "training_data": settings.source, "num_trials": settings.trials},
                job_dir=job_dir)
    progress(f"AutoML job {name}: {settings.trials} TCNForecaster trial(s), primary metric "
             f"{settings.primary_metric} ({goal}), data {settings.source}")
    children: list[automl.ChildRun] = []
    for iteration in range(settings.trials):
        child = f"{name}_{iteration}"
        trial_dir = job_dir / child
        properties: dict[str, Any] = {
            "runTemplate": "automl_child", "iteration": str(iteration), "run_algorithm": "TCNForecaster",
            "primary_metric": settings.primary_metric, "goal": f"{settings.primary_metric}_{goal[:3]}",
            "model_output_path": "outputs/model.pt",
            "conda_env_data_location": f"{trial_dir.name}/outputs/conda_env_v_1_0_0.yml",
            "scoring_data_location_v2": f"{trial_dir.name}/outputs/scoring_file_v_2_0_0.py",
        }
        if hyperparameters is not None:
            properties["run_properties"] = json.dumps(dict(hyperparameters(iteration)), sort_keys=True)
        with store.transaction() as conn:
            _insert(conn, child, parent=name, status="Running", primary_metric=settings.primary_metric,
                    properties=properties, job_dir=trial_dir)
        progress(f"trial {child}: training")
        try:
            metrics = dict(run_trial(iteration, trial_dir, progress))
            score = metrics[settings.primary_metric]
        except Exception as error:  # noqa: BLE001 - a failed trial is recorded and the sweep goes on, as AutoML's
            _update(store, child, status="Failed", error=f"{type(error).__name__}: {error}")
            progress(f"trial {child}: Failed ({type(error).__name__}: {error})")
            children.append(automl.ChildRun(child, "Failed", {k: str(v) for k, v in properties.items()}))
            continue
        properties["score"] = repr(float(score))
        _update(store, child, status="Completed", properties=properties, metrics=metrics)
        progress(f"trial {child}: Completed, {settings.primary_metric} {score:.5f}")
        children.append(automl.ChildRun(child, "Completed", {k: str(v) for k, v in properties.items()}))
    try:
        best = automl.choose_best_child(name, settings.primary_metric, children)
    except NotFoundError as error:
        _update(store, name, status="Failed", error=str(error))
        progress(f"AutoML job {name}: Failed - no trial completed")
        return get_job(store, name)
    _update(store, name, status="Completed", tags={automl.AUTOML_BEST_CHILD_TAG: best.name})
    progress(f"AutoML job {name}: Completed; best trial {best.name} ({settings.primary_metric} {best.score:.5f})")
    return get_job(store, name)


# ---------------------------------------------------------------------------------------------
# the best trial -> a registered model

RegisterFolder = Callable[[str, Path, Mapping[str, str]], Model]


def register_best_trial(store: Store, name: str, job_name: str, register: RegisterFolder, *,
                        tags: Mapping[str, str] | None = None, progress: Progress = no_progress) -> Model:
    """Register the best trial of the local AutoML job ``job_name`` as model ``name``."""
    row = _row(store, job_name)
    if row is None or row["parent"] is not None:
        raise NotFoundError(f"get AutoML job {job_name}: no such job in this workspace (mlops jobs list; train one "
                            f"with mlops train --data synthetic --trials 3 --job {job_name})")
    job = get_job(store, job_name)
    problem = decide.automl_job_problem(job_name, job.status, job.primary_metric)
    if problem is not None:
        raise problem
    children = [automl.ChildRun(t.name, t.status, dict(t.properties)) for t in job.trials]
    best = automl.choose_best_child(job_name, job.primary_metric, children, parent_tags=job.tags,
                                    settings_json=job.properties.get("AMLSettingsJsonString"))
    for warning in best.warnings:
        progress(f"warning: {warning}")
    progress(f"AutoML job {job_name}: best trial {best.name} ({best.reason}; {job.primary_metric} {best.score})")
    trial_row = _row(store, best.name)
    if trial_row is None:
        raise NotFoundError(f"AutoML job {job_name}: its best trial {best.name} does not exist")
    trial_dir = Path(trial_row["job_dir"])
    files = {p.relative_to(trial_dir).as_posix(): p for p in trial_dir.rglob("*") if p.is_file()}
    picked = automl.pick_automl_files(files)
    with tempfile.TemporaryDirectory(prefix="mlops-automl-") as tmp:
        stage = Path(tmp) / "model"
        stage.mkdir()
        for relative in (picked.model, picked.conda_file, picked.scoring_file):
            shutil.copy2(files[relative], stage / files[relative].name)
        job_tags = {automl.AUTOML_PARENT_TAG: job_name, automl.AUTOML_CHILD_TAG: best.name,
                    automl.AUTOML_METRIC_TAG: job.primary_metric,
                    automl.AUTOML_SCORE_TAG: "" if best.score is None else repr(best.score)}
        return register(name, stage, {**job_tags, **dict(tags or {})})


def trial_runner(frame: Any, source: str, base: Any) -> tuple[TrialRunner, Callable[[int], Mapping[str, Any]]]:
    """The production trial runner: ``mlops.forecasting.sweep`` variants of ``base`` (a ``TrainConfig``)."""
    from mlops.forecasting.sweep import hyperparameters, run_trial, trial_configs

    def config(iteration: int) -> Any:
        return trial_configs(iteration + 1, base)[iteration]

    def run(iteration: int, trial_dir: Path, progress: Progress) -> Mapping[str, float]:
        return run_trial(frame, trial_dir, config(iteration), source=source, progress=progress).metrics

    return run, lambda iteration: hyperparameters(config(iteration))


__all__ = ["SweepSettings", "check_job_name", "get_job", "list_jobs", "register_best_trial", "run_sweep",
           "trial_runner"]
