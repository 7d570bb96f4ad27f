"""Daily series: loading and validating CSVs, calendar features, and the target scaling.

The data contract is the GitHub DAU file's: ``date,count,day_of_week,month_of_year,holiday``,
one row per day, ``day_of_week`` 0 = Monday and ``month_of_year`` 0 = January (both as floats),
``holiday`` 1.0 on US federal holidays. Only ``date`` and ``count`` are required; the calendar
columns are recomputed from the date (they are redundant), and a missing ``holiday`` column is
filled from the US federal calendar so a user can send just ``date,count``.

The model sees the target as ``log1p(count)`` relative to the mean of the last 7 days of its
context window (a local level), divided by one global scale learned at training time
(``TargetScaling``). Log makes the weekly pattern multiplicative (the weekend dip is a fraction
of the level, whatever the level), and the local level makes the network indifferent to the
series' growth (GitHub's DAU grew 20x over the training period).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ForecastInputError

TIME_COLUMN = "date"
TARGET_COLUMN = "count"
HOLIDAY_COLUMN = "holiday"
DAU_COLUMNS = ("date", "count", "day_of_week", "month_of_year", "holiday")

CALENDAR_FEATURES = 7 + 4 + 4
"""Per-day calendar features: weekday one-hot (7), yearly sin/cos of 2 harmonics (4), and the
holiday block (4): holiday, the eve of a holiday, the day after one, and the year-end weeks."""

HOLIDAY_FEATURES = slice(11, 15)
"""The holiday block's columns in ``calendar_features``. The network also sees it for the day each
horizon's seasonal-naive value comes from (``windows.build_samples``): a naive forecast copied from
a holiday a week earlier is too low, and the network has to know that to correct it."""

YEAR_END = ((12, 22), (1, 2))
"""The year-end weeks (22 December .. 2 January, inclusive): GitHub's DAU drops for the whole
period, not only on the federal holidays inside it (the TCN's errors concentrated there, issue 11)."""

LEVEL_DAYS = 7
"""The local level is the mean of ``log1p(count)`` over the last week of the context window."""


@functools.lru_cache(maxsize=64)
def _federal_holidays(first_year: int, last_year: int) -> pd.DatetimeIndex:
    from pandas.tseries.holiday import USFederalHolidayCalendar

    return USFederalHolidayCalendar().holidays(start=f"{first_year - 1}-12-01", end=f"{last_year + 1}-01-31")


def day_numbers(dates: pd.DatetimeIndex | pd.Series | np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 (int64) of each date, its time of day dropped. The calendar below is
    computed on these with numpy: pandas' per-call overhead (``DatetimeIndex.normalize`` infers a
    frequency, ``isin`` builds a hash table) was most of an online forecast's time (issue 11)."""
    if isinstance(dates, np.ndarray) and dates.dtype.kind == "i":
        return dates.astype(np.int64, copy=False)
    values = np.asarray(pd.DatetimeIndex(dates).values if not isinstance(dates, np.ndarray) else dates,
                        dtype="datetime64[ns]")
    return values.astype("datetime64[D]").astype(np.int64)


@functools.lru_cache(maxsize=64)
def _holiday_days(first_year: int, last_year: int) -> np.ndarray:
    return day_numbers(_federal_holidays(first_year, last_year))


def _years(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def us_federal_holidays(dates: pd.DatetimeIndex | pd.Series | np.ndarray) -> np.ndarray:
    """1.0 where a date is a US federal holiday (observed), else 0.0 - what the DAU file marks.
    ``dates`` may also be ``day_numbers``.

    The calendar of whole years is computed once and cached: pandas' holiday rules are slow, and
    every online request needs the flags of its dates."""
    days = day_numbers(dates)
    if len(days) == 0:
        return np.zeros(0)
    years = _years(np.array([days.min(), days.max()]))
    return np.isin(days, _holiday_days(int(years[0]), int(years[1]))).astype(np.float64)


def calendar_features(dates: pd.DatetimeIndex | pd.Series | np.ndarray, holiday: np.ndarray | None = None
                      ) -> np.ndarray:
    """``(n, CALENDAR_FEATURES)`` float32 features that are known in advance for any date (``dates``
    may also be ``day_numbers``)."""
    days = day_numbers(dates)
    n = len(days)
    stamp = days.astype("datetime64[D]")
    month_start = stamp.astype("datetime64[M]")
    weekday = np.zeros((n, 7), dtype=np.float32)
    weekday[np.arange(n), (days + 3) % 7] = 1.0  # 1970-01-01 was a Thursday; Monday = 0
    day_of_year = (stamp - stamp.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) + 1
    phase = 2.0 * np.pi * (day_of_year - 1) / 365.25
    yearly = np.stack([np.sin(phase), np.cos(phase), np.sin(2 * phase), np.cos(2 * phase)], axis=1)
    flags = us_federal_holidays(days) if holiday is None else np.asarray(holiday, dtype=np.float64)
    eve = us_federal_holidays(days + 1)
    after = us_federal_holidays(days - 1)
    (first_month, first_day), (last_month, last_day) = YEAR_END
    month = month_start.astype(np.int64) % 12 + 1
    dom = (stamp - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    year_end = (((month == first_month) & (dom >= first_day)) | ((month == last_month) & (dom <= last_day)))
    block = np.stack([flags, eve, after, year_end.astype(np.float64)], axis=1).astype(np.float32)
    return np.concatenate([weekday, yearly.astype(np.float32), block], axis=1)


@dataclass(frozen=True)
class TargetScaling:
    """``z = (log1p(count) - level) / scale`` with ``level`` the mean over the context's last week."""

    scale: float

    def to_dict(self) -> dict[str, float | str]:
        return {"transform": "log1p-local-level", "scale": float(self.scale), "level_days": LEVEL_DAYS}

    @classmethod
    def from_dict(cls, data: dict) -> TargetScaling:
        return cls(scale=float(data["scale"]))


def _where(source: str) -> str:
    return f"{source}: " if source else ""


def validate_series(frame: pd.DataFrame, *, source: str = "", require_contiguous: bool = True,
                    allow_missing_target: bool = False, fill_gaps: int = 0) -> pd.DataFrame:
    """Check a daily series and return it clean: ``date`` (datetime64, sorted), ``count`` (float),
    ``holiday`` (float), plus ``day_of_week``/``month_of_year`` recomputed like the DAU file.

    With ``require_contiguous``, a gap of up to ``fill_gaps`` missing days is interpolated (the
    number is in ``result.attrs["imputed_days"]``); a longer one is an error. Raises
    ``ForecastInputError`` naming ``source`` (e.g. the file), the column and the row.
    """
    where = _where(source)
    for column in (TIME_COLUMN, TARGET_COLUMN):
        if column not in frame.columns:
            raise ForecastInputError(f"{where}missing required column {column!r} "
                                     f"(found columns: {', '.join(map(str, frame.columns)) or 'none'})")
    if len(frame) == 0:
        raise ForecastInputError(f"{where}no rows")
    dates = pd.to_datetime(frame[TIME_COLUMN], errors="coerce")
    bad = dates.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise ForecastInputError(f"{where}column 'date', row {row + 1}: cannot parse "
                                 f"{frame[TIME_COLUMN].iloc[row]!r} as a date (expected YYYY-MM-DD)")
    if (dates != dates.dt.normalize()).any():
        row = int(np.argmax((dates != dates.dt.normalize()).to_numpy()))
        raise ForecastInputError(f"{where}column 'date', row {row + 1}: {frame[TIME_COLUMN].iloc[row]!r} "
                                 "has a time of day; the series is daily")
    counts = pd.to_numeric(frame[TARGET_COLUMN], errors="coerce")
    raw_missing = frame[TARGET_COLUMN].isna().to_numpy()
    not_numeric = counts.isna().to_numpy() & ~raw_missing
    if not_numeric.any():
        row = int(np.argmax(not_numeric))
        raise ForecastInputError(f"{where}column 'count', row {row + 1}: "
                                 f"{frame[TARGET_COLUMN].iloc[row]!r} is not a number")
    values = counts.to_numpy(dtype=np.float64)
    if raw_missing.any() and not allow_missing_target:
        row = int(np.argmax(raw_missing))
        raise ForecastInputError(f"{where}column 'count', row {row + 1}: value is missing")
    finite = np.isfinite(values) | np.isnan(values)
    negative = np.nan_to_num(values, nan=0.0) < 0
    if (~finite).any() or negative.any():
        row = int(np.argmax(~finite | negative))
        raise ForecastInputError(f"{where}column 'count', row {row + 1}: {float(values[row])!r} is not a finite, "
                                 "non-negative number")
    duplicated = dates.duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        raise ForecastInputError(f"{where}column 'date', row {row + 1}: duplicate date "
                                 f"{dates.iloc[row].date().isoformat()}")
    order = np.argsort(dates.to_numpy(), kind="stable")
    dates = dates.iloc[order].reset_index(drop=True)
    values = values[order]
    if require_contiguous and len(dates) > 1:
        steps = dates.diff().dt.days.to_numpy()[1:]
        too_long = steps > fill_gaps + 1
        if too_long.any():
            at = int(np.argmax(too_long)) + 1
            allowed = f" (gaps of up to {fill_gaps} missing days are interpolated)" if fill_gaps else ""
            raise ForecastInputError(
                f"{where}column 'date': the series must be daily without gaps{allowed}, but "
                f"{dates.iloc[at - 1].date().isoformat()} is followed by {dates.iloc[at].date().isoformat()}")
    if HOLIDAY_COLUMN in frame.columns:
        raw = pd.to_numeric(frame[HOLIDAY_COLUMN], errors="coerce").to_numpy(dtype=np.float64)[order]
        derived = us_federal_holidays(dates)
        holiday = np.where(np.isnan(raw), derived, (raw > 0).astype(np.float64))
    else:
        holiday = us_federal_holidays(dates)
    clean = pd.DataFrame({TARGET_COLUMN: values, HOLIDAY_COLUMN: holiday}, index=pd.DatetimeIndex(dates))
    imputed = 0
    if require_contiguous and len(clean) > 1:
        full = pd.date_range(clean.index[0], clean.index[-1], freq="D")
        imputed = len(full) - len(clean)
        if imputed:
            # A few missing days (the DAU file lacks two New Year's Eves) are interpolated in log
            # space, the holiday flag from the US calendar; the count is reported in ``attrs``.
            clean = clean.reindex(full)
            clean[TARGET_COLUMN] = np.expm1(np.log1p(clean[TARGET_COLUMN]).interpolate())
            clean[HOLIDAY_COLUMN] = clean[HOLIDAY_COLUMN].fillna(pd.Series(us_federal_holidays(full), index=full))
    out = with_calendar_columns(pd.DataFrame({TIME_COLUMN: clean.index, TARGET_COLUMN: clean[TARGET_COLUMN].to_numpy(),
                                              HOLIDAY_COLUMN: clean[HOLIDAY_COLUMN].to_numpy()}))
    out.attrs["imputed_days"] = int(imputed)
    return out


def with_calendar_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The DAU file's columns, in its order and dtypes (weekday 0 = Monday, month 0 = January, floats)."""
    dates = pd.DatetimeIndex(frame[TIME_COLUMN])
    out = pd.DataFrame({
        TIME_COLUMN: dates,
        TARGET_COLUMN: frame[TARGET_COLUMN].to_numpy(),
        "day_of_week": dates.day_of_week.astype(np.float64),
        "month_of_year": (dates.month - 1).astype(np.float64),
        HOLIDAY_COLUMN: (frame[HOLIDAY_COLUMN].to_numpy(dtype=np.float64) if HOLIDAY_COLUMN in frame.columns
                         else us_federal_holidays(dates)),
    })
    return out


def load_series_csv(path: str | Path, *, require_contiguous: bool = True, fill_gaps: int = 0) -> pd.DataFrame:
    """Read and validate a DAU-style CSV. Every problem is a ``ForecastInputError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ForecastInputError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        raise ForecastInputError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from None
    return validate_series(frame, source=str(path), require_contiguous=require_contiguous, fill_gaps=fill_gaps)


def to_csv_text(frame: pd.DataFrame) -> str:
    """The series as the DAU file writes it (``2017-06-04,104663,6.0,5.0,0.0``)."""
    out = with_calendar_columns(frame)
    out[TIME_COLUMN] = pd.DatetimeIndex(out[TIME_COLUMN]).strftime("%Y-%m-%d")
    counts = out[TARGET_COLUMN].to_numpy(dtype=np.float64)
    if np.all(np.isfinite(counts)) and np.all(counts == np.round(counts)):
        out[TARGET_COLUMN] = counts.astype(np.int64)
    return out.to_csv(index=False, lineterminator="\n")


def series_sha256(frame: pd.DataFrame) -> str:
    """A content hash of the series (date, count, holiday), whatever file or generator it came from."""
    return hashlib.sha256(to_csv_text(frame).encode()).hexdigest()
