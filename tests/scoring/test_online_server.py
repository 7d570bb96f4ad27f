"""The online scoring script inside the REAL inference server (``azmlinfsrv``), on a staged code
snapshot exactly as a deployment uploads it: malformed requests are 4xx with a reason, never 5xx,
and the server keeps serving valid ones."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlops.forecasting.errors import UntrustedModelError
from mlops.forecasting.loading import load_forecaster
from mlops.forecasting.payload import MAX_BODY_BYTES
from mlops.forecasting.synthetic import generate_dau
from tests.conftest import Processes, free_port
from tests.forecasting.tiny import TINY_DAYS, TINY_SEED

pytestmark = pytest.mark.slow

AZMLINFSRV = Path(sys.executable).parent / "azmlinfsrv"


class Server:
    def __init__(self, url: str, procs: Processes, proc) -> None:
        self.url, self.procs, self.proc = url, procs, proc

    def post(self, body: bytes, *, method: str = "POST",
             content_type: str = "application/json") -> tuple[int, dict]:
        request = urllib.request.Request(self.url + "/score", data=body if method == "POST" else None,
                                         method=method, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw)
            except json.JSONDecodeError:
                return error.code, {"raw": raw.decode(errors="replace")}

    def logs(self) -> str:
        return self.procs.logs()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, online_code: Path, azure_model_dir: Path) -> Iterator[Server]:
    procs = Processes(tmp_path_factory.mktemp("azmlinfsrv-logs"))
    port, health = free_port(), free_port()
    proc = procs.start([str(AZMLINFSRV), "--entry_script", "score.py", "--model_dir", str(azure_model_dir),
                        "--port", str(port), "--health_port", str(health)], cwd=online_code, name="azmlinfsrv")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"azmlinfsrv exited with {proc.returncode}\n{procs.logs()}")
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"azmlinfsrv not ready after 90s\n{procs.logs()}")
            time.sleep(0.3)
        yield Server(url, procs, proc)
    finally:
        procs.stop_all()


def _body(rows: list, **extra: object) -> bytes:
    return json.dumps({"Inputs": {"data": rows}, "GlobalParameters": {}, **extra}).encode()


def _history_end() -> pd.Timestamp:
    return generate_dau(TINY_DAYS, seed=TINY_SEED)["date"].iloc[-1]


def _day(offset: int) -> str:
    return (_history_end() + pd.Timedelta(days=offset)).strftime("%Y-%m-%d")


MALFORMED: list[tuple[str, bytes]] = [
    ("empty body", b""),
    ("not JSON", b"forecast please"),
    ("truncated JSON", b'{"Inputs": {"data": [{"date": '),
    ("NaN literal", b'{"Inputs": {"data": [{"date": "2020-01-01", "count": NaN}, {"date": "2020-01-02"}]}}'),
    ("invalid UTF-8", b"\xff\xfe\xfd"),
    ("top-level list", b"[1, 2]"),
    ("top-level string", b'"hello"'),
    ("no Inputs", b'{"data": []}'),
    ("Inputs is a list", b'{"Inputs": [1]}'),
    ("no data", b'{"Inputs": {"rows": []}}'),
    ("data is an object", b'{"Inputs": {"data": {"date": "2020-01-01"}}}'),
    ("data is empty", b'{"Inputs": {"data": []}}'),
    ("row is a number", b'{"Inputs": {"data": [42]}}'),
    ("missing date", _body([{"count": 5}])),
    ("date is a number", _body([{"date": 20200101}])),
    ("unparseable date", _body([{"date": "next tuesday"}])),
    ("date with a time", _body([{"date": "2020-01-01T12:00:00"}])),
    ("count is text", _body([{"date": _day(0), "count": "lots"}, {"date": _day(1)}])),
    ("count is a boolean", _body([{"date": _day(0), "count": True}, {"date": _day(1)}])),
    ("negative count", _body([{"date": _day(0), "count": -1}, {"date": _day(1)}])),
    ("infinite count", b'{"Inputs": {"data": [{"date": "2020-01-01", "count": 1e999}, {"date": "2020-01-02"}]}}'),
    ("duplicate dates", _body([{"date": _day(1)}, {"date": _day(1)}])),
    ("nothing to forecast", _body([{"date": _day(0), "count": 10}])),
    ("more future rows than the horizon", _body([{"date": _day(i)} for i in range(1, 16)])),
    ("a date beyond the horizon", _body([{"date": _day(30)}])),
    ("context that leaves a gap", _body([{"date": _day(40), "count": 1000}, {"date": _day(41)}])),
    ("a date to forecast before the last actual", _body([{"date": _day(1)}, {"date": _day(2), "count": 9}])),
    ("GlobalParameters is a number", _body([{"date": _day(1)}], GlobalParameters=7)),
    ("holiday is text", _body([{"date": _day(1), "holiday": "maybe"}])),
    ("oversized body", b'{"Inputs": {"data": [' + b" " * (MAX_BODY_BYTES + 10) + b"]}}"),
    ("nested too deeply", b"[" * 50_000 + b"]" * 50_000),
]

BAD_QUANTILES: list[tuple[object, str]] = [
    ("0.1,0.9", "must be a list"),
    ([], "is empty"),
    ([0.1, 1.0], "GlobalParameters.quantiles[1] is 1.0"),
    ([0, 0.5], "GlobalParameters.quantiles[0] is 0"),
    ([10, 90], "strictly between 0 and 1"),
    ([0.1, "0.9"], "GlobalParameters.quantiles[1] must be a number"),
    ([0.2, 0.2], "repeats the level 0.2"),
    ([i / 20 for i in range(1, 11)], "the limit is 9"),
]


def test_valid_request_from_the_stored_history(server: Server, scoring_model) -> None:
    status, answer = server.post(_body([{"date": _day(3)}, {"date": _day(1)}, {"date": _day(2)}]))
    assert status == 200, server.logs()
    assert answer["Results"]["index"] == [{"date": _day(1)}, {"date": _day(2)}, {"date": _day(3)}]
    expected, _ = load_forecaster(scoring_model.out_dir).forecast(
        pd.DataFrame({"date": pd.to_datetime([_day(1), _day(2), _day(3)])}))
    np.testing.assert_allclose(answer["Results"]["forecast"], expected, rtol=1e-4)


def test_quantile_request_gets_ordered_quantiles_for_every_date(server: Server, scoring_model) -> None:
    days = [_day(h) for h in range(1, 15)]
    body = _body([{"date": d} for d in reversed(days)], GlobalParameters={"quantiles": [0.9, 0.1, 0.5]})
    status, answer = server.post(body)
    assert status == 200, server.logs()
    results = answer["Results"]
    assert set(results) == {"forecast", "index", "prediction_interval", "quantiles"}
    assert results["index"] == [{"date": d} for d in days]
    assert set(results["quantiles"]) == {"0.1", "0.5", "0.9"}
    table = np.array([results["quantiles"][q] for q in ("0.1", "0.5", "0.9")])
    assert table.shape == (3, 14)
    assert (np.diff(table, axis=0) >= 0).all() and (table[2] > table[0]).all()  # ordered, a real band
    assert results["prediction_interval"] == [f"[{lo}, {hi}]" for lo, hi in zip(table[0], table[2], strict=True)]
    # the point forecast is the one a request without quantiles gets
    _, plain = server.post(_body([{"date": d} for d in days]))
    assert results["forecast"] == plain["Results"]["forecast"]
    assert all(lo <= f <= hi for lo, f, hi in zip(table[0], results["forecast"], table[2], strict=True))


@pytest.mark.parametrize(("quantiles", "message"), BAD_QUANTILES, ids=[f"q{i}" for i in range(len(BAD_QUANTILES))])
def test_bad_quantile_lists_are_400_with_a_reason(server: Server, quantiles: object, message: str) -> None:
    status, answer = server.post(_body([{"date": _day(1)}], GlobalParameters={"quantiles": quantiles}))
    assert status == 400, f"{quantiles!r}: {status} {answer}\n{server.logs()}"
    assert message in answer["error"], answer


@pytest.mark.parametrize(("kind", "body"), MALFORMED, ids=[kind for kind, _ in MALFORMED])
def test_malformed_request_is_a_4xx_with_a_reason(server: Server, kind: str, body: bytes) -> None:
    status, answer = server.post(body)
    assert 400 <= status < 500, f"{kind}: {status} {answer}\n{server.logs()}"
    assert isinstance(answer.get("error"), str) and len(answer["error"]) > 10, answer


def test_get_is_refused_with_a_reason(server: Server) -> None:
    status, answer = server.post(b"", method="GET")
    assert status == 405 and "POST" in answer["error"]


def test_server_still_serves_after_bad_requests(server: Server) -> None:
    for _, body in MALFORMED[:5]:
        server.post(body)
    continuation = generate_dau(TINY_DAYS + 20, seed=TINY_SEED).iloc[TINY_DAYS:]
    rows = [{"date": d.strftime("%Y-%m-%d"), "count": int(c)} for d, c in
            zip(continuation["date"].iloc[:14], continuation["count"].iloc[:14], strict=True)]
    rows += [{"date": d.strftime("%Y-%m-%d")} for d in continuation["date"].iloc[14:20]]
    status, answer = server.post(_body(rows))
    assert status == 200, server.logs()
    assert len(answer["Results"]["forecast"]) == 6 and all(v > 0 for v in answer["Results"]["forecast"])
    assert server.proc.poll() is None
    assert "Traceback" not in server.logs().split("Worker with pid")[-1]  # no request raised inside run()


def _import_score(online_code: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, online_code / "score.py")
    module = importlib.util.module_from_spec(spec)
    before = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = before
    return module


class FakeAutoML:
    max_horizon = 2

    def forecast(self, X_pred, y_pred=None):
        return np.where(np.isnan(y_pred), 7.0, y_pred), X_pred

    def rolling_forecast(self, X, y, step=1):  # pragma: no cover
        raise NotImplementedError


def test_pickled_model_needs_the_trust_switch(tmp_path: Path, online_code: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    torch.save(FakeAutoML(), tmp_path / "model.pt")
    score = _import_score(online_code, "online_score_under_test")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    monkeypatch.delenv("MLOPS_TRUST_PICKLED_MODEL", raising=False)
    with pytest.raises(UntrustedModelError):
        score.init()
    monkeypatch.setenv("MLOPS_TRUST_PICKLED_MODEL", "1")
    score.init()
    assert isinstance(score.forecaster, FakeAutoML)
    # the same run() serves it: rows with a count are context, the others come back forecast
    from flask import Request
    from werkzeug.test import EnvironBuilder

    body = _body([{"date": "2020-01-01", "count": 3}, {"date": "2020-01-02"}])
    response = score.run(Request(EnvironBuilder(method="POST", data=body).get_environ()))
    assert response.status_code == 200
    assert json.loads(response.get_data()) == {"Results": {"forecast": [7.0], "index": [{"date": "2020-01-02"}]}}
    too_many = _body([{"date": "2020-01-02"}, {"date": "2020-01-03"}, {"date": "2020-01-04"}])
    response = score.run(Request(EnvironBuilder(method="POST", data=too_many).get_environ()))
    assert response.status_code == 400 and "at most 2 days" in json.loads(response.get_data())["error"]
