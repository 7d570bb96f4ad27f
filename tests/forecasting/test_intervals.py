"""The quantile math (split-conformal ranks, per-horizon offsets in log space) and the quantile API of
the forecaster, without servers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.forecasting.errors import ForecastInputError
from mlops.forecasting.forecaster import TCNForecaster
from mlops.forecasting.intervals import (
    conformal_ranks,
    coverage,
    interval_text,
    quantile_forecasts,
    residual_quantiles,
)
from mlops.forecasting.loading import quantile_forecast


@pytest.mark.parametrize(("n", "levels", "ranks"), [
    # k = ceil((n + 1) tau) for tau >= 0.5, floor((n + 1) tau) below; 1-based, clipped to 1..n
    (9, [0.1, 0.5, 0.9], [0, 4, 8]),      # (n + 1) tau = 1, 5, 9 exactly
    (10, [0.1, 0.5, 0.9], [0, 5, 9]),     # 1.1 -> 1, 5.5 -> 6, 9.9 -> 10
    (99, [0.1, 0.9], [9, 89]),            # 10, 90
    (100, [0.1, 0.9], [9, 90]),           # 10.1 -> 10, 90.9 -> 91: both round outwards
    (3, [0.01, 0.99], [0, 2]),            # beyond the sample: clipped to its extremes
    (1, [0.2, 0.5, 0.8], [0, 0, 0]),
])
def test_conformal_ranks_round_outwards(n: int, levels: list[float], ranks: list[int]) -> None:
    assert conformal_ranks(n, levels).tolist() == ranks


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_conformal_ranks_refuse_levels_outside_the_open_unit_interval(bad: float) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        conformal_ranks(10, [bad])


def test_residual_quantiles_are_per_horizon_and_ordered() -> None:
    rng = np.random.default_rng(0)
    # horizon 1 tight, horizon 2 three times wider: each keeps its own spread
    residuals = np.stack([rng.normal(0, 0.01, 199), rng.normal(0, 0.03, 199)])
    table = residual_quantiles(residuals, [0.1, 0.5, 0.9])
    assert table.shape == (3, 2)
    assert (np.diff(table, axis=0) >= 0).all()
    width = table[2] - table[0]
    assert width[1] / width[0] == pytest.approx(3.0, rel=0.25)
    assert table[:, 0] == pytest.approx(np.sort(residuals[0])[[19, 99, 179]])  # ranks 20, 100, 180 of 199


def test_quantile_forecasts_move_the_point_forecast_multiplicatively() -> None:
    residuals = np.array([[-0.1, 0.0, 0.1], [-0.2, 0.0, 0.2]])  # horizon 1 and 2, three residuals each
    point = np.array([1000.0, 1000.0, 50.0])
    table = quantile_forecasts(point, np.array([1, 2, 2]), residuals, [0.25, 0.75])
    # n = 3: ranks floor(4 * .25) = 1 and ceil(4 * .75) = 3 -> the smallest and largest residual
    assert table[0] == pytest.approx(np.expm1(np.log1p(1000.0) + np.array([-0.1, 0.1])))
    assert table[1] == pytest.approx(np.expm1(np.log1p(1000.0) + np.array([-0.2, 0.2])))
    assert table[2] == pytest.approx(np.expm1(np.log1p(50.0) + np.array([-0.2, 0.2])))
    assert (table >= 0).all()


def test_quantile_forecasts_refuse_horizons_beyond_the_calibration() -> None:
    with pytest.raises(ValueError, match="horizons must be within 1..2"):
        quantile_forecasts(np.array([1.0]), np.array([3]), np.zeros((2, 5)), [0.5])


def test_calibrated_intervals_cover_exchangeable_data_as_promised() -> None:
    """On fresh draws from the residuals' distribution, the 80% interval covers ~80%."""
    rng = np.random.default_rng(1)
    calibration = rng.standard_t(df=4, size=(1, 499)) * 0.05
    truth = rng.standard_t(df=4, size=20_000) * 0.05
    point = np.full(truth.size, 10_000.0)
    actual = np.expm1(np.log1p(point) + truth)
    bounds = quantile_forecasts(point, np.ones(truth.size, dtype=int), calibration, [0.1, 0.9])
    assert 0.77 <= coverage(actual, bounds[:, 0], bounds[:, 1]) <= 0.83


