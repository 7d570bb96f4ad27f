"""Which residuals calibrate the quantile forecasts: the candidate methods, as pure functions.

Training scores the early-stopped ensemble's rolling forecast (horizons 1..H, step 1) at every
origin of the last ``RECENT_DAYS`` of its data and keeps, per origin, the ``log1p`` residuals and
whether the origin is **out of sample**: every one of its target days lies after the last day the
networks learned from (the validation tail and the holdout; 140 origins with the defaults, the
last ``H - 1`` of them without every horizon). The origins before are **in sample**: their targets
were training targets, so their residuals are smaller than a new day's will be.

A method maps that ``ResidualTable`` to a ``Calibration``: the ``(H, n)`` residuals stored in
``model.pt`` (``intervals.quantile_forecasts`` reads them) and whether they are scaled by the
model's recent error level (``error_level``):

* ``recent-730`` / ``recent-365``: every origin of the last 730 / 365 days as they are (the
  first formats' choice: every season is represented, but the in-sample part narrows the band);
* ``out-of-sample``: the out-of-sample origins only - plain split conformal, exchangeable with
  new days only if the last ~5 months look like the year ahead;
* ``inflated-730``: every origin of the last 730 days, the in-sample residuals of horizon ``h``
  multiplied by ``f_h = max(1, A_out(h) / A_in(h))``, where ``A`` is the 80th percentile of the
  absolute residuals (out of sample / in sample): the seasons of two years, with the optimism of
  the in-sample days removed as measured on the days the networks never saw;
* ``scaled-730`` / ``scaled-out-of-sample``: every origin of the last 730 days / the out-of-sample
  ones, each residual divided by the model's error level at its origin
  (``error_level.recent_error_levels``); a forecast's quantiles are then multiplied by the level at
  its own origin. In-sample origins are usable here: their residuals and their levels are optimistic
  alike.

The method is chosen by ``benchmarks/intervals.py`` **on training data only** - for each of
several series it holds out the last year of the *training* split, trains on the rest, and
measures each method's 80% interval coverage on that year - and the choice is
``TrainConfig.calibration`` (its docstring has the numbers). The test set is not looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .error_level import LEVEL_ORIGINS, level_or_reference, recent_error_levels
from .intervals import residual_quantiles

RECENT_DAYS = 730
"""The longest window a method reads (two years: every holiday and year-end twice)."""

INFLATION_PERCENTILE = 80.0
"""``inflated-730``'s spread statistic: the percentile of |residual| that an 80% interval's
half-width is about (a central 80% interval of a symmetric error spans its 80th |.| percentile)."""

METHODS = ("recent-730", "recent-365", "out-of-sample", "inflated-730", "scaled-730", "scaled-out-of-sample")
SCALED = ("scaled-730", "scaled-out-of-sample")


@dataclass(frozen=True)
class ResidualTable:
    residuals: np.ndarray
    """``(H, n)`` ``log1p(actual) - log1p(forecast)`` per horizon, origins in time order (NaN where
    an origin's horizon runs past the data)."""
    out_of_sample: np.ndarray
    """``(n,)`` bool: the origin's target days all lie after the training targets."""

    def __post_init__(self) -> None:
        if self.residuals.ndim != 2 or self.out_of_sample.shape != (self.residuals.shape[1],):
            raise ValueError(f"residuals {self.residuals.shape} and out_of_sample {self.out_of_sample.shape} "
                             "do not match")

    def levels(self, origins: int = LEVEL_ORIGINS) -> np.ndarray:
        """``(n,)`` the model's error level at each origin over the ``origins`` before it (NaN for
        the first ``origins``)."""
        return recent_error_levels(self.residuals, origins)


@dataclass(frozen=True)
class Calibration:
    """What ``model.pt`` keeps for the quantile forecasts (``artifact``'s ``calibration``)."""

    residuals: np.ndarray
    """``(H, n)`` ``log1p`` residuals - divided by their origin's error level when ``level_origins``."""
    level_origins: int = 0
    """0: plain residuals; else the residuals are scaled by ``error_level`` over this many origins."""
    reference_level: float = 0.0
    """The median error level of the calibration origins: the scale of a forecast whose own level
    cannot be computed (a context too short for ``level_origins`` previous forecasts)."""

    def __post_init__(self) -> None:
        if self.residuals.ndim != 2 or self.residuals.shape[1] == 0:
            raise ValueError(f"calibration residuals must be (horizon, n >= 1), got {self.residuals.shape}")
        if self.level_origins and not self.reference_level > 0:
            raise ValueError("a scaled calibration needs a positive reference level")


def _complete(residuals: np.ndarray) -> np.ndarray:
    """Origins with every horizon (the last ``H - 1`` origins of a series lack some)."""
    return residuals[:, ~np.isnan(residuals).any(axis=0)]


def inflation(table: ResidualTable) -> np.ndarray:
    """``(H,)`` ``f_h = max(1, A_out(h) / A_in(h))`` (see the module doc); 1 where a side is empty."""
    out = np.ones(table.residuals.shape[0])
    for h, row in enumerate(table.residuals):
        inside = np.abs(row[~table.out_of_sample & ~np.isnan(row)])
        outside = np.abs(row[table.out_of_sample & ~np.isnan(row)])
        if inside.size and outside.size:
            a_in = np.percentile(inside, INFLATION_PERCENTILE)
            if a_in > 0:
                out[h] = max(1.0, float(np.percentile(outside, INFLATION_PERCENTILE) / a_in))
    return out


def _scaled(table: ResidualTable, method: str, level_origins: int) -> Calibration:
    levels = table.levels(level_origins)
    keep = np.isfinite(levels) & ~np.isnan(table.residuals).any(axis=0)
    if method == "scaled-out-of-sample":
        keep &= table.out_of_sample
    else:
        keep[:-RECENT_DAYS] = False
    if not keep.any():
        raise ValueError(f"calibration method {method!r} found no origin with every horizon and "
                         f"{level_origins} origins before it")
    return Calibration(residuals=table.residuals[:, keep] / levels[keep], level_origins=level_origins,
                       reference_level=float(np.median(levels[keep])))


def calibrate(table: ResidualTable, method: str, level_origins: int = LEVEL_ORIGINS) -> Calibration:
    """What ``method`` stores (origins with every horizon only); the scaled methods' levels are over
    ``level_origins`` origins."""
    if method in SCALED:
        return _scaled(table, method, level_origins)
    residuals, oos = table.residuals, table.out_of_sample
    n = residuals.shape[1]
    if method == "recent-730":
        chosen = residuals[:, -RECENT_DAYS:]
    elif method == "recent-365":
        chosen = residuals[:, -365:]
    elif method == "out-of-sample":
        chosen = residuals[:, oos]
    elif method == "inflated-730":
        factors = np.where(oos[None, :], 1.0, inflation(table)[:, None])
        chosen = (residuals * factors)[:, -RECENT_DAYS:] if n else residuals
    else:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    chosen = _complete(chosen)
    if chosen.shape[1] == 0:
        raise ValueError(f"calibration method {method!r} found no origin with every horizon")
    return Calibration(residuals=chosen)


def holdout_coverage(table: ResidualTable, method: str, holdout_origins: int) -> float:
    """The 80% interval's (``q0.1..q0.9``) coverage at the table's last ``holdout_origins`` origins,
    calibrated by ``method`` on the origins whose targets all precede theirs: training's honest check
    of its calibration (the saved model calibrates on every origin). Scaled methods scale each
    holdout origin by its own error level, as serving does."""
    horizon, n = table.residuals.shape
    start = n - holdout_origins
    cut = start - horizon + 1  # origins before it have every target before the holdout's first target
    if holdout_origins < 1 or cut < 1:
        raise ValueError(f"a {n}-origin table has no {holdout_origins}-origin holdout after a calibration part")
    calibration = calibrate(ResidualTable(table.residuals[:, :cut], table.out_of_sample[:cut]), method)
    scale = np.ones(holdout_origins)
    if calibration.level_origins:
        scale = level_or_reference(table.levels(calibration.level_origins)[start:], calibration.reference_level)
    lower, upper = residual_quantiles(calibration.residuals, (0.1, 0.9))  # (H,) each
    tail = table.residuals[:, start:]
    inside = (tail >= lower[:, None] * scale) & (tail <= upper[:, None] * scale)
    return float(np.mean(inside[~np.isnan(tail)]))
