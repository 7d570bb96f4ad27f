"""Quantiles that track their own hits along a series (adaptive conformal inference): the pure
recursion, its no-look-ahead rule, and the batch path using it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.forecasting.adaptive import ADAPT_RATE, check_rate, tracked_log_quantiles
from mlops.forecasting.errors import ForecastInputError
from mlops.forecasting.forecaster import TCNForecaster
from mlops.forecasting.intervals import quantile_forecasts

H = 3


def drifted(n: int, calibration_sd: float, series_sd: float, seed: int = 0):
    """Calibration residuals of one spread, a series whose errors have another: the point forecast is
    0 in log space, so each actual is its residual."""
    rng = np.random.default_rng(seed)
    residuals = rng.normal(0.0, calibration_sd, size=(H, 400))
    log_actual = rng.normal(0.0, series_sd, size=n + H + 1)
    origins = np.arange(n)
    return residuals, log_actual, origins


def hits(out: np.ndarray, log_actual: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """``(n, H)`` whether each forecast's 80% band ``[q0.1, q0.9]`` held its actual."""
    actual = log_actual[origins[:, None] + np.arange(1, H + 1)[None, :]]
    return (out[:, :, 0] <= actual) & (actual <= out[:, :, 1])


def test_rate_zero_is_plain_conformal() -> None:
    rng = np.random.default_rng(1)
    residuals = rng.normal(size=(H, 50))
    point = rng.uniform(100.0, 200.0, size=(6, H))
    scale = rng.uniform(0.5, 2.0, size=6)
    out = tracked_log_quantiles(np.log1p(point), scale, residuals, [0.1, 0.5, 0.9], np.arange(6),
                                rng.normal(size=20), rate=0.0)
    for k in range(6):
        expected = quantile_forecasts(point[k], np.arange(1, H + 1), residuals, [0.1, 0.5, 0.9], scale=scale[k])
        np.testing.assert_allclose(np.expm1(out[k]), expected, rtol=1e-12)


@pytest.mark.parametrize(("series_sd", "untracked_low", "untracked_high"), [(0.5, 0.95, 1.0), (2.0, 0.0, 0.55)])
def test_the_band_covers_80_percent_whatever_the_drift(series_sd: float, untracked_low: float,
                                                      untracked_high: float) -> None:
    """A calmer series over-covers and a wilder one under-covers with the calibration's fixed ranks;
    tracked, both come to 80% (Gibbs & Candes 2021, sec. 4)."""
    residuals, log_actual, origins = drifted(3000, 1.0, series_sd)
    zeros, ones = np.zeros((len(origins), H)), np.ones(len(origins))
    fixed = hits(tracked_log_quantiles(zeros, ones, residuals, [0.1, 0.9], origins, log_actual, rate=0.0),
                 log_actual, origins).mean()
    tracked = hits(tracked_log_quantiles(zeros, ones, residuals, [0.1, 0.9], origins, log_actual, rate=ADAPT_RATE),
                   log_actual, origins).mean()
    assert untracked_low <= fixed <= untracked_high
    assert 0.78 <= tracked <= 0.82


def test_an_origin_reads_only_targets_known_at_it() -> None:
    """Changing an actual after origin k leaves every band up to k as it was; changing one known at k
    (the target of an earlier forecast) moves k's band - the rule can fail."""
    residuals, log_actual, origins = drifted(60, 1.0, 0.3)
    zeros, ones = np.zeros((60, H)), np.ones(60)
    base = tracked_log_quantiles(zeros, ones, residuals, [0.1, 0.9], origins, log_actual, rate=0.05)
    k = 40
    future = log_actual.copy()
    future[origins[k] + 1:] += 5.0
    after = tracked_log_quantiles(zeros, ones, residuals, [0.1, 0.9], origins, future, rate=0.05)
    np.testing.assert_array_equal(after[:k + 1], base[:k + 1])
    assert not np.array_equal(after[k + 1:], base[k + 1:])
    known = log_actual.copy()
    known[origins[k]] += 5.0  # the target of origin k - h's horizon-h forecast: known at k
    moved = tracked_log_quantiles(zeros, ones, residuals, [0.1, 0.9], origins, known, rate=0.05)
    np.testing.assert_array_equal(moved[:k], base[:k])
    assert all(not np.array_equal(moved[k, h], base[k, h]) for h in range(H))


def test_quantiles_stay_ordered_when_close_levels_track_apart() -> None:
    residuals, log_actual, origins = drifted(400, 1.0, 1.0, seed=3)
    out = tracked_log_quantiles(np.zeros((400, H)), np.ones(400), residuals, [0.55, 0.5, 0.45], origins,
                                log_actual, rate=0.5)
    assert (out[:, :, 0] >= out[:, :, 1]).all() and (out[:, :, 1] >= out[:, :, 2]).all()


@pytest.mark.parametrize("rate", [-0.01, 0.6, True, "0.01", float("nan")])
def test_a_bad_rate_is_refused(rate: object) -> None:
    with pytest.raises(ValueError, match="adapt rate"):
        check_rate(rate)  # type: ignore[arg-type]


def test_the_batch_path_tracks_its_hits(tiny_forecaster: TCNForecaster) -> None:
    """Along a series noisier than the model's calibration (the tiny model's last weeks repeated with
    25% noise) the level-scaled band alone under-covers; the tracked one starts where it does
    (nothing is known at the first origin) and comes to 80%."""
    days = 300
    X = pd.DataFrame({"date": pd.date_range(tiny_forecaster.history_end + pd.Timedelta(days=1), periods=days)})
    base = np.resize(tiny_forecaster.history["count"].to_numpy()[-70:], days)  # its last 10 weeks, repeated
    y = base * np.exp(np.random.default_rng(0).normal(0.0, 0.25, size=days))
    plain = tiny_forecaster.rolling_forecast_with_quantiles(X, y, [0.1, 0.9], adapt_rate=0.0)
    tracked = tiny_forecaster.rolling_forecast_with_quantiles(X, y, [0.1, 0.9])
    origin = tiny_forecaster.forecast_origin_column_name
    first = (plain[origin] == tiny_forecaster.history_end).to_numpy()
    np.testing.assert_allclose(tracked.loc[first, [0.1, 0.9]], plain.loc[first, [0.1, 0.9]], rtol=1e-12)
    actual = plain[tiny_forecaster.actual_column_name].to_numpy()

    def covered(frame: pd.DataFrame) -> float:
        return float(np.mean((frame[0.1].to_numpy() <= actual) & (actual <= frame[0.9].to_numpy())))

    assert covered(plain) < 0.77  # measured 75.0%
    assert abs(covered(tracked) - 0.8) < 0.015  # measured 79.6%
    with pytest.raises(ForecastInputError, match="adapt rate"):
        tiny_forecaster.rolling_forecast_with_quantiles(X, y, [0.1, 0.9], adapt_rate=-1.0)
