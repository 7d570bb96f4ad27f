"""The model's recent error level at a forecast origin: what scales its quantile forecasts. Pure numpy.

A series' forecastability changes: GitHub DAU's 2017-2018 test year is calmer than the months
before it, a births series calmer in one decade than in another. Split conformal with one fixed
set of residuals (``intervals``) then over- or under-covers for months at a time. Scaling each
calibration residual by the model's error level at its origin, and each new forecast's quantiles by
the level at *its* origin, makes the calibration hold across such changes (locally weighted /
normalised conformal prediction: Papadopoulos et al. 2008, *Normalized nonconformity measures for
regression conformal prediction*; Lei et al. 2018, *Distribution-Free Predictive Inference for
Regression*, sec. 5.2).

The level at origin ``t`` is the mean absolute ``log1p`` residual of the model's own forecasts made
at the ``LEVEL_ORIGINS`` origins before it (``t - 1 .. t - LEVEL_ORIGINS``), over every horizon
whose target day is already known at ``t`` (``s + h <= t``): ``sum(min(H, d) for d in 1..28)`` = 301
residuals with the 14-day horizon. It needs nothing the forecast does not already have - the
actuals up to the origin and the network - so the online endpoint, the batch script and training
compute it alike. In-sample origins have optimistic residuals *and* optimistic levels, so their
ratios are close to new days' ratios: calibration can use two years of origins, in-sample ones
included, where plain conformal must drop them (``calibration``'s ``scaled-730``).
"""

from __future__ import annotations

import numpy as np

LEVEL_ORIGINS = 28
"""Origins before a forecast whose errors make its level by default (four weeks: every weekday four
times; ``model.pt`` stores the number it was calibrated with). ``benchmarks/intervals.py
--level-origins 28,56`` compares windows on seven series' pseudo-test years."""


def _valid(horizon: int, origins: int) -> np.ndarray:
    """``(horizon, origins)`` bool: entry ``(h - 1, d - 1)`` - horizon ``h`` of the origin ``d`` days
    back - has its target known at the origin (``h <= d``)."""
    h = np.arange(1, horizon + 1)[:, None]
    d = np.arange(1, origins + 1)[None, :]
    return h <= d


def recent_error_levels(residuals: np.ndarray, origins: int = LEVEL_ORIGINS) -> np.ndarray:
    """``(n,)`` error levels for ``(H, n)`` residuals of consecutive daily origins in time order
    (``log1p(actual) - log1p(forecast)``, column ``k`` the origin ``k``; NaN where a target is not
    known). Entry ``k`` is the level at origin ``k``, from columns ``k - origins .. k - 1``; NaN for
    the first ``origins`` origins and where a needed residual is NaN or the mean is 0."""
    residuals = np.abs(np.asarray(residuals, dtype=np.float64))
    if residuals.ndim != 2 or origins < 1:
        raise ValueError(f"residuals must be (horizon, n) and origins >= 1, got {residuals.shape}, {origins}")
    horizon, n = residuals.shape
    levels = np.full(n, np.nan)
    valid = _valid(horizon, origins)
    for k in range(origins, n):
        back = residuals[:, k - origins:k][:, ::-1]  # column d - 1: the origin d days back
        level = float(np.mean(back[valid]))  # NaN when any needed residual is NaN
        if level > 0:
            levels[k] = level
    return levels


def level_or_reference(level: np.ndarray | float, reference: float) -> np.ndarray:
    """The level(s) to scale by: each ``level`` when finite and positive, else ``reference`` (the median
    level of the calibration origins, kept in ``model.pt``) - a request whose context is too short for
    ``LEVEL_ORIGINS`` previous forecasts gets the typical width."""
    level = np.asarray(level, dtype=np.float64)
    return np.where(np.isfinite(level) & (level > 0), level, reference)


def residual_matrix(log_actual: np.ndarray, origins: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """``(H, n)`` residuals ``log_actual[o + h] - log1p(forecast[k, h - 1])`` of the forecasts
    ``(n, H)`` made at origin positions ``origins`` into the ``log1p`` series ``log_actual`` (NaN
    where the target lies past its end or is unknown) - ``recent_error_levels``' input."""
    forecast = np.asarray(forecast, dtype=np.float64)
    log_actual = np.asarray(log_actual, dtype=np.float64)
    target = np.asarray(origins, dtype=np.int64)[:, None] + np.arange(1, forecast.shape[1] + 1)[None, :]
    inside = target < len(log_actual)
    actual = np.full(target.shape, np.nan)
    actual[inside] = log_actual[target[inside]]
    return (actual - np.log1p(forecast)).T
