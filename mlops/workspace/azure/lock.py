"""The release lock on Azure: an infinite blob lease in the workspace's blob store (workspaceblobstore).

Why a blob and not the endpoint (what this replaced): Azure RBAC has one action,
``Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write``, for an online endpoint's
traffic, its mirror, its tags and its creation (Azure ML "Manage access to Azure Machine Learning
workspaces", the table of online endpoint actions; the built-in roles' JSON in "Azure built-in roles
for AI + machine learning"). A lock kept as an endpoint tag made every job that takes it - the
release identity's candidate and gate jobs - hold that action, so the release identity could shift
traffic too. A lease on a blob needs only blob data access, which the release identity has anyway
because it uploads code and models to the same datastore:

* a key- or SAS-based datastore (the workspace default): azure-ai-ml asks the workspace for a SAS
  (``DatastoreOperations._list_secrets(expirable_secret=True)``, action
  ``workspaces/datastores/listsecrets/action``, part of "AzureML Data Scientist"'s
  ``workspaces/*/action``); a service SAS with ``w`` may "snapshot or lease the blob" (Azure Storage,
  "Create a service SAS", permissions table);
* an identity-based datastore: the identity's own token; "Storage Blob Data Contributor" holds
  ``Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write``, the data action of
  Lease Blob (Azure Storage, "Authorize access to blobs using Microsoft Entra ID", permissions per
  operation).

The storage client is built from exactly what the SDK uses for its own uploads
(``azure.ai.ml._artifacts._artifact_utilities.get_datastore_info`` on ``workspaceblobstore``: account
URL, container and credential), so the lock lives wherever the release's code uploads go.

The ARM Tags API (``Microsoft.Resources/tags/write`` with "Tag Contributor") was the other
candidate: it would keep the lock on a resource without endpoint write, but a tags PUT/PATCH has no
condition (no ETag / If-Match on ``Tags - Create Or Update At Scope``), so two writers can both
"win" - the race the endpoint tag had. A lease is granted by the storage service atomically.

How the lease is used (Azure Storage REST, "Lease Blob"; its remarks' table "Outcomes of lease
operations on blobs by lease state"):

* the blob ``mlops-release-locks/<endpoint>`` is created empty if missing; the lease is infinite
  (``lease_duration=-1``: a release can wait days for its approval) with a lease id derived from the
  holder (``uuid5``), so the holder's next job - another process, another runner - acquires it again
  with the same proposed id, which the service allows on a lease it already holds ("Acquire" on
  ``Leased (A)`` with ``A``: still leased), while any other id gets 409 ``LeaseAlreadyPresent``;
* the holder and start time are the blob's metadata, written under the lease (a write to a leased
  blob needs its lease id, so nobody else can change them), read by anyone;
* releasing clears the metadata and releases the lease - only with the holder's id: another
  holder's lease is never released (409 ``LeaseIdMismatchWithLeaseOperation``);
* a dead holder's lease stays until someone breaks it (``az storage blob lease break``, printed in
  the conflict message); an infinite lease never expires on its own, like the tag before it.

Migration: an endpoint tag ``mlops.release-lock`` left by an older mlops is honoured, read-only: it
still means "a release of the old version may be in progress" (in Actions that release runs its own
commit's code to the end), so a new release is refused with the command that removes the tag. The
new code never writes that tag (the release identity may not), and no release removes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, unquote

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from mlops.errors import ConflictError
from mlops.workspace import azure_decisions as decide
from mlops.workspace import rules
from mlops.workspace.azure.calls import AzureCalls, _tags
from mlops.workspace.azure_decisions import RELEASE_LOCK_TAG
from mlops.workspace.port import ReleaseLock

LOCK_PREFIX = "mlops-release-locks/"
"""Folder of the lock blobs in workspaceblobstore's container (one blob per online endpoint)."""

HOLDER_KEY = "mlops_holder"
STARTED_KEY = "mlops_started"
"""Metadata names must be C# identifiers (Azure Storage, "Setting and retrieving properties and
metadata for Blob service resources"); values are HTTP header values, so the holder is quoted."""

_LEASE_NAMESPACE = uuid.UUID("6f1d3c52-8a7e-4a55-9d0f-6b2a1c4e9f10")

HELD_STATES = frozenset({"leased", "breaking"})
"""Lease states in which a lease still blocks other acquirers (LeaseProperties.state: available,
leased, expired, breaking, broken; "Lease Blob": during the break period no new lease is granted)."""


class BlobLike(Protocol):
    """The part of ``azure.storage.blob.BlobClient`` the lock uses."""

    def get_blob_properties(self, **kwargs: Any) -> Any: ...
    def upload_blob(self, data: bytes, **kwargs: Any) -> Any: ...
    def set_blob_metadata(self, metadata: dict[str, str], **kwargs: Any) -> Any: ...


# --- pure decisions -----------------------------------------------------------------------------

def blob_name(endpoint_name: str) -> str:
    return f"{LOCK_PREFIX}{endpoint_name}"


def lease_id(holder: str) -> str:
    """The lease id of ``holder``: the same in every job and process of one release, different for
    every other release (so the service itself tells them apart)."""
    return str(uuid.uuid5(_LEASE_NAMESPACE, holder))


