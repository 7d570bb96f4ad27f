"""The Azure release lock as a blob lease (mlops/workspace/azure/lock.py), on the narrow lease fake
(tests/azure/fake_blob_lease.py: the Lease Blob state machine, with citations)."""

from __future__ import annotations

import inspect

import pytest
from azure.core.exceptions import HttpResponseError

from mlops.errors import ConflictError, WorkspaceError
from mlops.workspace.azure import lock as lease_lock
from mlops.workspace.port import ReleaseLock
from tests.azure.fake_blob_lease import FakeBlobClient, FakeBlobService, _error

ENDPOINT = "tcn-dau"


def _lock(service: FakeBlobService, *, tags: dict[str, str] | None = None,
          started: str = "2026-12-01T15:00:00Z") -> lease_lock.BlobReleaseLock:
    return lease_lock.BlobReleaseLock(
        blob=lambda endpoint: service.blob(lease_lock.blob_name(endpoint)),
        lease=service.lease,
        legacy=lambda endpoint: tags,
        translate=lambda what, exc: WorkspaceError(f"{what}: {exc}"),
        account="stmlops", container="azureml-blobstore-1", clock=lambda: started)


def test_a_free_lock_is_taken_and_read_back_by_anyone() -> None:
    service = FakeBlobService()
    taken = _lock(service).acquire(ENDPOINT, "release-41")
    assert taken == ReleaseLock(ENDPOINT, "release-41", "2026-12-01T15:00:00Z")
    assert _lock(service).get(ENDPOINT) == taken  # another process sees the holder
    blob = service.blobs["mlops-release-locks/tcn-dau"]
    assert blob.state == "leased" and blob.lease_id == lease_lock.lease_id("release-41")


def test_another_release_is_refused_by_the_service_naming_the_holder_and_the_break_command() -> None:
    service = FakeBlobService()
    _lock(service).acquire(ENDPOINT, "release-41")
    with pytest.raises(ConflictError) as refused:
        _lock(service).acquire(ENDPOINT, "release-42")
    message = str(refused.value)
    assert "'release-41'" in message and "2026-12-01T15:00:00Z" in message
    assert ("az storage blob lease break --account-name stmlops --container-name azureml-blobstore-1 "
            "--blob-name mlops-release-locks/tcn-dau") in message
    assert _lock(service).get(ENDPOINT).holder == "release-41"  # the refused release changed nothing


def test_the_same_release_in_another_job_takes_it_again_and_keeps_its_start() -> None:
    service = FakeBlobService()
    _lock(service, started="2026-12-01T15:00:00Z").acquire(ENDPOINT, "release-41")
    again = _lock(service, started="2026-12-03T09:00:00Z").acquire(ENDPOINT, "release-41")
    assert again.acquired_at == "2026-12-01T15:00:00Z"


def test_release_frees_it_for_the_next_release_and_is_idempotent() -> None:
    service = FakeBlobService()
    _lock(service).acquire(ENDPOINT, "release-41")
    _lock(service).release(ENDPOINT, "release-41")
    assert _lock(service).get(ENDPOINT) is None
    assert service.blobs["mlops-release-locks/tcn-dau"].metadata == {}  # no stale holder left behind
    _lock(service).release(ENDPOINT, "release-41")  # already free: nothing to do
    assert _lock(service).acquire(ENDPOINT, "release-42").holder == "release-42"


def test_another_holders_lock_is_never_released() -> None:
    service = FakeBlobService()
    _lock(service).acquire(ENDPOINT, "release-41")
    with pytest.raises(ConflictError, match="held by 'release-41'.*left in place"):
        _lock(service).release(ENDPOINT, "release-42")
    assert service.blobs["mlops-release-locks/tcn-dau"].state == "leased"


def test_a_dead_holders_broken_lease_lets_the_next_release_in() -> None:
    service = FakeBlobService()
    _lock(service).acquire(ENDPOINT, "release-41")
    service.lease(service.blob("mlops-release-locks/tcn-dau"), "anyone").break_lease(lease_break_period=0)
    assert _lock(service).get(ENDPOINT) is None
    assert _lock(service).acquire(ENDPOINT, "release-42").holder == "release-42"
    with pytest.raises(ConflictError, match="held by 'release-42'"):  # the dead one, back, may not free it
        _lock(service).release(ENDPOINT, "release-41")


