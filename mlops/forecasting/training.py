"""Training: ``train_model(frame, out_dir, ...)`` fits the TCN and writes ``model.pt`` and ``metrics.json``.

The series is split by time into three parts::

    | ---------------- fit ---------------- | -- validation -- | -- holdout -- |
      training samples (targets here)         early stopping      metrics.json

* the networks learn from origins whose whole horizon lies in the fit part;
* the model is an ensemble of ``members`` TCNs (``model.TCN``) trained together, each on its own
  loss; after every epoch the averaged forecast's loss on the validation tail - a rolling
  validation: every origin of the tail, horizons 1..H - decides early stopping (the weights of the
  best epoch are kept; epoch 0 is the untrained network, i.e. the seasonal-naive baseline);
* the holdout is never seen: rolling forecasts over it (horizons 1..H, step 1) give the model's
  MAPE/RMSE/MAE and the weekly seasonal-naive baseline's on the same (origin, date) pairs;
* the ensemble's rolling-forecast residuals over the last two years (the validation tail and
  holdout - out of sample - included), per horizon, are reduced by ``TrainConfig.calibration``'s
  method (``calibration``) and kept in ``model.pt`` as the conformal calibration of its quantile
  forecasts (``intervals``).

The saved context (the forecasting history used when a request brings no actuals) is the end of
the *whole* series, so the model forecasts from where its data ends.

Deterministic for a seed: ``torch.manual_seed``, ``torch.use_deterministic_algorithms(True)``, a
fixed number of CPU threads (1 by default; the previous global settings are restored afterwards)
and a seeded batch order. CPU only. ``shuffle_targets`` is a testing aid: it permutes the counts
the network learns from, producing a model that is clearly worse than the baseline (what a
release's quality gate must refuse); such a run trains one member and keeps its last epoch
instead of its best.
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
from .calibration import METHODS, RECENT_DAYS, Calibration, ResidualTable, calibrate, holdout_coverage
from .data import TargetScaling, calendar_features, series_sha256, validate_series
from .error_level import LEVEL_ORIGINS
from .errors import ForecastInputError
from .forecaster import TCNForecaster
from .metrics import compare_with_baseline
from .model import TCN, TCNConfig
from .windows import FUTURE_FEATURES, SEQUENCE_FEATURES, Samples, build_samples, context_days

METRICS_FILE = "metrics.json"
MAX_IMPUTED_GAP = 3
"""Training interpolates gaps of up to this many missing days (GitHub's DAU file lacks two days)."""
KERNEL_SIZE = 3
"""The convolutions' kernel (``TCNConfig.kernel_size``'s default)."""
CONTEXT_EXTRA_DAYS = LEVEL_ORIGINS
"""Days stored beyond the network's window, so the baseline and short requests have history too, and
the first forecast's error level (``error_level``) reads the full window of every origin before it."""


@dataclass(frozen=True)
class TrainConfig:
    horizon: int = 14
    seed: int = 0
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-3
    patience: int = 10
    holdout_days: int | None = None
    """Default ``4 * horizon`` (56 days)."""
    validation_days: int | None = None
    """Default ``6 * horizon`` (84 days)."""
    channels: int = 24
    dilations: tuple[int, ...] = field(default=(1, 2, 4, 8, 16))
    dropout: float = 0.2
    members: int = 5
    """TCNs in the ensemble (``shuffle_targets`` trains one)."""
    huber_delta: float = 0.5
    """Training loss: Huber with this threshold on the scaled log errors (quadratic below it, so large
    misses - the costly high-traffic days - weigh more than under L1; 0 = L1). Early stopping
    always judges the L1 loss, the MAPE-like one."""
    ema_decay: float = 0.99
    """Early stopping judges, and training keeps, an exponential moving average of the weights
    (updated after every step; 0.99 averages over the last ~3 epochs): one TCN's validation loss
    jumps from epoch to epoch, and where it happens to be lowest depends on the seed - averaged
    weights are smoother and the epoch they stop at matters less (0 = the raw weights)."""
    block_days: int = 16
    """Training batches are made of blocks of this many consecutive origins (``batch_size`` origins in
    all, blocks in random order): one convolution pass over a block's days encodes all of its
    origins, so a step costs a few hundred days of convolution instead of ``batch_size`` windows of
    138 days (``_encode_blocks``)."""
    calibration: str = "scaled-730"
    """How the quantiles are calibrated (``calibration.METHODS``): which rolling-forecast residuals
    of the early-stopped ensemble ``model.pt`` keeps. Chosen on training data only by
    ``benchmarks/intervals.py`` (see ``calibration``'s module doc): 80% interval coverage on the
    last year of each series' training split, the model trained on the days before (one run, busy):

    ========================  ==========  ==========  =============  ============
    series                    recent-730  recent-365  out-of-sample  inflated-730
    ========================  ==========  ==========  =============  ============
    GitHub DAU train.csv      65.8%       64.4%       72.7%          71.5%
    synthetic seed 3          67.8%       72.7%       79.8%          78.0%
    synthetic seed 7          77.9%       78.7%       83.4%          82.2%
    synthetic seed 11         73.4%       74.2%       84.3%          84.0%
    US births 1981-1988       70.2%       71.7%       81.0%          78.8%
    US births 1996-2003       73.2%       75.7%       78.8%          77.9%
    US births 2007-2014       75.8%       77.4%       78.6%          77.8%
    mean abs(cov - 80%)       8.0%        6.4%        2.7%           3.2%
    ========================  ==========  ==========  =============  ============

    The first formats' ``recent-730`` (chosen on DAU's test period) under-covers on every series:
    its in-sample residuals are too small. Plain split conformal on the 140 out-of-sample days has
    the smallest mean miss and is the default. Held-out check, once, after the choice: DAU test.csv
    92.4% for seed 0 (91.2-92.4% over five seeds) - over 80%, as DAU's test year is calmer than the
    months before it (its pseudo-test year was the other way round, 72.7%)."""
    shuffle_targets: bool = False
    threads: int = 1

    @property
    def window(self) -> int:
        """Days of context the network reads before an origin (its receptive field and the features'
        look-back; 138 with the default dilations)."""
        return context_days(1 + 2 * (KERNEL_SIZE - 1) * sum(self.dilations))

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
        for name in ("horizon", "epochs", "batch_size", "threads", "members", "channels"):
            if getattr(self, name) < 1:
                raise ForecastInputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.dilations or any(d < 1 for d in self.dilations):
            raise ForecastInputError(f"dilations must be positive integers, got {list(self.dilations)}")
        if self.calibration not in METHODS:
            raise ForecastInputError(f"calibration must be one of {', '.join(METHODS)}, got {self.calibration!r}")
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


def _loss(network: torch.nn.Module, samples: Samples, loss_fn: torch.nn.Module) -> float:
    network.eval()
    with torch.no_grad():
        return float(loss_fn(_predict(network, samples), torch.from_numpy(samples.target)))


def _predict(network: torch.nn.Module, samples: Samples) -> torch.Tensor:
    return network(torch.from_numpy(samples.sequence), torch.from_numpy(samples.origins),
                   torch.from_numpy(samples.future), torch.from_numpy(samples.naive))


@dataclass(frozen=True)
class _Prepared:
    scaling: TargetScaling
    train: Samples
    val: Samples
    net_config: TCNConfig


def _prepare(series: pd.DataFrame, config: TrainConfig) -> _Prepared:
    """Samples of the fit part: training origins, and the validation tail's apart."""
    horizon, window = config.horizon, config.window
    n_fit = len(series) - config.holdout
    counts = series["count"].to_numpy(dtype=np.float64)[:n_fit].copy()
    holiday = series["holiday"].to_numpy(dtype=np.float64)[:n_fit]
    if config.shuffle_targets:
        counts = counts[np.random.default_rng(config.seed).permutation(n_fit)]
    log_target = np.log1p(counts)
    calendar = calendar_features(series["date"].iloc[:n_fit], holiday)
    val_first = n_fit - config.validation - 1
    train_origins = np.arange(window - 1, val_first - horizon + 1)
    val_origins = np.arange(max(val_first, window - 1), n_fit - horizon)
    raw = build_samples(log_target, calendar, train_origins, horizon=horizon, scale=1.0, with_target=True)
    scale = float(np.std(raw.target)) or 1.0
    # The validation samples' sequence covers the training days too: one sequence serves both.
    every = build_samples(log_target, calendar, np.concatenate([train_origins, val_origins]), horizon=horizon,
                          scale=scale, min_origin=window - 1, with_target=True)
    n_train = len(train_origins)
    net_config = TCNConfig(input_channels=SEQUENCE_FEATURES, future_features=FUTURE_FEATURES,
                           horizon=horizon, window=window, channels=config.channels,
                           dilations=tuple(config.dilations), dropout=config.dropout,
                           seasonal_skip=not config.shuffle_targets,
                           members=1 if config.shuffle_targets else config.members)
    return _Prepared(scaling=TargetScaling(scale=scale), train=every.subset(np.arange(n_train)),
                     val=every.subset(np.arange(n_train, len(every.origins))), net_config=net_config)


def _blocks(origins: np.ndarray, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` sample ranges of at most ``size`` consecutive origins each."""
    breaks = np.flatnonzero(np.diff(origins) != 1) + 1
    out: list[tuple[int, int]] = []
    for a, b in zip(np.concatenate([[0], breaks]), np.concatenate([breaks, [len(origins)]]), strict=True):
        out.extend((int(i), int(min(i + size, b))) for i in range(int(a), int(b), size))
    return out


def _encode_blocks(network: TCN, sequence: torch.Tensor, origins: np.ndarray, blocks: list[tuple[int, int]],
                   reach: int) -> torch.Tensor:
    """The encodings ``(B, K, channels)`` of the blocks' origins, in block order, from one convolution
    pass over just the days they read: each block's segment is its origins plus the ``reach`` days
    before the first (left-padded to a common length; padding lies outside every used receptive field)."""
    length = max(b - a for a, b in blocks) + reach
    segments = []
    for a, b in blocks:
        first, last = int(origins[a]) - reach, int(origins[b - 1]) + 1
        segment = sequence[:, first:last]
        segments.append(torch.nn.functional.pad(segment, (length - segment.shape[1], 0)))
    encoded = network.encode(torch.stack(segments))  # (S, length, K, channels)
    return torch.cat([encoded[i, length - (b - a):] for i, (a, b) in enumerate(blocks)])


def _train_epochs(network: TCN, data: _Prepared, config: TrainConfig, epochs: int,
                  progress: Callable[[str], None]) -> tuple[int, int, dict, float]:
    """Train up to ``epochs`` epochs, stopping early on the validation loss (L1, whatever the training
    loss) of the exponential moving average of the weights (``ema_decay``), which is what is kept.
    Returns ``(best epoch, epochs run, best state, best validation loss)``."""
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = torch.nn.L1Loss()
    train_loss = torch.nn.HuberLoss(delta=config.huber_delta) if config.huber_delta else loss_fn
    train, val = data.train, data.val
    sequence = torch.from_numpy(train.sequence)
    tensors = [torch.from_numpy(a) for a in (train.future, train.naive, train.target)]
    n_train = len(train.target)
    blocks = _blocks(train.origins, config.block_days)
    reach = data.net_config.receptive_field - 1
    members = data.net_config.members
    best_loss = _loss(network, val, loss_fn)
    best_state, best_epoch, epochs_run, stale = copy.deepcopy(network.state_dict()), 0, 0, 0
    averaged, decay = copy.deepcopy(network), config.ema_decay  # judged and kept: the averaged weights
    progress(f"epoch 0/{epochs}: validation loss {best_loss:.4f} (untrained), {n_train} training and "
             f"{len(val.target)} validation samples, {members} member{'s' if members > 1 else ''}")
    order_gen = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, epochs + 1):
        network.train()
        order = torch.randperm(len(blocks), generator=order_gen).tolist()
        total = 0.0
        per_step = max(1, config.batch_size // config.block_days)
        for start in range(0, len(order), per_step):
            chosen = [blocks[i] for i in order[start:start + per_step]]
            idx = torch.from_numpy(np.concatenate([np.arange(a, b) for a, b in chosen]))
            future, naive, target = (t[idx] for t in tensors)
            optimizer.zero_grad()
            out = network.head(_encode_blocks(network, sequence, train.origins, chosen, reach), future, naive)
            loss = train_loss(out, target.unsqueeze(1).expand_as(out))
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for kept, current in zip(averaged.parameters(), network.parameters(), strict=True):
                    kept.mul_(decay).add_(current, alpha=1.0 - decay)
            total += float(loss.detach()) * len(idx)
        epochs_run = epoch
        val_loss = _loss(averaged, val, loss_fn)
        improved = val_loss < best_loss - 1e-6
        if improved:
            best_loss, best_state, best_epoch, stale = val_loss, copy.deepcopy(averaged.state_dict()), epoch, 0
        else:
            stale += 1
        progress(f"epoch {epoch}/{epochs}: train loss {total / n_train:.4f}, validation loss "
                 f"{val_loss:.4f}{' (best)' if improved else ''}")
        if stale >= config.patience:
            progress(f"early stop: no improvement for {config.patience} epochs, keeping epoch {best_epoch}")
            break
    return best_epoch, epochs_run, best_state, best_loss


def _fit(series: pd.DataFrame, config: TrainConfig, progress: Callable[[str], None]
         ) -> tuple[TCN, TargetScaling, dict[str, Any], np.ndarray]:
    """The ensemble, its scaling, training facts, and its validation residuals ``(horizon, n)`` in
    ``log1p`` space.

    Each member learns from its own loss (the mean of the members' losses: no member's gradient
    depends on another's output, so they do not co-adapt); the ensemble's validation loss - L1 of
    the averaged forecast - decides early stopping."""
    data = _prepare(series, config)
    network = TCN(data.net_config)
    val = data.val
    loss_fn = torch.nn.L1Loss()
    best_epoch, epochs_run, best_state, best_loss = _train_epochs(network, data, config, config.epochs, progress)
    if config.shuffle_targets:
        # The testing aid wants a bad model: keep the last epoch, not the best (which may be epoch 0,
        # i.e. the seasonal-naive start).
        best_epoch, best_loss = epochs_run, _loss(network, val, loss_fn)
    else:
        network.load_state_dict(best_state)
    network.eval()
    with torch.no_grad():
        z = _predict(network, val).numpy().astype(np.float64)
    residuals = (val.target.astype(np.float64) - z) * data.scaling.scale
    info = {"members": data.net_config.members, "epochs_run": epochs_run, "best_epoch": best_epoch,
            "validation_loss": best_loss, "training_samples": int(len(data.train.target)),
            "validation_samples": int(len(val.target))}
    return network, data.scaling, info, residuals.T


def residual_table(evaluator: TCNForecaster, series: pd.DataFrame, config: TrainConfig) -> ResidualTable:
    """The ``log1p`` residuals of ``evaluator``'s rolling forecasts (every horizon) at the origins of
    the last ``calibration.RECENT_DAYS`` days of ``series``, and which of them are out of sample:
    origins from the first validation origin on (index ``len - holdout - validation - 1``), whose
    targets all come after the last training target. ``evaluator`` is any forecaster of this
    training (the saved model gives the same numbers: an origin's forecast reads its window only)."""
    days = min(RECENT_DAYS, len(series) - config.window - config.horizon)
    part = series.iloc[-(days + config.window):].reset_index(drop=True)
    rolling = evaluator.rolling_forecast(part[["date", "holiday"]], part["count"].to_numpy(), step=1)
    first = part["date"].iloc[config.window - 1]
    residuals, origins = _residual_table(rolling[rolling[evaluator.forecast_origin_column_name] >= first],
                                         evaluator, config.horizon)
    first_unseen = series["date"].iloc[len(series) - config.holdout - config.validation - 1]
    return ResidualTable(residuals=residuals, out_of_sample=(origins >= first_unseen))


def _residual_table(rolling: pd.DataFrame, forecaster: TCNForecaster, horizon: int
                    ) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """``(horizon, origins)`` ``log1p`` residuals of a rolling forecast (origins with every horizon)
    and those origins."""
    origin = pd.DatetimeIndex(rolling[forecaster.forecast_origin_column_name])
    lead = (pd.DatetimeIndex(rolling[forecaster.time_column_name]) - origin).days.to_numpy()
    frame = pd.DataFrame({"origin": origin, "lead": lead,
                          "r": np.log1p(rolling[forecaster.actual_column_name].to_numpy(dtype=np.float64))
                          - np.log1p(rolling[forecaster.forecast_column_name].to_numpy(dtype=np.float64))})
    table = frame.pivot(index="origin", columns="lead", values="r").reindex(columns=range(1, horizon + 1))
    table = table.dropna()
    return table.to_numpy().T, pd.DatetimeIndex(table.index)


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
        network, scaling, info, val_residuals = _fit(series, config, progress)
        n_fit = len(series) - config.holdout
        fit_part = series.iloc[:n_fit]
        holdout = series.iloc[n_fit:].reset_index(drop=True)
        base = dict(config=network.config.to_dict(), state_dict=network.state_dict(), scaling=scaling.to_dict())
        evaluator = TCNForecaster(build_artifact(**base, context=_context(fit_part, config.window + CONTEXT_EXTRA_DAYS),
                                                 calibration=Calibration(residuals=val_residuals), metadata={}))
        rolling = evaluator.rolling_forecast(holdout[["date", "holiday"]], holdout["count"].to_numpy(), step=1)
        table = residual_table(evaluator, series, config)
        calibration = calibrate(table, config.calibration)
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
        "calibration": {"method": config.calibration,
                        "kind": "split-conformal, log1p residuals per horizon"
                                + (f", scaled by the error level of the last {calibration.level_origins} origins"
                                   if calibration.level_origins else ""),
                        "residuals_per_horizon": int(calibration.residuals.shape[1]),
                        "reference_level": round(calibration.reference_level, 6),
                        "holdout_80_coverage": round(holdout_coverage(
                            table, config.calibration, config.holdout - config.horizon + 1), 4)},
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
                              calibration=calibration, metadata=metadata)
    model_path = save_artifact(artifact, out / MODEL_FILE)
    metrics_path = out / METRICS_FILE
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return TrainResult(out_dir=out, model_path=model_path, metrics_path=metrics_path, metrics=metrics,
                       epochs_run=info["epochs_run"], best_epoch=info["best_epoch"], seconds=seconds,
                       holdout_pairs=pairs)
