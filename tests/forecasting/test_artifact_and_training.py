"""model.pt (weights_only, no pickled classes), load_forecaster's trust rule, and training."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlops.forecasting.artifact import FORMAT
from mlops.forecasting.data import series_sha256
from mlops.forecasting.errors import ForecastInputError, UntrustedModelError
from mlops.forecasting.forecaster import TCNForecaster
from mlops.forecasting.intervals import quantile_forecasts
from mlops.forecasting.loading import load_forecaster
from mlops.forecasting.synthetic import generate_dau
from mlops.forecasting.training import TrainResult
from tests.forecasting.tiny import TINY_DAYS, TINY_SEED, train_tiny


class PickledForecaster:
    """Stands in for a pickled AutoML model (a class the weights-only loader refuses)."""

    max_horizon = 3

    def forecast(self, X_pred, y_pred=None):  # pragma: no cover - only its presence matters
        raise NotImplementedError

    def rolling_forecast(self, X, y, step=1):  # pragma: no cover
        raise NotImplementedError


def test_model_pt_is_a_plain_dict_loadable_weights_only(tiny_model: TrainResult) -> None:
    artifact = torch.load(tiny_model.model_path, weights_only=True)
    assert artifact["format"] == FORMAT
    assert set(artifact) >= {"config", "state_dict", "scaling", "context", "metadata"}
    assert all(isinstance(t, torch.Tensor) for t in artifact["state_dict"].values())
    meta = artifact["metadata"]
    assert meta["data_sha256"] == series_sha256(generate_dau(TINY_DAYS, seed=TINY_SEED))
    assert meta["created"].endswith("Z")
    assert meta["metrics"]["holdout"]["model"]["mape"] == tiny_model.holdout_mape
    assert artifact["context"]["dates"][-1] == generate_dau(TINY_DAYS, seed=TINY_SEED)["date"].iloc[-1].strftime(
        "%Y-%m-%d")


def test_metrics_json_has_model_and_baseline_on_the_same_pairs(tiny_model: TrainResult) -> None:
    metrics = json.loads(tiny_model.metrics_path.read_text())
    holdout = metrics["holdout"]
    for who in ("model", "seasonal_naive"):
        assert set(holdout[who]) == {"mape", "rmse", "mae"}
        assert all(np.isfinite(v) and v >= 0 for v in holdout[who].values())
    assert holdout["horizons"] == [1, 14]
    assert (holdout["origins"], holdout["pairs"]) == (28 - 14 + 1, (28 - 14 + 1) * 14)  # AutoML: full windows
    assert metrics["beats_seasonal_naive"] == (holdout["model"]["mape"] < holdout["seasonal_naive"]["mape"])
    assert metrics["data"]["rows"] == TINY_DAYS


def test_same_seed_same_weights_other_seed_differs(tmp_path: Path, tiny_model: TrainResult) -> None:
    again = train_tiny(tmp_path / "again")
    other = train_tiny(tmp_path / "other", seed=7)
    first = torch.load(tiny_model.model_path, weights_only=True)["state_dict"]
    second = torch.load(again.model_path, weights_only=True)["state_dict"]
    third = torch.load(other.model_path, weights_only=True)["state_dict"]
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)
    assert again.metrics["holdout"] == tiny_model.metrics["holdout"]


def test_progress_line_per_epoch_and_shuffled_targets_make_a_worse_model(tmp_path: Path) -> None:
    lines: list[str] = []
    from mlops.forecasting.training import train_model

    bad = train_model(generate_dau(400), tmp_path / "bad", epochs=3, shuffle_targets=True, progress=lines.append)
    assert [line.split(":")[0] for line in lines] == ["epoch 0/3", "epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert bad.metrics["training"]["shuffle_targets"] is True
    assert bad.holdout_mape > 1.5 * bad.baseline_mape  # clearly worse: a quality gate must refuse it


def test_too_short_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ForecastInputError, match="too short to train"):
        train_tiny(tmp_path, holdout_days=28, validation_days=400)


def test_load_forecaster_searches_subfolders(tmp_path: Path, tiny_model: TrainResult) -> None:
    nested = tmp_path / "tcn-dau" / "3"
    nested.mkdir(parents=True)
    (nested / "model.pt").write_bytes(tiny_model.model_path.read_bytes())
    assert isinstance(load_forecaster(tmp_path), TCNForecaster)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ForecastInputError, match="no model.pt"):
        load_forecaster(tmp_path / "empty")
    with pytest.raises(ForecastInputError, match="does not exist"):
        load_forecaster(tmp_path / "absent")


def test_pickled_models_load_only_when_trusted(tmp_path: Path) -> None:
    torch.save(PickledForecaster(), tmp_path / "model.pt")
    with pytest.raises(UntrustedModelError, match="pickled model"):
        load_forecaster(tmp_path)
    assert isinstance(load_forecaster(tmp_path, trust_pickled=True), PickledForecaster)
    pkl = tmp_path / "pkl"
    pkl.mkdir()
    (pkl / "model.pkl").write_bytes(pickle.dumps(PickledForecaster()))
    with pytest.raises(UntrustedModelError):
        load_forecaster(pkl)
    assert isinstance(load_forecaster(pkl, trust_pickled=True), PickledForecaster)


def test_a_model_file_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(ForecastInputError, match="not an mlops TCN model"):
        load_forecaster(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"garbage")
    with pytest.raises(ForecastInputError, match="not a readable torch file"):
        load_forecaster(tmp_path)


def test_a_version_2_file_serves_its_plain_calibration(tmp_path: Path, tiny_model: TrainResult,
                                                       tiny_forecaster: TCNForecaster) -> None:
    """A model trained before the scaled calibration (format 2: residuals only) keeps serving - a live
    or baseline deployment holds such files - with unscaled intervals."""
    artifact = torch.load(tiny_model.model_path, weights_only=True)
    artifact["format_version"] = 2
    del artifact["calibration"]["level_origins"], artifact["calibration"]["reference_level"]
    torch.save(artifact, tmp_path / "model.pt")
    old = load_forecaster(tmp_path)
    assert old.calibration.level_origins == 0
    future = pd.DataFrame({"date": pd.date_range(old.history_end + pd.Timedelta(days=1), periods=3)})
    band = old.forecast_quantiles(future, quantiles=[0.1, 0.9])
    point = old.forecast(future)[0]
    expected = quantile_forecasts(point, np.arange(1, 4), old.calibration.residuals, [0.1, 0.9])
    np.testing.assert_allclose(band[[0.1, 0.9]].to_numpy(), expected, rtol=1e-9)
    assert not np.allclose(band[[0.1, 0.9]].to_numpy(), tiny_forecaster.forecast_quantiles(
        future, quantiles=[0.1, 0.9])[[0.1, 0.9]].to_numpy())


@pytest.mark.parametrize(("change", "message"), [
    ({"format_version": 4}, "format_version 4 is not supported"),
    ({"level_origins": -1}, "level_origins must be a non-negative int"),
    ({"level_origins": 28.0}, "level_origins must be a non-negative int"),
    ({"reference_level": float("nan")}, "reference_level must be a finite number"),
    ({"reference_level": 0.0}, "a scaled calibration needs a positive reference level"),
])
def test_a_bad_calibration_or_version_is_refused(tmp_path: Path, tiny_model: TrainResult, change: dict,
                                                 message: str) -> None:
    artifact = torch.load(tiny_model.model_path, weights_only=True)
    for key, value in change.items():
        (artifact if key == "format_version" else artifact["calibration"])[key] = value
    torch.save(artifact, tmp_path / "model.pt")
    with pytest.raises(ForecastInputError, match=message):
        load_forecaster(tmp_path)


@pytest.mark.parametrize(("members", "dilations", "length"), [(5, (1, 2, 4, 8, 16), 138), (1, (1, 2), 30),
                                                              (3, (1, 4), 400)])
def test_scoring_one_sequence_takes_the_batched_matrix_path_with_the_same_encoding(
        members: int, dilations: tuple[int, ...], length: int) -> None:
    """``TCN.encode`` of one sequence without autograd uses ``model.member_conv`` (faster on CPU);
    training's grouped convolutions are the reference."""
    from mlops.forecasting.model import TCN, TCNConfig

    torch.manual_seed(0)
    network = TCN(TCNConfig(input_channels=6, future_features=4, horizon=3, channels=8, dilations=dilations,
                            members=members)).eval()
    sequence = torch.randn(1, 6, length)
    reference = network.encode(sequence)  # grad enabled: the grouped conv1d path
    with torch.inference_mode():
        fast = network.encode(sequence)
    assert fast.shape == reference.shape == (1, length, members, 8)
    torch.testing.assert_close(fast, reference.detach(), rtol=1e-5, atol=1e-5)
    assert not torch.equal(fast, torch.zeros_like(fast))
