"""The synthetic series and the data contract (the GitHub DAU file's columns and conventions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.forecasting.data import (
    CALENDAR_FEATURES,
    DAU_COLUMNS,
    HOLIDAY_FEATURES,
    calendar_features,
    load_series_csv,
    series_sha256,
    to_csv_text,
    validate_series,
)
from mlops.forecasting.errors import ForecastInputError
from mlops.forecasting.synthetic import generate_dau, train_holdout_split


def test_same_seed_same_series_and_other_seed_differs() -> None:
    a, b, c = generate_dau(200, seed=3), generate_dau(200, seed=3), generate_dau(200, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not np.array_equal(a["count"], c["count"])
    assert series_sha256(a) == series_sha256(b) != series_sha256(c)


def test_synthetic_has_the_dau_columns_and_conventions() -> None:
    frame = generate_dau(400, start="2016-01-01")
    assert tuple(frame.columns) == DAU_COLUMNS
    assert frame["count"].dtype == np.int64
    for column in ("day_of_week", "month_of_year", "holiday"):
        assert frame[column].dtype == np.float64
    first = frame.iloc[0]  # 2016-01-01 was a Friday and New Year's Day
    assert (first["day_of_week"], first["month_of_year"], first["holiday"]) == (4.0, 0.0, 1.0)
    july4 = frame[frame["date"] == "2016-07-04"].iloc[0]
    assert july4["holiday"] == 1.0 and july4["month_of_year"] == 6.0
    weekday = frame[frame["day_of_week"] < 5]["count"].median()
    weekend = frame[frame["day_of_week"] >= 5]["count"].median()
    assert weekend < 0.75 * weekday  # the DAU weekend dip
    assert frame["count"].iloc[-60:].mean() > frame["count"].iloc[:60].mean()  # growth
    assert to_csv_text(frame.iloc[:1]).splitlines()[1] == f"2016-01-01,{first['count']},4.0,0.0,1.0"


def test_synthetic_matches_the_real_file_format(dau_data: Path) -> None:
    real = pd.read_csv(dau_data / "train.csv")
    ours = pd.read_csv(pd.io.common.StringIO(to_csv_text(generate_dau(30))))
    assert list(ours.columns) == list(real.columns)
    assert dict(ours.dtypes.astype(str)) == dict(real.dtypes.astype(str))
    checked = validate_series(real.head(60))  # recomputed calendar columns equal the file's
    np.testing.assert_array_equal(checked["day_of_week"], real["day_of_week"].head(60))
    np.testing.assert_array_equal(checked["month_of_year"], real["month_of_year"].head(60))


def test_train_holdout_split_is_by_time() -> None:
    frame = generate_dau(100)
    train, holdout = train_holdout_split(frame, 14)
    assert len(train) == 86 and len(holdout) == 14
    assert train["date"].max() < holdout["date"].min()
    with pytest.raises(ValueError):
        train_holdout_split(frame, 100)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "series.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "expected"), [
    ("date,value\n2020-01-01,3\n", "missing required column 'count'"),
    ("day,count\n2020-01-01,3\n", "missing required column 'date'"),
    ("date,count\n2020-13-45,3\n", "row 1: cannot parse '2020-13-45'"),
    ("date,count\n2020-01-01,3\n2020-01-02,abc\n", "column 'count', row 2: 'abc' is not a number"),
    ("date,count\n2020-01-01,-3\n", "row 1: -3.0 is not a finite, non-negative number"),
    ("date,count\n2020-01-01,3\n2020-01-01,4\n", "duplicate date 2020-01-01"),
    ("date,count\n2020-01-01,3\n2020-01-05,4\n", "2020-01-01 is followed by 2020-01-05"),
    ("date,count\n2020-01-01,3\n2020-01-02,\n", "column 'count', row 2: value is missing"),
    ("date,count\n", "no rows"),
])
def test_bad_csv_names_file_column_and_row(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ForecastInputError) as error:
        load_series_csv(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ForecastInputError, match="nope.csv: file not found"):
        load_series_csv(tmp_path / "nope.csv")


def test_short_gaps_are_interpolated_only_when_allowed(tmp_path: Path) -> None:
    path = _write(tmp_path, "date,count\n2011-12-30,100\n2012-01-01,400\n2012-01-02,500\n")
    frame = load_series_csv(path, fill_gaps=3)
    assert list(frame["date"].dt.strftime("%m-%d")) == ["12-30", "12-31", "01-01", "01-02"]
    assert frame["count"].iloc[1] == pytest.approx(np.expm1((np.log1p(100) + np.log1p(400)) / 2))
    assert frame.attrs["imputed_days"] == 1
    assert frame["holiday"].tolist() == [0.0, 0.0, 0.0, 1.0]  # US federal calendar: New Year observed 01-02


def test_calendar_features_are_weekday_season_and_holiday() -> None:
    dates = pd.date_range("2018-12-31", periods=3)
    features = calendar_features(dates)
    assert features.shape == (3, CALENDAR_FEATURES) == (3, 15)
    assert features[0, 0] == 1.0 and features[1, 1] == 1.0  # Monday, Tuesday one-hot
    assert features[:, HOLIDAY_FEATURES][:, 0].tolist() == [0.0, 1.0, 0.0]  # New Year's Day


@pytest.mark.parametrize(("day", "block"), [
    # holiday, eve of one, day after one, year-end weeks (22 Dec .. 2 Jan)
    ("2017-11-23", [1, 0, 0, 0]),   # Thanksgiving
    ("2017-11-22", [0, 1, 0, 0]),
    ("2017-11-24", [0, 0, 1, 0]),   # Black Friday
    ("2017-12-21", [0, 0, 0, 0]),
    ("2017-12-22", [0, 0, 0, 1]),
    ("2017-12-25", [1, 0, 0, 1]),   # Christmas
    ("2017-12-31", [0, 1, 0, 1]),
    ("2018-01-02", [0, 0, 1, 1]),
    ("2018-01-03", [0, 0, 0, 0]),
    ("2018-07-04", [1, 0, 0, 0]),
])
def test_the_holiday_block_marks_holidays_their_neighbours_and_the_year_end(day: str, block: list[int]) -> None:
    features = calendar_features(pd.DatetimeIndex([day]))
    assert features[0, HOLIDAY_FEATURES].tolist() == block


def test_the_real_dau_files_load_and_test_continues_train(dau_data: Path) -> None:
    from mlops.forecasting.train_config import MAX_IMPUTED_GAP

    train = load_series_csv(dau_data / "train.csv", fill_gaps=MAX_IMPUTED_GAP)
    test = load_series_csv(dau_data / "test.csv")
    assert train.attrs["imputed_days"] == 2  # two New Year's Eves are missing from the file
    assert test["date"].iloc[0] - train["date"].iloc[-1] == pd.Timedelta(days=1)
    with pytest.raises(ForecastInputError, match="without gaps"):
        load_series_csv(dau_data / "train.csv")  # strict by default


@pytest.mark.parametrize(("start", "days"), [("1968-12-25", 800), ("1999-12-20", 40), ("2016-02-27", 400),
                                             ("2011-01-01", 3000)])
def test_the_numpy_calendar_matches_pandas_own_accessors(start: str, days: int) -> None:
    """``calendar_features`` works on day numbers (numpy) for speed; pandas' date accessors and its
    holiday calendar are the reference (leap years, days before 1970, the year-end weeks)."""
    from pandas.tseries.holiday import USFederalHolidayCalendar

    from mlops.forecasting.data import day_numbers

    dates = pd.date_range(start, periods=days, freq="D")
    features = calendar_features(dates)
    np.testing.assert_array_equal(features, calendar_features(day_numbers(dates)))
    np.testing.assert_array_equal(np.argmax(features[:, :7], axis=1), dates.day_of_week)
    phase = 2 * np.pi * (dates.day_of_year.to_numpy() - 1) / 365.25
    np.testing.assert_allclose(features[:, 7:9], np.stack([np.sin(phase), np.cos(phase)], axis=1), atol=1e-6)
    holidays = USFederalHolidayCalendar().holidays(start=dates[0] - pd.Timedelta(days=2),
                                                   end=dates[-1] + pd.Timedelta(days=2))
    np.testing.assert_array_equal(features[:, 11], dates.isin(holidays))
    np.testing.assert_array_equal(features[:, 12], (dates + pd.Timedelta(days=1)).isin(holidays))
    np.testing.assert_array_equal(features[:, 13], (dates - pd.Timedelta(days=1)).isin(holidays))
    year_end = ((dates.month == 12) & (dates.day >= 22)) | ((dates.month == 1) & (dates.day <= 2))
    np.testing.assert_array_equal(features[:, 14], year_end)
