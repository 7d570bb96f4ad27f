"""A fitted ensemble evaluated: its rolling forecasts over the holdout against the weekly
seasonal-naive baseline on the same (origin, date) pairs, the residual table its calibration is
computed from, and ``metrics.json``.

The holdout is never seen by the fit: rolling forecasts over it (horizons 1..H, step 1) give the
model's MAPE/RMSE/MAE and the baseline's. The evaluator is the fitted network with the fit part's
context and its validation residuals as a provisional calibration; its rolling-forecast residuals
over the last ``calibration.RECENT_DAYS`` days (the validation tail and holdout - out of sample -
included), per horizon, are what ``calibration.calibrate`` reduces to the saved model's calibration.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .calibration import RECENT_DAYS, Calibration, ResidualTable, holdout_coverage
from .data import series_sha256
from .fit import Fitted
from .forecaster import TCNForecaster
from .metrics import compare_with_baseline
from .splits import Split, context
from .train_config import TrainConfig


def evaluator(fitted: Fitted, series: pd.DataFrame, split: Split) -> TCNForecaster:
    """The fitted network as a forecaster that knows the fit part only (its context ends where the
    holdout starts; calibrated by the validation residuals)."""
    fit_part = series.iloc[:split.fit_rows]
    return TCNForecaster(fitted.artifact(context=context(fit_part, split.context_days),
                                         calibration=Calibration(residuals=fitted.validation_residuals),
                                         metadata={}))


def holdout_pairs(evaluator: TCNForecaster, series: pd.DataFrame, split: Split) -> pd.DataFrame:
    """The rolling forecast over the holdout (horizons 1..H, step 1) as (origin, date) pairs:
    ``forecast_origin``, ``date``, ``predicted``, ``count``."""
    holdout = series.iloc[split.fit_rows:].reset_index(drop=True)
    rolling = evaluator.rolling_forecast(holdout[["date", "holiday"]], holdout["count"].to_numpy(), step=1)
    return rolling.rename(columns={evaluator.forecast_origin_column_name: "forecast_origin",
                                   evaluator.forecast_column_name: "predicted",
                                   evaluator.actual_column_name: "count"})


def residual_table(evaluator: TCNForecaster, series: pd.DataFrame, config: TrainConfig) -> ResidualTable:
    """The ``log1p`` residuals of ``evaluator``'s rolling forecasts (every horizon) at the origins of
    the last ``calibration.RECENT_DAYS`` days of ``series``, and which of them are out of sample:
    origins from the first validation origin on (``Split.first_validation_origin``), whose targets
    all come after the last training target. ``evaluator`` is any forecaster of this training (the
    saved model gives the same numbers: an origin's forecast reads its window only)."""
    split = Split.of(len(series), config)
    days = min(RECENT_DAYS, len(series) - config.window - config.horizon)
    part = series.iloc[-(days + config.window):].reset_index(drop=True)
    rolling = evaluator.rolling_forecast(part[["date", "holiday"]], part["count"].to_numpy(), step=1)
    first = part["date"].iloc[config.window - 1]
    residuals, origins = _residual_table(rolling[rolling[evaluator.forecast_origin_column_name] >= first],
                                         evaluator, config.horizon)
    first_unseen = series["date"].iloc[split.first_validation_origin]
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


def metrics_document(*, series: pd.DataFrame, config: TrainConfig, split: Split, fitted: Fitted,
                     pairs: pd.DataFrame, table: ResidualTable, calibration: Calibration, seconds: float,
                     source: str, created: str) -> dict[str, Any]:
    """``metrics.json``: the holdout's model and baseline metrics on the same pairs, the fit's facts,
    the calibration and its holdout coverage, the data's identity and the config."""
    comparison = compare_with_baseline(pairs, series.set_index("date")["count"])
    holdout_dates = series["date"].iloc[split.fit_rows:]
    return {
        "holdout": {**comparison, "days": int(len(holdout_dates)),
                    "first_date": holdout_dates.iloc[0].strftime("%Y-%m-%d"),
                    "last_date": holdout_dates.iloc[-1].strftime("%Y-%m-%d")},
        "beats_seasonal_naive": comparison["model"]["mape"] < comparison["seasonal_naive"]["mape"],
        "training": {**fitted.facts(), "seconds": round(seconds, 3), "shuffle_targets": config.shuffle_targets},
        "calibration": {"method": config.calibration,
                        "kind": "split-conformal, log1p residuals per horizon"
                                + (f", scaled by the error level of the last {calibration.level_origins} origins"
                                   if calibration.level_origins else ""),
                        "residuals_per_horizon": int(calibration.residuals.shape[1]),
                        "reference_level": round(calibration.reference_level, 6),
                        "holdout_80_coverage": round(holdout_coverage(table, config.calibration,
                                                                      split.holdout_origins), 4)},
        "data": {"sha256": series_sha256(series), "rows": int(len(series)), "source": Path(source).name,
                 "imputed_days": int(series.attrs.get("imputed_days", 0)),
                 "first_date": series["date"].iloc[0].strftime("%Y-%m-%d"),
                 "last_date": series["date"].iloc[-1].strftime("%Y-%m-%d")},
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "created": created,
    }
