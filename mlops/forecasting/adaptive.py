"""Quantile forecasts that track their own coverage along a series: adaptive conformal inference
(Gibbs & Candes 2021, *Adaptive Conformal Inference Under Distribution Shift*, NeurIPS). Pure numpy.

Split conformal (``intervals``), even scaled by the model's recent error level (``error_level``),
keeps each quantile level ``tau`` at the rank it was calibrated for. When the series' errors drift
away from the calibration years' - DAU's test year is calmer than its training years - its bands
over- or under-cover for months. Where a forecast's outcome is known before later origins are
forecast - the batch scoring script's rolling forecast over a series with its actuals - the working
level of each quantile follows its realised hits, per horizon ``h`` and quantile level ``tau``::

    tau_w <- tau_w + rate * (tau - 1{actual <= q_tau_w})

applied when the target of an earlier origin's horizon-``h`` forecast is known (its date is at or
before the current origin's: the feedback of horizon ``h`` arrives ``h`` days late, so nothing not
yet known at an origin is read). A level whose quantile was hit too often moves down, one hit too
rarely moves up; over a long series each quantile's hit rate tends to ``tau`` whatever the drift
(their long-run coverage bound, sec. 4: the gap shrinks as ``1 / (rate * origins)``). The working
level is clipped to the calibration's range (its rank to ``1..n``: the widest band calibration can
give, where ACI would allow an infinite one - so the bound holds only while the drift stays inside
that range), and the quantiles of one forecast are kept ordered across levels.

``ADAPT_RATE`` (``gamma``) was chosen on training data only: seven series' pseudo-test years
(``benchmarks/intervals.py``), smallest mean |coverage - 80%| then smallest worst, then narrower.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlops.forecasting.intervals import conformal_ranks, rank_positions

ADAPT_RATE = 0.01
"""The step ``gamma`` of each quantile level's working level per realised outcome (0: no tracking)."""


def check_rate(rate: float) -> float:
    """``rate`` as a float in ``[0, 0.5]``; ValueError otherwise."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= float(rate) <= 0.5:
        raise ValueError(f"adapt rate must be a number in [0, 0.5], got {rate!r}")
    return float(rate)


def tracked_log_quantiles(log_point: np.ndarray, scale: np.ndarray, residuals: np.ndarray,
                          levels: Sequence[float], origins: np.ndarray, log_actual: np.ndarray,
                          rate: float = ADAPT_RATE) -> np.ndarray:
    """``(n, H, L)`` ``log1p`` quantile forecasts of ``n`` origins at ascending positions ``origins``
    of the ``log1p`` series ``log_actual`` (every position an actual), from ``(n, H)`` ``log1p`` point
    forecasts, ``(n,)`` error-level scales and ``(H, m)`` calibration residuals. ``rate`` 0 gives the
    plain conformal quantiles of ``intervals.quantile_forecasts`` (in log space)."""
    log_point = np.asarray(log_point, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    origins = np.asarray(origins, dtype=np.int64)
    log_actual = np.asarray(log_actual, dtype=np.float64)
    levels = np.asarray([float(q) for q in levels], dtype=np.float64)
    rate = check_rate(rate)
    ordered = np.sort(np.asarray(residuals, dtype=np.float64), axis=1)
    horizon, m = ordered.shape
    n = len(origins)
    if log_point.shape != (n, horizon) or scale.shape != (n,):
        raise ValueError(f"log_point must be ({n}, {horizon}) and scale ({n},), got {log_point.shape}, {scale.shape}")
    if n > 1 and (np.diff(origins) <= 0).any():
        raise ValueError("origins must be ascending")
    conformal_ranks(m, levels)  # each level strictly inside (0, 1)
    sort = np.argsort(levels, kind="stable")
    unsort = np.argsort(sort, kind="stable")
    work = np.tile(levels, (horizon, 1))  # (H, L): each horizon's working levels
    fed = np.zeros(horizon, dtype=np.int64)  # per horizon: the first origin not yet fed back
    out = np.empty((n, horizon, len(levels)))
    lead = np.arange(1, horizon + 1)
    for k in range(n):
        if rate and k:
            for h in range(horizon):
                while fed[h] < k and origins[fed[h]] + lead[h] <= origins[k]:
                    j = fed[h]
                    hit = log_actual[origins[j] + lead[h]] <= out[j, h]
                    work[h] += rate * (levels - hit)
                    fed[h] += 1
        taus = np.clip(work, 1e-9, 1.0 - 1e-9)
        offsets = np.take_along_axis(ordered, rank_positions(m, taus), axis=1)  # (H, L)
        quantiles = log_point[k][:, None] + scale[k] * offsets
        out[k] = np.maximum.accumulate(quantiles[:, sort], axis=1)[:, unsort]
    return out