def test_a_lease_without_its_holder_metadata_still_blocks() -> None:
    """The holder died between acquiring the lease and writing its name."""
    service = FakeBlobService()
    blob = service.blob("mlops-release-locks/tcn-dau")
    blob.upload_blob(b"")
    service.lease(blob, lease_lock.lease_id("release-41")).acquire(lease_duration=-1)
    assert _lock(service).get(ENDPOINT) == ReleaseLock(ENDPOINT, "an unknown holder", "")
    with pytest.raises(ConflictError, match="an unknown holder"):
        _lock(service).acquire(ENDPOINT, "release-42")
    assert _lock(service).acquire(ENDPOINT, "release-41").holder == "release-41"  # its own release resumes


def test_an_older_versions_endpoint_tag_is_honoured_read_only() -> None:
    service = FakeBlobService()
    tags = {"mlops.release-lock": "release-40@2026-11-30T10:00:00Z", "owner": "team"}
    lock = _lock(service, tags=tags)
    assert lock.get(ENDPOINT) == ReleaseLock(ENDPOINT, "release-40", "2026-11-30T10:00:00Z")
    service.calls.clear()
    with pytest.raises(ConflictError) as refused:
        lock.acquire(ENDPOINT, "release-41")
    assert "az ml online-endpoint update --name tcn-dau --remove tags.mlops.release-lock" in str(refused.value)
    assert service.calls == []  # refused before the storage account is touched: no blob, no lease


def test_other_storage_failures_go_through_the_adapters_translation() -> None:
    service = FakeBlobService()
    lock = _lock(service)

    def denied(endpoint: str) -> FakeBlobClient:
        client = service.blob(lease_lock.blob_name(endpoint))

        def refuse(**_: object) -> None:
            raise _error(HttpResponseError, 403, "AuthorizationPermissionMismatch")
        client.get_blob_properties = refuse  # type: ignore[method-assign]
        return client

    lock.blob = denied
    with pytest.raises(WorkspaceError, match="read the release lock of tcn-dau.*AuthorizationPermissionMismatch"):
        lock.get(ENDPOINT)


@pytest.mark.parametrize(("state", "metadata", "expected"), [
    ("available", {"mlops_holder": "r1", "mlops_started": "t"}, None),
    ("expired", {"mlops_holder": "r1", "mlops_started": "t"}, None),
    ("broken", {"mlops_holder": "r1", "mlops_started": "t"}, None),
    ("leased", {"mlops_holder": "r1", "mlops_started": "t"}, ReleaseLock(ENDPOINT, "r1", "t")),
    ("breaking", {"mlops_holder": "r1", "mlops_started": "t"}, ReleaseLock(ENDPOINT, "r1", "t")),
    ("leased", {}, ReleaseLock(ENDPOINT, "an unknown holder", "")),
    ("leased", {"mlops_holder": "run%40main%2F7", "mlops_started": "t"}, ReleaseLock(ENDPOINT, "run@main/7", "t")),
    (None, None, None),
])
def test_parse_lease(state: str | None, metadata: dict[str, str] | None, expected: ReleaseLock | None) -> None:
    assert lease_lock.parse_lease(ENDPOINT, state, metadata) == expected


@pytest.mark.parametrize(("holder", "other"), [("release-41", "release-42"), ("a", "a ")])
def test_lease_ids_are_stable_per_holder_and_distinct_between_holders(holder: str, other: str) -> None:
    assert lease_lock.lease_id(holder) == lease_lock.lease_id(holder)
    assert lease_lock.lease_id(holder) != lease_lock.lease_id(other)


def test_the_sdk_helper_the_lock_builds_its_client_from_exists() -> None:
    """The lock uses the SDK's own datastore lookup for uploads (account URL, container, credential)."""
    from azure.ai.ml._artifacts._artifact_utilities import get_datastore_info

    assert list(inspect.signature(get_datastore_info).parameters)[:2] == ["operations", "name"]
