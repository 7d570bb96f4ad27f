"""AutoML's own rules, as both adapters and the release need them: which trial of an AutoML job is
its best (``choose_best_child``: AutoML's ``automl_best_child_run_id`` first, else the primary
metric in its direction), which of a trial's files are the model, conda file and scoring script,
and the tags a model registered from a trial carries. Pure: no SDK, no I/O. The Azure adapter
applies them to ``MLClient`` results, the local workspace to its AutoML-shaped jobs, the release
reads the tags."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mlops.errors import NotFoundError, UsageError

# Tags of a model registered from an AutoML trial (the release reads them: trust, the trial picked).
AUTOML_PARENT_TAG = "mlops.automl_parent_job"
AUTOML_CHILD_TAG = "mlops.automl_child_job"
AUTOML_METRIC_TAG = "mlops.automl_primary_metric"
AUTOML_SCORE_TAG = "mlops.automl_score"


# ---------------------------------------------------------------------------------------------
# AutoML: the best child run and its files
#
# How AutoML records its decision (a child run's details as the run history returns them, e.g.
# an AutoML run's ``az ml job show`` of a trial): the parent carries the tag
# ``automl_best_child_run_id`` once the sweep has picked its best trial; each trial (property
# ``runTemplate: automl_child``) carries ``score`` (its primary-metric value), ``primary_metric``,
# ``goal`` (``<metric>_min`` / ``<metric>_max``), ``iteration``, ``run_algorithm`` and
# ``model_output_path`` (``outputs/model.pkl``; TCNForecaster trials write ``outputs/model.pt``),
# with ``conda_env_data_location`` -> ``outputs/conda_env_v_1_0_0.yml`` and
# ``scoring_data_location_v2`` -> ``outputs/scoring_file_v_2_0_0.py``.
#
# azure-ai-ml hands the parent's ``primary_metric`` back as an enum after its REST round trip
# (``ForecastingJob.primary_metric`` setter: ``ForecastingPrimaryMetrics[camel_to_snake(value).upper()]``,
# azure/ai/ml/entities/_job/automl/tabular/forecasting_job.py), and ``str()`` of that str-enum is
# ``ForecastingPrimaryMetrics.R2_SCORE`` while its value is ``R2Score``: ``metric_name`` reduces all
# of these to ``r2_score``. ``jobs.list(parent_job_name=...)`` yields ``None`` for a child whose
# REST object does not parse (``RunOperations._translate_from_rest_object`` catches
# ``JobParsingError`` and returns None, azure/ai/ml/operations/_run_operations.py): such children
# are skipped with a warning.

AUTOML_BEST_CHILD_TAG = "automl_best_child_run_id"

_MAXIMIZED_METRICS = {
    "r2_score", "spearman_correlation", "accuracy", "auc_weighted", "average_precision_score_weighted",
    "norm_macro_recall", "precision_score_weighted", "mean_average_precision", "iou", "f1_score",
    "explained_variance",
}
_MINIMIZED_METRICS = {
    "normalized_root_mean_squared_error", "normalized_mean_absolute_error", "root_mean_squared_error",
    "mean_absolute_error", "normalized_root_mean_squared_log_error", "mean_absolute_percentage_error",
    "median_absolute_error", "normalized_median_absolute_error", "root_mean_squared_log_error",
}

Goal = Literal["minimize", "maximize"]


def _camel_to_snake(text: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    return re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", "_", text).lower()


def metric_name(metric: object) -> str:
    """The primary metric as AutoML's snake-case name, whatever form the SDK returned it in:
    ``ForecastingPrimaryMetrics.R2_SCORE`` (the enum, or ``str()`` of it), ``R2Score`` (its
    value, the REST form) or ``r2_score``."""
    value = getattr(metric, "value", metric)
    text = str(value or "").strip()
    if "." in text:  # "ForecastingPrimaryMetrics.R2_SCORE"
        text = text.rsplit(".", 1)[-1]
    if text.isupper() or "_" in text:
        return text.lower()
    return _camel_to_snake(text)


def metric_goal(metric: object, settings_json: str | None = None, *,
                child_goal: str | None = None) -> Goal:
    """Which way ``metric`` is better. In order: the trial's own ``goal`` property
    (``<metric>_max`` / ``<metric>_min``), AutoML's ``metric_operation`` in the parent's
    ``AMLSettingsJsonString``, then the metric's known direction (error metrics minimized, scores
    maximized). An unknown metric without either record raises ``UsageError``: guessing a direction
    would pick the worst trial half of the time."""
    if child_goal:
        if child_goal.endswith("_max"):
            return "maximize"
        if child_goal.endswith("_min"):
            return "minimize"
    if settings_json:
        try:
            operation = json.loads(settings_json).get("metric_operation")
        except (ValueError, AttributeError):
            operation = None
        if operation in ("minimize", "maximize"):
            return operation
    name = metric_name(metric)
    if name in _MAXIMIZED_METRICS:
        return "maximize"
    if name in _MINIMIZED_METRICS:
        return "minimize"
    raise UsageError(f"cannot tell whether a higher or lower {name or 'primary metric'} is better: the job records "
                     "no goal for it (expected an AutoML primary metric such as normalized_root_mean_squared_error "
                     "or r2_score)")


@dataclass(frozen=True)
class ChildRun:
    """One AutoML trial as the job service reports it."""

    name: str
    status: str = "Completed"
    properties: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BestChild:
    name: str
    primary_metric: str
    score: float | None
    goal: Goal
    reason: str
    warnings: tuple[str, ...] = ()


def parse_score(value: object) -> float | None:
    """A trial's ``score`` property as a number (``None`` when absent, unreadable or NaN)."""
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _scores_from_parent_tags(parent_name: str, tags: Mapping[str, str]) -> dict[str, float]:
    """AutoML's parent run carries ``iteration_000`` / ``score_000`` (``;``-separated, aligned);
    child runs are named ``<parent>_<iteration>``."""
    scores: dict[str, float] = {}
    for key, value in tags.items():
        if not key.startswith("score_"):
            continue
        iterations = tags.get("iteration_" + key.removeprefix("score_"), "").split(";")
        for iteration, score in zip(iterations, value.split(";"), strict=False):
            number = parse_score(score)
            if iteration.strip() and number is not None:
                scores[f"{parent_name}_{iteration.strip()}"] = number
    return scores


