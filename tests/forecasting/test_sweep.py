"""AutoML-shaped trials: variants, AutoML's metrics, and outputs laid out as AutoML lays them out."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.forecasting.errors import UntrustedModelError
from mlops.forecasting.loading import load_forecaster
from mlops.forecasting.sweep import automl_conda_file, automl_metrics, run_trial, trial_configs
from mlops.forecasting.synthetic import generate_dau
from mlops.release.conda_file import serving_conda_file
from mlops.workspace.automl import pick_automl_files
from tests.forecasting.tiny import TINY_DAYS, TINY_SEED, tiny_config


@pytest.mark.parametrize(
    ("actual", "predicted", "expected"),
    [
        # perfect: no error, R2 1, rank correlation 1
        ([1, 2, 3, 4], [1, 2, 3, 4], {"normalized_root_mean_squared_error": 0.0, "normalized_mean_absolute_error": 0.0,
                                      "r2_score": 1.0, "spearman_correlation": 1.0}),
        # off by one everywhere, range 3: NRMSE = NMAE = 1/3; R2 = 1 - 4/5
        ([1, 2, 3, 4], [2, 3, 4, 5], {"normalized_root_mean_squared_error": 1 / 3, "normalized_mean_absolute_error": 1 / 3,
                                      "r2_score": 0.2, "spearman_correlation": 1.0}),
        # reversed ranks
        ([1, 2, 3, 4], [4, 3, 2, 1], {"normalized_root_mean_squared_error": np.sqrt(5) / 3,
                                      "normalized_mean_absolute_error": 2 / 3, "r2_score": -3.0,
                                      "spearman_correlation": -1.0}),
    ],
)
def test_automl_metrics(actual: list, predicted: list, expected: dict) -> None:
    assert automl_metrics(np.array(actual), np.array(predicted)) == pytest.approx(expected)


def test_trial_configs_are_distinct_seeded_variants_within_the_window() -> None:
    base = tiny_config()
    configs = trial_configs(4, base)
    assert [c.seed for c in configs] == [base.seed, base.seed + 1, base.seed + 2, base.seed + 3]
    assert len({(c.channels, c.dilations, c.dropout, c.learning_rate, c.weight_decay) for c in configs}) == 4
    assert all(max(c.dilations) * 2 <= base.window for c in configs)
    with pytest.raises(ValueError, match="at least 1"):
        trial_configs(0, base)


def test_the_trials_conda_file_is_shaped_like_automls() -> None:
    data = yaml.safe_load(automl_conda_file())
    assert data["name"] == "project_environment" and data["channels"] == ["anaconda", "conda-forge"]
    python, pip_block, *trailing = data["dependencies"]
    assert python == "python=" + ".".join(map(str, sys.version_info[:3]))
    assert [p.split("==")[0] for p in pip_block["pip"]] == ["azureml-inference-server-http", "torch", "azureml-core",
                                                          "azureml-dataset-runtime[fuse]"]
    assert all("==" in p and "+" not in p for p in pip_block["pip"]), "pinned, without torch's +cpu local label"
    assert [t.split("==")[0] for t in trailing] == ["numpy", "pandas"] and all("==" in t for t in trailing)
    # what the default unpins: the trailing conda dependencies, nothing else
    assert [u.name for u in serving_conda_file(automl_conda_file()).unpinned] == ["numpy", "pandas"]


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("trial")
    return folder, run_trial(generate_dau(TINY_DAYS, seed=TINY_SEED), folder, tiny_config())


def test_a_trial_writes_automls_outputs_and_its_metrics(trial) -> None:
    folder, result = trial
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    picked = pick_automl_files(files)
    assert (picked.model, picked.conda_file, picked.scoring_file) == (
        "outputs/model.pt", "outputs/conda_env_v_1_0_0.yml", "outputs/scoring_file_v_2_0_0.py")
    assert set(result.metrics) == {"normalized_root_mean_squared_error", "normalized_mean_absolute_error",
                                   "r2_score", "spearman_correlation"}
    assert 0 < result.metrics["normalized_root_mean_squared_error"] < 1
    assert -1 <= result.metrics["spearman_correlation"] <= 1


def test_the_trials_model_is_a_pickle_served_only_when_trusted(trial) -> None:
    folder, result = trial
    with pytest.raises(UntrustedModelError, match="pickled model"):
        load_forecaster(folder / "outputs")
    forecaster = load_forecaster(folder / "outputs", trust_pickled=True)
    plain = load_forecaster(result.train.out_dir)  # the same fit as the project's weights-only model.pt
    future = pd.DataFrame({"date": pd.date_range(plain.history_end + pd.Timedelta(days=1), periods=14, freq="D")})
    assert np.allclose(forecaster.forecast(future)[0], plain.forecast(future)[0])
