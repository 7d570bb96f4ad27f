"""Batch scoring script: ``init()`` and ``run(mini_batch)`` as Azure ML batch deployments call them.

Each entry of ``mini_batch`` is a file path. For every CSV (``date,count[,...]``, the GitHub DAU
format) it makes a rolling forecast (horizons 1..max_horizon, step 1) against the file's own
actuals - the model's stored training tail is the context of the first origins when the file
continues it - and returns one DataFrame with columns ``date, forecast_origin, predicted, count,
file`` (``output_action: append_row`` writes it). With ``MLOPS_BATCH_QUANTILES`` set in the
deployment's ``environment_variables`` (e.g. ``"0.1,0.9"``) every row also gets one column per
level after ``predicted`` - ``q0.1``, ``q0.9`` - the conformal quantile forecasts of
``mlops.forecasting.intervals``, each origin's scaled by the model's error level there
(``mlops.forecasting.error_level``) and each level tracking its own hits along the file as the
targets of earlier origins become known (``mlops.forecasting.adaptive``; unset: the five columns only). Entries that are not CSV files are skipped. A
malformed file raises an error that names the file and the problem, so the mini-batch fails
visibly instead of writing partial results.

Like the online script, it runs without ``mlops`` installed: the deployment's code snapshot
(``mlops.packaging.stage_scoring_code``) puts ``mlops/forecasting`` beside it. A pickled AutoML
model is loaded only when ``MLOPS_TRUST_PICKLED_MODEL=1``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402

from mlops.forecasting.data import load_series_csv  # noqa: E402
from mlops.forecasting.errors import ForecastInputError  # noqa: E402
from mlops.forecasting.loading import load_forecaster, single_threaded_torch  # noqa: E402
from mlops.forecasting.payload import parse_quantiles  # noqa: E402

TRUST_ENV = "MLOPS_TRUST_PICKLED_MODEL"
QUANTILES_ENV = "MLOPS_BATCH_QUANTILES"
OUTPUT_COLUMNS = ["date", "forecast_origin", "predicted", "count", "file"]
forecaster = None
levels: tuple[float, ...] = ()


class BatchInputError(ValueError):
    """A file of the mini-batch cannot be scored; the message starts with the file name."""


def quantile_column(level: float) -> str:
    return f"q{level:g}"


def parse_levels(text: str) -> tuple[float, ...]:
    """``"0.1,0.9"`` -> ``(0.1, 0.9)``, checked like ``GlobalParameters.quantiles`` of the online script."""
    if not text.strip():
        return ()
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise RuntimeError(f"{QUANTILES_ENV}={text!r}: expected comma-separated numbers like 0.1,0.9") from None
    try:
        return parse_quantiles(values, where="level")
    except ForecastInputError as error:
        raise RuntimeError(f"{QUANTILES_ENV}={text!r}: {error}") from None


def init() -> None:
    global forecaster, levels
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set")
    levels = parse_levels(os.environ.get(QUANTILES_ENV, ""))
    single_threaded_torch()
    forecaster = load_forecaster(model_dir, trust_pickled=os.environ.get(TRUST_ENV, "") == "1")
    if levels and not hasattr(forecaster, "rolling_forecast_with_quantiles"):
        raise RuntimeError(f"{QUANTILES_ENV} is set but {type(forecaster).__name__} has no calibrated quantiles")
    print(f"batch score.py: loaded {type(forecaster).__name__} from {model_dir}"
          + (f", quantiles {list(levels)}" if levels else ""), flush=True)


def output_columns() -> list[str]:
    """The output's columns: ``OUTPUT_COLUMNS`` with the quantile columns after ``predicted``."""
    at = OUTPUT_COLUMNS.index("predicted") + 1
    return OUTPUT_COLUMNS[:at] + [quantile_column(q) for q in levels] + OUTPUT_COLUMNS[at:]


def score_file(path: Path) -> pd.DataFrame:
    """The rolling forecast of one CSV, in the output columns."""
    try:
        frame = load_series_csv(path)
        X = frame.drop(columns=["count"])
        if levels:
            rolling = forecaster.rolling_forecast_with_quantiles(X, frame["count"].to_numpy(), levels, step=1)
        else:
            rolling = forecaster.rolling_forecast(X, frame["count"].to_numpy(), step=1)
    except ForecastInputError as error:
        message = str(error)
        raise BatchInputError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    out = pd.DataFrame({
        "date": pd.DatetimeIndex(rolling[forecaster.time_column_name]).strftime("%Y-%m-%d"),
        "forecast_origin": pd.DatetimeIndex(rolling[forecaster.forecast_origin_column_name]).strftime("%Y-%m-%d"),
        "predicted": rolling[forecaster.forecast_column_name].to_numpy(dtype=float).round(3),
        "count": rolling[forecaster.actual_column_name].to_numpy(dtype=float),
    })
    for level in levels:
        out[quantile_column(level)] = rolling[level].to_numpy(dtype=float).round(3)
    out["file"] = path.name
    return out[output_columns()]


def run(mini_batch: list) -> pd.DataFrame:
    frames = []
    for entry in mini_batch:
        path = Path(str(entry))
        if path.suffix.lower() != ".csv" or not path.is_file():
            print(f"batch score.py: skipping {path} (not a CSV file)", flush=True)
            continue
        frames.append(score_file(path))
    if not frames:
        return pd.DataFrame(columns=output_columns())
    return pd.concat(frames, ignore_index=True)[output_columns()]
