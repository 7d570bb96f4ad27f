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

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Literal

from mlops.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    RuleViolation,
    UsageError,
    WorkspaceError,
)
from mlops.workspace import automl
from mlops.workspace.port import AssetRef, DeploymentState, JobStatus, ReleaseLock

CONTENT_HASH_TAG = "mlops.content_hash"
"""Tag on model and environment versions: sha256 of the bytes they were made from."""

RELEASE_LOCK_TAG = "mlops.release-lock"
"""Tag on the online endpoint while a release runs: ``holder@ISO-8601 time``."""


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
    # ``Scaling`` (azure-ai-ml's ``DeploymentProvisioningState.SCALING``): the instance count of a
    # deployment that exists is changing - it keeps serving, an operation is in progress: Updating.
    "scaling": "Updating",
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


IN_FLIGHT_STATES: frozenset[str] = frozenset({"Creating", "Updating", "Deleting"})
"""Port states (``deployment_state``; ``Scaling`` is ``Updating``) of a resource with an operation running."""


def operations_in_flight(states: Mapping[str, object]) -> list[str]:
    """``{"endpoint x": provisioning_state, "deployment y": ...}`` -> ``["deployment y is Creating", ...]``:
    the resources with an operation running. Azure ML runs one operation at a time on an endpoint
    and its deployments and refuses another write meanwhile with 409 ("another operation on same
    entity is already running", Azure/carnegie-mop's AmlEndpoint.md; "Cannot create a deployment in
    endpoint x because it is in Updating provisioning state", Azure/azure-sdk-for-net#36961); those
    operations take minutes (a deployment create 7 min 5 s in azure-sdk-assets' recording), longer
    than the backoff of a refused call, so a writer waits for them first - as Microsoft's MLOps
    templates do (``wait_for_endpoint_ready`` / ``wait_for_deployment_ready`` before deploying).
    A resource that states nothing is taken as idle."""
    found = ((what, deployment_state(state)) for what, state in states.items() if _enum_text(state))
    return [f"{what} is {state}" for what, state in found if state in IN_FLIGHT_STATES]


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


def parse_lock(endpoint_name: str, value: str | None) -> ReleaseLock | None:
    """The tag value ``holder@time`` -> ``ReleaseLock`` (the holder may itself contain ``@``). Older
    versions kept the release lock in this endpoint tag; ``azure/lock.py`` still honours one it finds."""
    if not value:
        return None
    holder, sep, acquired_at = value.rpartition("@")
    if not sep:
        return ReleaseLock(endpoint_name, value, "")
    return ReleaseLock(endpoint_name, holder, acquired_at)


# ---------------------------------------------------------------------------------------------
# retries


def backoff_delays(attempts: int, *, base: float = 5.0, cap: float = 60.0) -> Iterator[float]:
    """Delays before retries 1..attempts-1: exponential from ``base``, capped. Azure's "operation
    in progress" conflicts last as long as the other update (often minutes), so the schedule is
    long-tailed rather than fast."""
    for attempt in range(max(attempts - 1, 0)):
        yield min(cap, base * (2**attempt))


TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""The statuses azure-core's own ``RetryPolicy`` treats as transient (``RetryPolicyBase._SAFE_CODES``
is every code below 506 except these, azure/core/pipeline/policies/_retry.py). azure-core retries
them inside one call for idempotent methods; for a POST or PATCH - e.g. a batch endpoint invoke -
``_is_method_retryable`` lets through only 500/503/504, so a POST's 408/429/502 is never retried
there; and it gives up after its ``retry_total``. The adapter retries them all again, on its own,
longer, clock."""

_NAME_TAKEN = re.compile(r"is not available\. Endpoint names must be unique|already an endpoint with this name|"
                         r"name needs to be unique within a region", re.IGNORECASE)


def endpoint_name_taken(detail: str) -> bool:
    """Azure's answer when an endpoint name is taken in the region (endpoint names are a region's
    DNS names, not the workspace's): "(UserError) The specified endpoint name 'x' is not available.
    Endpoint names must be unique within the region." (ansible-collections/azure PR #2231, 2026) or,
    older, "There is already an endpoint with this name, Endpoint name needs to be unique within a
    region" (Azure/azureml-examples PR #1931, Azure/mlops-project-template issue #29). Lasting: no retry helps."""
    return bool(_NAME_TAKEN.search(detail or ""))


ASSET_PATH_TAKEN = "Asset paths cannot be updated"
"""The service's answer to a PUT of an asset version that exists with other files. azure-ai-ml
turns it into ``AssetPathException`` only when ``str(error)`` *equals* its ``ASSET_PATH_ERROR``
("(UserError) Asset paths cannot be updated.", azure/ai/ml/_artifacts/_constants.py;
``ModelOperations.create_or_update``) - but azure-core renders an ARM error with ``Code:`` /
``Message:`` lines, so the adapter usually gets a plain ``ResourceExistsError`` carrying the text
(seen at the wire: tests/azure_wire/test_defects.py)."""


def asset_version_taken(detail: str) -> bool:
    """That asset version exists with other content: lasting, whichever exception carried it."""
    return ASSET_PATH_TAKEN.lower() in (detail or "").lower()


