"""Which residuals calibrate the quantile forecasts: the candidate methods, as pure functions.

Training scores the early-stopped ensemble's rolling forecast (horizons 1..H, step 1) at every
origin of the last ``RECENT_DAYS`` of its data and keeps, per origin, the ``log1p`` residuals and
whether the origin is **out of sample**: every one of its target days lies after the last day the
networks learned from (the validation tail and the holdout; 140 origins with the defaults, the
last ``H - 1`` of them without every horizon). The origins before are **in sample**: their targets
were training targets, so their residuals are smaller than a new day's will be.

A method maps that ``ResidualTable`` to the ``(H, n)`` residuals stored in ``model.pt``
(``intervals.quantile_forecasts`` reads them; the file format does not change with the method):

* ``recent-730`` / ``recent-365``: every origin of the last 730 / 365 days as they are (the
  first formats' choice: every season is represented, but the in-sample part narrows the band);
* ``out-of-sample``: the out-of-sample origins only - plain split conformal, exchangeable with
  new days only if the last ~5 months look like the year ahead;
* ``inflated-730``: every origin of the last 730 days, the in-sample residuals of horizon ``h``
  multiplied by ``f_h = max(1, A_out(h) / A_in(h))``, where ``A`` is the 80th percentile of the
  absolute residuals (out of sample / in sample): the seasons of two years, with the optimism of
  the in-sample days removed as measured on the days the networks never saw.

The method is chosen by ``benchmarks/intervals.py`` **on training data only** - for each of
several series it holds out the last year of the *training* split, trains on the rest, and
measures each method's 80% interval coverage on that year - and the choice is
``TrainConfig.calibration`` (its docstring has the numbers). The test set is not looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RECENT_DAYS = 730
"""The longest window a method reads (two years: every holiday and year-end twice)."""

INFLATION_PERCENTILE = 80.0
"""``inflated-730``'s spread statistic: the percentile of |residual| that an 80% interval's
half-width is about (a central 80% interval of a symmetric error spans its 80th |.| percentile)."""

METHODS = ("recent-730", "recent-365", "out-of-sample", "inflated-730")


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


def calibrate(table: ResidualTable, method: str) -> np.ndarray:
    """The ``(H, n)`` residuals ``method`` stores (origins with every horizon only)."""
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
    return chosen