def lock_metadata(holder: str, started: str) -> dict[str, str]:
    return {HOLDER_KEY: quote(holder, safe=""), STARTED_KEY: started}


def parse_lease(endpoint_name: str, lease_state: str | None, metadata: dict[str, str] | None) -> ReleaseLock | None:
    """The lock a blob's lease state and metadata describe (``None``: free). A held lease whose
    metadata is not written yet (the holder died between the two calls) is held by an unknown holder."""
    if (lease_state or "").lower() not in HELD_STATES:
        return None
    metadata = metadata or {}
    holder = unquote(metadata.get(HOLDER_KEY, "")) or "an unknown holder"
    return ReleaseLock(endpoint_name, holder, metadata.get(STARTED_KEY, ""))


def break_command(endpoint_name: str, account: str, container: str) -> str:
    return (f"az storage blob lease break --account-name {account} --container-name {container} "
            f"--blob-name {blob_name(endpoint_name)} --auth-mode login")


def lease_conflict(current: ReleaseLock, holder: str, *, account: str, container: str) -> ConflictError:
    return ConflictError(
        f"endpoint {current.endpoint_name!r} is being released by {current.holder!r} since "
        f"{current.acquired_at or 'an unknown time'} (a lease on blob {blob_name(current.endpoint_name)} in "
        f"workspaceblobstore); {holder!r} waits for it to finish - or, if that release is dead, break the lease: "
        f"{break_command(current.endpoint_name, account, container)}")


def legacy_conflict(current: ReleaseLock) -> ConflictError:
    return ConflictError(
        f"endpoint {current.endpoint_name!r} carries the release lock tag {RELEASE_LOCK_TAG!r} of an older mlops "
        f"(held by {current.holder!r} since {current.acquired_at or 'an unknown time'}); wait for that release "
        f"to finish - or, if it is over, remove the tag as the production identity or an owner: "
        f"az ml online-endpoint update --name {current.endpoint_name} --remove tags.{RELEASE_LOCK_TAG}")


def lease_refused(exc: Exception) -> bool:
    """A lease operation the service refused because of another lease (409 ``LeaseAlreadyPresent``,
    ``LeaseIdMismatchWithLeaseOperation``; 412 ``LeaseIdMissing``/``LeaseIdMismatchWithBlobOperation``
    on a write under a lease that is no longer ours). The storage SDK raises these as a plain
    ``HttpResponseError`` with ``error_code`` (azure-storage-blob ``_shared/response_handlers.py``
    maps only not-found/exists/condition codes to subclasses)."""
    return (isinstance(exc, HttpResponseError) and getattr(exc, "status_code", None) in (409, 412)
            and str(getattr(exc, "error_code", "") or "").startswith("Lease"))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the lease ----------------------------------------------------------------------------------

@dataclass
class BlobReleaseLock:
    """The lock's three operations on one lock blob per endpoint.

    ``blob(endpoint)`` returns the endpoint's ``BlobClient`` (fresh credentials each time: the
    datastore's SAS expires); ``lease(blob, lease_id)`` a ``BlobLeaseClient``; ``legacy(endpoint)``
    the endpoint's tags (``None`` when it does not exist); ``translate(what, error)`` maps any other
    storage error to the project's (the adapter's boundary); ``account``/``container`` name the
    datastore in messages."""

    blob: Callable[[str], BlobLike]
    lease: Callable[[BlobLike, str], Any]
    legacy: Callable[[str], dict[str, str] | None]
    translate: Callable[[str, Exception], Exception]
    account: str
    container: str
    clock: Callable[[], str] = now

    def get(self, endpoint_name: str) -> ReleaseLock | None:
        current = self._read(self.blob(endpoint_name), endpoint_name)
        return current if current is not None else decide.parse_lock(endpoint_name, (self.legacy(endpoint_name) or {}).get(RELEASE_LOCK_TAG))

    def acquire(self, endpoint_name: str, holder: str) -> ReleaseLock:
        legacy = decide.parse_lock(endpoint_name, (self.legacy(endpoint_name) or {}).get(RELEASE_LOCK_TAG))
        if legacy is not None:
            raise legacy_conflict(legacy)
        blob = self.blob(endpoint_name)
        self._create_if_missing(blob, endpoint_name)
        ident = lease_id(holder)
        try:
            self.lease(blob, ident).acquire(lease_duration=-1)
        except HttpResponseError as exc:
            if not lease_refused(exc):
                raise self.translate(f"take the release lock of {endpoint_name}", exc) from exc
            current = self._read(blob, endpoint_name) or ReleaseLock(endpoint_name, "an unknown holder", "")
            raise lease_conflict(current, holder, account=self.account, container=self.container) from None
        current = self._read(blob, endpoint_name)
        if current is not None and current.holder == holder and current.acquired_at:
            return current  # the same release resumes (another job, another process): its start stands
        started = self.clock()
        try:
            blob.set_blob_metadata(lock_metadata(holder, started), lease=ident)
        except HttpResponseError as exc:
            raise self.translate(f"record the holder of the release lock of {endpoint_name}", exc) from exc
        return ReleaseLock(endpoint_name, holder, started)

    def release(self, endpoint_name: str, holder: str) -> None:
        blob = self.blob(endpoint_name)
        current = self._read(blob, endpoint_name)
        if current is None:
            return  # already free (or never taken)
        if current.holder != holder:  # never release another holder's lease
            raise ConflictError(f"the release lock of online endpoint {endpoint_name} is held by {current.holder!r} "
                                f"since {current.acquired_at}, not by {holder!r}; it was left in place")
        ident = lease_id(holder)
        try:
            blob.set_blob_metadata({}, lease=ident)
            self.lease(blob, ident).release()
        except HttpResponseError as exc:
            if not lease_refused(exc):
                raise self.translate(f"release the release lock of {endpoint_name}", exc) from exc
            # broken (and perhaps taken by another release) between the read and here
            raise ConflictError(f"the release lock of online endpoint {endpoint_name} is no longer {holder!r}'s "
                                "(its lease was broken); it was left in place") from None

    def _read(self, blob: BlobLike, endpoint_name: str) -> ReleaseLock | None:
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            raise self.translate(f"read the release lock of {endpoint_name}", exc) from exc
        return parse_lease(endpoint_name, getattr(props.lease, "state", None), dict(props.metadata or {}))

    def _create_if_missing(self, blob: BlobLike, endpoint_name: str) -> None:
        try:
            blob.get_blob_properties()
            return
        except ResourceNotFoundError:
            pass
        except HttpResponseError as exc:
            raise self.translate(f"read the release lock of {endpoint_name}", exc) from exc
        try:  # two releases may both find it missing: the later upload is refused, which is fine
            blob.upload_blob(b"", overwrite=False)
        except ResourceExistsError:
            pass
        except HttpResponseError as exc:
            if not lease_refused(exc):  # 412 LeaseIdMissing: it exists and is leased already
                raise self.translate(f"create the release lock blob of {endpoint_name}", exc) from exc


