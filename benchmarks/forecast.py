"""Benchmark: batched ``rolling_forecast`` vs a per-origin loop, and one request through the real server.

    .venv/bin/python benchmarks/forecast.py [--model DIR] [--requests 300]

Prints, side by side: the time of one batched ``rolling_forecast`` over the DAU test set (horizons
1..14, step 1, every origin in one tensor pass) against a Python loop calling ``forecast`` once per
origin (target: >= 50x faster, same numbers), then the p50/p99 latency of a forecast request
through ``azmlinfsrv`` running ``endpoints/online/score.py``, without and with
``GlobalParameters.quantiles`` ([0.1, 0.5, 0.9]), the two kinds of request interleaved. Without ``--model`` it trains a model
first (a few epochs); without the GitHub DAU files it uses the synthetic series.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import inference_server, load_data  # noqa: E402

from mlops.forecasting.forecaster import load_forecaster, single_threaded_torch  # noqa: E402
from mlops.forecasting.training import train_model  # noqa: E402


def per_origin_loop(forecaster, test: pd.DataFrame, rolled: pd.DataFrame) -> np.ndarray:
    """What a caller without ``rolling_forecast`` does: one ``forecast`` call per origin."""
    out = []
    for origin, group in rolled.groupby(forecaster.forecast_origin_column_name, sort=True):
        known = test[test["date"] <= origin]
        X = pd.concat([known[["date", "holiday"]], test[test["date"].isin(group["date"])][["date", "holiday"]]])
        y = np.concatenate([known["count"].to_numpy(float), np.full(len(group), np.nan)])
        values, _ = forecaster.forecast(X.reset_index(drop=True), y)
        out.append(values[len(known):])
    return np.concatenate(out)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a folder with model.pt (default: train one now)")
    parser.add_argument("--data-dir", type=Path, help="folder with train.csv/test.csv (default: the shared DAU)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs when training a model here")
    parser.add_argument("--requests", type=int, default=300, help="requests for the latency measurement")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the batched rolling forecast")
    args = parser.parse_args()

    train, test, label = load_data(args.data_dir)
    with tempfile.TemporaryDirectory(prefix="mlops-bench-model-") as tmp:
        model_dir = args.model
        if model_dir is None:
            model_dir = Path(tmp)
            print(f"training a model on {label} ({args.epochs} epochs) ...", file=sys.stderr)
            train_model(train, model_dir, epochs=args.epochs)
        forecaster = load_forecaster(model_dir)
        single_threaded_torch()  # as the scoring scripts do: same footing for both sides

        X, y = test[["date", "holiday"]], test["count"].to_numpy()
        forecaster.rolling_forecast(X, y)  # warm-up
        batched_times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            rolled = forecaster.rolling_forecast(X, y)
            batched_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        looped = per_origin_loop(forecaster, test, rolled)
        loop_time = time.perf_counter() - started
        batched = statistics.median(batched_times)
        max_diff = float(np.max(np.abs(looped - rolled[forecaster.forecast_column_name].to_numpy())
                                / np.maximum(1.0, np.abs(looped))))
        origins = rolled[forecaster.forecast_origin_column_name].nunique()

        end = forecaster.history_end
        rows = [{"date": (end + pd.Timedelta(days=h)).strftime("%Y-%m-%d")} for h in range(1, forecaster.max_horizon + 1)]
        bodies = {"point": json.dumps({"Inputs": {"data": rows}, "GlobalParameters": {}}).encode(),
                  "quantiles": json.dumps({"Inputs": {"data": rows},
                                           "GlobalParameters": {"quantiles": [0.1, 0.5, 0.9]}}).encode()}
        latencies: dict[str, list[float]] = {kind: [] for kind in bodies}
        with inference_server(model_dir) as url:
            for i in range(args.requests + 20):
                for kind, body in bodies.items():
                    request = urllib.request.Request(url + "/score", data=body,
                                                     headers={"Content-Type": "application/json"})
                    started = time.perf_counter()
                    with urllib.request.urlopen(request, timeout=30) as response:
                        answer = json.loads(response.read())
                        status = response.status
                    if status != 200 or len(answer["Results"]["forecast"]) != len(rows):
                        raise RuntimeError(f"{kind} request {i} answered {status}: {str(answer)[:200]}")
                    if i >= 20:  # the first ones warm up the worker
                        latencies[kind].append((time.perf_counter() - started) * 1000)

    print(f"data: {label}; test set {test['date'].iloc[0].date()} .. {test['date'].iloc[-1].date()}, "
          f"{origins} origins x horizons 1-{forecaster.max_horizon} = {len(rolled)} forecasts")
    print()
    print(f"{'rolling forecast over the test set':<44}{'seconds':>10}{'per origin (ms)':>18}")
    print(f"{'  batched rolling_forecast (one pass)':<44}{batched:>10.4f}{batched / origins * 1000:>18.3f}")
    print(f"{'  per-origin loop of forecast()':<44}{loop_time:>10.4f}{loop_time / origins * 1000:>18.3f}")
    print(f"{'  speed-up':<44}{loop_time / batched:>9.1f}x   (target >= 50x; max relative difference "
          f"{max_diff:.1e})")
    print()
    print(f"{f'one forecast request via azmlinfsrv ({args.requests} each, {forecaster.max_horizon} dates)':<54}"
          f"{'p50 (ms)':>10}{'p99 (ms)':>18}")
    for kind, label_text in (("point", "point forecast"), ("quantiles", "with quantiles [0.1, 0.5, 0.9]")):
        print(f"{f'  {label_text}':<54}"
              f"{percentile(latencies[kind], 50):>10.2f}{percentile(latencies[kind], 99):>18.2f}")
    return 0 if loop_time / batched >= 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
