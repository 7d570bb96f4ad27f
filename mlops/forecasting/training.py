"""Training: ``train_model(frame, out_dir, ...)`` fits the TCN and writes ``model.pt`` and ``metrics.json``.

The series is split by time into three parts::

    | ---------------- fit ---------------- | -- validation -- | -- holdout -- |
      training samples (targets here)         early stopping      metrics.json

* the network learns from origins whose whole horizon lies in the fit part;
* after every epoch the loss on the validation tail decides early stopping (the weights of the
  best epoch are kept; epoch 0 is the untrained network, i.e. the seasonal-naive baseline);
* the holdout is never seen: rolling forecasts over it (horizons 1..H, step 1) give the model's
  MAPE/RMSE/MAE and the weekly seasonal-naive baseline's on the same (origin, date) pairs.

The saved context (the forecasting history used when a request brings no actuals) is the end of
the *whole* series, so the model forecasts from where its data ends.

Deterministic for a seed: ``torch.manual_seed``, ``torch.use_deterministic_algorithms(True)``, a
fixed number of CPU threads (1 by default; the previous global settings are restored afterwards)
and a seeded batch order. CPU only. ``shuffle_targets`` is a testing aid: it permutes the counts
the network learns from, producing a model that is clearly worse than the baseline (what a
release's quality gate must refuse); such a run keeps its last epoch instead of its best.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .artifact import MODEL_FILE, build_artifact, save_artifact
from .data import CALENDAR_FEATURES, TargetScaling, calendar_features, series_sha256, validate_series
from .errors import ForecastInputError
from .forecaster import TCNForecaster
from .metrics import compare_with_baseline
from .model import TCN, TCNConfig
from .windows import build_samples

METRICS_FILE = "metrics.json"
MAX_IMPUTED_GAP = 3
"""Training interpolates gaps of up to this many missing days (GitHub's DAU file lacks two days)."""
CONTEXT_EXTRA_DAYS = 28
"""Days stored beyond the network's window, so the baseline and short requests have history too."""


@dataclass(frozen=True)
class TrainConfig:
    horizon: int = 14
    window: int = 56
    seed: int = 0
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 10
    holdout_days: int | None = None
    """Default ``4 * horizon`` (56 days)."""
    validation_days: int | None = None
    """Default ``6 * horizon`` (84 days)."""
    channels: int = 24
    dilations: tuple[int, ...] = field(default=(1, 2, 4, 8))
    dropout: float = 0.1
    shuffle_targets: bool = False
    threads: int = 1

    @property
    def holdout(self) -> int:
        return self.holdout_days if self.holdout_days is not None else 4 * self.horizon

    @property
    def validation(self) -> int:
        return self.validation_days if self.validation_days is not None else 6 * self.horizon

    def min_rows(self) -> int:
        """Enough days for ``2 * horizon`` training samples plus the validation and holdout parts."""
        return self.window + 3 * self.horizon + self.validation + self.holdout

    def check(self) -> None:
        for name in ("horizon", "window", "epochs", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ForecastInputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.window < 7:
            raise ForecastInputError(f"window must be at least 7 days, got {self.window}")
        if self.holdout < self.horizon or self.validation < self.horizon:
            raise ForecastInputError("holdout_days and validation_days must each be at least the horizon")


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


class _Deterministic:
    """Seeded, deterministic, fixed-thread torch for the duration of a ``with`` block."""

    def __init__(self, seed: int, threads: int) -> None:
        self.seed, self.threads = seed, threads

    def __enter__(self) -> _Deterministic:
        self._threads = torch.get_num_threads()
        self._deterministic = torch.are_deterministic_algorithms_enabled()
        torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(self.seed)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._threads)
        torch.use_deterministic_algorithms(self._deterministic)


def _loss(network: TCN, samples: Any, loss_fn: torch.nn.Module) -> float:
    network.eval()
    with torch.no_grad():
        out = network(torch.from_numpy(samples.past), torch.from_numpy(samples.future),
                      torch.from_numpy(samples.naive))
        return float(loss_fn(out, torch.from_numpy(samples.target)))


def _fit(series: pd.DataFrame, config: TrainConfig, progress: Callable[[str], None]
         ) -> tuple[TCN, TargetScaling, dict[str, Any]]:
    horizon, window = config.horizon, config.window
    n_fit = len(series) - config.holdout
    counts = series["count"].to_numpy(dtype=np.float64)[:n_fit].copy()
    holiday = series["holiday"].to_numpy(dtype=np.float64)[:n_fit]
    rng = np.random.default_rng(config.seed)
    if config.shuffle_targets:
        counts = counts[rng.permutation(n_fit)]
    log_target = np.log1p(counts)
    calendar = calendar_features(series["date"].iloc[:n_fit], holiday)
    val_first = n_fit - config.validation - 1
    train_origins = np.arange(window - 1, val_first - horizon + 1)
    val_origins = np.arange(max(val_first, window - 1), n_fit - horizon)
    raw = build_samples(log_target, calendar, train_origins, window=window, horizon=horizon, scale=1.0,
                        with_target=True)
    scale = float(np.std(raw.target)) or 1.0
    scaling = TargetScaling(scale=scale)
    train = build_samples(log_target, calendar, train_origins, window=window, horizon=horizon, scale=scale,
                          with_target=True)
    val = build_samples(log_target, calendar, val_origins, window=window, horizon=horizon, scale=scale,
                        with_target=True)
    net_config = TCNConfig(input_channels=1 + CALENDAR_FEATURES, future_features=CALENDAR_FEATURES,
                           horizon=horizon, window=window, channels=config.channels,
                           dilations=tuple(config.dilations), dropout=config.dropout,
                           seasonal_skip=not config.shuffle_targets)
    network = TCN(net_config)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = torch.nn.L1Loss()
    tensors = [torch.from_numpy(a) for a in (train.past, train.future, train.naive, train.target)]
    best_loss = _loss(network, val, loss_fn)
    best_state, best_epoch, epochs_run, stale = copy.deepcopy(network.state_dict()), 0, 0, 0
    progress(f"epoch 0/{config.epochs}: validation loss {best_loss:.4f} (untrained), "
             f"{len(train_origins)} training and {len(val_origins)} validation samples")
    order_gen = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, config.epochs + 1):
        network.train()
        order = torch.randperm(len(train_origins), generator=order_gen)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start:start + config.batch_size]
            past, future, naive, target = (t[idx] for t in tensors)
            optimizer.zero_grad()
            loss = loss_fn(network(past, future, naive), target)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        val_loss = _loss(network, val, loss_fn)
        epochs_run = epoch
        improved = val_loss < best_loss - 1e-6
        if improved:
            best_loss, best_state, best_epoch, stale = val_loss, copy.deepcopy(network.state_dict()), epoch, 0
        else:
            stale += 1
        progress(f"epoch {epoch}/{config.epochs}: train loss {total / len(order):.4f}, validation loss "
                 f"{val_loss:.4f}{' (best)' if improved else ''}")
        if stale >= config.patience:
            progress(f"early stop: no improvement for {config.patience} epochs, keeping epoch {best_epoch}")
            break
    if config.shuffle_targets:
        # The testing aid wants a bad model: keep the last epoch, not the best (which may be epoch 0,
        # i.e. the seasonal-naive start).
        best_epoch, best_loss = epochs_run, _loss(network, val, loss_fn)
    else:
        network.load_state_dict(best_state)
    network.eval()
    info = {"epochs_run": epochs_run, "best_epoch": best_epoch, "validation_loss": best_loss,
            "training_samples": int(len(train_origins)), "validation_samples": int(len(val_origins))}
    return network, scaling, info


