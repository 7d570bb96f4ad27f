"""Issue 2's accuracy claim, reproduced: train on GitHub DAU train.csv, score test.csv with the batch
scoring script, and compare with the weekly seasonal-naive forecast on the same (origin, date) pairs.

    .venv/bin/python benchmarks/dau_accuracy.py [--data-dir DIR] [--out DIR] [--epochs 60] [--seed 0]

1. ``train_model`` on ``train.csv`` (what ``mlops train`` runs), timed;
2. ``endpoints/batch/score.py`` - staged exactly as a batch deployment's code snapshot - runs
   ``init()`` and ``run([test.csv])``: rolling forecasts, horizons 1..14, step 1; the first origins
   take their context from the model's stored training tail (test.csv starts the day after train.csv);
3. MAPE/RMSE/MAE of those forecasts and of the seasonal-naive baseline on the same pairs.

Exits 1 if the model's MAPE is not lower than the baseline's. Needs the DAU files (no fallback:
the claim is about the real data).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DAU_DIR, REPO  # noqa: E402

from mlops.forecasting.data import load_series_csv  # noqa: E402
from mlops.forecasting.metrics import compare_with_baseline  # noqa: E402
from mlops.forecasting.training import MAX_IMPUTED_GAP, train_model  # noqa: E402
from mlops.packaging import stage_scoring_code  # noqa: E402


def batch_score(code_dir: Path, model_dir: Path, files: list[Path]) -> pd.DataFrame:
    os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
    spec = importlib.util.spec_from_file_location("batch_score", code_dir / "score.py")
    score = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score)
    score.init()
    return score.run([str(f) for f in files])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DAU_DIR)
    parser.add_argument("--out", type=Path, help="keep the model here (default: a temporary folder)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train_csv, test_csv = args.data_dir / "train.csv", args.data_dir / "test.csv"
    if not (train_csv.is_file() and test_csv.is_file()):
        print(f"GitHub DAU files not found in {args.data_dir}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mlops-dau-") as tmp:
        out = args.out or Path(tmp) / "model"
        train = load_series_csv(train_csv, fill_gaps=MAX_IMPUTED_GAP)
        started = time.perf_counter()
        result = train_model(train, out, seed=args.seed, epochs=args.epochs, source=str(train_csv),
                             progress=lambda line: print(line, file=sys.stderr))
        train_seconds = time.perf_counter() - started
        code = stage_scoring_code(REPO / "endpoints" / "batch", Path(tmp) / "code")
        started = time.perf_counter()
        scored = batch_score(code, out, [test_csv])
        score_seconds = time.perf_counter() - started
    test = load_series_csv(test_csv)
    history = pd.concat([train, test]).set_index("date")["count"]
    pairs = scored.assign(date=pd.to_datetime(scored["date"]), forecast_origin=pd.to_datetime(scored["forecast_origin"]))
    comparison = compare_with_baseline(pairs, history)
    model, naive = comparison["model"], comparison["seasonal_naive"]
    print(f"training on {train_csv.name}: {len(train)} days ({train.attrs.get('imputed_days', 0)} imputed), "
          f"{result.epochs_run} epochs (best {result.best_epoch}), {train_seconds:.1f}s on "
          f"{os.cpu_count()} cores")
    print(f"holdout of train.csv (last {result.metrics['holdout']['days']} days): model MAPE "
          f"{result.holdout_mape:.2f}% vs seasonal naive {result.baseline_mape:.2f}%")
    print(f"test.csv via endpoints/batch/score.py: {comparison['origins']} origins, {comparison['pairs']} "
          f"(origin, date) pairs, horizons {comparison['horizons'][0]}-{comparison['horizons'][1]}, "
          f"scored in {score_seconds:.2f}s")
    print(f"  {'':<16}{'MAPE':>8}{'RMSE':>12}{'MAE':>12}")
    print(f"  {'TCN model':<16}{model['mape']:>7.2f}%{model['rmse']:>12.0f}{model['mae']:>12.0f}")
    print(f"  {'seasonal naive':<16}{naive['mape']:>7.2f}%{naive['rmse']:>12.0f}{naive['mae']:>12.0f}")
    better = model["mape"] < naive["mape"]
    print("the model beats the weekly seasonal-naive forecast" if better else "the model does NOT beat the baseline")
    return 0 if better else 1


if __name__ == "__main__":
    raise SystemExit(main())