def choose_best_child(parent_name: str, primary_metric: object, children: Sequence[ChildRun | None], *,
                      parent_tags: Mapping[str, str] | None = None,
                      settings_json: str | None = None) -> BestChild:
    """The trial AutoML itself picked, else the completed trial with the best primary-metric score.

    1. The parent's ``automl_best_child_run_id`` tag (AutoML's own decision) wins whenever it is set.
    2. Otherwise scores come from each child's ``score`` property (AutoML sets it to the primary
       metric's value), else from the parent's ``score_NNN``/``iteration_NNN`` tags; the direction
       from the child's ``goal`` property, the settings' ``metric_operation`` or the metric itself
       (``metric_goal``). Setup/featurization runs carry no score and are ignored; ``None``
       children (the SDK could not parse them) are skipped with a warning. Ties go to the earliest.
    """
    metric = metric_name(primary_metric)
    parent_tags = parent_tags or {}
    warnings = tuple(f"AutoML job {parent_name}: skipped a trial the SDK could not parse (jobs.list returned None)"
                     for child in children if child is None)
    present = [child for child in children if child is not None]
    child_goal = next((str(c.properties.get("goal")) for c in present if c.properties.get("goal")), None)
    goal = metric_goal(metric, settings_json, child_goal=child_goal)
    scores = {child.name: parse_score(child.properties.get("score", child.tags.get("score"))) for child in present}
    tagged = parent_tags.get(AUTOML_BEST_CHILD_TAG)
    if tagged:
        return BestChild(tagged, metric, scores.get(tagged), goal,
                         f"AutoML's choice (the parent's {AUTOML_BEST_CHILD_TAG} tag)", warnings)
    tag_scores = _scores_from_parent_tags(parent_name, parent_tags)
    candidates: list[tuple[float, int, str]] = []
    for order, child in enumerate(present):
        if child.status.lower() != "completed":
            continue
        score = scores.get(child.name)
        if score is None:
            score = tag_scores.get(child.name)
        if score is not None:
            candidates.append((score, order, child.name))
    if candidates:
        sign = 1 if goal == "minimize" else -1
        score, _, name = min(candidates, key=lambda item: (sign * item[0], item[1]))
        return BestChild(name, metric, score, goal,
                         f"best {metric} ({goal}) among {len(candidates)} completed trial(s)", warnings)
    raise NotFoundError(
        f"AutoML job {parent_name!r} has no completed trial with a {metric} score and no "
        f"{AUTOML_BEST_CHILD_TAG} tag: no trial with a model to register (did its trials fail?)"
    )


@dataclass(frozen=True)
class AutoMLFiles:
    model: str
    conda_file: str
    scoring_file: str


CONDA_FILE = re.compile(r"conda_env.*\.ya?ml")
SCORING_FILE = re.compile(r"scoring_file(?:_v_[\d_]+)?\.py")


def pick_automl_files(relative_paths: Iterable[str]) -> AutoMLFiles:
    """From a child run's downloaded artifacts (relative posix paths), the model, its conda
    environment file and scoring file under ``outputs/``. AutoML writes ``outputs/model.pt``
    (TCNForecaster) or ``outputs/model.pkl``, ``outputs/conda_env_v_1_0_0.yml`` and
    ``outputs/scoring_file_v_2_0_0.py`` (versioned names: the highest version wins; the Power BI
    variant ``scoring_file_pbi_*`` is not a scoring script for endpoints)."""
    paths = sorted(relative_paths)
    outputs = [p for p in paths if "outputs/" in f"/{p}"]

    def pick(candidates: list[str], what: str) -> str:
        if not candidates:
            raise NotFoundError(f"the AutoML trial's outputs hold no {what} (files: {', '.join(outputs) or 'none'})")
        return sorted(candidates, key=lambda p: (name_version(p), p))[-1]

    model = [p for p in outputs if p.rsplit("/", 1)[-1] == "model.pt"]
    if not model:
        model = [p for p in outputs if p.rsplit("/", 1)[-1] == "model.pkl"]
    conda = [p for p in outputs if CONDA_FILE.fullmatch(p.rsplit("/", 1)[-1])]
    scoring = [p for p in outputs if SCORING_FILE.fullmatch(p.rsplit("/", 1)[-1])]
    return AutoMLFiles(pick(model, "model.pt or model.pkl"), pick(conda, "conda_env_*.yml"),
                       pick(scoring, "scoring_file_*.py"))


def name_version(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.rsplit("/", 1)[-1]))
