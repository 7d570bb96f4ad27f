"""``splits.Split``: a training's cuts by time, from the row count and the config (numbers by hand)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlops.forecasting.splits import CONTEXT_EXTRA_DAYS, Split
from mlops.forecasting.train_config import TrainConfig

TINY = dict(horizon=14, dilations=(1, 2, 4), validation_days=42, holdout_days=28)  # window 42
SHORT = dict(horizon=7, dilations=(1, 2, 4), validation_days=7, holdout_days=7)

# config, rows -> fit_rows, first_validation_origin, train origins [first, stop), validation origins
# [first, stop), holdout origins. Window 138 by default (receptive field 125 + 13 feature days), 42
# for dilations (1, 2, 4); default validation 6 * 14 = 84 and holdout 4 * 14 = 56 days.
TABLE = [
    pytest.param({}, 1095, 1039, 954, (137, 941), (954, 1025), 43, id="default-3-years"),
    pytest.param({}, 320, 264, 179, (137, 166), (179, 250), 43, id="default-min-rows"),
    pytest.param(TINY, 420, 392, 349, (41, 336), (349, 378), 15, id="tiny-tests-model"),
    pytest.param(SHORT, 100, 93, 85, (41, 79), (85, 86), 1, id="horizon-7-one-validation-origin"),
]


@pytest.mark.parametrize(("overrides", "rows", "fit_rows", "first_validation", "train", "validation", "holdout"),
                         TABLE)
def test_the_cuts(overrides: dict, rows: int, fit_rows: int, first_validation: int, train: tuple[int, int],
                  validation: tuple[int, int], holdout: int) -> None:
    config = TrainConfig(**overrides)
    split = Split.of(rows, config)
    assert split.fit_rows == fit_rows
    assert split.first_validation_origin == first_validation
    assert (split.train_origins[0], split.train_origins[-1] + 1, len(split.train_origins)) == (*train, train[1] - train[0])
    assert (split.validation_origins[0], split.validation_origins[-1] + 1) == validation
    assert split.holdout_origins == holdout
    assert split.context_days == config.window + CONTEXT_EXTRA_DAYS


@pytest.mark.parametrize(("overrides", "rows"), [(p.values[0], p.values[1]) for p in TABLE])
def test_the_parts_do_not_overlap_and_min_rows_leaves_two_horizons_of_training(overrides: dict, rows: int) -> None:
    config = TrainConfig(**overrides)
    split = Split.of(rows, config)
    h = config.horizon
    assert split.train_origins[0] == config.window - 1  # the first origin with a full window
    assert split.train_origins[-1] + h == split.first_validation_origin  # the last training target
    assert split.validation_origins[0] == split.first_validation_origin  # validation targets follow it
    assert split.validation_origins[-1] + h == split.fit_rows - 1  # ... up to the fit part's last day
    assert len(split.validation_origins) == config.validation - h + 1
    assert split.rows - split.fit_rows == config.holdout
    at_least = Split.of(config.min_rows(), config)
    assert len(at_least.train_origins) == 2 * h + 1


def test_the_validation_tail_starts_no_earlier_than_a_full_window() -> None:
    """Below ``min_rows`` (``train_model`` refuses it) the first validation origin would lack a window:
    the validation origins start at the first that has one."""
    split = Split.of(60, TrainConfig(**{**SHORT, "validation_days": 20}))  # first_validation_origin 32 < 41
    assert split.first_validation_origin == 32
    assert split.validation_origins.tolist() == list(range(41, 46))


def test_the_config_and_the_splits_import_no_torch() -> None:
    """The CLI and the local workspace build a ``TrainConfig`` without loading the training code."""
    code = ("import sys; import mlops.forecasting.train_config, mlops.forecasting.splits; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)  # noqa: S603 - our own interpreter
    assert result.stdout.strip() == "False"
