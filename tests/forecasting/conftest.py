from __future__ import annotations

from pathlib import Path

import pytest

from mlops.forecasting.forecaster import TCNForecaster
from mlops.forecasting.loading import load_forecaster
from mlops.forecasting.training import TrainResult
from tests.forecasting.tiny import train_tiny


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train_tiny(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_forecaster(tiny_model: TrainResult) -> TCNForecaster:
    return load_forecaster(tiny_model.out_dir)


@pytest.fixture
def model_dir(tiny_model: TrainResult) -> Path:
    return tiny_model.out_dir
