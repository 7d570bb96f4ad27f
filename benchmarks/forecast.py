"""Benchmark: batched ``rolling_forecast`` vs a per-origin loop, one request through the real server,
and the serving throughput under load of this model beside the previous format's single TCN.

    .venv/bin/python benchmarks/forecast.py [--model DIR] [--requests 300] [--users 4] [--seconds 20]

Prints, side by side: the time of one batched ``rolling_forecast`` over the DAU test set (horizons
1..14, step 1, every origin in one tensor pass) against a Python loop calling ``forecast`` once per
origin (target: >= 50x faster, same numbers), then the p50/p99 latency of a forecast request
through ``azmlinfsrv`` running ``endpoints/online/score.py``, without and with
``GlobalParameters.quantiles`` ([0.1, 0.5, 0.9]), the two kinds of request interleaved. Without ``--model`` it trains a model
first (a few epochs); without the GitHub DAU files it uses the synthetic series.

**Under load**, side by side in one run: two ``azmlinfsrv`` servers (one worker each, as the local
workspace runs a deployment) - this model with this code, and the *old* model: ``models/tcn-dau``
and ``endpoints/online`` + ``mlops/forecasting`` as of ``--old-ref`` (default ``OLD_REF``, the last
commit with file format 1: one TCN, a 56-day window, no quantiles), taken with ``git archive``. Each
server gets ``--users`` closed-loop clients (keep-alive connections, no think time) at the same
time, for ``--seconds`` per phase, with the load test's requests (``load_tests/holdout.csv`` cut as
``load_tests/profile.yml``'s payload says: 56 actuals then 7 dates to forecast). Phase 1: point
forecasts on both; phase 2: this model with ``GlobalParameters.quantiles`` [0.1, 0.5, 0.9] beside the
old model's point forecasts (it has no quantiles). Prints requests/s and p50/p95/p99 per server and
the ratios; exits 1 when this model's throughput or p50 under load is more than 2x worse.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, inference_server, load_data  # noqa: E402

from mlops.forecasting.loading import load_forecaster, single_threaded_torch  # noqa: E402
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


OLD_REF = "c7db0e8^1"
"""main just before the five-TCN ensemble (format 2) was merged: the single TCN of format 1."""
CONTEXT_DAYS, HORIZON = 56, 7
"""``load_tests/profile.yml``'s payload: rows with ``count``, then rows to forecast."""


def old_code(ref: str, into: Path) -> tuple[Path, Path] | None:
    """``(code folder, model folder)`` of ``ref`` via ``git archive``: its ``endpoints/online`` with
    its ``mlops/forecasting`` beside ``score.py`` (what ``stage_scoring_code`` lays out), and its
    ``models/tcn-dau``. None when the repository has no such commit (e.g. a shallow clone)."""
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "endpoints/online",  # noqa: S607
                                  "mlops/__init__.py", "mlops/forecasting", "models/tcn-dau"],
                                 check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"old model: git archive {ref} failed ({error}); skipping the side-by-side load", file=sys.stderr)
        return None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)  # noqa: S607
    code = into / "endpoints" / "online"
    shutil.move(str(into / "mlops"), str(code / "mlops"))
    return code, into / "models" / "tcn-dau"


