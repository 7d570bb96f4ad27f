"""Quantile forecasts by split-conformal calibration on held-out residuals. Pure numpy, no torch.

Training keeps, for every horizon ``h``, residuals ``r = log1p(actual) - log1p(forecast)`` of the
model's rolling forecasts, chosen by ``TrainConfig.calibration`` (``calibration``: by default the
origins of the validation tail and holdout, which the networks never learned from): shape
``(horizon, n)``. The ``tau`` quantile forecast at horizon ``h`` is the point forecast moved by the
``tau`` quantile of that horizon's residuals::

    q_tau(h) = expm1(log1p(point) + R_h[k]),   R_h sorted ascending,

with the finite-sample conformal rank ``k = ceil((n + 1) tau)`` for ``tau >= 0.5`` and
``floor((n + 1) tau)`` below (1-based, clipped to ``1..n``): the upper quantiles round outwards,
the lower ones too, so the central ``[q_tau, q_{1-tau}]`` interval covers at least ``1 - 2 tau`` of
future residuals exchangeable with the calibration ones (Vovk et al., *Algorithmic Learning in a
Random World*, split conformal; Lei et al. 2018, *Distribution-Free Predictive Inference for
Regression*, sec. 2.2). Residuals of days the networks trained on are smaller than a new day's and
would narrow the band; ``benchmarks/intervals.py`` measures that on training data.
When the calibration is scaled (``error_level``), ``R_h`` holds residuals divided by their origin's
error level and the offset is multiplied by the level at the new forecast's origin.
Working in log space makes the interval multiplicative - a 3% band is 3% at any level - and keeps
every quantile non-negative. ``k`` grows with ``tau``, so quantiles are ordered for every date.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_QUANTILES = 9
"""The most quantile levels one request may ask for (AutoML's sample asks for two)."""


def rank_positions(n: int, taus: np.ndarray) -> np.ndarray:
    """0-based indices into ``n`` ascending residuals for an array of levels in ``(0, 1)`` (see the
    module doc; unchecked - ``conformal_ranks`` checks)."""
    taus = np.asarray(taus, dtype=np.float64)
    position = (n + 1) * taus
    k = np.where(taus >= 0.5, np.ceil(position - 1e-9), np.floor(position + 1e-9)).astype(np.int64)
    return np.clip(k, 1, n) - 1


def conformal_ranks(n: int, levels: Sequence[float]) -> np.ndarray:
    """0-based indices into ``n`` ascending residuals for each level (see the module doc)."""
    if n < 1:
        raise ValueError("conformal calibration needs at least one residual")
    for tau in levels:
        if not 0.0 < tau < 1.0:
            raise ValueError(f"quantile level {tau!r} is not strictly between 0 and 1")
    return rank_positions(n, np.asarray(list(levels), dtype=np.float64)).reshape(-1)


def residual_quantiles(residuals: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """``(len(levels), horizon)``: each horizon's conformal ``tau`` quantile of its residuals."""
    residuals = np.asarray(residuals, dtype=np.float64)
    if residuals.ndim != 2 or residuals.shape[1] == 0:
        raise ValueError(f"residuals must be (horizon, n) with n >= 1, got shape {residuals.shape}")
    ordered = np.sort(residuals, axis=1)
    return ordered[:, conformal_ranks(ordered.shape[1], levels)].T


def quantile_forecasts(point: np.ndarray, horizons: np.ndarray, residuals: np.ndarray,
                       levels: Sequence[float], scale: np.ndarray | float = 1.0) -> np.ndarray:
    """``(len(point), len(levels))`` quantile forecasts for point forecasts at 1-based ``horizons``.
    ``scale`` (one per point, or one for all) multiplies the residual quantiles: the error level at
    each forecast's origin when the residuals were divided by theirs (``error_level``)."""
    point = np.asarray(point, dtype=np.float64)
    horizons = np.asarray(horizons, dtype=np.int64)
    offsets = residual_quantiles(residuals, levels)  # (L, H)
    if horizons.size and (horizons.min() < 1 or horizons.max() > offsets.shape[1]):
        raise ValueError(f"horizons must be within 1..{offsets.shape[1]}")
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), point.shape)
    shifted = np.log1p(np.clip(point, 0.0, None))[:, None] + offsets[:, horizons - 1].T * scale[:, None]
    return np.clip(np.expm1(shifted), 0.0, None)


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """The share of ``actual`` values inside ``[lower, upper]``."""
    actual = np.asarray(actual, dtype=np.float64)
    if actual.size == 0:
        return float("nan")
    inside = (actual >= np.asarray(lower, dtype=np.float64)) & (actual <= np.asarray(upper, dtype=np.float64))
    return float(np.mean(inside))


def interval_text(lower: float, upper: float) -> str:
    """AutoML's ``prediction_interval`` entry: ``"[lower, upper]"`` (its scoring file formats the pair
    with ``"[{}, {}]".format(...)``)."""
    return f"[{lower}, {upper}]"
