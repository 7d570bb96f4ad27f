"""The network's inputs for many forecast origins at once: one day-by-day feature sequence, and per
origin the horizon's calendar and seasonal-naive forecast.

The TCN is causal, so one pass over a series' feature *sequence* yields the encoding of every day
from the days before it; a sample is then just an origin ``o`` (the index of the last known day)
into that sequence, with the calendar of the ``horizon`` days after it, the holiday block of each
horizon day's seasonal-naive source day, and the weekly seasonal-naive forecast of those days (the
value at the last day ``<= o`` with the same weekday) relative to the origin's local level. The
network predicts a correction to that naive forecast, so an untrained network *is* the
seasonal-naive baseline and training only has to learn what the baseline misses (holidays, the
yearly shape, momentum). Scoring every origin of a rolling forecast costs one pass over the series,
not one pass per origin; training on 2,000 origins likewise.

Each day's features depend on that day and the ``FEATURE_LOOKBACK`` days before it only (and never
on an origin), in ``log1p`` space divided by one global scale:

* ``log1p(y[i]) - level[i]`` (the weekly pattern; ``level`` is the mean of the last ``LEVEL_DAYS``),
* ``log1p(y[i]) - log1p(y[i - 7])`` (the week-on-week change),
* ``level[i] - level[i - 7]`` (the weekly growth of the level),

then the calendar. Days without that much history get zeros (the network never reads them for an
origin with a full ``window``: ``context_days``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import CALENDAR_FEATURES, HOLIDAY_FEATURES, LEVEL_DAYS

FEATURE_LOOKBACK = LEVEL_DAYS - 1 + 7
"""Days before day ``i`` that day ``i``'s features read: the level's week and the 7-day change."""

TARGET_FEATURES = 3
SEQUENCE_FEATURES = TARGET_FEATURES + CALENDAR_FEATURES
"""Channels of the feature sequence: the three target features, then the calendar."""

FUTURE_FEATURES = CALENDAR_FEATURES + (HOLIDAY_FEATURES.stop - HOLIDAY_FEATURES.start)
"""Per horizon day: its calendar, then the holiday block of the day its seasonal-naive value is
copied from (``naive_offsets``)."""


def context_days(receptive_field: int) -> int:
    """Days of consecutive actuals up to an origin that fully determine its encoding."""
    return receptive_field + FEATURE_LOOKBACK


@dataclass(frozen=True)
class Samples:
    sequence: np.ndarray
    """``(SEQUENCE_FEATURES, N)`` float32: the day-by-day features of the whole series."""
    origins: np.ndarray
    """``(B,)`` int64: each sample's origin, an index into ``sequence``."""
    future: np.ndarray
    """``(B, horizon, FUTURE_FEATURES)`` float32: the calendar of the days to forecast and the holiday
    block of each one's seasonal-naive source day."""
    naive: np.ndarray
    """``(B, horizon)`` float32: the weekly seasonal-naive forecast, relative to the level, scaled."""
    level: np.ndarray
    """``(B,)`` float64: each origin's local level of ``log1p(count)``."""
    target: np.ndarray | None
    """``(B, horizon)`` float32 scaled actuals relative to the level, when the series has them (training)."""

    def subset(self, index: np.ndarray) -> Samples:
        """The same sequence, the samples at ``index``."""
        return Samples(sequence=self.sequence, origins=self.origins[index], future=self.future[index],
                       naive=self.naive[index], level=self.level[index],
                       target=None if self.target is None else self.target[index])


def naive_offsets(horizon: int) -> np.ndarray:
    """For horizon ``h`` (1-based), the offset from the origin of the last day ``<= origin`` with the
    same weekday as ``origin + h``: ``h - 7 * ceil(h / 7)``, always in ``-6..0``."""
    h = np.arange(1, horizon + 1)
    return h - 7 * np.ceil(h / 7).astype(int)


def _lag(values: np.ndarray, days: int) -> np.ndarray:
    out = np.full_like(values, np.nan)
    out[days:] = values[:-days]
    return out


def local_level(log_target: np.ndarray) -> np.ndarray:
    """The mean of ``log_target`` over each day's last ``LEVEL_DAYS`` days (NaN before that)."""
    sums = np.concatenate([[0.0], np.cumsum(np.nan_to_num(log_target, nan=0.0))])
    level = np.full(len(log_target), np.nan)
    if len(log_target) >= LEVEL_DAYS:
        level[LEVEL_DAYS - 1:] = (sums[LEVEL_DAYS:] - sums[:-LEVEL_DAYS]) / LEVEL_DAYS
    bad = np.isnan(log_target)
    if bad.any():  # a window that holds an unknown day has no level
        counts = np.concatenate([[0], np.cumsum(bad)])
        spoiled = np.zeros(len(log_target), dtype=bool)
        spoiled[LEVEL_DAYS - 1:] = (counts[LEVEL_DAYS:] - counts[:-LEVEL_DAYS]) > 0
        level[spoiled] = np.nan
    return level


def sequence_features(log_target: np.ndarray, calendar: np.ndarray, scale: float) -> np.ndarray:
    """``(SEQUENCE_FEATURES, N)`` float32 (see the module doc); unknown values are zeros."""
    log_target = np.asarray(log_target, dtype=np.float64)
    level = local_level(log_target)
    target = np.stack([log_target - level, log_target - _lag(log_target, 7), level - _lag(level, 7)]) / scale
    target = np.nan_to_num(target, nan=0.0, posinf=0.0, neginf=0.0)
    return np.concatenate([target.astype(np.float32), np.asarray(calendar, dtype=np.float32).T], axis=0)


def build_samples(log_target: np.ndarray, calendar: np.ndarray, origins: np.ndarray, *, horizon: int,
                  scale: float, min_origin: int = LEVEL_DAYS - 1, with_target: bool = False) -> Samples:
    """Samples for every origin index in ``origins`` (vectorised; no Python loop over origins).

    ``log_target[i]`` is ``log1p(count)`` of day ``i`` (only days ``<= origin`` are read unless
    ``with_target``); ``calendar`` must cover every day up to ``max(origins) + horizon``. The
    sequence runs to the last origin: later days are never read.
    """
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and origins.min() < max(min_origin, LEVEL_DAYS - 1):
        raise ValueError(f"origin index {origins.min()} has fewer than {max(min_origin, LEVEL_DAYS - 1) + 1} "
                         "days of context")
    if origins.size and origins.max() + horizon >= len(calendar):
        raise ValueError("calendar does not cover the forecast horizon of the last origin")
    end = int(origins.max()) + 1 if origins.size else 0
    sequence = sequence_features(log_target[:end], calendar[:end], scale)
    level = local_level(np.asarray(log_target[:end], dtype=np.float64))[origins]
    future_idx = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    naive_idx = origins[:, None] + naive_offsets(horizon)[None, :]
    future = np.concatenate([calendar[future_idx], calendar[naive_idx][:, :, HOLIDAY_FEATURES]],
                            axis=2).astype(np.float32)
    naive = ((log_target[naive_idx] - level[:, None]) / scale).astype(np.float32)
    target = None
    if with_target:
        target = ((log_target[future_idx] - level[:, None]) / scale).astype(np.float32)
    return Samples(sequence=sequence, origins=origins, future=future, naive=naive, level=level, target=target)


def to_counts(z: np.ndarray, level: np.ndarray, scale: float) -> np.ndarray:
    """Undo the scaling: ``expm1(level + scale * z)``, never below zero."""
    return np.clip(np.expm1(level[:, None] + scale * np.asarray(z, dtype=np.float64)), 0.0, None)
