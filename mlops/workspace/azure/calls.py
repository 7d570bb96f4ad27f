"""The adapter's boundary: SDK calls, retries, long-running operations, waits, error translation."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.ai.ml import MLClient
from azure.ai.ml.exceptions import AssetPathException, MlException, ValidationException
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from mlops.errors import (
    AuthError,
    ConflictError,
    MlopsError,
    NotFoundError,
    WorkspaceError,
)
from mlops.workspace import azure_decisions as decide
from mlops.workspace import azure_monitor
from mlops.workspace.port import (
    Progress,
    no_progress,
)

T = TypeVar("T")

HttpPost = Callable[[str, bytes, Mapping[str, str], float], tuple[int, bytes]]
"""``(url, body, headers, timeout) -> (status, response body)``: how ``invoke`` reaches a scoring URI."""

LRO_PROGRESS_EVERY = 30.0
"""Seconds between progress lines while a long-running operation (deployment: often 5-15 min) runs."""


def _urllib_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the endpoint's https URI
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tags(entity: Any) -> dict[str, str]:
    return dict(getattr(entity, "tags", None) or {})



@dataclass(frozen=True)
class AzureOptions:
    """How the adapter waits and retries, and its contacts with the world besides the SDK: ``sleep``,
    the clocks and ``http_post``. Tests pass fakes so retries and waits take no time and nothing
    leaves the machine; ``AzureWorkspace(client, sleep=..., retry_base=...)`` sets any of them by name."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds: deadlines of long-running operations and waits."""
    wall_clock: Callable[[], float] = time.time
    """Epoch seconds: the windows of Azure Monitor queries."""
    http_post: HttpPost = _urllib_post
    lro_timeout: float = 3600.0
    settle_timeout: float = 600.0
    """How long ``_wait_until`` waits for Azure to *report* a change (a traffic split, a batch default)."""
    poll_interval: float = 5.0
    retry_attempts: int = 8
    retry_base: float = 5.0
    invoke_timeout: float = 90.0
    ingestion_delay_s: float = azure_monitor.INGESTION_DELAY_S
    wait_for_ingestion: bool = True


