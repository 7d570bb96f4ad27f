"""The online scoring payload: AutoML's forecasting request format, parsed and checked up front.

Request (what Azure AutoML's forecasting endpoints take)::

    {"Inputs": {"data": [{"date": "2018-08-25", "count": 150000, ...},   # context: recent actuals
                         {"date": "2018-09-01"}, ...]},                  # no count: forecast it
     "GlobalParameters": {...}}                                          # optional, an object

Answer: ``{"Results": {"forecast": [...], "index": [{"date": "2018-09-01"}, ...]}}`` for the rows
to forecast, in date order.

Every problem is a ``PayloadError`` whose message says what is wrong and where (``Inputs.data[3].count``),
so the scoring script can answer 400 with it and keep serving. Checks that depend on the model
(gaps in the context, dates beyond its horizon) are the forecaster's and raise
``ForecastInputError``, which the scoring script treats the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import ForecastInputError

MAX_BODY_BYTES = 1_000_000
MAX_ROWS = 5_000
TIME_COLUMN = "date"
TARGET_COLUMN = "count"
EXAMPLE = '{"Inputs": {"data": [{"date": "2018-09-01"}]}, "GlobalParameters": {}}'


class PayloadError(ForecastInputError):
    """A malformed scoring request; the message names the field."""


@dataclass(frozen=True)
class ForecastRequest:
    X_pred: pd.DataFrame
    """Every row's columns except ``count`` (``date`` as datetime64), in request order."""
    y_pred: np.ndarray
    """The ``count`` of context rows, NaN for rows to forecast."""
    global_parameters: dict[str, Any]

    @property
    def future(self) -> np.ndarray:
        return np.isnan(self.y_pred)


def _reject_constant(name: str) -> float:
    raise PayloadError(f"body is not valid JSON: {name} is not a JSON number")


def _parse_date(value: Any, where: str) -> pd.Timestamp:
    if value is None:
        raise PayloadError(f"{where}.date is missing (expected a date like \"2018-09-01\")")
    if not isinstance(value, str):
        raise PayloadError(f"{where}.date must be a string like \"2018-09-01\", got {json.dumps(value)}")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise PayloadError(f"{where}.date: cannot parse {value!r} as a date (expected YYYY-MM-DD)") from None
    if stamp is pd.NaT or pd.isna(stamp):
        raise PayloadError(f"{where}.date: cannot parse {value!r} as a date (expected YYYY-MM-DD)")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(None)
    if stamp != stamp.normalize():
        raise PayloadError(f"{where}.date: {value!r} has a time of day; the model forecasts whole days")
    return stamp


def _parse_count(value: Any, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{where}.count must be a number (or left out to forecast that date), "
                           f"got {json.dumps(value)}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise PayloadError(f"{where}.count must be a finite, non-negative number, got {value!r}")
    return number


def parse_forecast_request(body: bytes | str, *, max_horizon: int | None = None) -> ForecastRequest:
    """Parse and check a request body; raise ``PayloadError`` on the first problem."""
    if isinstance(body, str):
        body = body.encode()
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError(f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    if not body.strip():
        raise PayloadError(f"body is empty; expected JSON like {EXAMPLE}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadError(f"body is not UTF-8 text (byte {error.start})") from None
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise PayloadError(f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise PayloadError("body is not valid JSON: nested too deeply") from None
    if not isinstance(payload, dict):
        raise PayloadError(f"body must be a JSON object like {EXAMPLE}, got a JSON {type(payload).__name__}")
    if "Inputs" not in payload:
        raise PayloadError(f"body has no 'Inputs' key; expected {EXAMPLE}")
    inputs = payload["Inputs"]
    if not isinstance(inputs, dict):
        raise PayloadError("Inputs must be an object with a 'data' list")
    if "data" not in inputs:
        raise PayloadError("Inputs has no 'data' key (a list of rows)")
    rows = inputs["data"]
    if not isinstance(rows, list):
        raise PayloadError("Inputs.data must be a list of rows")
    if not rows:
        raise PayloadError("Inputs.data is empty: nothing to forecast")
    if len(rows) > MAX_ROWS:
        raise PayloadError(f"Inputs.data has {len(rows)} rows; the limit is {MAX_ROWS}")
    parameters = payload.get("GlobalParameters", {})
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise PayloadError("GlobalParameters must be an object")

    dates: list[pd.Timestamp] = []
    counts: list[float] = []
    extras: list[dict[str, Any]] = []
    seen: dict[pd.Timestamp, int] = {}
    for i, row in enumerate(rows):
        where = f"Inputs.data[{i}]"
        if not isinstance(row, dict):
            raise PayloadError(f"{where} must be an object like {{\"date\": \"2018-09-01\"}}, "
                               f"got {json.dumps(row)[:80]}")
        stamp = _parse_date(row.get(TIME_COLUMN), where)
        if stamp in seen:
            raise PayloadError(f"{where}.date {stamp.date().isoformat()} repeats Inputs.data[{seen[stamp]}]")
        seen[stamp] = i
        dates.append(stamp)
        counts.append(_parse_count(row.get(TARGET_COLUMN), where))
        extra = {k: v for k, v in row.items() if k not in (TIME_COLUMN, TARGET_COLUMN)}
        if "holiday" in extra and not (extra["holiday"] is None or (isinstance(extra["holiday"], int | float)
                                                                    and not isinstance(extra["holiday"], bool))):
            raise PayloadError(f"{where}.holiday must be 0 or 1, got {json.dumps(extra['holiday'])}")
        extras.append(extra)
    y = np.array(counts, dtype=np.float64)
    future = np.isnan(y)
    if not future.any():
        raise PayloadError("nothing to forecast: every row has a count (leave 'count' out for the dates "
                           "to forecast)")
    if max_horizon is not None and int(future.sum()) > max_horizon:
        raise PayloadError(f"{int(future.sum())} rows to forecast, but the model forecasts at most "
                           f"{max_horizon} days ahead")
    X_pred = pd.DataFrame(extras, index=range(len(rows)))
    X_pred.insert(0, TIME_COLUMN, pd.DatetimeIndex(dates))
    return ForecastRequest(X_pred=X_pred, y_pred=y, global_parameters=parameters)


def forecast_response(dates: pd.DatetimeIndex | pd.Series, values: np.ndarray) -> dict[str, Any]:
    """``{"Results": {"forecast": [...], "index": [{"date": ...}]}}`` in date order."""
    index = pd.DatetimeIndex(dates)
    order = np.argsort(index.to_numpy(), kind="stable")
    return {"Results": {
        "forecast": [float(round(float(v), 3)) for v in np.asarray(values, dtype=np.float64)[order]],
        "index": [{"date": index[i].strftime("%Y-%m-%d")} for i in order],
    }}
