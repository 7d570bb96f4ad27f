"""The demo's AutoML path: trials -> the best (AutoML's choice) -> environment from its conda file -> release.

On the local workspace it runs a small AutoML-shaped sweep (``demo-automl``: 3 TCN variants of a
few epochs each on the demo's synthetic series), then releases ``job:demo-automl`` into an endpoint
of its own (``<endpoint>-automl`` and ``<batch endpoint>-automl``, so the blue/green endpoint the
first part of the demo leaves live is not touched): the best trial is registered, its environment
is built from the trial's conda file with the trailing pins removed, and the online and batch
deployments run on that pinned version with pickles trusted. A finished sweep is reused, so a
second demo says "nothing to release" here too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mlops.config import Config, ModelSource
from mlops.release.pipeline import run_release
from mlops.release.record import Record
from mlops.release.report import provenance
from mlops.workspace.port import Progress, Workspace

JOB = "demo-automl"
TRIALS = 3
EPOCHS = 2
MODEL = "tcn-dau-automl"
SUFFIX = "-automl"


@dataclass
class AutoMLDemo:
    job: str
    best_trial: str
    primary_metric: str
    score: float | None
    trials: int
    record: Record
    endpoint: str
    batch_endpoint: str

    def to_dict(self) -> dict[str, Any]:
        environment = self.record.environment
        return {"job": self.job, "best_trial": self.best_trial, "primary_metric": self.primary_metric,
                "score": self.score, "trials": self.trials, "endpoint": self.endpoint,
                "batch_endpoint": self.batch_endpoint, "status": str(self.record.status),
                "model": str(self.record.model.ref) if self.record.model else None,
                "environment": str(environment.ref) if environment else None,
                "unpinned": [u.was for u in environment.unpinned] if environment else [],
                "record": str(self.record.path.with_name(self.record.release_id + ".json"))}

    def lines(self) -> list[str]:
        trial, made = provenance(self.record)
        environment = self.record.environment
        return [f"AutoML path     job {self.job}: {self.trials} TCNForecaster trials, {trial or self.best_trial}",
                f"  release       {self.record.status}: {self.record.model.ref if self.record.model else '-'} on "
                f"{environment.ref if environment else '-'} ({made or 'the spec'})",
                f"  endpoint      {self.endpoint} (online), {self.batch_endpoint} (batch default on the same pins)",
                f"  look          mlops jobs show {self.job}"]


def run_automl_demo(config: Config, workspace: Workspace, *, progress: Progress) -> AutoMLDemo:
    from mlops.demo.sample_data import demo_split
    from mlops.errors import NotFoundError, UsageError
    from mlops.forecasting.train_config import TrainConfig
    from mlops.workspace.local import LocalWorkspace
    from mlops.workspace.local.registry.automl_jobs import SweepSettings

    if not isinstance(workspace, LocalWorkspace):
        raise UsageError("the demo's AutoML sweep runs on the local workspace; on Azure ML submit the spec: "
                         "mlops jobs submit jobs/automl-tcn-forecasting.yml --wait")
    try:
        job = workspace.get_training_job(JOB)
        progress(f"demo: reusing AutoML job {JOB} ({job.status}, best trial {job.best_child})")
    except NotFoundError:
        job = None
    if job is None or job.status != "Completed":
        name = JOB if job is None else f"{JOB}-{len(workspace.list_training_jobs()) + 1}"
        train, _holdout = demo_split()
        progress(f"demo: AutoML-shaped sweep {name}: {TRIALS} TCN variants, {EPOCHS} epochs each")
        job = workspace.run_automl_sweep(
            name, train, SweepSettings(trials=TRIALS, primary_metric="normalized_root_mean_squared_error",
                                       horizon=14, source="synthetic", experiment_name="demo"),
            TrainConfig(horizon=14, epochs=EPOCHS), progress=progress)
    endpoint = config.online.endpoint.name + SUFFIX
    batch_endpoint = config.batch.endpoint.name + SUFFIX
    automl_config = replace(
        config, model=ModelSource(MODEL, job=job.name),
        online=replace(config.online, endpoint=replace(config.online.endpoint, name=endpoint)),
        batch=replace(config.batch, endpoint=replace(config.batch.endpoint, name=batch_endpoint)))
    progress(f"demo: release 3 - the AutoML path: job:{job.name} into {endpoint} / {batch_endpoint}")
    record = run_release(automl_config, workspace, config.records / "automl.json", progress=progress)
    best = next((t for t in job.trials if t.name == job.best_child), None)
    return AutoMLDemo(job=job.name, best_trial=job.best_child or "", primary_metric=job.primary_metric,
                      score=best.score if best else None, trials=len(job.trials), record=record,
                      endpoint=endpoint, batch_endpoint=batch_endpoint)


__all__ = ["AutoMLDemo", "run_automl_demo"]