def is_retryable_status(status: int | None, detail: str = "") -> bool:
    """409 (another operation in progress on the resource) and the transient statuses
    (``TRANSIENT_STATUSES``). A 409 that says the endpoint *name is taken*, or that the asset version
    exists with other files, is lasting, never retried."""
    if status == 409:
        return not (endpoint_name_taken(detail) or asset_version_taken(detail))
    return status in TRANSIENT_STATUSES


# ---------------------------------------------------------------------------------------------
# error translation

ErrorKind = Literal["auth", "credential", "forbidden", "not_found", "conflict", "invalid", "network", "other",
                    "version_exists"]

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


ENDPOINT_WRITE_ACTION = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write"
"""The one RBAC action for an online endpoint's creation, traffic, mirror and tags (Azure ML, "Manage
access to Azure Machine Learning workspaces"); only the production identity's role holds it."""


def endpoint_setup_hint(endpoint_name: str, refusal: str) -> str:
    """Why a release may not create its endpoint, and the one-time setup command that does."""
    return (f"online endpoint {endpoint_name} does not exist, and this identity may not create it (HTTP 403 "
            f"AuthorizationFailed: creating an endpoint needs {ENDPOINT_WRITE_ACTION}, which only the production "
            f"identity holds). Create it once, as in the README's one-time setup: az ml online-endpoint create -f "
            f"endpoints/online/endpoint.yml -g <resource group> -w <workspace> (as the production identity or an "
            f"owner), then re-run the release. Azure said: {refusal}")


EXPIRED_ASSERTION_HINT = (
    "Microsoft Entra ID refused an expired GitHub OIDC token (AADSTS700024: the client assertion is not "
    "within its valid time range). A GitHub ID token is valid for about 5 minutes; the Azure CLI that "
    "azure/login leaves behind cannot fetch a new one, so a token first asked for later in a long job "
    "fails. Fix: run mlops in the job with AZURE_CLIENT_ID and AZURE_TENANT_ID set and 'permissions: "
    "id-token: write' (GitHub then sets ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN): mlops asks GitHub for a "
    "fresh token whenever Entra ID needs one (ClientAssertionCredential); re-run the job"
)


def translate(kind: ErrorKind, what: str, detail: str, *, status: int | None = None,
              attempts: int = 1) -> Exception:
    """The project exception for an Azure failure of ``what`` (e.g. "create deployment blue on
    endpoint tcn"), with the fix in the message. ``detail`` is Azure's own message."""
    detail = " ".join(detail.split())[:2000]
    if kind in ("auth", "credential"):
        if "AADSTS700024" in detail:
            return AuthError(f"{what}: {EXPIRED_ASSERTION_HINT}. Azure said: {detail}")
        if "AADSTS70021" in detail or "federated identity" in detail.lower():
            return AuthError(f"{what}: Azure refused the GitHub OIDC token: {FEDERATED_HINT}. Azure said: {detail}")
        if "AADSTS700016" in detail or "AADSTS90002" in detail:
            return AuthError(f"{what}: the client-id or tenant-id is wrong (no such application in the "
                             f"tenant): check the AZURE_CLIENT_ID / AZURE_TENANT_ID values. Azure said: {detail}")
        return AuthError(f"{what}: no usable Azure credential: {LOGIN_HINT}. Azure said: {detail}")
    if kind == "forbidden" and re.search(r"workspaces/onlineEndpoints/(write|delete)\b", detail):
        return AuthError(f"{what}: permission denied (HTTP 403): only the production identity may change an online "
                         "endpoint (its creation, traffic, mirror, tags): run it in a job with `environment: "
                         "production` (promote; rollback.yml for a traffic rollback) or as that identity. "
                         f"Azure said: {detail}")
    if kind == "forbidden":
        return AuthError(f"{what}: permission denied (HTTP 403): {ROLE_HINT}. Azure said: {detail}")
    if kind == "not_found":
        return NotFoundError(f"{what}: not found in the workspace. Azure said: {detail}")
    if kind == "version_exists" or (kind == "conflict" and asset_version_taken(detail)):
        return ConflictError(f"{what}: that version already exists with other content (asset versions are "
                             "immutable; an archived version still holds its number). Nothing was changed; "
                             "re-run (the next free version is chosen from all versions, archived ones "
                             f"included) or restore/inspect it in Azure ML studio. Azure said: {detail}")
    if kind in ("conflict", "invalid") and endpoint_name_taken(detail):
        return ConflictError(f"{what}: the endpoint name is taken in this Azure region (endpoint names are "
                             "unique per region, across all workspaces and subscriptions); choose another "
                             "name in endpoints/*/endpoint.yml (or MLOPS_*_ENDPOINT). Not retried: waiting "
                             f"does not free it. Azure said: {detail}")
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


def automl_job_problem(name: str, status: object, primary_metric: object) -> Exception | None:
    """Why the job ``name`` cannot give a model (``None`` when it can): not an AutoML job (no primary
    metric), or not finished successfully (AutoML tags its best trial when the sweep completes)."""
    if not automl.metric_name(primary_metric):
        return UsageError(f"job {name!r} is not an AutoML job (it has no primary metric): give job:NAME of an AutoML "
                          "job, a model folder or azureml:NAME:VERSION")
    state = job_status(status)
    if state != "Completed":
        hint = ("wait for it to finish (mlops jobs show " + name + ")") if state in ("Queued", "Running") \
            else "its best trial is only known once it completes; submit it again"
        return UsageError(f"AutoML job {name!r} is {_enum_text(status) or state}, not Completed: {hint}")
    return None
