"""The online payload parser: every malformed request is a PayloadError naming the field."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops.forecasting.payload import MAX_BODY_BYTES, PayloadError, forecast_response, parse_forecast_request


def test_valid_request_splits_context_and_future() -> None:
    body = json.dumps({"Inputs": {"data": [
        {"date": "2020-01-02", "count": 5},
        {"date": "2020-01-01", "count": 4.5, "holiday": 1},
        {"date": "2020-01-03"},
        {"date": "2020-01-04", "count": None},
    ]}, "GlobalParameters": {"quantiles": [0.5]}})
    request = parse_forecast_request(body, max_horizon=14)
    assert request.X_pred["date"].dt.strftime("%m-%d").tolist() == ["01-02", "01-01", "01-03", "01-04"]
    np.testing.assert_array_equal(request.y_pred, [5.0, 4.5, np.nan, np.nan])
    assert request.future.tolist() == [False, False, True, True]
    assert request.global_parameters == {"quantiles": [0.5]}


BAD = [
    (b"", "body is empty"),
    (b"   ", "body is empty"),
    (b"\xff\xfe", "not UTF-8"),
    (b"{", "not valid JSON"),
    (b'{"Inputs": {"data": [{"date": "2020-01-01", "count": NaN}]}}', "NaN is not a JSON number"),
    (b"[]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b"{}", "no 'Inputs' key"),
    (b'{"Inputs": []}', "Inputs must be an object"),
    (b'{"Inputs": {}}', "Inputs has no 'data' key"),
    (b'{"Inputs": {"data": {}}}', "Inputs.data must be a list"),
    (b'{"Inputs": {"data": []}}', "Inputs.data is empty"),
    (b'{"Inputs": {"data": [1]}}', "Inputs.data[0] must be an object"),
    (b'{"Inputs": {"data": [{"count": 1}]}}', "Inputs.data[0].date is missing"),
    (b'{"Inputs": {"data": [{"date": 20200101}]}}', "Inputs.data[0].date must be a string"),
    (b'{"Inputs": {"data": [{"date": "tomorrow-ish"}]}}', "cannot parse 'tomorrow-ish'"),
    (b'{"Inputs": {"data": [{"date": "2020-01-01T10:30:00"}]}}', "has a time of day"),
    (b'{"Inputs": {"data": [{"date": "2020-01-01", "count": "many"}, {"date": "2020-01-02"}]}}',
     "Inputs.data[0].count must be a number"),
    (b'{"Inputs": {"data": [{"date": "2020-01-01", "count": true}, {"date": "2020-01-02"}]}}',
     "Inputs.data[0].count must be a number"),
    (b'{"Inputs": {"data": [{"date": "2020-01-01", "count": -5}, {"date": "2020-01-02"}]}}',
     "count must be a finite, non-negative number"),
    (b'{"Inputs": {"data": [{"date": "2020-01-01", "count": 1e400}, {"date": "2020-01-02"}]}}',
     "count must be a finite, non-negative number"),
    (b'{"Inputs": {"data": [{"date": "2020-01-02"}, {"date": "2020-01-02"}]}}', "repeats Inputs.data[0]"),
    (b'{"Inputs": {"data": [{"date": "2020-01-01", "count": 3}]}}', "nothing to forecast"),
    (b'{"Inputs": {"data": [{"date": "2020-01-01", "holiday": "yes"}]}}', "holiday must be 0 or 1"),
    (b'{"Inputs": {"data": [{"date": "2020-01-01"}]}, "GlobalParameters": 3}', "GlobalParameters must be an object"),
    (json.dumps({"Inputs": {"data": [{"date": f"2020-01-{d:02d}"} for d in range(1, 17)]}}).encode(),
     "16 rows to forecast, but the model forecasts at most 14 days ahead"),
    (b" " * (MAX_BODY_BYTES + 1), f"the limit is {MAX_BODY_BYTES}"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
]


@pytest.mark.parametrize(("body", "message"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_malformed_requests_are_payload_errors(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError) as error:
        parse_forecast_request(body, max_horizon=14)
    assert message in str(error.value)


def test_response_is_in_date_order() -> None:
    import pandas as pd

    out = forecast_response(pd.DatetimeIndex(["2020-01-03", "2020-01-02"]), np.array([3.0, 2.0]))
    assert out == {"Results": {"forecast": [2.0, 3.0], "index": [{"date": "2020-01-02"}, {"date": "2020-01-03"}]}}


QUANTILE_BAD = [
    ("0.1,0.9", "GlobalParameters.quantiles must be a list"),
    ({"low": 0.1}, "GlobalParameters.quantiles must be a list"),
    ([], "GlobalParameters.quantiles is empty"),
    ([0.1, "0.9"], "GlobalParameters.quantiles[1] must be a number"),
    ([True], "GlobalParameters.quantiles[0] must be a number"),
    ([None], "GlobalParameters.quantiles[0] must be a number"),
    ([0.0], "GlobalParameters.quantiles[0] is 0.0; a quantile level must be strictly between 0 and 1"),
    ([0.5, 1], "GlobalParameters.quantiles[1] is 1; a quantile level must be strictly between 0 and 1"),
    ([-0.1], "strictly between 0 and 1"),
    ([50], "strictly between 0 and 1"),  # percent instead of a fraction
    ([0.1, 0.9, 0.1], "GlobalParameters.quantiles[2] repeats the level 0.1"),
    ([i / 20 for i in range(1, 11)], "has 10 levels; the limit is 9"),
]


@pytest.mark.parametrize(("quantiles", "message"), QUANTILE_BAD, ids=[f"q{i}" for i in range(len(QUANTILE_BAD))])
def test_bad_quantile_lists_are_payload_errors(quantiles: object, message: str) -> None:
    body = json.dumps({"Inputs": {"data": [{"date": "2020-01-01"}]}, "GlobalParameters": {"quantiles": quantiles}})
    with pytest.raises(PayloadError) as error:
        parse_forecast_request(body, max_horizon=14)
    assert message in str(error.value)


@pytest.mark.parametrize(("quantiles", "parsed"), [
    (None, ()),
    ([0.9, 0.1], (0.1, 0.9)),                       # any order in, ascending out
    ([0.5], (0.5,)),
    ([0.025, 0.975], (0.025, 0.975)),               # AutoML's scoring file's default
    ([i / 10 for i in range(1, 10)], tuple(i / 10 for i in range(1, 10))),  # nine is the limit
])
def test_good_quantile_lists_are_sorted_levels(quantiles: object, parsed: tuple[float, ...]) -> None:
    parameters = {} if quantiles is None else {"quantiles": quantiles}
    body = json.dumps({"Inputs": {"data": [{"date": "2020-01-01"}]}, "GlobalParameters": parameters})
    assert parse_forecast_request(body, max_horizon=14).quantiles == parsed


def test_quantile_response_has_automl_keys_and_every_level() -> None:
    import pandas as pd

    dates = pd.DatetimeIndex(["2020-01-03", "2020-01-02"])
    table = np.array([[2.5, 3.0, 3.5], [1.5, 2.0, 2.5]])
    out = forecast_response(dates, np.array([3.0, 2.0]), quantiles=(0.1, 0.5, 0.9), quantile_values=table)
    assert out == {"Results": {
        "forecast": [2.0, 3.0],
        "index": [{"date": "2020-01-02"}, {"date": "2020-01-03"}],
        "prediction_interval": ["[1.5, 2.5]", "[2.5, 3.5]"],   # AutoML: "[lowest, highest]" per row
        "quantiles": {"0.1": [1.5, 2.5], "0.5": [2.0, 3.0], "0.9": [2.5, 3.5]},
    }}


@pytest.mark.parametrize("spelling", ["2018-09-01", "2018/09/01", "2018-09-01T00:00:00", "20180901"])
def test_iso_days_take_numpy_and_other_spellings_pandas_with_the_same_day(spelling: str) -> None:
    request = parse_forecast_request(json.dumps({"Inputs": {"data": [{"date": "2018-08-31", "count": 3},
                                                                      {"date": spelling}]}}))
    assert list(request.X_pred["date"]) == [pd.Timestamp("2018-08-31"), pd.Timestamp("2018-09-01")]
    assert request.X_pred["date"].dtype == "datetime64[ns]"


@pytest.mark.parametrize(("value", "message"), [
    ("2018-02-30", "cannot parse '2018-02-30' as a date"),
    ("2018-13-01", "cannot parse '2018-13-01' as a date"),
])
def test_an_impossible_iso_day_is_a_400_naming_the_row(value: str, message: str) -> None:
    with pytest.raises(PayloadError, match=f"Inputs.data\\[0\\].date: {message}"):
        parse_forecast_request(json.dumps({"Inputs": {"data": [{"date": value}]}}))
