"""Slicing a daily series into model samples, for many forecast origins at once.

A sample is one forecast origin ``o`` (the index of the last known day): the ``window`` days up
to and including ``o`` (scaled target + calendar features), the calendar of the ``horizon`` days
after it, and the weekly seasonal-naive forecast of those days (the value at the last day
``<= o`` with the same weekday). The network predicts a correction to that naive forecast, so an
untrained network *is* the seasonal-naive baseline and training only has to learn what the
baseline misses (holidays, yearly shape, momentum).

Everything here is index arithmetic on numpy arrays: ``rolling_forecast`` builds the samples of
all its origins in one call and scores them in one tensor pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import LEVEL_DAYS


@dataclass(frozen=True)
class Samples:
    past: np.ndarray
    """``(B, 1 + F, window)`` float32: scaled target and calendar features, channels first."""
    future: np.ndarray
    """``(B, horizon, F)`` float32: the calendar of the days to forecast."""
    naive: np.ndarray
    """``(B, horizon)`` float32: the weekly seasonal-naive forecast, scaled."""
    level: np.ndarray
    """``(B,)`` float64: each sample's local level of ``log1p(count)``."""
    target: np.ndarray | None
    """``(B, horizon)`` float32 scaled actuals, when the series has them (training)."""


def naive_offsets(horizon: int) -> np.ndarray:
    """For horizon ``h`` (1-based), the offset from the origin of the last day ``<= origin`` with the
    same weekday as ``origin + h``: ``h - 7 * ceil(h / 7)``, always in ``-6..0``."""
    h = np.arange(1, horizon + 1)
    return h - 7 * np.ceil(h / 7).astype(int)


def build_samples(log_target: np.ndarray, calendar: np.ndarray, origins: np.ndarray, *, window: int,
                  horizon: int, scale: float, with_target: bool = False) -> Samples:
    """Samples for every origin index in ``origins`` (vectorised; no Python loop over origins).

    ``log_target[i]`` is ``log1p(count)`` of day ``i`` (only days ``<= origin`` are read unless
    ``with_target``); ``calendar`` must cover every day up to ``max(origins) + horizon``.
    """
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and (origins.min() < window - 1 or origins.min() < LEVEL_DAYS - 1):
        raise ValueError(f"origin index {origins.min()} has fewer than {window} days of context")
    if origins.size and origins.max() + horizon >= len(calendar):
        raise ValueError("calendar does not cover the forecast horizon of the last origin")
    past_idx = origins[:, None] + np.arange(-window + 1, 1)[None, :]
    level = log_target[origins[:, None] + np.arange(-LEVEL_DAYS + 1, 1)[None, :]].mean(axis=1)
    z_past = (log_target[past_idx] - level[:, None]) / scale
    past = np.concatenate([z_past[:, None, :].astype(np.float32),
                           np.transpose(calendar[past_idx], (0, 2, 1)).astype(np.float32)], axis=1)
    future_idx = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    future = calendar[future_idx].astype(np.float32)
    naive_idx = origins[:, None] + naive_offsets(horizon)[None, :]
    naive = ((log_target[naive_idx] - level[:, None]) / scale).astype(np.float32)
    target = None
    if with_target:
        target = ((log_target[future_idx] - level[:, None]) / scale).astype(np.float32)
    return Samples(past=past, future=future, naive=naive, level=level, target=target)


def to_counts(z: np.ndarray, level: np.ndarray, scale: float) -> np.ndarray:
    """Undo the scaling: ``expm1(level + scale * z)``, never below zero."""
    return np.clip(np.expm1(level[:, None] + scale * np.asarray(z, dtype=np.float64)), 0.0, None)
