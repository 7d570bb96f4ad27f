"""Which forecaster a model folder holds, how it is loaded, and how either kind is asked for quantiles.

* ``load_forecaster`` - ``model.pt`` (``weights_only=True``) as a ``TCNForecaster``, or - only when the
  caller trusts the file - a pickled AutoML model (``MLOPS_TRUST_PICKLED_MODEL=1`` for the scoring scripts);
* ``find_model_file`` - the file in a registered model's folder (Azure nests it in a subfolder);
* ``quantile_forecast`` - point and quantile forecasts from either kind of model;
* ``single_threaded_torch`` - one torch thread per scoring worker.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .artifact import MODEL_FILE
from .errors import ForecastInputError, UntrustedModelError
from .forecaster import TCNForecaster


def quantile_forecast(model: Any, X_pred: pd.DataFrame, y_pred: Any, levels: Sequence[float]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``(point forecast, (rows, len(levels)) quantile forecasts)`` from either kind of model. A
    pickled AutoML forecaster is asked the way AutoML's scoring file asks it (``model.quantiles =
    levels``, then ``model.forecast_quantiles(X_pred, y_pred)``, one column per level); this
    project's model takes the levels per call (concurrent requests cannot see each other's levels)
    and makes the point forecast once for both."""
    levels = [float(q) for q in levels]
    if isinstance(model, TCNForecaster):
        values, table, _ = model.values_and_quantiles(X_pred, y_pred, levels)
        return values, table
    if hasattr(model, "forecast_quantiles"):
        values, _ = model.forecast(X_pred, y_pred)
        model.quantiles = levels
        frame = model.forecast_quantiles(X_pred, y_pred)
    else:
        raise ForecastInputError(f"this model ({type(model).__name__}) has no forecast_quantiles: quantiles "
                                 "cannot be served; leave GlobalParameters.quantiles out")
    try:
        table = np.column_stack([np.asarray(frame[level], dtype=np.float64) for level in levels])
    except KeyError as error:
        raise ForecastInputError(f"the model's forecast_quantiles returned no column {error}") from None
    return np.asarray(values, dtype=np.float64), table


def single_threaded_torch() -> None:
    """One torch thread per scoring worker, unless ``OMP_NUM_THREADS`` says otherwise.

    A worker scores one request at a time and the small convolutions of one forecast do not gain
    from threads; on shared cores, OpenMP threads spinning for work made a single forecast ~30x
    slower in our measurements. Scale with workers and instances instead."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


def find_model_file(model_dir: str | Path) -> Path:
    """``model_dir`` itself if it is a file; else its ``model.pt`` (Azure puts a registered folder in a
    subfolder of ``AZUREML_MODEL_DIR``, so subfolders are searched, shallowest first), else a ``*.pkl``."""
    root = Path(model_dir)
    if root.is_file():
        return root
    if not root.is_dir():
        raise ForecastInputError(f"model directory {root} does not exist")

    def shallow_first(paths: list[Path]) -> list[Path]:
        return sorted(paths, key=lambda p: (len(p.relative_to(root).parts), str(p)))

    for pattern in (MODEL_FILE, "*.pt", "*.pkl"):
        found = shallow_first(list(root.rglob(pattern)))
        if found:
            return found[0]
    raise ForecastInputError(f"no {MODEL_FILE} (or *.pkl) under {root}")


def load_forecaster(model_dir: str | Path, *, trust_pickled: bool = False) -> Any:
    """A forecaster for ``model.pt`` (``weights_only=True``), or - only when ``trust_pickled`` - a
    pickled AutoML model (``torch.load(weights_only=False)`` / pickle). Unpickling runs code from
    the file, so an untrusted pickle raises ``UntrustedModelError`` instead."""
    path = find_model_file(model_dir)
    refusal = (f"{path} is a pickled model (e.g. Azure AutoML's); unpickling runs code from the file, so it "
               "is loaded only when trusted (MLOPS_TRUST_PICKLED_MODEL=1 for the scoring scripts)")
    if path.suffix == ".pkl":
        if not trust_pickled:
            raise UntrustedModelError(refusal)
        with path.open("rb") as handle:
            model = pickle.load(handle)  # noqa: S301 - explicitly trusted by the caller
    else:
        with path.open("rb") as handle:
            head = handle.read(4)
        if not (zipfile.is_zipfile(path) or head[:1] == b"\x80"):  # torch's zip format or a raw pickle
            raise ForecastInputError(f"{path}: not a readable torch file")
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            if not trust_pickled:
                raise UntrustedModelError(refusal) from None
            loaded = torch.load(path, map_location="cpu", weights_only=False)
        except (RuntimeError, EOFError, OSError) as error:
            raise ForecastInputError(f"{path}: not a readable torch file ({error})") from None
        if isinstance(loaded, dict):
            return TCNForecaster(loaded, source=str(path))
        model = loaded
    if not (hasattr(model, "forecast") and hasattr(model, "rolling_forecast")):
        raise ForecastInputError(f"{path}: loaded a {type(model).__name__}, which has no forecast/rolling_forecast")
    return model
