"""``mlops train``: train the TCN forecaster on a CSV (or the synthetic series) into a model folder.

Thin: it parses flags, loads the data (``mlops.workspace.local.workspace.assets.load_training_data``: a
CSV or ``synthetic``, told apart in that one place), and calls ``mlops.forecasting.training.train_model`` - the
same function the release pipeline and the demo call. Bad input (a missing file, a CSV without
``date``/``count``, a gap) is a ``UsageError`` (exit 2) naming the file and the column.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.cli import add_command, emit, progress
from mlops.errors import MlopsError, UsageError

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
            "per epoch on stderr; the summary on stdout. With --job NAME (local workspace) it runs an "
            "AutoML-shaped sweep instead: a parent job with --trials TCN variants as its trials, outputs "
            "laid out as AutoML lays them out, the best tagged automl_best_child_run_id; release it with "
            "mlops release --model job:NAME."
        ),
        example=(
            "mlops train --data synthetic --out out/v1\n"
            "mlops train --data ../shared/data/github_dau/train.csv --out out/dau --epochs 60 --json\n"
            "mlops train --data synthetic --trials 3 --job dau-sweep-1   # an AutoML-shaped local job"
        ),
        handler=run_train,
        json_output=True,
    )
    parser.add_argument("--data", required=True, metavar="CSV|synthetic",
                        help="a CSV with date,count[,holiday] columns, or 'synthetic'")
    parser.add_argument("--out", metavar="DIR", type=Path, help="output folder (one model; or use --job)")
    parser.add_argument("--job", metavar="NAME", help="run a local AutoML-shaped job NAME instead of writing --out")
    parser.add_argument("--trials", type=_positive, default=None, help="trials of the --job sweep (default 3)")
    parser.add_argument("--primary-metric", default=None, metavar="METRIC",
                        help="the --job sweep's primary metric (default normalized_root_mean_squared_error; "
                        "also normalized_mean_absolute_error, r2_score, spearman_correlation)")
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
    if args.job is None:
        if args.out is None:
            raise UsageError("give --out DIR (one model) or --job NAME (an AutoML-shaped sweep of --trials models)")
        if args.trials is not None or args.primary_metric is not None:
            raise UsageError("--trials and --primary-metric belong to a sweep: add --job NAME")
        return _train_one(args)
    if args.out is not None:
        raise UsageError("--out and --job exclude each other: a job keeps its trials' outputs in the workspace")
    return _sweep(args)


def _sweep(args: argparse.Namespace) -> int:
    from mlops.cli.jobs import job_document, job_text
    from mlops.forecasting.sweep import DEFAULT_PRIMARY_METRIC, PRIMARY_METRICS
    from mlops.forecasting.train_config import TrainConfig
    from mlops.workspace import connect
    from mlops.workspace.automl import metric_name
    from mlops.workspace.local import LocalWorkspace
    from mlops.workspace.local.registry.automl_jobs import SweepSettings, check_job_name
    from mlops.workspace.local.workspace.assets import load_training_data

    metric = metric_name(args.primary_metric or DEFAULT_PRIMARY_METRIC)
    if metric not in PRIMARY_METRICS:
        raise UsageError(f"--primary-metric: expected one of {', '.join(PRIMARY_METRICS)}, got {args.primary_metric!r}")
    check_job_name(args.job)
    workspace = connect(args.workspace)
    if not isinstance(workspace, LocalWorkspace):
        raise UsageError("on Azure ML, AutoML trains the trials: mlops jobs submit jobs/automl-tcn-forecasting.yml "
                         "--wait (then mlops release --model job:NAME)")
    frame, source = load_training_data(args.data, days=args.synthetic_days, seed=args.seed)
    trials = args.trials or 3
    settings = SweepSettings(trials=trials, primary_metric=metric, horizon=args.horizon, source=source)
    base = TrainConfig(horizon=args.horizon, seed=args.seed, epochs=args.epochs)
    job = workspace.run_automl_sweep(args.job, frame, settings, base, progress=progress)
    emit(job_document(job), as_json=args.json, text=job_text(job))
    if job.status != "Completed":
        raise MlopsError(f"job {job.name} ended {job.status}: {job.error}")
    return 0


def _train_one(args: argparse.Namespace) -> int:
    from mlops.forecasting.errors import ForecastInputError
    from mlops.forecasting.training import train_model
    from mlops.workspace.local.workspace.assets import load_training_data

    frame, source = load_training_data(args.data, days=args.synthetic_days, seed=args.seed)
    try:
        progress(f"training on {source}: {len(frame)} days, horizon {args.horizon}, seed {args.seed}")
        result = train_model(frame, args.out, horizon=args.horizon, seed=args.seed, epochs=args.epochs,
                             progress=progress, shuffle_targets=args.shuffle_targets, source=source)
    except ForecastInputError as error:
        raise UsageError(f"{error}") from None
    emit(result.to_dict(), as_json=args.json, text=result.summary())
    return 0
