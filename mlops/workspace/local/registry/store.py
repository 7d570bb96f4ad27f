"""The local workspace's state: one SQLite file, ``<workspace>/workspace.db``.

SQLite because a workspace is driven by several processes at once (two CLI commands, a release
and a ``mlops status``): WAL mode lets readers proceed while one writer commits, every change is
one ``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so two writers never
interleave a read-modify-write), and a busy timeout makes the second writer wait instead of
failing. A crash mid-change rolls back; the store is never half-written.

The folder is created ``0700`` and the database ``0600`` (SQLite gives its ``-wal``/``-shm`` files
the database's mode): the store holds endpoint keys, readable by their owner only.

This module holds the schema and the row-level reads and writes; the decisions live in
``mlops.workspace.local.workspace`` and ``mlops.workspace.local.registry.models``.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.errors import WorkspaceError

DB_NAME = "workspace.db"
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name TEXT NOT NULL, version INTEGER NOT NULL, content_hash TEXT NOT NULL, path TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL,
    PRIMARY KEY (name, version), UNIQUE (name, content_hash));
CREATE TABLE IF NOT EXISTS environments (
    name TEXT NOT NULL, version INTEGER NOT NULL, content_hash TEXT NOT NULL, image TEXT NOT NULL,
    conda_file TEXT NOT NULL, venv TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL,
    PRIMARY KEY (name, version), UNIQUE (name, content_hash));
CREATE TABLE IF NOT EXISTS online_endpoints (
    name TEXT PRIMARY KEY, port INTEGER NOT NULL UNIQUE, primary_key TEXT NOT NULL,
    secondary_key TEXT NOT NULL, auth_mode TEXT NOT NULL, traffic TEXT NOT NULL DEFAULT '{}',
    mirror_traffic TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS online_deployments (
    endpoint_name TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL, generation INTEGER NOT NULL,
    state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL,
    PRIMARY KEY (endpoint_name, name));
CREATE TABLE IF NOT EXISTS batch_endpoints (
    name TEXT PRIMARY KEY, default_deployment TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch_deployments (
    endpoint_name TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL,
    updated_at TEXT NOT NULL, PRIMARY KEY (endpoint_name, name));
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY, endpoint_name TEXT NOT NULL, deployment_name TEXT NOT NULL,
    job_dir TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS training_jobs (
    name TEXT PRIMARY KEY, parent TEXT, status TEXT NOT NULL, primary_metric TEXT NOT NULL DEFAULT '',
    properties TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '{}', metrics TEXT NOT NULL DEFAULT '{}',
    job_dir TEXT NOT NULL, pid INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS release_locks (
    endpoint_name TEXT PRIMARY KEY, holder TEXT NOT NULL, pid INTEGER NOT NULL, hostname TEXT NOT NULL,
    acquired_at TEXT NOT NULL);
"""


def now() -> str:
    """ISO 8601 UTC, seconds precision: what every ``*_at`` column holds."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True)


def loads(text: str) -> dict[str, Any]:
    return json.loads(text) if text else {}


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it ``0700``."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``path`` (created if needed), released when the block ends or
    the process dies - so a killed holder never leaves a stale lock behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Store:
    """The SQLite store of one workspace folder. Use ``transaction()`` to change, ``read()`` to look."""

    def __init__(self, workspace_dir: Path) -> None:
        self.dir = private_dir(workspace_dir)
        self.path = self.dir / DB_NAME
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.path.chmod(0o600)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                         check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            # Switching a new database to WAL needs an exclusive lock that SQLite does not wait for
            # (no busy handler): two processes opening a fresh workspace at once would see "database
            # is locked". Opening is serialized instead; it takes milliseconds.
            with file_lock(self.dir / f"{DB_NAME}.open-lock"):
                self._conn.execute("PRAGMA journal_mode = WAL")
                with self.transaction() as conn:
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        conn.execute(statement)
        except sqlite3.Error as error:
            raise WorkspaceError(f"cannot open the workspace store {self.path}: {error}") from error

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: the write lock is taken at ``BEGIN``; commit on success, else roll back."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise WorkspaceError(f"the workspace store {self.path} is busy: {error}") from error
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("ROLLBACK")


# ---------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True)
class EndpointRow:
    name: str
    port: int
    primary_key: str
    secondary_key: str
    auth_mode: str
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # keys are never printed by accident
        return f"EndpointRow(name={self.name!r}, port={self.port}, traffic={self.traffic!r})"


@dataclass(frozen=True)
class DeploymentRow:
    endpoint_name: str
    name: str
    spec: dict[str, Any]
    generation: int
    state: str
    error: str = ""


def endpoint_row(conn: sqlite3.Connection, name: str) -> EndpointRow | None:
    row = conn.execute("SELECT * FROM online_endpoints WHERE name = ?", (name,)).fetchone()
    return _endpoint(row) if row else None


def endpoint_rows(conn: sqlite3.Connection) -> list[EndpointRow]:
    return [_endpoint(row) for row in conn.execute("SELECT * FROM online_endpoints ORDER BY name")]


def _endpoint(row: sqlite3.Row) -> EndpointRow:
    return EndpointRow(row["name"], row["port"], row["primary_key"], row["secondary_key"], row["auth_mode"],
                       loads(row["traffic"]), loads(row["mirror_traffic"]), loads(row["tags"]))


def deployment_rows(conn: sqlite3.Connection, endpoint_name: str) -> list[DeploymentRow]:
    rows = conn.execute("SELECT * FROM online_deployments WHERE endpoint_name = ? ORDER BY name", (endpoint_name,))
    return [_deployment(row) for row in rows]


def deployment_row(conn: sqlite3.Connection, endpoint_name: str, name: str) -> DeploymentRow | None:
    row = conn.execute("SELECT * FROM online_deployments WHERE endpoint_name = ? AND name = ?",
                       (endpoint_name, name)).fetchone()
    return _deployment(row) if row else None


def _deployment(row: sqlite3.Row) -> DeploymentRow:
    return DeploymentRow(row["endpoint_name"], row["name"], loads(row["spec"]), row["generation"], row["state"],
                         row["error"])


def set_traffic(conn: sqlite3.Connection, endpoint_name: str, traffic: Mapping[str, int],
                mirror_traffic: Mapping[str, int]) -> None:
    conn.execute("UPDATE online_endpoints SET traffic = ?, mirror_traffic = ? WHERE name = ?",
                 (dumps(traffic), dumps(mirror_traffic), endpoint_name))


def set_deployment_state(conn: sqlite3.Connection, endpoint_name: str, name: str, state: str, error: str = "",
                         *, generation: int | None = None) -> None:
    """Record a state; with ``generation``, only if the row still is that generation (a newer update wins)."""
    sql = "UPDATE online_deployments SET state = ?, error = ?, updated_at = ? WHERE endpoint_name = ? AND name = ?"
    params: tuple[Any, ...] = (state, error, now(), endpoint_name, name)
    if generation is not None:
        sql += " AND generation = ?"
        params += (generation,)
    conn.execute(sql, params)


@dataclass(frozen=True)
class BatchDeploymentRow:
    endpoint_name: str
    name: str
    spec: dict[str, Any]
    state: str


def batch_deployment_rows(conn: sqlite3.Connection, endpoint_name: str) -> list[BatchDeploymentRow]:
    rows = conn.execute("SELECT * FROM batch_deployments WHERE endpoint_name = ? ORDER BY name", (endpoint_name,))
    return [BatchDeploymentRow(row["endpoint_name"], row["name"], loads(row["spec"]), row["state"]) for row in rows]
