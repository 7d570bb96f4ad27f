"""The recent error level that scales the quantile forecasts (pure), the scaled calibrations, and the
forecaster using it alike online and in the batch path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.forecasting.calibration import SCALED, ResidualTable, calibrate, holdout_coverage
from mlops.forecasting.error_level import (
    LEVEL_ORIGINS,
    level_or_reference,
    recent_error_levels,
    residual_matrix,
)
from mlops.forecasting.forecaster import TCNForecaster
from mlops.forecasting.intervals import quantile_forecasts


def test_the_level_is_the_mean_absolute_residual_of_the_known_targets() -> None:
    horizon, n = 3, LEVEL_ORIGINS + 5
    residuals = np.full((horizon, n), -0.04)
    levels = recent_error_levels(residuals)
    assert np.isnan(levels[:LEVEL_ORIGINS]).all()
    np.testing.assert_allclose(levels[LEVEL_ORIGINS:], 0.04)


def test_targets_not_yet_known_at_the_origin_are_not_read() -> None:
    """At origin ``k``, horizon ``h`` of the origin ``d`` days back is known only when ``h <= d``:
    the forecasts made 1 and 2 days before have later targets, which must not leak into the level."""
    horizon, k = 3, LEVEL_ORIGINS
    residuals = np.full((horizon, k + 1), 0.01)
    residuals[1:, k - 1] = 1e6   # origin 1 day back: horizons 2, 3 land after k
    residuals[2, k - 2] = np.nan  # origin 2 days back: horizon 3 lands after k
    assert recent_error_levels(residuals)[k] == pytest.approx(0.01)
    residuals[0, k - 1] = 0.31   # the one known horizon of that origin is read
    expected = (0.31 + 0.01 * (sum(min(horizon, d) for d in range(1, LEVEL_ORIGINS + 1)) - 1)) / sum(
        min(horizon, d) for d in range(1, LEVEL_ORIGINS + 1))
    assert recent_error_levels(residuals)[k] == pytest.approx(expected)


def test_a_missing_needed_residual_gives_no_level() -> None:
    residuals = np.full((2, LEVEL_ORIGINS + 1), 0.02)
    residuals[0, 3] = np.nan
    assert np.isnan(recent_error_levels(residuals)[LEVEL_ORIGINS])


@pytest.mark.parametrize(("level", "expected"), [
    (0.03, 0.03), (float("nan"), 0.05), (0.0, 0.05), (float("inf"), 0.05), (-0.01, 0.05),
])
def test_level_or_reference(level: float, expected: float) -> None:
    assert level_or_reference(level, 0.05) == expected


def test_residual_matrix_leaves_targets_past_the_series_unknown() -> None:
    log_actual = np.log1p(np.array([10.0, 20.0, 30.0, 40.0]))
    forecast = np.array([[30.0, 30.0, 50.0], [40.0, 99.0, 99.0]])  # origins 1 and 2
    matrix = residual_matrix(log_actual, np.array([1, 2]), forecast)
    np.testing.assert_allclose(matrix[:, 0], [0.0, np.log1p(40.0) - np.log1p(30.0), np.nan])
    np.testing.assert_allclose(matrix[:, 1], [0.0, np.nan, np.nan])


def regime_table(n: int = 900, calm_from: int = 600, loud: float = 0.06, calm: float = 0.02,
                 horizon: int = 3) -> ResidualTable:
    """Residuals whose spread drops from ``loud`` to ``calm`` at origin ``calm_from`` (as GitHub DAU's
    test year is calmer than the months before it); the last 140 origins out of sample."""
    rng = np.random.default_rng(7)
    spread = np.where(np.arange(n) < calm_from, loud, calm)
    residuals = rng.normal(0.0, 1.0, (horizon, n)) * spread
    oos = np.zeros(n, dtype=bool)
    oos[-140:] = True
    return ResidualTable(residuals=residuals, out_of_sample=oos)


@pytest.mark.parametrize("method", SCALED)
def test_a_scaled_calibration_stores_residuals_over_their_levels(method: str) -> None:
    table = regime_table()
    chosen = calibrate(table, method)
    levels = table.levels()
    keep = np.isfinite(levels) & (table.out_of_sample if method == "scaled-out-of-sample" else True)
    keep[:-730] = False
    np.testing.assert_allclose(chosen.residuals, table.residuals[:, keep] / levels[keep])
    assert chosen.level_origins == LEVEL_ORIGINS
    assert chosen.reference_level == pytest.approx(float(np.median(levels[keep])))


def test_the_scaled_calibration_follows_a_calmer_regime_where_plain_conformal_over_covers() -> None:
    """After a drop in spread, intervals from a fixed set of residuals are too wide for months;
    scaled by the level of the last four weeks they cover about as promised."""
    table = regime_table(calm_from=700)
    holdout = 150
    plain = holdout_coverage(table, "recent-730", holdout)
    scaled = holdout_coverage(table, "scaled-730", holdout)
    assert plain > 0.95
    assert 0.74 <= scaled <= 0.86


def test_holdout_coverage_needs_a_calibration_part() -> None:
    with pytest.raises(ValueError, match="no 900-origin holdout"):
        holdout_coverage(regime_table(), "scaled-730", 900)


# -- the forecaster ------------------------------------------------------------------------------


def next_days(forecaster: TCNForecaster, days: int) -> pd.DataFrame:
    return pd.DataFrame({"date": pd.date_range(forecaster.history_end + pd.Timedelta(days=1), periods=days)})


def test_the_default_model_is_scaled(tiny_forecaster: TCNForecaster) -> None:
    assert tiny_forecaster.calibration.level_origins == LEVEL_ORIGINS
    assert tiny_forecaster.calibration.reference_level > 0


def test_online_and_batch_quantiles_agree_at_the_same_origin(tiny_forecaster: TCNForecaster) -> None:
    """The online path (one origin, its level from the 28 forecasts before it in the same pass) and
    the batch path (every origin of a rolling forecast) scale the same origin alike - the batch's
    first origin, where no outcome has fed back into its tracking yet (``test_adaptive``)."""
    horizon = tiny_forecaster.max_horizon
    future = next_days(tiny_forecaster, horizon)
    online = tiny_forecaster.forecast_quantiles(future, quantiles=[0.1, 0.9])
    actuals = np.linspace(1000.0, 1100.0, horizon + 3)
    batch_X = next_days(tiny_forecaster, horizon + 3)
    rolled = tiny_forecaster.rolling_forecast_with_quantiles(batch_X, actuals, [0.1, 0.9])
    first = rolled[rolled[tiny_forecaster.forecast_origin_column_name] == tiny_forecaster.history_end]
    assert len(first) == horizon
    np.testing.assert_allclose(first[0.1].to_numpy(), online[0.1].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(first[0.9].to_numpy(), online[0.9].to_numpy(), rtol=1e-6)
    assert (rolled[0.1] <= rolled[tiny_forecaster.forecast_column_name]).all()
    assert (rolled[tiny_forecaster.forecast_column_name] <= rolled[0.9]).all()


def test_the_level_moves_the_band_with_the_recent_errors(tiny_forecaster: TCNForecaster) -> None:
    """Recent actuals far from what the model forecast widen the band; the stored history's own
    (well forecast) days give a narrower one."""
    history = tiny_forecaster.history
    horizon = tiny_forecaster.max_horizon
    recent = history.iloc[-50:]
    X = pd.DataFrame({"date": list(recent.index) + list(next_days(tiny_forecaster, horizon)["date"])})
    calm = np.concatenate([recent["count"].to_numpy(), np.full(horizon, np.nan)])
    noisy = calm.copy()
    noisy[:50] *= 1.0 + 0.3 * np.where(np.arange(50) % 2, 1.0, -1.0)  # alternate +-30%: large misses
    noisy[49] = calm[49]  # the same last actual, so the same origin level
    width = {}
    for name, y in (("calm", calm), ("noisy", noisy)):
        band = tiny_forecaster.forecast_quantiles(X, y, quantiles=[0.1, 0.9]).iloc[50:]
        width[name] = float(np.mean(np.log(band[0.9].to_numpy() / band[0.1].to_numpy())))
    assert width["noisy"] > 2 * width["calm"]


def test_a_context_too_short_for_the_level_takes_the_reference(tiny_forecaster: TCNForecaster) -> None:
    """A request that does not continue the stored history with fewer than 28 + 14 actuals cannot
    score the 28 forecasts before its origin: its band takes the calibration's reference level."""
    horizon = tiny_forecaster.max_horizon
    start = tiny_forecaster.history_end + pd.Timedelta(days=400)
    dates = pd.date_range(start, periods=20 + horizon)
    y = np.concatenate([np.full(20, 5000.0), np.full(horizon, np.nan)])
    values, table = tiny_forecaster.values_and_quantiles(pd.DataFrame({"date": dates}), y, [0.1, 0.9])[:2]
    expected = quantile_forecasts(values[20:], np.arange(1, horizon + 1), tiny_forecaster.calibration.residuals,
                                  [0.1, 0.9], scale=tiny_forecaster.calibration.reference_level)
    np.testing.assert_allclose(table[20:], expected, rtol=1e-9)