def load_bodies(quantiles: bool) -> list[bytes]:
    """The load test's requests (``load_tests/locustfile.py``'s ``_payloads``, which cannot be imported
    here: locust patches the standard library with gevent when imported)."""
    with (REPO / "load_tests" / "holdout.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    bodies = []
    for start in range(0, len(rows) - CONTEXT_DAYS - HORIZON + 1):
        data = []
        for i, row in enumerate(rows[start:start + CONTEXT_DAYS + HORIZON]):
            item: dict = {"date": row["date"], **{c: float(row[c]) for c in ("day_of_week", "month_of_year", "holiday")}}
            if i < CONTEXT_DAYS:
                item["count"] = float(row["count"])
            data.append(item)
        parameters = {"quantiles": [0.1, 0.5, 0.9]} if quantiles else {}
        bodies.append(json.dumps({"Inputs": {"data": data}, "GlobalParameters": parameters}).encode())
    return bodies


def closed_loop(url: str, bodies: list[bytes], users: int, until: float, out: list[tuple[float, int]]) -> list:
    """``users`` threads, each a keep-alive connection sending ``bodies`` in turn until ``until``
    (``time.monotonic``); appends ``(latency ms, status)`` per request to ``out``."""
    parts = urlsplit(url)

    def user(offset: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        i = offset
        try:
            while time.monotonic() < until:
                started = time.perf_counter()
                connection.request("POST", "/score", body=bodies[i % len(bodies)],
                                   headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                out.append(((time.perf_counter() - started) * 1000, response.status))
                i += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=user, args=(k * 7,), daemon=True) for k in range(users)]
    for thread in threads:
        thread.start()
    return threads


def under_load(servers: dict[str, tuple[str, list[bytes]]], users: int, seconds: float) -> dict[str, dict]:
    """Load every server at the same time (``users`` clients each) for ``seconds``; the first 2 s
    warm up and are not counted."""
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in servers}
    warm = time.monotonic() + 2.0
    until = warm + seconds
    threads = [t for name, (url, bodies) in servers.items() for t in closed_loop(url, bodies, users, warm, [])]
    for thread in threads:
        thread.join()
    threads = [t for name, (url, bodies) in servers.items()
               for t in closed_loop(url, bodies, users, until, samples[name])]
    for thread in threads:
        thread.join()
    out = {}
    for name, got in samples.items():
        latencies = [ms for ms, status in got if status == 200]
        out[name] = {"requests": len(got), "errors": sum(1 for _, status in got if status != 200),
                     "rps": len(got) / seconds, "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                     "p99": percentile(latencies, 99)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a folder with model.pt (default: train one now)")
    parser.add_argument("--data-dir", type=Path, help="folder with train.csv/test.csv (default: the shared DAU)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs when training a model here")
    parser.add_argument("--requests", type=int, default=300, help="requests for the latency measurement")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the batched rolling forecast")
    parser.add_argument("--users", type=int, default=4, help="closed-loop clients per server under load")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per phase")
    parser.add_argument("--old-ref", default=OLD_REF, help="git commit of the old model and its code")
    args = parser.parse_args()

    train, test, label = load_data(args.data_dir)
    with tempfile.TemporaryDirectory(prefix="mlops-bench-model-") as tmp:
        model_dir = args.model.resolve() if args.model else None
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
        loads = []
        with ExitStack() as stack:
            old = old_code(args.old_ref, Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlops-old-"))))
            if old is not None:
                new_url = stack.enter_context(inference_server(model_dir))
                old_url = stack.enter_context(inference_server(old[1], code=old[0]))
                point, with_q = load_bodies(False), load_bodies(True)
                for phase, new_bodies in (("point forecasts", point), ("this model with quantiles", with_q)):
                    print(f"load: {phase}, {args.users} users per server, {args.seconds:.0f}s ...",
                          file=sys.stderr)
                    loads.append((phase, under_load({"old": (old_url, point), "new": (new_url, new_bodies)},
                                                    args.users, args.seconds)))

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
    worse = []
    if loads:
        print()
        print(f"under load, side by side: {args.users} closed-loop users per server, {args.seconds:.0f}s per phase, "
              f"{CONTEXT_DAYS} actuals + {HORIZON} dates per request; old = {args.old_ref} (one TCN, format 1)")
        print(f"  {'phase / server':<44}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
        for phase, result in loads:
            for name, label_text in (("old", "old single TCN, point"),
                                     ("new", "this model" + (", quantiles" if "quantiles" in phase else ", point"))):
                r = result[name]
                print(f"  {f'{phase}: {label_text}':<44}{r['requests']:>9}{r['rps']:>8.1f}{r['p50']:>9.1f}"
                      f"{r['p95']:>9.1f}{r['p99']:>9.1f}{r['errors']:>8}")
            old_r, new_r = result["old"], result["new"]
            slower, fewer = new_r["p50"] / old_r["p50"], old_r["rps"] / max(new_r["rps"], 1e-9)
            print(f"  {'  ratio new/old':<44}{'':>9}{1 / fewer:>7.2f}x{slower:>8.2f}x")
            if slower > 2 or fewer > 2 or new_r["errors"]:
                worse.append(phase)
        print("within 2x of the old model under load" if not worse else f"NOT within 2x under load: {', '.join(worse)}")
    return 0 if loop_time / batched >= 50 and not worse else 1


if __name__ == "__main__":
    raise SystemExit(main())
