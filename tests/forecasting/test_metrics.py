"""Accuracy metrics and the weekly seasonal-naive baseline (pure functions, parameter tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.forecasting.metrics import accuracy, compare_with_baseline, mae, mape, rmse, seasonal_naive


def test_metric_values() -> None:
    actual, predicted = np.array([100.0, 200.0, 0.0]), np.array([110.0, 150.0, 5.0])
    assert mape(actual, predicted) == pytest.approx((10 / 100 + 50 / 200) / 2 * 100)  # zero actual left out
    assert rmse(actual, predicted) == pytest.approx(np.sqrt((100 + 2500 + 25) / 3))
    assert mae(actual, predicted) == pytest.approx((10 + 50 + 5) / 3)
    assert accuracy(actual, actual) == {"mape": 0.0, "rmse": 0.0, "mae": 0.0}


# 2020-01-06 is a Monday. origin, date -> the date whose actual is the forecast
@pytest.mark.parametrize(("origin", "date", "source"), [
    ("2020-01-06", "2020-01-07", "2019-12-31"),   # h=1: last Tuesday <= origin
    ("2020-01-06", "2020-01-13", "2020-01-06"),   # h=7: the origin itself
    ("2020-01-06", "2020-01-14", "2019-12-31"),   # h=8: d - 7 is after the origin, so d - 14
    ("2020-01-06", "2020-01-20", "2020-01-06"),   # h=14
    ("2020-01-10", "2020-01-11", "2020-01-04"),
])
def test_seasonal_naive_uses_last_same_weekday_at_or_before_origin(origin: str, date: str, source: str) -> None:
    days = pd.date_range("2019-12-01", "2020-01-31")
    history = pd.Series(np.arange(len(days), dtype=float), index=days)
    got = seasonal_naive(history, [pd.Timestamp(origin)], [pd.Timestamp(date)])[0]
    assert got == history[pd.Timestamp(source)]


def test_seasonal_naive_needs_history_and_forward_dates() -> None:
    history = pd.Series([1.0], index=pd.DatetimeIndex(["2020-01-01"]))
    with pytest.raises(ValueError, match="lacks"):
        seasonal_naive(history, [pd.Timestamp("2020-01-05")], [pd.Timestamp("2020-01-06")])
    with pytest.raises(ValueError, match="after its origin"):
        seasonal_naive(history, [pd.Timestamp("2020-01-05")], [pd.Timestamp("2020-01-05")])


def test_compare_with_baseline_scores_the_same_pairs() -> None:
    days = pd.date_range("2020-01-01", periods=28)
    values = 100.0 + 10.0 * (days.day_of_week.to_numpy() >= 5)  # a pure weekly pattern
    history = pd.Series(values, index=days)
    origins = pd.DatetimeIndex(["2020-01-14"] * 7 + ["2020-01-15"] * 7)
    dates = pd.DatetimeIndex([o + pd.Timedelta(days=h) for o, h in zip(origins, list(range(1, 8)) * 2, strict=True)])
    pairs = pd.DataFrame({"forecast_origin": origins, "date": dates, "predicted": history[dates].to_numpy() * 1.1,
                          "count": history[dates].to_numpy()})
    result = compare_with_baseline(pairs, history)
    assert result["seasonal_naive"]["mape"] == 0.0  # weekly pattern: the baseline is exact
    assert result["model"]["mape"] == pytest.approx(10.0)
    assert (result["pairs"], result["origins"], result["horizons"]) == (14, 2, [1, 7])