def test_a_rolling_step_does_not_change_an_origins_quantiles(tiny_forecaster: TCNForecaster) -> None:
    """Every day is scored for the levels whatever the step, so an origin's band is the same at step 3
    as at step 1."""
    days = 40
    X = next_days(tiny_forecaster, days)
    y = np.linspace(1000.0, 1400.0, days)
    every = tiny_forecaster.rolling_forecast_with_quantiles(X, y, [0.1, 0.9], step=1)
    third = tiny_forecaster.rolling_forecast_with_quantiles(X, y, [0.1, 0.9], step=3)
    origin = tiny_forecaster.forecast_origin_column_name
    keys = [tiny_forecaster.time_column_name, origin]
    merged = third.rename(columns={0.1: "lo", 0.9: "hi"}).merge(
        every.rename(columns={0.1: "lo_every", 0.9: "hi_every"})[[*keys, "lo_every", "hi_every"]], on=keys)
    shared = third[third[origin] <= every[origin].max()]  # step 3's last origin may run past step 1's
    assert len(merged) == len(shared) > 0
    np.testing.assert_allclose(merged["lo"], merged["lo_every"], rtol=1e-9)
    np.testing.assert_allclose(merged["hi"], merged["hi_every"], rtol=1e-9)


def test_a_series_that_does_not_continue_the_history_takes_the_reference_until_it_has_42_days(
        tiny_forecaster: TCNForecaster) -> None:
    """Its first origins lack 28 earlier forecasts with 14 actuals each: the reference level; from
    the 42nd day on, the level of the series' own forecasts (the level alone: no tracking, which
    ``test_adaptive`` checks)."""
    horizon = tiny_forecaster.max_horizon
    days = 80
    start = tiny_forecaster.history_end + pd.Timedelta(days=400)
    X = pd.DataFrame({"date": pd.date_range(start, periods=days)})
    y = 5000.0 * (1.0 + 0.4 * (np.arange(days) % 2))  # every other day 40% up: large misses
    rolled = tiny_forecaster.rolling_forecast_with_quantiles(X, y, [0.1, 0.9], adapt_rate=0.0)
    origin = pd.DatetimeIndex(rolled[tiny_forecaster.forecast_origin_column_name])
    position = (origin - start).days.to_numpy()
    lead = (pd.DatetimeIndex(rolled[tiny_forecaster.time_column_name]) - origin).days.to_numpy()
    reference = quantile_forecasts(rolled[tiny_forecaster.forecast_column_name].to_numpy(), lead,
                                   tiny_forecaster.calibration.residuals, [0.1, 0.9],
                                   scale=tiny_forecaster.calibration.reference_level)
    band = rolled[[0.1, 0.9]].to_numpy()
    early, late = position < LEVEL_ORIGINS + 13, position >= LEVEL_ORIGINS + 13
    assert early.any() and late.any() and lead.max() == horizon
    np.testing.assert_allclose(band[early], reference[early], rtol=1e-9)
    assert (np.log(band[late, 1] / band[late, 0]) > 1.5 * np.log(reference[late, 1] / reference[late, 0])).all()
