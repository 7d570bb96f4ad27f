"""The AutoML-compatible forecaster: attributes, forecast(), rolling_forecast() and their errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.forecasting.errors import ForecastInputError
from mlops.forecasting.forecaster import MIN_CONTEXT_DAYS, TCNForecaster
from mlops.forecasting.synthetic import generate_dau
from tests.forecasting.tiny import TINY_DAYS, TINY_SEED

DAY = pd.Timedelta(days=1)


def _future(start: pd.Timestamp, days: int) -> pd.DataFrame:
    return pd.DataFrame({"date": pd.date_range(start, periods=days)})


def _continuation(days: int) -> pd.DataFrame:
    """The days right after the tiny model's training data (same generator, longer run)."""
    return generate_dau(TINY_DAYS + days, seed=TINY_SEED).iloc[TINY_DAYS:].reset_index(drop=True)


def test_automl_attributes(tiny_forecaster: TCNForecaster) -> None:
    f = tiny_forecaster
    assert (f.time_column_name, f.forecast_origin_column_name, f.forecast_column_name, f.actual_column_name) == (
        "date", "_automl_forecast_origin", "_automl_forecast_y", "_automl_actual_y")
    assert f.max_horizon == 14
    assert f.history_end == generate_dau(TINY_DAYS, seed=TINY_SEED)["date"].iloc[-1]


def test_forecast_from_the_stored_history(tiny_forecaster: TCNForecaster) -> None:
    f = tiny_forecaster
    X = _future(f.history_end + DAY, 14)
    y, X_trans = f.forecast(X)
    assert y.shape == (14,) and np.all(np.isfinite(y)) and np.all(y > 0)
    assert list(X_trans.columns) == ["date", "_automl_forecast_origin", "_automl_forecast_y", "horizon"]
    assert (X_trans["_automl_forecast_origin"] == f.history_end).all()
    assert X_trans["horizon"].tolist() == list(range(1, 15))
    # a subset of the dates, in another order, gets the same numbers (direct multi-horizon output)
    some = X.iloc[[9, 2]].reset_index(drop=True)
    y_some, _ = f.forecast(some)
    np.testing.assert_allclose(y_some, y[[9, 2]], rtol=1e-6)


def test_forecast_uses_context_rows_and_keeps_their_values(tiny_forecaster: TCNForecaster) -> None:
    f = tiny_forecaster
    recent = _continuation(30)
    context, future = recent.iloc[:20], recent.iloc[20:27]
    X = pd.concat([context, future])[["date", "holiday"]].reset_index(drop=True)
    y_in = np.concatenate([context["count"].to_numpy(float), np.full(len(future), np.nan)])
    y, X_trans = f.forecast(X, y_in)
    np.testing.assert_array_equal(y[:20], y_in[:20])
    assert np.all(np.isfinite(y[20:]))
    assert (X_trans["_automl_forecast_origin"].iloc[20:] == context["date"].iloc[-1]).all()
    assert X_trans["_automl_forecast_origin"].iloc[:20].isna().all()
    # the context matters: doubling the recent actuals roughly doubles the forecast
    y_double, _ = f.forecast(X, np.where(np.isnan(y_in), np.nan, 2 * y_in))
    assert np.all(y_double[20:] > 1.5 * y[20:])


def test_short_context_without_the_stored_history_is_padded(tiny_forecaster: TCNForecaster) -> None:
    far = generate_dau(60, start="2030-01-01")
    X = far[["date"]].iloc[:MIN_CONTEXT_DAYS + 3].reset_index(drop=True)
    y_in = np.concatenate([far["count"].to_numpy(float)[:MIN_CONTEXT_DAYS], [np.nan] * 3])
    y, _ = tiny_forecaster.forecast(X, y_in)
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize(("case", "message"), [
    ("beyond_horizon", "15 days after the last actual"),
    ("all_known", "nothing to forecast"),
    ("before_origin", "is not after the last actual"),
    ("gap", "consecutive days up to"),
    ("duplicate", "duplicate date"),
    ("negative", "not a finite, non-negative count"),
    ("no_date_column", "no time column 'date'"),
    ("bad_date", "cannot parse 'soon'"),
])
def test_forecast_errors_say_what_and_where(tiny_forecaster: TCNForecaster, case: str, message: str) -> None:
    f = tiny_forecaster
    end = f.history_end
    X, y = _future(end + DAY, 3), None
    if case == "beyond_horizon":
        X = _future(end + 15 * DAY, 1)
    elif case == "all_known":
        y = np.array([1.0, 2.0, 3.0])
    elif case == "before_origin":
        y = np.array([np.nan, 5.0, np.nan])
    elif case == "gap":  # recent actuals that do not connect to the stored history: too few of them
        X, y = _future(end + 40 * DAY, 4), np.array([1.0, 2.0, 3.0, np.nan])
    elif case == "duplicate":
        X = pd.DataFrame({"date": [end + DAY, end + DAY]})
    elif case == "negative":
        y = np.array([-1.0, np.nan, np.nan])
    elif case == "no_date_column":
        X = X.rename(columns={"date": "day"})
    elif case == "bad_date":
        X = pd.DataFrame({"date": ["soon"]})
    with pytest.raises(ForecastInputError, match=message):
        f.forecast(X, y)