class AzureCalls:
    """The boundary every operation group goes through: one SDK call (``_call``), one long-running
    operation (``_lro``), a wait for Azure to *report* a change (``_wait_until``), and the
    translation of every SDK exception into ``mlops.errors`` (``_translate``).

    How it waits, retries and reaches a scoring URI is ``options`` (``AzureOptions``), set whole or
    by name (``option_values``: ``sleep=``, ``clock=``, ``retry_base=`` ...).
    """

    def __init__(self, ml_client: MLClient, *, uri: str | None = None, credential: Any = None,
                 logs_client: Any = None, log_workspace_id: str | None = None,
                 lock_storage: Callable[[], Any] | None = None, options: AzureOptions | None = None,
                 **option_values: Any) -> None:
        self._ml = ml_client
        self.options = replace(options or AzureOptions(), **option_values)
        self._lock_storage = lock_storage
        """Where the release lock's blob lives (``lock.LeaseStorage``); ``None``: the workspace's default
        datastore (``lock.datastore_storage``). Tests give a fake or Azurite."""
        self._logs = logs_client
        """``azure.monitor.query.LogsQueryClient`` (or a fake with its ``query_workspace`` signature)."""
        self._log_workspace_id = log_workspace_id
        self._credential = credential
        self.uri = uri or (f"azureml://subscriptions/{ml_client.subscription_id}/resourceGroups/"
                           f"{ml_client.resource_group_name}/workspaces/{ml_client.workspace_name}")
        self._batch_jobs: dict[str, tuple[str, str]] = {}
        self._invoke_targets: dict[str, tuple[str, str, str]] = {}
        """Endpoint -> (scoring URI, auth mode, key) for ``invoke``: read once, not three ARM calls a
        request; forgotten when the key is regenerated, the endpoint deleted, or a request gets 401."""

    # the boundary ----------------------------------------------------------------------------
    def _translate(self, what: str, exc: BaseException, attempts: int = 1) -> MlopsError:
        if isinstance(exc, MlopsError):
            return exc
        if isinstance(exc, ClientAuthenticationError):
            return decide.translate("auth", what, str(exc), status=getattr(exc, "status_code", None))
        if isinstance(exc, ResourceNotFoundError):
            return decide.translate("not_found", what, str(exc), status=404)
        if isinstance(exc, ResourceExistsError):
            return decide.translate("conflict", what, str(exc), status=409, attempts=attempts)
        if isinstance(exc, HttpResponseError):
            status = exc.status_code
            return decide.translate(decide.classify_status(status), what, str(exc.message or exc),
                                    status=status, attempts=attempts)
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
            return decide.translate("network", what, str(exc))
        if isinstance(exc, AssetPathException):
            # azure-ai-ml raises it when the service answers a version PUT with "(UserError) Asset paths
            # cannot be updated." (``ModelOperations.create_or_update``; ``ASSET_PATH_ERROR`` in
            # azure/ai/ml/_artifacts/_constants.py): that version exists with other files.
            return decide.translate("version_exists", what, str(exc))
        if isinstance(exc, ValidationException):
            return decide.translate("invalid", what, str(exc))
        if isinstance(exc, MlException):
            return decide.translate("other", what, str(exc))
        raise exc

    def _call(self, what: str, fn: Callable[..., T], *args: Any, progress: Progress = no_progress,
              retry: bool = True, **kwargs: Any) -> T:
        """Run one SDK call; retry 409 "in progress" and the transient statuses with backoff
        (``azure_decisions.is_retryable_status``) unless ``retry`` is off: creating an asset version
        that exists is a lasting conflict, not a busy resource; translate every SDK error."""
        delays = decide.backoff_delays(self.options.retry_attempts if retry else 1, base=self.options.retry_base)
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(*args, **kwargs)
            except HttpResponseError as exc:
                status = 409 if isinstance(exc, ResourceExistsError) else exc.status_code
                retryable = decide.is_retryable_status(status, str(exc.message or exc))
                delay = next(delays, None) if retryable else None
                if delay is None:
                    raise self._translate(what, exc, attempts=attempt) from exc
                reason = "operation in progress" if status == 409 else "throttled" if status == 429 else "transient"
                progress(f"{what}: Azure reports HTTP {status} ({reason}); retrying in {delay:.0f}s")
                self.options.sleep(delay)
            except (ClientAuthenticationError, ServiceRequestError, ServiceResponseError, MlException) as exc:
                raise self._translate(what, exc, attempts=attempt) from exc

    def _lro(self, what: str, start: Callable[[], Any], *, progress: Progress = no_progress,
             failed: Callable[[str], MlopsError] | None = None) -> Any:
        """Start a long-running operation (a start refused with 409/429 is retried) and wait for it,
        with a progress line every ``LRO_PROGRESS_EVERY`` seconds. A failure *while waiting* means
        Azure accepted the request and the operation itself failed: ``failed(reason)`` builds the
        error then (e.g. ``DeploymentFailedError`` with the logs); else it is translated as usual."""
        poller = self._call(what, start, progress=progress)
        started = self.options.clock()
        try:
            while not poller.done():
                elapsed = self.options.clock() - started
                if elapsed >= self.options.lro_timeout:
                    raise WorkspaceError(f"{what}: still running after {self.options.lro_timeout:.0f}s; check it in Azure "
                                         "ML studio and re-run the command (it is idempotent)")
                poller.wait(timeout=min(LRO_PROGRESS_EVERY, self.options.lro_timeout - elapsed))
                if not poller.done():
                    progress(f"{what}: in progress ({self.options.clock() - started:.0f}s)")
            return poller.result()
        except (HttpResponseError, ClientAuthenticationError, ServiceRequestError, ServiceResponseError,
                MlException) as exc:
            error = self._translate(what, exc)
            if failed is not None and not isinstance(error, (AuthError, ConflictError)):
                raise failed(str(exc)) from exc
            raise error from exc

    def _wait_idle(self, what: str, states: Callable[[], Mapping[str, object]], progress: Progress) -> None:
        """Before a write: until no operation runs on the resources ``states()`` reads (their
        ``provisioning_state`` by name; ``azure_decisions.operations_in_flight`` says why), at most
        ``lro_timeout``. Another writer's operation (a release that timed out, the portal, autoscale)
        would make Azure refuse ours with 409 for as long as it runs - minutes, more than a refused
        call's backoff. A write that races one started after this check is still retried (``_call``)."""
        deadline = self.options.clock() + self.options.lro_timeout
        while busy := decide.operations_in_flight(states()):
            if self.options.clock() >= deadline:
                raise WorkspaceError(f"{what}: {', '.join(busy)} still after {self.options.lro_timeout:.0f}s; Azure "
                                     "refuses another write until that operation ends - check it in Azure ML studio "
                                     "and re-run (it is idempotent)")
            progress(f"{what}: waiting for an operation already running in Azure to end ({', '.join(busy)})")
            self.options.sleep(self.options.poll_interval)

    def _wait_until(self, what: str, check: Callable[[], bool]) -> None:
        deadline = self.options.clock() + self.options.settle_timeout
        while not check():
            if self.options.clock() >= deadline:
                raise WorkspaceError(f"{what}: Azure did not report the change within {self.options.settle_timeout:.0f}s")
            self.options.sleep(self.options.poll_interval)

    def _list(self, what: str, fn: Callable[..., Iterable[T]], *args: Any, **kwargs: Any) -> list[T]:
        """List, treating "the parent does not exist" as empty."""
        try:
            return self._call(what, lambda: list(fn(*args, **kwargs)))
        except NotFoundError:
            return []

    def _get_or_none(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        try:
            return self._call(what, fn, *args, **kwargs)
        except NotFoundError:
            return None

    def _write_endpoint(self, what: str, entity: Any, progress: Progress) -> None:
        """The only PUT of an online endpoint. Callers pass an object read with ``get`` (so its
        traffic and mirror travel with it) or a brand-new endpoint."""
        self._lro(what, lambda: self._ml.online_endpoints.begin_create_or_update(entity), progress=progress)
