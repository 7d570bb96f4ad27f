"""``mlops train``: train the TCN forecaster on a CSV (or the synthetic series) into a model folder.

Thin: it parses flags, loads the data, and calls ``mlops.forecasting.training.train_model`` - the
same function the release pipeline and the demo call. Bad input (a missing file, a CSV without
``date``/``count``, a gap) is a ``UsageError`` (exit 2) naming the file and the column.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.cli import add_command, emit, progress
from mlops.errors import UsageError

SYNTHETIC = "synthetic"
SYNTHETIC_DAYS = 1095


def _int_at_least(minimum: int):
    """An argparse type: an integer no smaller than ``minimum``."""
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_positive = _int_at_least(1)
_non_negative = _int_at_least(0)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this area's commands."""
    parser = add_command(
        subparsers,
        "train",
        help="train a TCN forecaster; writes DIR/model.pt and DIR/metrics.json",
        description=(
            "Train the TCN forecaster on a daily series (CSV with date,count[,holiday] - the GitHub DAU "
            "format - or 'synthetic' for the built-in seeded DAU-like series). Writes DIR/model.pt "
            "(loadable with torch.load(weights_only=True)) and DIR/metrics.json (holdout MAPE/RMSE/MAE of "
            "the model and of the weekly seasonal-naive baseline on the same pairs). One progress line "
            "per epoch on stderr; the summary on stdout."
        ),
        example=(
            "mlops train --data synthetic --out out/v1\n"
            "mlops train --data ../shared/data/github_dau/train.csv --out out/dau --epochs 60 --json"
        ),
        handler=run_train,
        json_output=True,
    )
    parser.add_argument("--data", required=True, metavar="CSV|synthetic",
                        help="a CSV with date,count[,holiday] columns, or 'synthetic'")
    parser.add_argument("--out", required=True, metavar="DIR", type=Path, help="output folder")
    parser.add_argument("--horizon", type=_positive, default=14, help="days forecast at once (default 14)")
    parser.add_argument("--seed", type=_non_negative, default=0, help="random seed; same seed, same weights")
    parser.add_argument("--epochs", type=_positive, default=60,
                        help="maximum epochs (early stopping on a validation tail; default 60)")
    parser.add_argument("--synthetic-days", type=_positive, default=SYNTHETIC_DAYS,
                        help=f"length of the synthetic series (default {SYNTHETIC_DAYS})")
    parser.add_argument("--shuffle-targets", action="store_true",
                        help="testing aid: learn from shuffled counts to get a deliberately bad model "
                        "(what a release quality gate must refuse)")


def run_train(args: argparse.Namespace) -> int:
    from mlops.forecasting.data import load_series_csv
    from mlops.forecasting.errors import ForecastInputError
    from mlops.forecasting.synthetic import generate_dau
    from mlops.forecasting.training import MAX_IMPUTED_GAP, train_model

    try:
        if args.data == SYNTHETIC:
            frame, source = generate_dau(args.synthetic_days, seed=args.seed), SYNTHETIC
        else:
            frame = load_series_csv(args.data, fill_gaps=MAX_IMPUTED_GAP)
            source = str(args.data)
        progress(f"training on {source}: {len(frame)} days, horizon {args.horizon}, seed {args.seed}")
        result = train_model(frame, args.out, horizon=args.horizon, seed=args.seed, epochs=args.epochs,
                             progress=progress, shuffle_targets=args.shuffle_targets, source=source)
    except ForecastInputError as error:
        raise UsageError(f"{error}") from None
    emit(result.to_dict(), as_json=args.json, text=result.summary())
    return 0
