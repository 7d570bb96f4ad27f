"""The calibration methods (pure): which residuals each keeps, and the in-sample inflation."""

from __future__ import annotations

import numpy as np
import pytest

from mlops.forecasting.calibration import METHODS, RECENT_DAYS, ResidualTable, calibrate, inflation


def table(n: int = 900, oos: int = 140, horizon: int = 3, inside: float = 0.02, outside: float = 0.05,
          incomplete: int = 0) -> ResidualTable:
    """In-sample residuals of spread ``inside``, then ``oos`` out-of-sample ones of spread ``outside``;
    the last ``incomplete`` origins lack their longest horizons (NaN), as at the end of a series."""
    rng = np.random.default_rng(0)
    residuals = np.concatenate([rng.normal(0, inside, (horizon, n - oos)), rng.normal(0, outside, (horizon, oos))],
                               axis=1)
    for k in range(incomplete):
        residuals[horizon - 1 - k % horizon:, n - 1 - k] = np.nan
    mask = np.zeros(n, dtype=bool)
    mask[n - oos:] = True
    return ResidualTable(residuals=residuals, out_of_sample=mask)


@pytest.mark.parametrize(("method", "kept"), [
    ("recent-730", RECENT_DAYS),
    ("recent-365", 365),
    ("out-of-sample", 140),
    ("inflated-730", RECENT_DAYS),
])
def test_each_method_keeps_its_window(method: str, kept: int) -> None:
    assert calibrate(table(), method).residuals.shape == (3, kept)


@pytest.mark.parametrize("method", METHODS)
def test_incomplete_origins_are_left_out(method: str) -> None:
    chosen = calibrate(table(incomplete=2), method).residuals
    assert not np.isnan(chosen).any()
    assert chosen.shape[1] == calibrate(table(), method).residuals.shape[1] - 2


def test_out_of_sample_keeps_only_the_unseen_origins() -> None:
    t = table()
    np.testing.assert_array_equal(calibrate(t, "out-of-sample").residuals, t.residuals[:, t.out_of_sample])


@pytest.mark.parametrize(("inside", "outside", "expected"), [
    (0.02, 0.05, 2.5),   # in-sample errors 2.5x too small: inflated by about that
    (0.05, 0.05, 1.0),   # the same spread: nothing to correct (up to noise, never below 1)
    (0.05, 0.02, 1.0),   # out-of-sample smaller: never deflated
])
def test_inflation_is_the_ratio_of_spreads_at_least_one(inside: float, outside: float, expected: float) -> None:
    factors = inflation(table(n=20_000, oos=10_000, inside=inside, outside=outside))
    assert factors == pytest.approx(np.full(3, expected), rel=0.05)
    assert (factors >= 1.0).all()


def test_inflated_widens_only_the_in_sample_part() -> None:
    t = table()
    plain, inflated = calibrate(t, "recent-730").residuals, calibrate(t, "inflated-730").residuals
    oos = t.out_of_sample[-RECENT_DAYS:]
    np.testing.assert_array_equal(inflated[:, oos], plain[:, oos])
    assert np.abs(inflated[:, ~oos]).mean() > 2 * np.abs(plain[:, ~oos]).mean()


def test_an_unknown_method_or_an_empty_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown calibration method 'last-year'"):
        calibrate(table(), "last-year")
    with pytest.raises(ValueError, match="no origin with every horizon"):
        calibrate(table(oos=0), "out-of-sample")
    with pytest.raises(ValueError, match="do not match"):
        ResidualTable(residuals=np.zeros((3, 5)), out_of_sample=np.zeros(4, dtype=bool))


def test_a_trained_model_keeps_exactly_its_unseen_origins(tiny_model, tiny_forecaster) -> None:
    """The evaluation's ``residual_table``: the out-of-sample origins are the validation tail's and the
    holdout's (their targets all after the last training target), and ``model.pt`` stores what the
    default method makes of the table - the same numbers the saved model reproduces."""
    from mlops.forecasting.data import validate_series
    from mlops.forecasting.evaluation import residual_table
    from mlops.forecasting.synthetic import generate_dau
    from mlops.forecasting.train_config import TrainConfig

    from .tiny import TINY_DAYS, TINY_SEED, tiny_config

    config = tiny_config()
    series = validate_series(generate_dau(TINY_DAYS, seed=TINY_SEED))
    table = residual_table(tiny_forecaster, series, config)
    unseen = config.validation + config.holdout + 1 - config.horizon  # origins with all 14 horizons
    assert table.out_of_sample.sum() == unseen
    assert table.out_of_sample[-unseen:].all() and not table.out_of_sample[:-unseen].any()
    method = TrainConfig().calibration
    expected = calibrate(table, method)
    stored = tiny_model.metrics["calibration"]
    assert stored["method"] == method
    assert stored["residuals_per_horizon"] == expected.residuals.shape[1]
    assert stored["reference_level"] == pytest.approx(expected.reference_level, abs=1e-6)
    assert 0.0 <= stored["holdout_80_coverage"] <= 1.0
    np.testing.assert_allclose(tiny_forecaster.calibration.residuals, expected.residuals, atol=1e-6)
    assert tiny_forecaster.calibration.level_origins == expected.level_origins
