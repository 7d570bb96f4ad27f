"""The release lock of the local workspace: a row per endpoint holding the holder's pid and host. A lock
whose process is dead (on this machine) is stale and may be taken over."""

from __future__ import annotations

import os
import socket

from mlops.errors import ConflictError
from mlops.processes import process_alive
from mlops.workspace.local.registry.store import now
from mlops.workspace.local.workspace.base import LocalBase
from mlops.workspace.port import ReleaseLock


class LockOps(LocalBase):
    """``acquire_release_lock`` / ``release_release_lock`` / ``get_release_lock`` on the ``release_locks`` table."""

    def acquire_release_lock(self, endpoint_name: str, holder: str) -> ReleaseLock:
        hostname = socket.gethostname()
        with self.store.transaction() as conn:
            row = conn.execute("SELECT * FROM release_locks WHERE endpoint_name = ?", (endpoint_name,)).fetchone()
            if row is not None and row["holder"] != holder:
                alive = row["hostname"] != hostname or process_alive(row["pid"])
                if alive:
                    raise ConflictError(
                        f"the release lock of endpoint {endpoint_name!r} is held by {row['holder']!r} since "
                        f"{row['acquired_at']} (pid {row['pid']} on {row['hostname']}); wait for that release "
                        "to finish"
                    )
            acquired_at = row["acquired_at"] if row is not None and row["holder"] == holder else now()
            conn.execute(
                "INSERT INTO release_locks (endpoint_name, holder, pid, hostname, acquired_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT (endpoint_name) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, "
                "hostname = excluded.hostname, acquired_at = excluded.acquired_at",
                (endpoint_name, holder, os.getpid(), hostname, acquired_at),
            )
        return ReleaseLock(endpoint_name, holder, acquired_at)

    def release_release_lock(self, endpoint_name: str, holder: str) -> None:
        with self.store.transaction() as conn:
            row = conn.execute("SELECT holder FROM release_locks WHERE endpoint_name = ?", (endpoint_name,)).fetchone()
            if row is not None and row["holder"] != holder:
                raise ConflictError(f"the release lock of endpoint {endpoint_name!r} is held by {row['holder']!r}, "
                                    f"not {holder!r}")
            conn.execute("DELETE FROM release_locks WHERE endpoint_name = ?", (endpoint_name,))

    def get_release_lock(self, endpoint_name: str) -> ReleaseLock | None:
        """The lock in force: one whose holder process died on this machine is stale (the next
        ``acquire_release_lock`` takes it over), so it is reported as none."""
        with self.store.read() as conn:
            row = conn.execute("SELECT * FROM release_locks WHERE endpoint_name = ?", (endpoint_name,)).fetchone()
        if row is None or (row["hostname"] == socket.gethostname() and not process_alive(row["pid"])):
            return None
        return ReleaseLock(row["endpoint_name"], row["holder"], row["acquired_at"])
