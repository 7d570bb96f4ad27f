"""The data windows of a training: where a series is cut by time, and the samples of its fit part.

``Split`` is the one place the cuts are computed, from the row count and the ``TrainConfig``::

    row 0 ....................... first_validation_origin ........ fit_rows - 1 ........ rows - 1
    | -------------- training days -------------- | -- validation days -- | -- holdout -- |
      training origins' targets (the networks         the validation origins'   never seen by
      learn from these)                               targets: early stopping   the fit: metrics.json

An origin is the index of the last known day; its targets are the ``horizon`` days after it.
``prepare`` turns the fit part into the networks' samples (``windows.build_samples``); ``context``
is the history a model keeps (``CONTEXT_EXTRA_DAYS`` beyond the network's window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import TargetScaling, calendar_features
from .error_level import LEVEL_ORIGINS
from .train_config import TrainConfig
from .windows import Samples, build_samples

CONTEXT_EXTRA_DAYS = LEVEL_ORIGINS
"""Days stored beyond the network's window, so the baseline and short requests have history too, and
the first forecast's error level (``error_level``) reads the full window of every origin before it."""


@dataclass(frozen=True)
class Split:
    """The cuts of a ``rows``-day series (row indices), from ``Split.of(rows, config)``."""

    rows: int
    window: int
    horizon: int
    validation: int
    holdout: int

    @classmethod
    def of(cls, rows: int, config: TrainConfig) -> Split:
        return cls(rows=rows, window=config.window, horizon=config.horizon, validation=config.validation,
                   holdout=config.holdout)

    @property
    def fit_rows(self) -> int:
        """Rows the fit sees (training and validation days); the holdout starts at this row."""
        return self.rows - self.holdout

    @property
    def first_validation_origin(self) -> int:
        """The last day a training target may fall on, and the first validation origin: every origin
        from here on is out of sample (its targets all come after the last training target)."""
        return self.fit_rows - self.validation - 1

    @property
    def train_origins(self) -> np.ndarray:
        """Origins with a full window before them and every target at or before
        ``first_validation_origin``."""
        return np.arange(self.window - 1, self.first_validation_origin - self.horizon + 1)

    @property
    def validation_origins(self) -> np.ndarray:
        """Origins of the validation tail: from ``first_validation_origin`` (or the first with a full
        window) to the last whose every target lies in the fit part."""
        return np.arange(max(self.first_validation_origin, self.window - 1), self.fit_rows - self.horizon)

    @property
    def holdout_origins(self) -> int:
        """Origins of the holdout's rolling forecast with every horizon inside it (the last of its
        residual table's origins, ``calibration.holdout_coverage``)."""
        return self.holdout - self.horizon + 1

    @property
    def context_days(self) -> int:
        """Days of history a model keeps: the network's window plus ``CONTEXT_EXTRA_DAYS``."""
        return self.window + CONTEXT_EXTRA_DAYS


@dataclass(frozen=True)
class Prepared:
    """The fit part's samples: the training origins' and the validation tail's, in one target scaling."""

    scaling: TargetScaling
    train: Samples
    val: Samples


def prepare(series: pd.DataFrame, config: TrainConfig, split: Split) -> Prepared:
    """Samples of the fit part: training origins, and the validation tail's apart (``shuffle_targets``
    permutes the fit part's counts first, seeded)."""
    horizon, window, n_fit = config.horizon, config.window, split.fit_rows
    counts = series["count"].to_numpy(dtype=np.float64)[:n_fit].copy()
    holiday = series["holiday"].to_numpy(dtype=np.float64)[:n_fit]
    if config.shuffle_targets:
        counts = counts[np.random.default_rng(config.seed).permutation(n_fit)]
    log_target = np.log1p(counts)
    calendar = calendar_features(series["date"].iloc[:n_fit], holiday)
    train_origins, val_origins = split.train_origins, split.validation_origins
    raw = build_samples(log_target, calendar, train_origins, horizon=horizon, scale=1.0, with_target=True)
    scale = float(np.std(raw.target)) or 1.0
    # The validation samples' sequence covers the training days too: one sequence serves both.
    every = build_samples(log_target, calendar, np.concatenate([train_origins, val_origins]), horizon=horizon,
                          scale=scale, min_origin=window - 1, with_target=True)
    n_train = len(train_origins)
    return Prepared(scaling=TargetScaling(scale=scale), train=every.subset(np.arange(n_train)),
                    val=every.subset(np.arange(n_train, len(every.origins))))


def context(series: pd.DataFrame, days: int) -> pd.DataFrame:
    """The last ``days`` rows of ``series`` (``date``, ``count``, ``holiday``): a model's saved history."""
    return series.iloc[-days:][["date", "count", "holiday"]].reset_index(drop=True)
