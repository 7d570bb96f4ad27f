"""What the batch path's coverage tracking costs: one rolling forecast with quantiles over GitHub
DAU test.csv (or its synthetic stand-in), with and without tracking, side by side in one run.

    .venv/bin/python benchmarks/batch_intervals.py [--model models/tcn-dau] [--repeats 7]

Each repeat calls ``rolling_forecast_with_quantiles(X, y, [0.1, 0.5, 0.9], step=1)`` - what the
batch scoring script does per file - once with ``adapt_rate=0`` (the level-scaled band alone) and
once with ``adaptive.ADAPT_RATE``, alternating; the medians and their ratio are printed, with the
80% interval's coverage of each (a sanity figure, not a choice: ``benchmarks/intervals.py`` chooses).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from _common import REPO, load_data

from mlops.forecasting.adaptive import ADAPT_RATE
from mlops.forecasting.intervals import coverage
from mlops.forecasting.loading import load_forecaster, single_threaded_torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "tcn-dau")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    single_threaded_torch()
    forecaster = load_forecaster(args.model)
    _, test, label = load_data(None)
    X, y = test[["date"]].reset_index(drop=True), test["count"].to_numpy()
    seconds: dict[float, list[float]] = {0.0: [], ADAPT_RATE: []}
    covered = {}
    for _ in range(args.repeats):
        for rate in seconds:
            started = time.perf_counter()
            rolled = forecaster.rolling_forecast_with_quantiles(X, y, [0.1, 0.5, 0.9], step=1, adapt_rate=rate)
            seconds[rate].append(time.perf_counter() - started)
            actual = rolled[forecaster.actual_column_name].to_numpy(dtype=np.float64)
            covered[rate] = coverage(actual, rolled[0.1].to_numpy(), rolled[0.9].to_numpy())
    plain, tracked = (statistics.median(seconds[r]) for r in seconds)
    print(f"{label}: {len(rolled)} (origin, date) pairs, quantiles [0.1, 0.5, 0.9], model {args.model.name}, "
          f"median of {args.repeats}")
    print(f"  {'':<34}{'seconds':>9}{'80% coverage':>14}")
    print(f"  {'level-scaled band (adapt_rate 0)':<34}{plain:>9.3f}{covered[0.0]:>14.1%}")
    print(f"  {f'tracked (adapt_rate {ADAPT_RATE:g})':<34}{tracked:>9.3f}{covered[ADAPT_RATE]:>14.1%}")
    print(f"  tracking costs {tracked / plain:.2f}x the untracked call; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
