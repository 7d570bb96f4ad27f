"""Online scoring script: runs inside azureml-inference-server-http (``azmlinfsrv``), on Azure and locally.

The serving environment does not install ``mlops``; the deployment's code snapshot
(``mlops.packaging.stage_scoring_code``) puts ``mlops/forecasting`` beside this file, and this
folder goes first on ``sys.path``. One script serves both kinds of model:

* ``model.pt`` written by ``mlops train`` - loaded with ``torch.load(weights_only=True)``;
* a pickled Azure AutoML forecaster - only when ``MLOPS_TRUST_PICKLED_MODEL=1``.

``run`` takes AutoML's forecasting payload ``{"Inputs": {"data": [rows]}, "GlobalParameters": {}}``
(rows with ``count`` are recent actuals, rows without it are the dates to forecast) and answers
``{"Results": {"forecast": [...], "index": [{"date": ...}]}}``. With ``"GlobalParameters":
{"quantiles": [0.1, 0.5, 0.9]}`` the answer also has AutoML's ``prediction_interval`` and every
level under ``quantiles`` (``mlops.forecasting.payload`` documents the shape and what it matches).
It is decorated with ``@rawhttp``
so that even a body that is not JSON reaches this code: every bad request is answered 400 with
``{"error": "<what is wrong and where>"}`` and the server keeps serving.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:  # azureml-inference-server-http >= 1.4 ships the API itself ...
    from azureml_inference_server_http.api.aml_request import rawhttp
    from azureml_inference_server_http.api.aml_response import AMLResponse
except ImportError:  # ... older images have the azureml-contrib-services shim
    from azureml.contrib.services.aml_request import rawhttp
    from azureml.contrib.services.aml_response import AMLResponse

from mlops.forecasting.errors import ForecastInputError  # noqa: E402
from mlops.forecasting.loading import load_forecaster, quantile_forecast, single_threaded_torch  # noqa: E402
from mlops.forecasting.payload import MAX_BODY_BYTES, forecast_response, parse_forecast_request  # noqa: E402

TRUST_ENV = "MLOPS_TRUST_PICKLED_MODEL"
logger = logging.getLogger("mlops.score")
forecaster = None


def init() -> None:
    """Load the model once per worker: ``$AZUREML_MODEL_DIR`` (searched for ``model.pt``)."""
    global forecaster
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set; the inference server sets it from --model_dir")
    single_threaded_torch()
    trusted = os.environ.get(TRUST_ENV, "") == "1"
    forecaster = load_forecaster(model_dir, trust_pickled=trusted)
    print(f"score.py: loaded {type(forecaster).__name__} from {model_dir} "
          f"(max_horizon={getattr(forecaster, 'max_horizon', '?')}, pickles trusted: {trusted})", flush=True)


def _error(status: int, message: str) -> AMLResponse:
    return AMLResponse({"error": message}, status, json_str=True)


def _is_user_data_error(error: Exception) -> bool:
    """AutoML raises its own DataException/ConfigException family for bad input."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"DataException", "ForecastingDataException", "ConfigException",
                         "ForecastingConfigException", "ValidationException"})


def _read_body(request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ForecastInputError(f"body is {request.content_length} bytes; the limit is {MAX_BODY_BYTES}")
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ForecastInputError(f"body is larger than the limit of {MAX_BODY_BYTES} bytes")
    return body


@rawhttp
def run(request) -> AMLResponse:
    if request.method != "POST":
        return _error(405, f"use POST with a JSON body; {request.method} is not supported")
    try:
        parsed = parse_forecast_request(_read_body(request), max_horizon=getattr(forecaster, "max_horizon", None))
        if parsed.quantiles:
            values, table = quantile_forecast(forecaster, parsed.X_pred, parsed.y_pred, parsed.quantiles)
        else:
            (values, _), table = forecaster.forecast(parsed.X_pred, parsed.y_pred), None
    except ForecastInputError as error:
        return _error(400, str(error))
    except Exception as error:
        if _is_user_data_error(error):
            return _error(400, str(error))
        logger.exception("forecast failed")
        return _error(500, f"the forecast failed: {type(error).__name__}; see the deployment logs")
    future = parsed.future
    body = forecast_response(parsed.X_pred["date"][future], values[future], quantiles=parsed.quantiles,
                             quantile_values=None if table is None else table[future])
    return AMLResponse(body, 200, json_str=True)
