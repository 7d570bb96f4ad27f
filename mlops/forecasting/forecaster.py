"""An AutoML-compatible forecaster over ``model.pt`` (``loading.load_forecaster`` loads either kind of model).

The scoring scripts talk to a forecaster through the surface that Azure AutoML's
``ForecastingPipelineWrapper`` (its TCNForecaster included) offers, so one script serves both:

* ``forecast(X_pred, y_pred=None) -> (y, X_trans)``: ``X_pred`` has the time column; ``y_pred``
  holds actuals for the context rows and NaN for the rows to forecast (``None``: forecast every
  row). ``y`` is ``y_pred`` with the NaN rows filled by forecasts, in ``X_pred``'s order.
* ``rolling_forecast(X, y, step=1) -> DataFrame``: AutoML's semantics - the first origin is the
  end of the model's known history (the stored training tail when ``X`` continues it); at every
  origin the next ``max_horizon`` days are forecast from the actuals up to the origin; the
  origin advances by ``step`` while its horizon ends before the last date of ``X``. Columns:
  ``time_column_name``, ``_automl_forecast_origin``, ``_automl_forecast_y``, ``_automl_actual_y``,
  sorted by origin then date. All origins are scored in one batched tensor pass. When ``X`` does
  not continue the stored history, its own first ``MIN_CONTEXT_DAYS`` days are the first context.
* ``forecast_quantiles(X_pred, y_pred=None) -> DataFrame``: AutoML's quantile forecast for the
  levels in the ``quantiles`` attribute (AutoML's scoring file sets ``model.quantiles`` and then
  calls it): the time column, then one column per level named by the float level, one row per row
  of ``X_pred`` (NaN for the context rows). The levels are conformal quantiles of the model's
  stored calibration residuals (``intervals``) scaled by the model's error level at the origin
  (``error_level``); ``quantiles=`` passes the levels per call instead;
* ``rolling_forecast_with_quantiles(X, y, levels, step=1, adapt_rate=ADAPT_RATE)`` (this
  project's, for the batch script): ``rolling_forecast`` plus one column per level; along ``X``
  each level also tracks its own hits (``adaptive``) - an online request is one origin and has no
  outcomes of its own to learn from;
* attributes ``time_column_name``, ``forecast_origin_column_name``, ``forecast_column_name``,
  ``actual_column_name``, ``max_horizon``, ``quantiles``.

Where AutoML would raise on bad input this raises ``ForecastInputError`` with what and where
(a gap the model cannot bridge, a date beyond the horizon, a duplicate date, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .adaptive import ADAPT_RATE, check_rate, tracked_log_quantiles
from .artifact import MODEL_FILE, check_artifact, stored_calibration
from .data import (
    HOLIDAY_COLUMN,
    TIME_COLUMN,
    TargetScaling,
    calendar_features,
    day_numbers,
    us_federal_holidays,
)
from .error_level import level_or_reference, recent_error_levels, residual_matrix
from .errors import ForecastInputError
from .intervals import quantile_forecasts
from .model import TCN, TCNConfig
from .windows import build_samples, to_counts

_DAY = pd.Timedelta(days=1)
MIN_CONTEXT_DAYS = 14
"""Fewest consecutive actuals a forecast needs. With fewer than the network's window, the missing
earlier days are filled by repeating the earliest known weeks (``pad_weekly``)."""


def pad_weekly(frame: pd.DataFrame, days: int) -> pd.DataFrame:
    """Prepend ``days`` days to a contiguous daily frame (``count``, ``holiday`` by date), each a copy
    of the day one week later: the weekly pattern and level carry back, no holiday is invented."""
    if days <= 0:
        return frame
    counts = np.concatenate([np.empty(days), frame["count"].to_numpy(dtype=np.float64)])
    for i in range(days - 1, -1, -1):
        counts[i] = counts[i + 7]
    index = pd.date_range(frame.index[0] - days * _DAY, periods=days, freq="D").append(frame.index)
    holiday = np.concatenate([np.zeros(days), frame[HOLIDAY_COLUMN].to_numpy(dtype=np.float64)])
    return pd.DataFrame({"count": counts, HOLIDAY_COLUMN: holiday}, index=index)


def _iso(day: pd.Timestamp) -> str:
    return pd.Timestamp(day).strftime("%Y-%m-%d")


def _parse_dates(frame: pd.DataFrame, column: str, what: str) -> pd.DatetimeIndex:
    if not isinstance(frame, pd.DataFrame):
        raise ForecastInputError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    if column not in frame.columns:
        raise ForecastInputError(f"{what} has no time column {column!r}")
    dates = pd.to_datetime(frame[column], errors="coerce")
    if dates.isna().any():
        row = int(np.argmax(dates.isna().to_numpy()))
        raise ForecastInputError(f"{what}, row {row + 1}: cannot parse {frame[column].iloc[row]!r} as a date")
    index = pd.DatetimeIndex(dates)
    stamps = index.values
    days = stamps.astype("datetime64[D]")
    partial = stamps != days
    if partial.any():
        row = int(np.argmax(partial))
        raise ForecastInputError(f"{what}, row {row + 1}: {frame[column].iloc[row]!r} is not a whole day")
    if len(np.unique(days)) != len(days):
        row = int(np.argmax(index.duplicated()))
        raise ForecastInputError(f"{what}, row {row + 1}: duplicate date {_iso(index[row])}")
    return index


def _as_values(y: Any, n: int, what: str) -> np.ndarray:
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ForecastInputError(f"{what} must have one column, got {y.shape[1]}")
        y = y.iloc[:, 0]
    try:
        values = np.asarray(y, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ForecastInputError(f"{what} must be numeric") from None
    if len(values) != n:
        raise ForecastInputError(f"{what} has {len(values)} values for {n} rows")
    bad = ~np.isnan(values) & (~np.isfinite(values) | (values < 0))
    if bad.any():
        row = int(np.argmax(bad))
        raise ForecastInputError(f"{what}, row {row + 1}: {float(values[row])!r} is not a finite, non-negative count")
    return values


def _holidays(frame: pd.DataFrame, dates: pd.DatetimeIndex) -> np.ndarray:
    """The frame's ``holiday`` column where given, else the US federal calendar."""
    derived = us_federal_holidays(dates)
    if HOLIDAY_COLUMN not in frame.columns:
        return derived
    given = pd.to_numeric(frame[HOLIDAY_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
    return np.where(np.isnan(given), derived, (given > 0).astype(np.float64))


class TCNForecaster:
    """The TCN of a ``model.pt`` behind AutoML's forecasting interface."""

    time_column_name = TIME_COLUMN
    target_column_name = "count"
    forecast_origin_column_name = "_automl_forecast_origin"
    forecast_column_name = "_automl_forecast_y"
    actual_column_name = "_automl_actual_y"

    def __init__(self, artifact: dict[str, Any], *, source: str = MODEL_FILE) -> None:
        artifact = check_artifact(artifact, source=source)
        self.config = TCNConfig.from_dict(artifact["config"])
        self.scaling = TargetScaling.from_dict(artifact["scaling"])
        self.metadata: dict[str, Any] = dict(artifact["metadata"])
        self.network = TCN(self.config)
        try:
            self.network.load_state_dict(artifact["state_dict"])
        except RuntimeError as error:
            raise ForecastInputError(f"{source}: weights do not match the model config ({error})") from None
        self.network.eval()
        self.calibration = stored_calibration(artifact)
        self.quantiles: list[float] = [0.5]
        """The levels ``forecast_quantiles`` returns (AutoML's scoring file assigns this attribute)."""
        context = artifact["context"]
        self._history = pd.DataFrame({
            "count": np.asarray(context["count"], dtype=np.float64),
            HOLIDAY_COLUMN: np.asarray(context["holiday"], dtype=np.float64),
        }, index=pd.DatetimeIndex(pd.to_datetime(context["dates"])))
        self._history_days = day_numbers(self._history.index)
        self._history_counts = self._history["count"].to_numpy()
        self._history_holiday = self._history[HOLIDAY_COLUMN].to_numpy()

    # -- AutoML's attributes -------------------------------------------------------------------

    @property
    def max_horizon(self) -> int:
        return self.config.horizon

    @property
    def window(self) -> int:
        """Days of consecutive actuals the network reads before each origin."""
        return self.config.window

    @property
    def history_end(self) -> pd.Timestamp:
        """The last day of the stored training tail: the default forecast origin."""
        return self._history.index[-1]

    @property
    def history(self) -> pd.DataFrame:
        """The stored training tail (``count``, ``holiday`` by date)."""
        return self._history.copy()

    # -- scoring -------------------------------------------------------------------------------

    def _score(self, days: np.ndarray, counts: np.ndarray, holiday: np.ndarray,
               origins: np.ndarray) -> np.ndarray:
        """Forecast counts ``(len(origins), horizon)`` for origin positions into a contiguous daily
        series (``days``: ``data.day_numbers``; ``counts`` only read up to each origin). Batched:
        one tensor pass for all origins."""
        horizon = self.max_horizon
        need = int(origins.max()) + horizon + 1 if len(origins) else len(days)
        if need > len(days):
            extra = days[-1] + 1 + np.arange(need - len(days))
            days = np.concatenate([days, extra])
            holiday = np.concatenate([holiday, us_federal_holidays(extra)])
            counts = np.concatenate([counts, np.full(len(extra), np.nan)])
        calendar = calendar_features(days, holiday)
        samples = build_samples(np.log1p(counts), calendar, origins, horizon=horizon, scale=self.scaling.scale,
                                min_origin=self.window - 1)
        with torch.inference_mode():
            z = self.network(torch.from_numpy(samples.sequence), torch.from_numpy(samples.origins),
                             torch.from_numpy(samples.future), torch.from_numpy(samples.naive)).numpy()
        return to_counts(z, samples.level, self.scaling.scale)

    def forecast(self, X_pred: pd.DataFrame, y_pred: Any = None) -> tuple[np.ndarray, pd.DataFrame]:
        """Forecast the rows of ``X_pred`` whose ``y_pred`` is NaN (all rows when ``y_pred`` is None).

        Rows with a value are recent actuals: the origin is the latest of them (or the end of the
        stored training tail when there are none), and they override the stored tail. At least
        ``MIN_CONTEXT_DAYS`` consecutive days up to the origin must be known (the network's full
        ``window`` ideally; fewer are padded by ``pad_weekly``), and every row to forecast must lie
        within ``max_horizon`` days after the origin. Unlike AutoML, actuals older than the
        training data are accepted (a back-test), since the context comes from the request.
        """
        dates, values, known = self._request(X_pred, y_pred)
        lead, origin, predicted, _ = self._forecast_rows(X_pred, dates, values, known)
        future = ~known
        result = values.copy()
        result[future] = predicted[lead[future] - 1]
        origins = np.full(len(dates), np.datetime64("NaT"), dtype="datetime64[ns]")
        origins[future] = origin.to_datetime64()
        X_trans = pd.DataFrame({
            self.time_column_name: dates,
            self.forecast_origin_column_name: origins,
            self.forecast_column_name: np.where(known, np.nan, result),
            "horizon": lead,
        }, index=X_pred.index)
        return result, X_trans

    def _request(self, X_pred: pd.DataFrame, y_pred: Any) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
        """``forecast``'s arguments checked: the rows' dates, values (NaN: to forecast), known mask."""
        dates = _parse_dates(X_pred, self.time_column_name, "X_pred")
        n = len(dates)
        if n == 0:
            raise ForecastInputError("X_pred has no rows: nothing to forecast")
        values = np.full(n, np.nan) if y_pred is None else _as_values(y_pred, n, "y_pred")
        known = ~np.isnan(values)
        if known.all():
            raise ForecastInputError("nothing to forecast: every row has an actual value "
                                     "(leave the value out, or null, for the dates to forecast)")
        return dates, values, known

    def _forecast_rows(self, X_pred: pd.DataFrame, dates: pd.DatetimeIndex, values: np.ndarray,
                       known: np.ndarray, with_level: bool = False
                       ) -> tuple[np.ndarray, pd.Timestamp, np.ndarray, float]:
        """``forecast``'s checks and its one network pass, on day numbers (numpy, no per-request
        pandas frames: they cost more than the network). Returns each row's horizon (0 for the
        actuals), the origin, the ``max_horizon`` forecasts from it, and - ``with_level`` and a
        scaled calibration - the model's error level at the origin (``error_level``: the same pass
        also scores the ``level_origins`` origins before it; 1.0 otherwise)."""
        day = day_numbers(dates)
        holiday = _holidays(X_pred, dates)
        end = int(self._history_days[-1])
        origin_day = int(day[known].max()) if known.any() else end
        origin = pd.Timestamp(np.datetime64(origin_day, "D"))
        future = np.flatnonzero(~known)
        lead = np.zeros(len(day), dtype=np.int64)
        lead[future] = day[future] - origin_day
        early = lead[future] < 1
        if early.any():
            i = future[int(np.argmax(early))]
            raise ForecastInputError(
                f"row {i + 1} ({_iso(dates[i])}) has no value to forecast but is not after the last actual "
                f"({_iso(origin)}); the model forecasts forward from the latest actual")
        late = lead[future] > self.max_horizon
        if late.any():
            i = future[int(np.argmax(late))]
            raise ForecastInputError(
                f"row {i + 1} ({_iso(dates[i])}) is {int(lead[i])} days after the last actual "
                f"({_iso(origin)}), beyond the model's horizon of {self.max_horizon} days; send more recent "
                "actuals as rows with a value")

        horizon = self.max_horizon
        back = self.calibration.level_origins if with_level else 0
        window = self.window + back  # the network's window, and the origins before for the level
        first = origin_day - window + 1
        counts = np.full(window + horizon, np.nan)
        holidays = np.zeros(window + horizon)
        # the stored history up to the origin, then the request's actuals over it
        for source_days, source_counts, source_holiday in (
                (self._history_days, self._history_counts, self._history_holiday),
                (day[known], values[known], holiday[known])):
            pos = source_days - first
            inside = (pos >= 0) & (pos < window)
            counts[pos[inside]] = source_counts[inside]
            holidays[pos[inside]] = source_holiday[inside]
        missing = np.flatnonzero(np.isnan(counts[:window]))
        run = window if not missing.size else window - 1 - int(missing[-1])
        if run < MIN_CONTEXT_DAYS:
            need = np.arange(window - MIN_CONTEXT_DAYS, window)
            gaps = need[np.isnan(counts[need])] + first
            raise ForecastInputError(
                f"the model needs actuals for at least the {MIN_CONTEXT_DAYS} consecutive days up to "
                f"{_iso(origin)} (ideally {window}), but {len(gaps)} of those are missing "
                f"({_iso(np.datetime64(int(gaps[0]), 'D'))} .. {_iso(np.datetime64(int(gaps[-1]), 'D'))}); its "
                f"stored history ends {_iso(self.history_end)}, so send the days in between as rows with a value")
        for i in range(window - run - 1, -1, -1):  # pad_weekly: the earliest known weeks carry back
            counts[i], holidays[i] = counts[i + 7], 0.0
        ahead = origin_day + 1 + np.arange(horizon)
        ahead_holiday = us_federal_holidays(ahead)
        ahead_holiday[lead[future] - 1] = holiday[future]
        holidays[window:] = ahead_holiday
        counts[window:] = np.nan
        days = first + np.arange(window + horizon)
        if not back:
            return lead, origin, self._score(days, counts, holidays, np.array([window - 1]))[0], 1.0
        level = np.nan
        if run >= back + MIN_CONTEXT_DAYS:  # each earlier origin has the context a forecast needs
            origins = window - 1 - back + np.arange(back + 1)
            predicted = self._score(days, counts, holidays, origins)
            level = recent_error_levels(residual_matrix(np.log1p(counts), origins, predicted), back)[-1]
            predicted = predicted[-1]
        else:
            predicted = self._score(days, counts, holidays, np.array([window - 1]))[0]
        return lead, origin, predicted, float(level_or_reference(level, self.calibration.reference_level))

    def quantiles_of(self, predicted: np.ndarray, horizons: np.ndarray, levels: Any,
                     error_level: np.ndarray | float = 1.0) -> np.ndarray:
        """``(n, len(levels))`` quantile forecasts around point forecasts made ``horizons`` days ahead,
        from origins where the model's error level was ``error_level`` (read only by a scaled
        calibration)."""
        scale = error_level if self.calibration.level_origins else 1.0
        try:
            return quantile_forecasts(predicted, horizons, self.calibration.residuals, [float(q) for q in levels],
                                      scale=scale)
        except (TypeError, ValueError) as error:
            raise ForecastInputError(f"quantiles {levels!r}: {error}") from None

    def forecast_quantiles(self, X_pred: pd.DataFrame, y_pred: Any = None, *,
                           quantiles: Any = None) -> pd.DataFrame:
        """AutoML's ``forecast_quantiles`` (see the module doc): the time column and one column per level."""
        levels = self.quantiles if quantiles is None else quantiles
        return self.forecast_with_quantiles(X_pred, y_pred, levels)[1]

    def forecast_with_quantiles(self, X_pred: pd.DataFrame, y_pred: Any, levels: Any
                                ) -> tuple[np.ndarray, pd.DataFrame]:
        """``forecast``'s values and ``forecast_quantiles``' frame from one pass of the network."""
        levels = [float(q) for q in levels]
        values, table, dates = self.values_and_quantiles(X_pred, y_pred, levels)
        out = pd.DataFrame({self.time_column_name: dates}, index=X_pred.index)
        for j, level in enumerate(levels):
            out[level] = table[:, j]
        return values, out

    def values_and_quantiles(self, X_pred: pd.DataFrame, y_pred: Any, levels: Sequence[float]
                             ) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
        """``forecast``'s values, the ``(rows, len(levels))`` quantiles (NaN for the actuals) and the
        rows' dates: arrays only, for the scoring script (a frame per request costs ~1 ms)."""
        dates, values, known = self._request(X_pred, y_pred)
        lead, _, predicted, level = self._forecast_rows(X_pred, dates, values, known, with_level=True)
        future = ~known
        result = values.copy()
        result[future] = predicted[lead[future] - 1]
        table = np.full((len(values), len(levels)), np.nan)
        table[future] = self.quantiles_of(result[future], lead[future], levels, level)
        return result, table, dates

    def rolling_forecast(self, X: pd.DataFrame, y: Any, step: int = 1) -> pd.DataFrame:
        """Rolling-origin forecasts over ``X`` with its actuals ``y`` (AutoML's semantics, see module doc)."""
        return self._rolling(X, y, step, ())

    def rolling_forecast_with_quantiles(self, X: pd.DataFrame, y: Any, levels: Sequence[float],
                                        step: int = 1, adapt_rate: float = ADAPT_RATE) -> pd.DataFrame:
        """``rolling_forecast`` plus one column per quantile level (named by the float level, as
        ``forecast_quantiles`` names them): each origin's quantiles scaled by the model's error level
        at that origin, from the same pass, and tracking their own hits along ``X`` (``adaptive``:
        every day's forecast feeds back once its target is known, whatever ``step``; ``adapt_rate``
        0 turns that off). The batch scoring script's interval columns."""
        levels = [float(q) for q in levels]
        if not levels:
            raise ForecastInputError("quantiles: at least one level is needed")
        try:
            adapt_rate = check_rate(adapt_rate)
        except ValueError as error:
            raise ForecastInputError(str(error)) from None
        return self._rolling(X, y, step, levels, adapt_rate)

    def _rolling(self, X: pd.DataFrame, y: Any, step: int, levels: Sequence[float],
                 adapt_rate: float = 0.0) -> pd.DataFrame:
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 1:
            raise ForecastInputError(f"step must be a positive integer, got {step!r}")
        dates = _parse_dates(X, self.time_column_name, "X")
        values = _as_values(y, len(dates), "y")
        if np.isnan(values).any():
            row = int(np.argmax(np.isnan(values)))
            raise ForecastInputError(f"y, row {row + 1}: rolling_forecast needs the actual value of every row")
        if len(dates) == 0:
            raise ForecastInputError("X has no rows")
        order = np.argsort(dates.to_numpy(), kind="stable")
        dates, values = dates[order], values[order]
        holiday = _holidays(X.iloc[order], dates)
        steps = np.diff(dates.to_numpy()).astype("timedelta64[D]").astype(np.int64)
        if (steps != 1).any():
            at = int(np.argmax(steps != 1))
            raise ForecastInputError(f"X must be daily without gaps, but {_iso(dates[at])} is followed by "
                                     f"{_iso(dates[at + 1])}")
        given = pd.DataFrame({"count": values, HOLIDAY_COLUMN: holiday}, index=dates)
        start = dates[0]
        if self._history.index[0] <= start <= self.history_end + _DAY:
            series = pd.concat([self._history[self._history.index < start], given])
        else:  # X does not continue the stored history: its own first days are the context
            series = given
        first = max(series.index.get_loc(start) - 1, MIN_CONTEXT_DAYS - 1)
        if first >= len(series) - 1:
            raise ForecastInputError(
                f"X has {len(given)} rows starting {_iso(start)}, which does not continue the model's stored "
                f"history (ending {_iso(self.history_end)}); it then needs at least {MIN_CONTEXT_DAYS + 1} "
                "rows (the first ones are the context of the first forecast)")
        back = self.calibration.level_origins if levels else 0
        short = max(0, self.window - 1 - (first - back))
        series, first = pad_weekly(series, short), first + short
        known_from = short  # the first real day: the padding before it is not
        end = len(series) - 1
        horizon = self.max_horizon
        last_k = max(0, -(-(end - horizon - first) // step))
        origins = first + step * np.arange(last_k + 1)
        # with quantiles every day is scored: the levels and the tracked hits read each day's forecast
        scored = np.arange(first - back, origins[-1] + 1) if levels else origins
        predicted = self._score(day_numbers(series.index), series["count"].to_numpy(),
                                series[HOLIDAY_COLUMN].to_numpy(), scored)
        if levels:
            log_series = np.log1p(series["count"].to_numpy())
            error_level = np.ones(len(scored))
            if back:
                error_level = recent_error_levels(residual_matrix(log_series, scored, predicted), back)
                error_level[scored < known_from + back + MIN_CONTEXT_DAYS - 1] = np.nan  # padded context
                error_level = level_or_reference(error_level, self.calibration.reference_level)
            days = slice(back, None)  # scored[back:]: every day from the first origin
            try:
                tracked = tracked_log_quantiles(np.log1p(np.clip(predicted[days], 0.0, None)), error_level[days],
                                                self.calibration.residuals, levels, scored[days], log_series,
                                                adapt_rate)
            except (TypeError, ValueError) as error:
                raise ForecastInputError(f"quantiles {list(levels)!r}: {error}") from None
            at = origins - first
            predicted, tracked = predicted[days][at], tracked[at]
        target = origins[:, None] + np.arange(1, horizon + 1)[None, :]
        keep = target <= end
        origin_pos = np.broadcast_to(origins[:, None], target.shape)[keep]
        target_pos = target[keep]
        index = pd.DatetimeIndex(series.index)
        out = pd.DataFrame({
            self.time_column_name: index[target_pos],
            self.forecast_origin_column_name: index[origin_pos],
            self.forecast_column_name: predicted[keep],
            self.actual_column_name: series["count"].to_numpy()[target_pos],
        })
        if levels:
            table = np.clip(np.expm1(tracked[keep]), 0.0, None)  # (rows, levels)
            for j, level in enumerate(levels):
                out[level] = table[:, j]
        return out
