"""The release record a release works on (``records/current.json``): where it lives, and opening it -
an unfinished one is continued (claimed by this process), else a new one is started, once no other
process runs it and no other release holds the endpoint's lock."""

from __future__ import annotations

from pathlib import Path

from mlops.config import Config
from mlops.errors import ConflictError, UsageError
from mlops.release.lock import refuse_if_held
from mlops.release.record import Record, new_release_id
from mlops.workspace.port import Workspace

CURRENT = "current.json"


def default_record_path(config: Config) -> Path:
    return config.records / CURRENT


def refuse_if_running(record: Record | None) -> None:
    if record is not None and record.running_elsewhere():
        raise ConflictError(f"release {record.release_id} of endpoint {record.endpoint} is in progress "
                            f"(pid {record.pid} on {record.host}, started {record.started_at})")


def open_record(config: Config, workspace: Workspace, path: Path | None = None, *, create: bool = True) -> Record:
    """The record to work on: an unfinished one at ``path`` is continued; otherwise a new one is
    started (``create``) or ``UsageError`` says which step creates it."""
    path = path or default_record_path(config)
    record = Record.load(path)
    refuse_if_running(record)
    if record is not None and (not record.finished or not create):
        if not record.finished:
            record.claim()
        return record
    if not create:
        raise UsageError(f"no release record at {path}: start with `mlops register` or `mlops release`")
    return new_record(config, workspace, path)


def new_record(config: Config, workspace: Workspace, path: Path, release_id: str | None = None) -> Record:
    release_id = release_id or new_release_id()
    refuse_if_held(workspace, config.online.endpoint.name, Record(release_id=release_id).holder)
    return Record.create(path, release_id=release_id, workspace=workspace.uri, endpoint=config.online.endpoint.name,
                         batch_endpoint=config.batch.endpoint.name, config=str(config.file), profile=config.profile)
