"""A narrow fake of the blob lease surface the Azure release lock uses (until the Azurite fixture).

It models Azure Storage's lease state machine where the lock depends on it (REST "Lease Blob",
remarks: "Outcomes of lease operations on blobs by lease state"; and the blob write rules under a
lease, "Put Blob" / "Set Blob Metadata": a write to a leased blob must carry its lease id):

* acquire on an available/expired/broken blob -> leased with the proposed id; acquire on a leased
  blob with the same id -> still leased (A); with another id -> 409 ``LeaseAlreadyPresent``; while
  breaking -> 409 ``LeaseIsBreakingAndCannotBeAcquired``;
* release with the lease's id -> available; with another id -> 409
  ``LeaseIdMismatchWithLeaseOperation``; without a lease -> 409 ``LeaseNotPresentWithLeaseOperation``;
* break (any caller, no id needed) -> broken at once (break period 0);
* set metadata on a leased blob without its id -> 412 ``LeaseIdMissing``, with another id -> 412
  ``LeaseIdMismatchWithBlobOperation``, with an id on an unleased blob -> 412
  ``LeaseNotPresentWithBlobOperation``;
* put with ``overwrite=False`` on an existing blob -> 409 ``BlobAlreadyExists`` (``If-None-Match: *``).

Errors are azure.core's, shaped as azure-storage-blob raises them: ``ResourceNotFoundError`` /
``ResourceExistsError`` for not-found / exists codes, plain ``HttpResponseError`` with
``error_code`` for lease codes (``_shared/response_handlers.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError


def _error(cls: type[HttpResponseError], status: int, code: str) -> HttpResponseError:
    exc = cls(message=f"{code}\nErrorCode:{code}")
    exc.status_code = status
    exc.error_code = code
    return exc


@dataclass
class _Blob:
    metadata: dict[str, str] = field(default_factory=dict)
    state: str = "available"  # available | leased | broken
    lease_id: str | None = None


@dataclass
class FakeBlobService:
    """One container's blobs; ``calls`` records every operation (for assertions)."""

    blobs: dict[str, _Blob] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def blob(self, name: str) -> FakeBlobClient:
        return FakeBlobClient(self, name)

    def lease(self, blob: FakeBlobClient, lease_id: str) -> FakeLeaseClient:
        return FakeLeaseClient(blob, lease_id)


@dataclass
class FakeBlobClient:
    service: FakeBlobService
    name: str

    def _get(self) -> _Blob:
        blob = self.service.blobs.get(self.name)
        if blob is None:
            raise _error(ResourceNotFoundError, 404, "BlobNotFound")
        return blob

    def get_blob_properties(self, **_: Any) -> Any:
        self.service.calls.append(("get_properties", self.name))
        blob = self._get()
        return SimpleNamespace(metadata=dict(blob.metadata), lease=SimpleNamespace(state=blob.state))

    def upload_blob(self, data: bytes, *, overwrite: bool = False, **_: Any) -> None:
        self.service.calls.append(("upload", self.name))
        blob = self.service.blobs.get(self.name)
        if blob is not None and not overwrite:
            raise _error(ResourceExistsError, 409, "BlobAlreadyExists")
        if blob is not None and blob.state == "leased":
            raise _error(HttpResponseError, 412, "LeaseIdMissing")
        self.service.blobs[self.name] = _Blob()

    def set_blob_metadata(self, metadata: dict[str, str], *, lease: str | None = None, **_: Any) -> None:
        self.service.calls.append(("set_metadata", self.name))
        blob = self._get()
        if blob.state == "leased" and lease is None:
            raise _error(HttpResponseError, 412, "LeaseIdMissing")
        if blob.state == "leased" and lease != blob.lease_id:
            raise _error(HttpResponseError, 412, "LeaseIdMismatchWithBlobOperation")
        if blob.state != "leased" and lease is not None:
            raise _error(HttpResponseError, 412, "LeaseNotPresentWithBlobOperation")
        blob.metadata = dict(metadata)


@dataclass
class FakeLeaseClient:
    blob: FakeBlobClient
    lease_id: str

    def acquire(self, lease_duration: int = -1, **_: Any) -> None:
        self.blob.service.calls.append(("acquire", self.blob.name))
        assert lease_duration == -1 or 15 <= lease_duration <= 60, "Lease Blob: 15-60 s or infinite (-1)"
        blob = self.blob._get()
        if blob.state == "leased" and blob.lease_id != self.lease_id:
            raise _error(HttpResponseError, 409, "LeaseAlreadyPresent")
        blob.state, blob.lease_id = "leased", self.lease_id

    def release(self, **_: Any) -> None:
        self.blob.service.calls.append(("release", self.blob.name))
        blob = self.blob._get()
        if blob.state != "leased":
            raise _error(HttpResponseError, 409, "LeaseNotPresentWithLeaseOperation")
        if blob.lease_id != self.lease_id:
            raise _error(HttpResponseError, 409, "LeaseIdMismatchWithLeaseOperation")
        blob.state, blob.lease_id = "available", None

    def break_lease(self, lease_break_period: int | None = None, **_: Any) -> int:
        self.blob.service.calls.append(("break", self.blob.name))
        blob = self.blob._get()
        if blob.state != "leased":
            raise _error(HttpResponseError, 409, "LeaseNotPresentWithLeaseOperation")
        blob.state, blob.lease_id = "broken", None
        return 0


def lease_storage(service: FakeBlobService) -> Any:
    """The adapter's ``lock.LeaseStorage`` over this fake (workspaceblobstore's container)."""
    from mlops.workspace.azure.lock import LeaseStorage

    return LeaseStorage(blob=service.blob, lease=service.lease, account="stfake", container="azureml-blobstore-fake")
