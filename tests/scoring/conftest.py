from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops.forecasting.training import TrainResult
from mlops.packaging import stage_scoring_code
from tests.conftest import REPO
from tests.forecasting.tiny import train_tiny


@pytest.fixture(scope="session")
def scoring_model(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train_tiny(tmp_path_factory.mktemp("scoring-model"))


@pytest.fixture(scope="session")
def azure_model_dir(tmp_path_factory: pytest.TempPathFactory, scoring_model: TrainResult) -> Path:
    """``AZUREML_MODEL_DIR`` as Azure lays out a registered folder: ``<dir>/<name>/<version>/model.pt``."""
    root = tmp_path_factory.mktemp("azureml-models")
    (root / "tcn-dau" / "1").mkdir(parents=True)
    shutil.copy2(scoring_model.model_path, root / "tcn-dau" / "1" / "model.pt")
    return root


@pytest.fixture(scope="session")
def online_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stage_scoring_code(REPO / "endpoints" / "online", tmp_path_factory.mktemp("online") / "code")


@pytest.fixture(scope="session")
def batch_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stage_scoring_code(REPO / "endpoints" / "batch", tmp_path_factory.mktemp("batch") / "code")
