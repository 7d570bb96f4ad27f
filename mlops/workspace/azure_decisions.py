"""Pure decisions of the Azure ML adapter: no SDK, no network, table-testable.

``mlops.workspace.azure`` does the I/O with ``MLClient``; everything it *decides* lives here so
it can be tested with plain data: which asset version carries a content hash, the next version
number, how Azure's provisioning and job states map onto the port's, the release-lock tag format,
whether the endpoint already reports a traffic split, which AutoML child run is the best by the
parent job's primary metric, which files of that run are the model, conda file and scoring
script, the backoff before retrying an "operation in progress" conflict, and which project
exception (with which fix) an Azure error becomes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mlops.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    RuleViolation,
    WorkspaceError,
)
from mlops.workspace.port import AssetRef, DeploymentState, JobStatus, ReleaseLock

CONTENT_HASH_TAG = "mlops.content_hash"
"""Tag on model and environment versions: sha256 of the bytes they were made from."""

RELEASE_LOCK_TAG = "mlops.release-lock"
"""Tag on the online endpoint while a release runs: ``holder@ISO-8601 time``."""

AUTOML_PARENT_TAG = "mlops.automl_parent_job"
AUTOML_CHILD_TAG = "mlops.automl_child_job"
AUTOML_METRIC_TAG = "mlops.automl_primary_metric"
AUTOML_SCORE_TAG = "mlops.automl_score"

# ---------------------------------------------------------------------------------------------
# asset references and versions

_ASSET_ID = re.compile(r"/(?:models|environments)/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/?$", re.IGNORECASE)


def parse_asset_id(text: str) -> AssetRef:
    """``azureml:name:version``, ``name:version``, an ARM id ``.../models/name/versions/3`` or an
    ``azureml://.../environments/name/versions/3`` URI -> ``AssetRef``. Azure returns ARM ids on
    ``get`` even when the deployment was created with the short form."""
    match = _ASSET_ID.search(text)
    if match:
        return AssetRef(match["name"], match["version"])
    return AssetRef.parse(text)


def asset_reference(ref: AssetRef) -> str:
    """The pinned short form deployments are created with (never an inline conda file)."""
    return f"azureml:{ref.name}:{ref.version}"


def _version_key(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Numeric versions in numeric order, others after them."""
    return sorted(versions, key=_version_key)


def next_version(versions: Iterable[str]) -> str:
    """One more than the highest integer version ("1" when there is none)."""
    numbers = [int(v) for v in versions if str(v).isdigit()]
    return str(max(numbers, default=0) + 1)


def version_with_hash(tagged: Iterable[tuple[str, Mapping[str, str] | None]], content_hash: str) -> str | None:
    """The lowest version whose content-hash tag equals ``content_hash`` (the one made first)."""
    matches = [version for version, tags in tagged if (tags or {}).get(CONTENT_HASH_TAG) == content_hash]
    return sort_versions(matches)[0] if matches else None


# ---------------------------------------------------------------------------------------------
# states

_DEPLOYMENT_STATES: dict[str, DeploymentState] = {
    "creating": "Creating",
    "updating": "Updating",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "canceled": "Failed",
    "deleting": "Deleting",
}


def _enum_text(value: object) -> str:
    """The SDK returns str-enums (``DeploymentProvisioningState.SUCCEEDED``); use their value."""
    return str(getattr(value, "value", value) or "")


def deployment_state(provisioning_state: object) -> DeploymentState:
    """Azure's ``provisioning_state`` -> the port's state (``Canceled`` counts as ``Failed``:
    a canceled deployment does not serve)."""
    return _DEPLOYMENT_STATES.get(_enum_text(provisioning_state).lower() or "creating", "Creating")


_JOB_STATES: dict[str, JobStatus] = {
    "notstarted": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "preparing": JobStatus.QUEUED,
    "provisioning": JobStatus.QUEUED,
    "starting": JobStatus.QUEUED,
    "running": JobStatus.RUNNING,
    "finalizing": JobStatus.RUNNING,
    "cancelrequested": JobStatus.RUNNING,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "notresponding": JobStatus.FAILED,
    "canceled": JobStatus.CANCELED,
    "paused": JobStatus.CANCELED,
}


def job_status(status: object) -> JobStatus:
    """Azure ML job status (``NotStarted`` ... ``NotResponding``) -> the port's five states."""
    return _JOB_STATES.get(_enum_text(status).lower() or "notstarted", JobStatus.QUEUED)


# ---------------------------------------------------------------------------------------------
# traffic


def nonzero(traffic: Mapping[str, int] | None) -> dict[str, int]:
    """Azure drops 0% entries (the SDK strips them before sending): compare without them."""
    return {name: int(value) for name, value in (traffic or {}).items() if int(value) != 0}


def traffic_reported(reported: Mapping[str, int] | None, desired: Mapping[str, int]) -> bool:
    """Does the endpoint report ``desired`` (0% entries ignored)?"""
    return nonzero(reported) == nonzero(desired)