@pytest.mark.parametrize(("actual", "expected"), [([1, 2, 3, 4], 0.5), ([2, 2, 2, 2], 1.0), ([], float("nan"))])
def test_coverage_counts_the_bounds_inclusively(actual: list[float], expected: float) -> None:
    lower, upper = np.full(len(actual), 2.0), np.full(len(actual), 3.0)
    assert coverage(np.array(actual, dtype=float), lower, upper) == pytest.approx(expected, nan_ok=True)


def test_interval_text_is_automl_format() -> None:
    assert interval_text(1.5, 2.25) == "[1.5, 2.25]" == "[{}, {}]".format(1.5, 2.25)  # noqa: UP032


def test_the_forecaster_returns_ordered_quantiles_for_each_future_row(tiny_forecaster: TCNForecaster) -> None:
    end = tiny_forecaster.history_end
    X = pd.DataFrame({"date": pd.date_range(end + pd.Timedelta(days=1), periods=14)})
    values, frame = tiny_forecaster.forecast_with_quantiles(X, None, [0.1, 0.5, 0.9])
    assert list(frame.columns) == ["date", 0.1, 0.5, 0.9]  # AutoML: one column per level, named by it
    table = frame[[0.1, 0.5, 0.9]].to_numpy()
    assert (np.diff(table, axis=1) >= 0).all() and (table[:, 2] > table[:, 0]).all()
    assert np.allclose(values, tiny_forecaster.forecast(X)[0])
    # later horizons carry at least as much uncertainty on average as the first days
    width = (table[:, 2] - table[:, 0]) / values
    assert width[7:].mean() >= 0.5 * width[:7].mean()


def test_automl_style_quantiles_attribute_and_per_call_levels(tiny_forecaster: TCNForecaster) -> None:
    end = tiny_forecaster.history_end
    X = pd.DataFrame({"date": pd.date_range(end + pd.Timedelta(days=1), periods=3)})
    per_call = tiny_forecaster.forecast_quantiles(X, quantiles=[0.2, 0.8])
    assert tiny_forecaster.quantiles == [0.5]  # unchanged by a per-call request
    values, table = quantile_forecast(tiny_forecaster, X, None, [0.2, 0.8])
    assert np.allclose(table, per_call[[0.2, 0.8]].to_numpy())
    with pytest.raises(ForecastInputError, match="strictly between 0 and 1"):
        tiny_forecaster.forecast_quantiles(X, quantiles=[0.5, 1.0])


class AutoMLStandIn:
    """What a pickled AutoML forecaster offers: a ``quantiles`` attribute read by ``forecast_quantiles``."""

    quantiles = [0.5]

    def forecast(self, X_pred, y_pred=None):
        return np.full(len(X_pred), 100.0), X_pred

    def forecast_quantiles(self, X_pred, y_pred=None):
        return pd.DataFrame({"date": X_pred["date"], **{q: np.full(len(X_pred), 100.0 * (0.5 + q))
                                                          for q in self.quantiles}})


def test_an_automl_model_is_asked_the_way_automl_scoring_asks_it() -> None:
    model = AutoMLStandIn()
    X = pd.DataFrame({"date": pd.date_range("2018-09-01", periods=2)})
    values, table = quantile_forecast(model, X, None, [0.1, 0.9])
    assert model.quantiles == [0.1, 0.9]
    assert values.tolist() == [100.0, 100.0] and table.tolist() == [[60.0, 140.0], [60.0, 140.0]]