def _context(series: pd.DataFrame, days: int) -> pd.DataFrame:
    return series.iloc[-days:][["date", "count", "holiday"]].reset_index(drop=True)


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
    started = time.perf_counter()
    with _Deterministic(config.seed, config.threads):
        network, scaling, info = _fit(series, config, progress)
        n_fit = len(series) - config.holdout
        fit_part = series.iloc[:n_fit]
        holdout = series.iloc[n_fit:].reset_index(drop=True)
        base = dict(config=network.config.to_dict(), state_dict=network.state_dict(), scaling=scaling.to_dict())
        evaluator = TCNForecaster(build_artifact(**base, context=_context(fit_part, config.window + CONTEXT_EXTRA_DAYS),
                                                 metadata={}))
        rolling = evaluator.rolling_forecast(holdout[["date", "holiday"]], holdout["count"].to_numpy(), step=1)
    seconds = time.perf_counter() - started
    pairs = rolling.rename(columns={evaluator.forecast_origin_column_name: "forecast_origin",
                                    evaluator.forecast_column_name: "predicted",
                                    evaluator.actual_column_name: "count"})
    comparison = compare_with_baseline(pairs, series.set_index("date")["count"])
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    metrics: dict[str, Any] = {
        "holdout": {**comparison, "days": int(len(holdout)),
                    "first_date": holdout["date"].iloc[0].strftime("%Y-%m-%d"),
                    "last_date": holdout["date"].iloc[-1].strftime("%Y-%m-%d")},
        "beats_seasonal_naive": comparison["model"]["mape"] < comparison["seasonal_naive"]["mape"],
        "training": {**info, "seconds": round(seconds, 3), "shuffle_targets": config.shuffle_targets},
        "data": {"sha256": series_sha256(series), "rows": int(len(series)), "source": Path(source).name,
                 "imputed_days": int(series.attrs.get("imputed_days", 0)),
                 "first_date": series["date"].iloc[0].strftime("%Y-%m-%d"),
                 "last_date": series["date"].iloc[-1].strftime("%Y-%m-%d")},
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "created": created,
    }
    metadata = {"data_sha256": metrics["data"]["sha256"], "metrics": json.loads(json.dumps(metrics)),
                "created": created, "seed": config.seed, "torch_version": str(torch.__version__)}
    artifact = build_artifact(**base, context=_context(series, config.window + CONTEXT_EXTRA_DAYS),
                              metadata=metadata)
    model_path = save_artifact(artifact, out / MODEL_FILE)
    metrics_path = out / METRICS_FILE
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return TrainResult(out_dir=out, model_path=model_path, metrics_path=metrics_path, metrics=metrics,
                       epochs_run=info["epochs_run"], best_epoch=info["best_epoch"], seconds=seconds,
                       holdout_pairs=pairs)