def full_traffic(reported: Mapping[str, int] | None, deployments: Iterable[str]) -> dict[str, int]:
    """Azure's traffic map with every deployment present (missing ones at 0%), as the port returns it."""
    result = {name: 0 for name in deployments}
    result.update({name: int(value) for name, value in (reported or {}).items()})
    return result


# ---------------------------------------------------------------------------------------------
# release lock


def format_lock(holder: str, acquired_at: str) -> str:
    return f"{holder}@{acquired_at}"


def parse_lock(endpoint_name: str, value: str | None) -> ReleaseLock | None:
    """The tag value ``holder@time`` -> ``ReleaseLock`` (the holder may itself contain ``@``)."""
    if not value:
        return None
    holder, sep, acquired_at = value.rpartition("@")
    if not sep:
        return ReleaseLock(endpoint_name, value, "")
    return ReleaseLock(endpoint_name, holder, acquired_at)


def lock_conflict(current: ReleaseLock | None, holder: str) -> ConflictError | None:
    """``None`` when ``holder`` may take (or keep) the lock; else the error to raise."""
    if current is None or current.holder == holder:
        return None
    return ConflictError(
        f"endpoint {current.endpoint_name!r} is being released by {current.holder!r} since "
        f"{current.acquired_at or 'an unknown time'}; wait for it to finish, or if that release is dead "
        f"remove the endpoint tag {RELEASE_LOCK_TAG!r} (az ml online-endpoint update --name "
        f"{current.endpoint_name} --remove tags.{RELEASE_LOCK_TAG})"
    )


# ---------------------------------------------------------------------------------------------
# retries


def backoff_delays(attempts: int, *, base: float = 5.0, cap: float = 60.0) -> Iterator[float]:
    """Delays before retries 1..attempts-1: exponential from ``base``, capped. Azure's "operation
    in progress" conflicts last as long as the other update (often minutes), so the schedule is
    long-tailed rather than fast."""
    for attempt in range(max(attempts - 1, 0)):
        yield min(cap, base * (2**attempt))


def is_retryable_status(status: int | None) -> bool:
    """409 (another operation in progress on the resource) and 429 (throttled) are transient."""
    return status in (409, 429)


# ---------------------------------------------------------------------------------------------
# error translation

ErrorKind = Literal["auth", "credential", "forbidden", "not_found", "conflict", "invalid", "network", "other"]

ROLE_HINT = (
    "assign the role 'AzureML Data Scientist' on the workspace to the identity that runs this "
    "(az role assignment create --role \"AzureML Data Scientist\" --assignee <client-id> --scope "
    "<workspace resource id>); uploading code and models with identity-based storage access also "
    "needs 'Storage Blob Data Contributor' on the workspace's storage account"
)
LOGIN_HINT = (
    "on a laptop run 'az login' (and 'az account set --subscription <id>'); in GitHub Actions log in "
    "with azure/login using client-id, tenant-id and subscription-id and give the job "
    "'permissions: id-token: write'"
)
FEDERATED_HINT = (
    "the app registration has no federated credential for this workflow's token subject: add one "
    "with issuer https://token.actions.githubusercontent.com and the subject named in the error "
    "(e.g. repo:<owner>/<repo>:environment:<environment> for jobs with an 'environment:', or "
    "repo:<owner>/<repo>:ref:refs/heads/main)"
)


def translate(kind: ErrorKind, what: str, detail: str, *, status: int | None = None,
              attempts: int = 1) -> Exception:
    """The project exception for an Azure failure of ``what`` (e.g. "create deployment blue on
    endpoint tcn"), with the fix in the message. ``detail`` is Azure's own message."""
    detail = " ".join(detail.split())[:2000]
    if kind in ("auth", "credential"):
        if "AADSTS70021" in detail or "federated identity" in detail.lower():
            return AuthError(f"{what}: Azure refused the GitHub OIDC token: {FEDERATED_HINT}. Azure said: {detail}")
        if "AADSTS700016" in detail or "AADSTS90002" in detail:
            return AuthError(f"{what}: the client-id or tenant-id is wrong (no such application in the "
                             f"tenant): check the AZURE_CLIENT_ID / AZURE_TENANT_ID values. Azure said: {detail}")
        return AuthError(f"{what}: no usable Azure credential: {LOGIN_HINT}. Azure said: {detail}")
    if kind == "forbidden":
        return AuthError(f"{what}: permission denied (HTTP 403): {ROLE_HINT}. Azure said: {detail}")
    if kind == "not_found":
        return NotFoundError(f"{what}: not found in the workspace. Azure said: {detail}")
    if kind == "conflict":
        reason = "throttled (HTTP 429)" if status == 429 else "another operation is in progress (HTTP 409)"
        return ConflictError(f"{what}: {reason}; gave up after {attempts} attempt(s); retry when the other "
                             f"operation has finished. Azure said: {detail}")
    if kind == "invalid":
        return RuleViolation(f"{what}: Azure ML refused the request as invalid; nothing was changed. "
                             f"Azure said: {detail}")
    if kind == "network":
        return WorkspaceError(f"{what}: cannot reach Azure ML (network, proxy or DNS): {detail}")
    return WorkspaceError(f"{what}: Azure ML failed{f' (HTTP {status})' if status else ''}: {detail}")


