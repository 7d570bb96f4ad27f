"""Training: ``train_model(frame, out_dir, ...)`` fits the TCN and writes ``model.pt`` and ``metrics.json``.

The series is split by time into three parts (``splits.Split``)::

    | ---------------- fit ---------------- | -- validation -- | -- holdout -- |
      training samples (targets here)         early stopping      metrics.json

* the networks learn from origins whose whole horizon lies in the fit part;
* the model is an ensemble of ``members`` TCNs (``model.TCN``) trained together, each on its own
  loss; after every epoch the averaged forecast's loss on the validation tail decides early
  stopping (``fit``);
* the holdout is never seen: rolling forecasts over it give the model's MAPE/RMSE/MAE and the
  weekly seasonal-naive baseline's on the same (origin, date) pairs (``evaluation``);
* the ensemble's rolling-forecast residuals over the last two years (the validation tail and
  holdout - out of sample - included), per horizon, are reduced by ``TrainConfig.calibration``'s
  method (``calibration``) and kept in ``model.pt`` as the conformal calibration of its quantile
  forecasts (``intervals``).

The modules: ``train_config`` (``TrainConfig``, no torch), ``splits`` (the cuts and the samples),
``fit`` (the training loop), ``evaluation`` (holdout, residual table, ``metrics.json``); this one
validates, fits, evaluates, calibrates and saves.

The saved context (the forecasting history used when a request brings no actuals) is the end of
the *whole* series, so the model forecasts from where its data ends.

Deterministic for a seed: ``torch.manual_seed``, ``torch.use_deterministic_algorithms(True)``, a
fixed number of CPU threads (1 by default; the previous global settings are restored afterwards)
and a seeded batch order (``fit.Deterministic``). CPU only. ``shuffle_targets`` is a testing aid: it
permutes the counts the network learns from, producing a model that is clearly worse than the
baseline (what a release's quality gate must refuse); such a run trains one member and keeps its
last epoch instead of its best.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .artifact import MODEL_FILE, save_artifact
from .calibration import calibrate
from .data import validate_series
from .errors import ForecastInputError
from .evaluation import evaluator, holdout_pairs, metrics_document, residual_table
from .fit import Deterministic, fit
from .splits import Split, context
from .train_config import MAX_IMPUTED_GAP, TrainConfig

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    model_path: Path
    metrics_path: Path
    metrics: dict[str, Any]
    epochs_run: int
    best_epoch: int
    seconds: float
    holdout_pairs: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    """The holdout's (origin, date) pairs: ``forecast_origin``, ``date``, ``predicted``, ``count``."""

    @property
    def holdout_mape(self) -> float:
        return float(self.metrics["holdout"]["model"]["mape"])

    @property
    def baseline_mape(self) -> float:
        return float(self.metrics["holdout"]["seasonal_naive"]["mape"])

    def summary(self) -> str:
        holdout = self.metrics["holdout"]
        model, naive = holdout["model"], holdout["seasonal_naive"]
        return "\n".join([
            f"model:    {self.model_path}",
            f"metrics:  {self.metrics_path}",
            f"trained:  {self.epochs_run} epochs (best {self.best_epoch}) in {self.seconds:.1f}s",
            f"holdout:  {holdout['first_date']} .. {holdout['last_date']}, {holdout['pairs']} (origin, date) "
            f"pairs, horizons {holdout['horizons'][0]}-{holdout['horizons'][1]}",
            f"  model           MAPE {model['mape']:6.2f}%  RMSE {model['rmse']:12.1f}  MAE {model['mae']:12.1f}",
            f"  seasonal naive  MAPE {naive['mape']:6.2f}%  RMSE {naive['rmse']:12.1f}  MAE {naive['mae']:12.1f}",
        ])

    def to_dict(self) -> dict[str, Any]:
        return {"model_path": str(self.model_path), "metrics_path": str(self.metrics_path),
                "epochs_run": self.epochs_run, "best_epoch": self.best_epoch,
                "seconds": round(self.seconds, 3), "metrics": self.metrics}



def train_model(frame: pd.DataFrame, out_dir: str | Path, *, horizon: int = 14, seed: int = 0,
                epochs: int = 60, progress: Callable[[str], None] | None = None,
                shuffle_targets: bool = False, config: TrainConfig | None = None,
                source: str = "") -> TrainResult:
    """Train on a daily series (``date``, ``count``[, ``holiday``]) and write ``out_dir/model.pt`` and
    ``out_dir/metrics.json``. ``config`` overrides everything; otherwise ``horizon``, ``seed``,
    ``epochs`` and ``shuffle_targets`` apply to the defaults. ``progress`` gets one line per epoch.
    Bad data raises ``ForecastInputError`` naming ``source``."""
    config = config or TrainConfig(horizon=horizon, seed=seed, epochs=epochs, shuffle_targets=shuffle_targets)
    config.check()
    progress = progress or (lambda _message: None)
    series = validate_series(frame, source=source, fill_gaps=MAX_IMPUTED_GAP)
    if len(series) < config.min_rows():
        raise ForecastInputError(f"{source + ': ' if source else ''}{len(series)} days is too short to train "
                                 f"(window {config.window}, horizon {config.horizon}, validation "
                                 f"{config.validation} and holdout {config.holdout} days need at least "
                                 f"{config.min_rows()})")
    out = Path(out_dir)
    split = Split.of(len(series), config)
    started = time.perf_counter()
    with Deterministic(config.seed, config.threads):
        fitted = fit(series, config, split, progress)
        model = evaluator(fitted, series, split)
        pairs = holdout_pairs(model, series, split)
        table = residual_table(model, series, config)
        calibration = calibrate(table, config.calibration)
    seconds = time.perf_counter() - started
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    metrics = metrics_document(series=series, config=config, split=split, fitted=fitted, pairs=pairs, table=table,
                               calibration=calibration, seconds=seconds, source=source, created=created)
    metadata = {"data_sha256": metrics["data"]["sha256"], "metrics": json.loads(json.dumps(metrics)),
                "created": created, "seed": config.seed, "torch_version": str(torch.__version__)}
    artifact = fitted.artifact(context=context(series, split.context_days), calibration=calibration,
                               metadata=metadata)
    model_path = save_artifact(artifact, out / MODEL_FILE)
    metrics_path = out / METRICS_FILE
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return TrainResult(out_dir=out, model_path=model_path, metrics_path=metrics_path, metrics=metrics,
                       epochs_run=fitted.epochs_run, best_epoch=fitted.best_epoch, seconds=seconds,
                       holdout_pairs=pairs)
