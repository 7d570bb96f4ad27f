"""A seeded, DAU-like daily series for the demo and the tests.

It has what makes GitHub's daily active users hard for a naive forecaster: multiplicative growth,
a deep weekend dip, yearly seasonality (a summer lull and a year-end trough), US federal holidays
that look like weekend days, and noise. The output has exactly the columns and dtypes of
``github_dau/train.csv`` (``date,count,day_of_week,month_of_year,holiday``; weekday 0 = Monday,
month 0 = January, floats), so everything that reads the real file reads this one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import TIME_COLUMN, us_federal_holidays, with_calendar_columns

_WEEKDAY_FACTOR = np.array([1.00, 1.05, 1.06, 1.04, 0.95, 0.58, 0.55])
"""Monday..Sunday, relative to a weekday: DAU drops by ~40% at the weekend."""


def generate_dau(days: int = 1095, *, start: str = "2014-01-01", seed: int = 0,
                 base: float = 20_000.0, yearly_growth: float = 0.35, noise: float = 0.03) -> pd.DataFrame:
    """``days`` consecutive days of a DAU-like series; the same ``seed`` gives the same frame."""
    if days < 1:
        raise ValueError(f"days must be positive, got {days}")
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start=start, periods=days, freq="D")
    t = np.arange(days) / 365.25
    trend = base * np.exp(np.log1p(yearly_growth) * t)
    day_of_year = dates.day_of_year.to_numpy()
    yearly = (1.0 - 0.06 * np.exp(-(((day_of_year - 215) / 25.0) ** 2))   # summer lull (early August)
              - 0.25 * np.exp(-(((day_of_year - 359) / 6.0) ** 2))       # Christmas week
              - 0.15 * np.exp(-(((day_of_year - 1) / 3.0) ** 2)))        # New Year
    weekly = _WEEKDAY_FACTOR[dates.day_of_week.to_numpy()]
    holiday = us_federal_holidays(dates)
    holiday_effect = np.where(holiday > 0, 0.70, 1.0)
    # AR(1) noise in log space, so errors persist for a few days as real DAU deviations do.
    shocks = rng.normal(0.0, noise, size=days)
    ar = np.zeros(days)
    for i in range(days):
        ar[i] = (0.6 * ar[i - 1] if i else 0.0) + shocks[i]
    counts = np.round(trend * yearly * weekly * holiday_effect * np.exp(ar))
    frame = pd.DataFrame({TIME_COLUMN: dates, "count": counts.astype(np.int64), "holiday": holiday})
    return with_calendar_columns(frame)


def train_holdout_split(frame: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a series by time: everything but the last ``holdout_days`` rows, and those rows."""
    if not 0 < holdout_days < len(frame):
        raise ValueError(f"holdout_days must be between 1 and {len(frame) - 1}, got {holdout_days}")
    cut = len(frame) - holdout_days
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)