def classify_status(status: int | None) -> ErrorKind:
    """HTTP status of an ``HttpResponseError`` -> kind."""
    if status == 401:
        return "auth"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "not_found"
    if status in (409, 429):
        return "conflict"
    if status in (400, 422):
        return "invalid"
    return "other"


# ---------------------------------------------------------------------------------------------
# AutoML: the best child run and its files

_MAXIMIZED_METRICS = {
    "r2_score", "spearman_correlation", "accuracy", "auc_weighted", "average_precision_score_weighted",
    "norm_macro_recall", "precision_score_weighted", "mean_average_precision", "iou", "f1_score",
    "explained_variance",
}


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
    goal: Literal["minimize", "maximize"]
    reason: str


def metric_goal(metric: str, settings_json: str | None = None) -> Literal["minimize", "maximize"]:
    """AutoML records ``metric_operation`` in the parent's ``AMLSettingsJsonString``; without it,
    error metrics are minimized and scores (r2, spearman, accuracy...) maximized."""
    if settings_json:
        try:
            operation = json.loads(settings_json).get("metric_operation")
        except (ValueError, AttributeError):
            operation = None
        if operation in ("minimize", "maximize"):
            return operation
    return "maximize" if metric.lower() in _MAXIMIZED_METRICS else "minimize"


def _float(value: object) -> float | None:
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
            number = _float(score)
            if iteration.strip() and number is not None:
                scores[f"{parent_name}_{iteration.strip()}"] = number
    return scores


def choose_best_child(parent_name: str, primary_metric: str, children: Sequence[ChildRun], *,
                      parent_tags: Mapping[str, str] | None = None,
                      settings_json: str | None = None) -> BestChild:
    """The completed child with the best primary-metric score.

    Scores come from each child's ``score`` property (AutoML sets it to the primary metric's
    value), else from the parent's ``score_NNN``/``iteration_NNN`` tags. Setup/featurization runs
    (``_setup``, ``_featurize``, ...) carry no score and are ignored. Without any score, AutoML's
    own ``automl_best_child_run_id`` tag on the parent decides. Ties go to the earliest iteration.
    """
    goal = metric_goal(primary_metric, settings_json)
    parent_tags = parent_tags or {}
    tag_scores = _scores_from_parent_tags(parent_name, parent_tags)
    candidates: list[tuple[float, int, str]] = []
    for order, child in enumerate(children):
        if child.status.lower() != "completed":
            continue
        score = _float(child.properties.get("score", child.tags.get("score")))
        if score is None:
            score = tag_scores.get(child.name)
        if score is not None:
            candidates.append((score, order, child.name))
    if candidates:
        sign = 1 if goal == "minimize" else -1
        score, _, name = min(candidates, key=lambda item: (sign * item[0], item[1]))
        return BestChild(name, primary_metric, score, goal,
                         f"best {primary_metric} ({goal}) among {len(candidates)} completed trial(s)")
    fallback = parent_tags.get("automl_best_child_run_id")
    if fallback:
        return BestChild(fallback, primary_metric, None, goal,
                         "no trial reported a score; used the parent's automl_best_child_run_id tag")
    raise NotFoundError(
        f"AutoML job {parent_name!r} has no completed trial with a {primary_metric} score and no "
        "automl_best_child_run_id tag: has it finished successfully?"
    )


@dataclass(frozen=True)
class AutoMLFiles:
    model: str
    conda_file: str
    scoring_file: str


def pick_automl_files(relative_paths: Iterable[str]) -> AutoMLFiles:
    """From a child run's downloaded artifacts (relative posix paths), the model, its conda
    environment file and scoring file under ``outputs/``. AutoML writes ``outputs/model.pt``
    (TCNForecaster) or ``outputs/model.pkl``, ``outputs/conda_env_v_1_0_0.yml`` and
    ``outputs/scoring_file_v_2_0_0.py`` (versioned names: the highest version wins)."""
    paths = sorted(relative_paths)
    outputs = [p for p in paths if "outputs/" in f"/{p}"]

    def pick(candidates: list[str], what: str) -> str:
        if not candidates:
            raise NotFoundError(f"the AutoML trial's outputs hold no {what} (files: {', '.join(outputs) or 'none'})")
        return sorted(candidates, key=lambda p: (_name_version(p), p))[-1]

    model = [p for p in outputs if p.rsplit("/", 1)[-1] == "model.pt"]
    if not model:
        model = [p for p in outputs if p.rsplit("/", 1)[-1] == "model.pkl"]
    conda = [p for p in outputs if re.fullmatch(r"conda_env.*\.ya?ml", p.rsplit("/", 1)[-1])]
    scoring = [p for p in outputs if re.fullmatch(r"scoring_file.*\.py", p.rsplit("/", 1)[-1])]
    return AutoMLFiles(pick(model, "model.pt or model.pkl"), pick(conda, "conda_env_*.yml"),
                       pick(scoring, "scoring_file_*.py"))


def _name_version(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.rsplit("/", 1)[-1]))
