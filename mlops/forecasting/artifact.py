"""``model.pt``: a plain dict that ``torch.load(path, weights_only=True)`` loads - no pickled classes.

Keys (``format`` = ``"mlops-tcn"``, ``format_version`` = 3; version 2 files are read too):

* ``config``   - ``TCNConfig`` as a dict (ints, floats, a list of dilations, the ensemble size)
* ``state_dict`` - the ensemble's tensors (``members.<k>.<layer>...``)
* ``calibration`` - ``residuals``: a ``(horizon, n)`` float64 tensor of ``log1p`` residuals chosen by
  ``TrainConfig.calibration`` (``calibration``), the split-conformal calibration of the quantile
  forecasts (``intervals``); ``level_origins`` (int) and ``reference_level`` (float): when
  ``level_origins`` > 0 the residuals are divided by the model's error level at their origins and
  a forecast's quantiles are scaled by the level at its own (``error_level``). Version 2 files have
  neither key: plain residuals. A version-2 reader refuses a version-3 file (it would serve scaled
  residuals unscaled).
* ``scaling``  - the target scaling (``data.TargetScaling``)
* ``context``  - the last days of the training data (``dates`` as ISO strings, ``count`` and
  ``holiday`` tensors): the forecasting context used when a request brings no recent actuals
* ``metadata`` - ``data_sha256``, ``metrics`` (holdout figures), ``created`` (UTC ISO time), the
  seed, epochs, training time, library versions

Loading a pickled model (as Azure AutoML saves its TCNForecaster) is ``loading.load_forecaster``'s
job and happens only when the caller says the file is trusted.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .calibration import Calibration
from .errors import ForecastInputError

FORMAT = "mlops-tcn"
FORMAT_VERSION = 3
"""3: the calibration may be scaled by the recent error level (``level_origins``); 2: an ensemble of
TCNs, the holiday feature block, and the plain conformal calibration (version 1 was one TCN without
them; such files must be retrained)."""
READABLE_VERSIONS = (2, 3)
MODEL_FILE = "model.pt"


def build_artifact(*, config: dict, state_dict: dict[str, torch.Tensor], scaling: dict,
                   context: pd.DataFrame, calibration: Calibration, metadata: dict[str, Any]) -> dict[str, Any]:
    """Assemble the dict saved as ``model.pt`` (tensors are detached, contiguous CPU copies)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": dict(config),
        "state_dict": OrderedDict((k, v.detach().cpu().clone().contiguous()) for k, v in state_dict.items()),
        "scaling": dict(scaling),
        "context": {
            "dates": [d.strftime("%Y-%m-%d") for d in pd.DatetimeIndex(context["date"])],
            "count": torch.tensor(context["count"].to_numpy(dtype=np.float64)),
            "holiday": torch.tensor(context["holiday"].to_numpy(dtype=np.float64)),
        },
        "calibration": {"residuals": torch.tensor(np.asarray(calibration.residuals, dtype=np.float64)),
                        "level_origins": int(calibration.level_origins),
                        "reference_level": float(calibration.reference_level)},
        "metadata": metadata,
    }


def save_artifact(artifact: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(artifact, tmp)
    tmp.replace(path)  # a reader never sees half a file
    return path


def check_artifact(artifact: Any, *, source: str) -> dict[str, Any]:
    """Raise ``ForecastInputError`` unless ``artifact`` is an ``mlops-tcn`` dict this code can use."""
    if not isinstance(artifact, dict) or artifact.get("format") != FORMAT:
        raise ForecastInputError(f"{source}: not an mlops TCN model (no format={FORMAT!r} key)")
    if artifact.get("format_version") not in READABLE_VERSIONS:
        raise ForecastInputError(f"{source}: model format_version {artifact.get('format_version')!r} "
                                 f"is not supported (this code reads versions "
                                 f"{', '.join(map(str, READABLE_VERSIONS))})")
    missing = [k for k in ("config", "state_dict", "scaling", "context", "calibration", "metadata")
               if k not in artifact]
    if missing:
        raise ForecastInputError(f"{source}: model file lacks {', '.join(missing)}")
    residuals = artifact["calibration"].get("residuals") if isinstance(artifact["calibration"], dict) else None
    horizon = artifact["config"].get("horizon") if isinstance(artifact["config"], dict) else None
    if not (isinstance(residuals, torch.Tensor) and residuals.ndim == 2 and residuals.shape[0] == horizon
            and residuals.shape[1] >= 1 and bool(torch.isfinite(residuals).all())):
        raise ForecastInputError(f"{source}: calibration.residuals must be a finite (horizon, n >= 1) tensor")
    try:
        stored_calibration(artifact)
    except (TypeError, ValueError) as error:
        raise ForecastInputError(f"{source}: calibration: {error}") from None
    return artifact


def stored_calibration(artifact: dict[str, Any]) -> Calibration:
    """The ``Calibration`` a checked artifact holds (version 2: plain residuals)."""
    stored = artifact["calibration"]
    residuals = stored["residuals"].numpy().astype(np.float64)
    if artifact["format_version"] == 2:
        return Calibration(residuals=residuals)
    level_origins, reference = stored.get("level_origins"), stored.get("reference_level")
    if isinstance(level_origins, bool) or not isinstance(level_origins, int) or level_origins < 0:
        raise ValueError(f"level_origins must be a non-negative int, got {level_origins!r}")
    if isinstance(reference, bool) or not isinstance(reference, int | float) or not np.isfinite(reference):
        raise ValueError(f"reference_level must be a finite number, got {reference!r}")
    return Calibration(residuals=residuals, level_origins=level_origins, reference_level=float(reference))


def load_artifact(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)``: never executes code from the file."""
    return check_artifact(torch.load(Path(path), map_location="cpu", weights_only=True), source=str(path))
