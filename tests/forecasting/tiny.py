"""A tiny model for the tests: trained in about a second, cached per test session by the conftests."""

from __future__ import annotations

from pathlib import Path

from mlops.forecasting.synthetic import generate_dau
from mlops.forecasting.train_config import TrainConfig
from mlops.forecasting.training import TrainResult, train_model

TINY_DAYS = 420
TINY_SEED = 1


def tiny_config(**overrides: object) -> TrainConfig:
    values: dict = dict(horizon=14, epochs=3, channels=8, dilations=(1, 2, 4), members=2,
                        validation_days=42, holdout_days=28)
    values.update(overrides)
    return TrainConfig(**values)


def train_tiny(out_dir: Path, **overrides: object) -> TrainResult:
    return train_model(generate_dau(TINY_DAYS, seed=TINY_SEED), out_dir, config=tiny_config(**overrides))
