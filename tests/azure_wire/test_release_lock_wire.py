"""The release lock on the real SDK stack: ``AzureWorkspace`` (real ``MLClient``) asks the emulator for
the default datastore and its secret exactly as azure-ai-ml does before an upload
(``get_datastore_info``), then leases a blob in Azurite - Microsoft's storage emulator, whose lease
state machine is the one the lock relies on (409 ``LeaseAlreadyPresent`` for another id, re-acquire
with the same id, release only with the lease's id, break by anyone)."""

from __future__ import annotations

import pytest
from azure.storage.blob import BlobLeaseClient, BlobServiceClient

from mlops.errors import ConflictError
from mlops.workspace.azure import AzureWorkspace
from mlops.workspace.azure import lock as lease_lock
from tests.azure_emulator import RunningEmulator, blob_container, storage_suffix

ENDPOINT = "tcn-dau"


def adapter(emu: RunningEmulator) -> AzureWorkspace:
    clock = emu.clock
    return AzureWorkspace(emu.ml_client(), sleep=clock.sleep, clock=clock.monotonic, wall_clock=clock.now,
                          retry_base=1.0, poll_interval=5.0)


def _lock_blob(emu: RunningEmulator, azurite):  # noqa: ANN001, ANN202 - the Azurite fixture's type is the emulator's
    service = BlobServiceClient(f"https://{azurite.account_name}.blob.{storage_suffix(azurite)}",
                                credential={"account_name": azurite.account_name, "account_key": azurite.account_key})
    return service.get_blob_client(blob_container(emu), lease_lock.blob_name(ENDPOINT))


def test_two_releases_one_lease_on_the_real_storage_service(emulator: RunningEmulator, azurite) -> None:
    first, second = adapter(emulator), adapter(emulator)  # two processes, one workspace
    taken = first.acquire_release_lock(ENDPOINT, "gh-run-41")
    assert second.get_release_lock(ENDPOINT) == taken

    with pytest.raises(ConflictError) as refused:
        second.acquire_release_lock(ENDPOINT, "gh-run-42")
    assert "'gh-run-41'" in str(refused.value)
    assert f"--container-name {blob_container(emulator)}" in str(refused.value)

    # the same release in its next job (a fresh client) takes it again, its start unchanged
    assert adapter(emulator).acquire_release_lock(ENDPOINT, "gh-run-41") == taken
    with pytest.raises(ConflictError, match="held by 'gh-run-41'"):
        second.release_release_lock(ENDPOINT, "gh-run-42")

    blob = _lock_blob(emulator, azurite)
    assert blob.get_blob_properties().lease.state == "leased"
    first.release_release_lock(ENDPOINT, "gh-run-41")
    props = blob.get_blob_properties()
    assert props.lease.state == "available" and not props.metadata
    assert second.acquire_release_lock(ENDPOINT, "gh-run-42").holder == "gh-run-42"


def test_a_dead_holders_lease_broken_by_hand_lets_the_next_release_in(emulator: RunningEmulator, azurite) -> None:
    ws = adapter(emulator)
    ws.acquire_release_lock(ENDPOINT, "gh-run-41")
    BlobLeaseClient(_lock_blob(emulator, azurite)).break_lease(lease_break_period=0)  # what the message says to do
    assert ws.get_release_lock(ENDPOINT) is None
    assert ws.acquire_release_lock(ENDPOINT, "gh-run-42").holder == "gh-run-42"
    with pytest.raises(ConflictError):  # the dead holder, back, cannot take it from the new one
        ws.acquire_release_lock(ENDPOINT, "gh-run-41")