@dataclass(frozen=True)
class LeaseStorage:
    """Where the lock blobs live: a ``BlobClient`` per blob name, a ``BlobLeaseClient`` per (blob, id),
    and the storage account and container (for the messages)."""

    blob: Callable[[str], BlobLike]
    lease: Callable[[BlobLike, str], Any]
    account: str
    container: str


def datastore_storage(ml_client: Any) -> LeaseStorage:
    """The datastore azure-ai-ml uploads code and models to, ``workspaceblobstore``, resolved as the SDK
    resolves it for an upload (``get_datastore_info(operations, WORKSPACE_BLOB_STORE)``, as
    ``CodeOperations`` does - "always use WORKSPACE_BLOB_STORE": the datastore, then a SAS from
    ``_list_secrets`` - or the client's credential for an identity-based datastore). By name, not
    ``None``: azure-ai-ml 1.35's ``get_datastore_info(ops, None)`` reaches ``_list_secrets(name=None)``,
    which fails in the SDK's own URL serializer ("No value for given attribute"; seen on the wire
    tests' emulator)."""
    from azure.ai.ml._artifacts._artifact_utilities import get_datastore_info
    from azure.ai.ml.entities._datastore._constants import WORKSPACE_BLOB_STORE
    from azure.storage.blob import BlobLeaseClient, ContainerClient

    info = get_datastore_info(ml_client.datastores, WORKSPACE_BLOB_STORE)
    container = ContainerClient(account_url=info["account_url"], container_name=info["container_name"],
                                credential=info["credential"])
    return LeaseStorage(blob=container.get_blob_client,
                        lease=lambda blob, ident: BlobLeaseClient(blob, lease_id=ident),  # type: ignore[arg-type]
                        account=str(info["storage_account"]), container=str(info["container_name"]))


class LockOps(AzureCalls):
    """The port's release-lock methods on a blob lease (see the module docstring)."""

    def _release_lock(self) -> BlobReleaseLock:
        storage = self._lock_storage() if self._lock_storage is not None else self._call(
            "find the workspace's blob store (workspaceblobstore) (for the release lock)", datastore_storage, self._ml)
        return BlobReleaseLock(blob=lambda endpoint: storage.blob(blob_name(endpoint)), lease=storage.lease,
                               legacy=self._endpoint_tags, translate=self._translate,
                               account=storage.account, container=storage.container)

    def _endpoint_tags(self, endpoint_name: str) -> dict[str, str] | None:
        entity = self._get_or_none(f"get online endpoint {endpoint_name}", self._ml.online_endpoints.get,
                                   name=endpoint_name)
        return None if entity is None else _tags(entity)

    def get_release_lock(self, endpoint_name: str) -> ReleaseLock | None:
        return self._release_lock().get(endpoint_name)

    def acquire_release_lock(self, endpoint_name: str, holder: str) -> ReleaseLock:
        rules.check_endpoint_name(endpoint_name)
        return self._release_lock().acquire(endpoint_name, holder)

    def release_release_lock(self, endpoint_name: str, holder: str) -> None:
        self._release_lock().release(endpoint_name, holder)
