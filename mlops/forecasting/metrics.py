"""Forecast accuracy, and the weekly seasonal-naive baseline scored on the same (origin, date) pairs.

Pure functions on arrays and frames. The baseline forecast for date ``d`` from origin ``o`` is
the actual value at the last date ``<= o`` with the same weekday as ``d``, i.e. ``d - 7k`` with
``k = ceil((d - o) / 7 days)``. A model is only worth shipping if it beats that on the same pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error, in percent; pairs whose actual is 0 are left out."""
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    keep = actual != 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs((actual[keep] - predicted[keep]) / actual[keep])) * 100.0)


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    diff = np.asarray(actual, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)
    return float(np.sqrt(np.mean(diff**2))) if diff.size else float("nan")


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    diff = np.asarray(actual, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)
    return float(np.mean(np.abs(diff))) if diff.size else float("nan")


def accuracy(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {"mape": mape(actual, predicted), "rmse": rmse(actual, predicted), "mae": mae(actual, predicted)}


def seasonal_naive(history: pd.Series, origins: pd.Series | np.ndarray, dates: pd.Series | np.ndarray,
                   season_days: int = 7) -> np.ndarray:
    """The seasonal-naive forecast of each ``dates[i]`` made at ``origins[i]``.

    ``history`` maps date -> actual (a date-indexed Series) and must hold the looked-up days.
    """
    origins = pd.DatetimeIndex(origins)
    dates = pd.DatetimeIndex(dates)
    lead = (dates - origins).days.to_numpy()
    if (lead < 1).any():
        raise ValueError("every forecast date must be after its origin")
    back = season_days * np.ceil(lead / season_days).astype(np.int64)
    source = dates - pd.to_timedelta(back, unit="D")
    series = history.copy()
    series.index = pd.DatetimeIndex(series.index)
    missing = ~source.isin(series.index)
    if missing.any():
        raise ValueError(f"history lacks {source[missing][0].date()} needed by the seasonal-naive baseline")
    return series.reindex(source).to_numpy(dtype=np.float64)


def compare_with_baseline(pairs: pd.DataFrame, history: pd.Series, *, origin_column: str = "forecast_origin",
                          date_column: str = "date", predicted_column: str = "predicted",
                          actual_column: str = "count") -> dict:
    """Model vs weekly seasonal-naive on exactly the pairs of ``pairs`` (one row per origin/date)."""
    baseline = seasonal_naive(history, pairs[origin_column], pairs[date_column])
    actual = pairs[actual_column].to_numpy(dtype=np.float64)
    lead = (pd.DatetimeIndex(pairs[date_column]) - pd.DatetimeIndex(pairs[origin_column])).days
    return {
        "model": accuracy(actual, pairs[predicted_column].to_numpy(dtype=np.float64)),
        "seasonal_naive": accuracy(actual, baseline),
        "pairs": int(len(pairs)),
        "origins": int(pd.Series(pairs[origin_column]).nunique()),
        "horizons": [int(lead.min()), int(lead.max())] if len(pairs) else [],
    }