def test_rolling_forecast_follows_automl_semantics(tiny_forecaster: TCNForecaster) -> None:
    f = tiny_forecaster
    test = _continuation(40)
    out = f.rolling_forecast(test[["date", "holiday"]], test["count"].to_numpy(), step=1)
    assert list(out.columns) == ["date", "_automl_forecast_origin", "_automl_forecast_y", "_automl_actual_y"]
    origins = pd.DatetimeIndex(out["_automl_forecast_origin"].unique())
    assert origins[0] == f.history_end  # the first origin is the end of the training data
    assert origins[-1] == test["date"].iloc[-1] - 14 * DAY  # the last whose horizon reaches the end
    assert len(origins) == 40 - 14 + 1
    lead = (out["date"] - out["_automl_forecast_origin"]).dt.days
    assert lead.min() == 1 and lead.max() == 14
    assert out["date"].max() == test["date"].iloc[-1] and out["date"].min() == test["date"].iloc[0]
    assert out.equals(out.sort_values(["_automl_forecast_origin", "date"]).reset_index(drop=True))
    actual = test.set_index("date")["count"]
    np.testing.assert_array_equal(out["_automl_actual_y"], actual[out["date"]].to_numpy(float))
    stepped = f.rolling_forecast(test[["date"]], test["count"].to_numpy(), step=5)
    assert pd.DatetimeIndex(stepped["_automl_forecast_origin"].unique()).to_series().diff().dt.days.dropna().eq(5).all()


def test_batched_rolling_forecast_equals_a_per_origin_loop(tiny_forecaster: TCNForecaster) -> None:
    f = tiny_forecaster
    test = _continuation(30)
    rolled = f.rolling_forecast(test[["date", "holiday"]], test["count"].to_numpy(), step=1)
    for origin, group in rolled.groupby("_automl_forecast_origin"):
        known = test[test["date"] <= origin]
        X = pd.concat([known[["date", "holiday"]], test[["date", "holiday"]][test["date"].isin(group["date"])]])
        y_in = np.concatenate([known["count"].to_numpy(float), np.full(len(group), np.nan)])
        y, _ = f.forecast(X.reset_index(drop=True), y_in)
        np.testing.assert_allclose(y[len(known):], group["_automl_forecast_y"].to_numpy(), rtol=1e-5)


def test_rolling_forecast_of_a_series_that_does_not_continue_the_history(tiny_forecaster: TCNForecaster) -> None:
    far = generate_dau(42, start="2030-03-01")
    out = tiny_forecaster.rolling_forecast(far[["date"]], far["count"].to_numpy())
    assert out["_automl_forecast_origin"].min() == far["date"].iloc[MIN_CONTEXT_DAYS - 1]
    assert out["date"].min() == far["date"].iloc[MIN_CONTEXT_DAYS]
    with pytest.raises(ForecastInputError, match="needs at least 15 rows"):
        tiny_forecaster.rolling_forecast(far[["date"]].iloc[:10], far["count"].to_numpy()[:10])


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda X, y: (X.drop(index=5).reset_index(drop=True), np.delete(y, 5)), "without gaps"),
    (lambda X, y: (X, np.where(np.arange(len(y)) == 3, np.nan, y)), "needs the actual value of every row"),
    (lambda X, y: (X, y[:-1]), "values for"),
])
def test_rolling_forecast_rejects_bad_input(tiny_forecaster: TCNForecaster, mutate, message: str) -> None:
    test = _continuation(30)
    X, y = mutate(test[["date"]], test["count"].to_numpy(float))
    with pytest.raises(ForecastInputError, match=message):
        tiny_forecaster.rolling_forecast(X, y)
    with pytest.raises(ForecastInputError, match="step must be a positive integer"):
        tiny_forecaster.rolling_forecast(test[["date"]], test["count"].to_numpy(float), step=0)
