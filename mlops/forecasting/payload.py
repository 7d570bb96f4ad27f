"""The online scoring payload: AutoML's forecasting request format, parsed and checked up front.

Request (what Azure AutoML's forecasting endpoints take)::

    {"Inputs": {"data": [{"date": "2018-08-25", "count": 150000, ...},   # context: recent actuals
                         {"date": "2018-09-01"}, ...]},                  # no count: forecast it
     "GlobalParameters": {...}}                                          # optional, an object

Answer: ``{"Results": {"forecast": [...], "index": [{"date": "2018-09-01"}, ...]}}`` for the rows
to forecast, in date order.

Quantiles: ``"GlobalParameters": {"quantiles": [0.1, 0.5, 0.9]}`` asks for quantile forecasts, as
AutoML's forecasting scoring file (``scoring_file_v_2_0_0.py``, logger
``azureml.automl.core.scoring_script_forecasting_v2``) takes them. That file sets
``model.quantiles = [min(q), 0.5, max(q)]``, calls ``model.forecast_quantiles(data, y_query)`` and
answers ``{"Results": {"forecast": <the 0.5 column>, "prediction_interval": ["[lo, hi]", ...],
"index": [...]}}`` - ``prediction_interval`` one string per row made with ``"[{}, {}]".format(lo,
hi)`` from the lowest and highest requested level. This answer has exactly those three keys with
the same meaning (``forecast`` stays the model's point forecast, which is also what it returns
without quantiles, so the quality gate and clients that ignore intervals see the same numbers),
plus ``"quantiles": {"0.1": [...], "0.5": [...], "0.9": [...]}`` with every requested level, since
AutoML's strings carry only two. Each level must be a number strictly between 0 and 1, at most
``MAX_QUANTILES`` of them, no repeats; anything else is a ``PayloadError`` (400) naming the entry.

Every problem is a ``PayloadError`` whose message says what is wrong and where (``Inputs.data[3].count``),
so the scoring script can answer 400 with it and keep serving. Checks that depend on the model
(gaps in the context, dates beyond its horizon) are the forecaster's and raise
``ForecastInputError``, which the scoring script treats the same way.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import ForecastInputError
from .intervals import MAX_QUANTILES, interval_text

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
    quantiles: tuple[float, ...] = ()
    """``GlobalParameters.quantiles``, checked and in ascending order; empty: a point forecast only."""

    @property
    def future(self) -> np.ndarray:
        return np.isnan(self.y_pred)


def _reject_constant(name: str) -> float:
    raise PayloadError(f"body is not valid JSON: {name} is not a JSON number")


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_date(value: Any, where: str) -> np.datetime64:
    """The row's day. ``YYYY-MM-DD`` (what clients send) is read by numpy - ``pd.Timestamp`` per row
    was a tenth of an online forecast's time (issue 11) -; anything else goes through pandas, which
    reads other spellings and says what is wrong."""
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        try:
            return np.datetime64(value, "D")
        except ValueError:
            pass  # e.g. 2018-02-30: pandas' message below
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
    return np.datetime64(stamp.to_datetime64(), "D")


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


def parse_quantiles(value: Any, *, where: str = "GlobalParameters.quantiles") -> tuple[float, ...]:
    """``GlobalParameters.quantiles`` -> ascending levels; ``PayloadError`` naming the bad entry."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PayloadError(f"{where} must be a list of numbers between 0 and 1 like [0.1, 0.5, 0.9], "
                           f"got {json.dumps(value)[:80]}")
    if not value:
        raise PayloadError(f"{where} is empty; leave it out for a point forecast, or ask for levels like [0.1, 0.9]")
    if len(value) > MAX_QUANTILES:
        raise PayloadError(f"{where} has {len(value)} levels; the limit is {MAX_QUANTILES}")
    levels: list[float] = []
    for i, level in enumerate(value):
        if isinstance(level, bool) or not isinstance(level, int | float):
            raise PayloadError(f"{where}[{i}] must be a number between 0 and 1, got {json.dumps(level)[:40]}")
        if not (math.isfinite(level) and 0.0 < level < 1.0):
            raise PayloadError(f"{where}[{i}] is {level!r}; a quantile level must be strictly between 0 and 1")
        if float(level) in levels:
            raise PayloadError(f"{where}[{i}] repeats the level {level!r}")
        levels.append(float(level))
    return tuple(sorted(levels))


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

    dates: list[np.datetime64] = []
    counts: list[float] = []
    extras: list[dict[str, Any]] = []
    seen: dict[np.datetime64, int] = {}
    for i, row in enumerate(rows):
        where = f"Inputs.data[{i}]"
        if not isinstance(row, dict):
            raise PayloadError(f"{where} must be an object like {{\"date\": \"2018-09-01\"}}, "
                               f"got {json.dumps(row)[:80]}")
        stamp = _parse_date(row.get(TIME_COLUMN), where)
        if stamp in seen:
            raise PayloadError(f"{where}.date {stamp} repeats Inputs.data[{seen[stamp]}]")
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
    columns: dict[str, list[Any]] = {}
    for i, extra in enumerate(extras):  # as pd.DataFrame(extras), without its per-record overhead
        for key, value in extra.items():
            columns.setdefault(key, [np.nan] * len(extras))[i] = np.nan if value is None else value
    X_pred = pd.DataFrame({TIME_COLUMN: np.array(dates, dtype="datetime64[ns]"),
                           **columns}, index=range(len(rows)))
    return ForecastRequest(X_pred=X_pred, y_pred=y, global_parameters=parameters,
                           quantiles=parse_quantiles(parameters.get("quantiles")))


def forecast_response(dates: pd.DatetimeIndex | pd.Series, values: np.ndarray, *,
                      quantiles: tuple[float, ...] = (), quantile_values: np.ndarray | None = None) -> dict[str, Any]:
    """``{"Results": {"forecast": [...], "index": [{"date": ...}]}}`` in date order; with quantiles
    (``quantile_values`` is ``(rows, len(quantiles))``, levels ascending) also AutoML's
    ``prediction_interval`` strings and every level under ``quantiles`` (see the module doc)."""
    index = pd.DatetimeIndex(dates)
    order = np.argsort(index.to_numpy(), kind="stable")
    results: dict[str, Any] = {
        "forecast": _rounded(np.asarray(values, dtype=np.float64)[order]),
        "index": [{"date": index[i].strftime("%Y-%m-%d")} for i in order],
    }
    if quantiles:
        if quantile_values is None or np.shape(quantile_values) != (len(index), len(quantiles)):
            raise ValueError("quantile_values must be (rows, len(quantiles))")
        table = np.asarray(quantile_values, dtype=np.float64)[order]
        columns = {f"{level:g}": _rounded(table[:, j]) for j, level in enumerate(quantiles)}
        low, high = columns[f"{quantiles[0]:g}"], columns[f"{quantiles[-1]:g}"]
        results["prediction_interval"] = [interval_text(lo, hi) for lo, hi in zip(low, high, strict=True)]
        results["quantiles"] = columns
    return {"Results": results}


def _rounded(values: np.ndarray) -> list[float]:
    return [float(round(float(v), 3)) for v in values]
