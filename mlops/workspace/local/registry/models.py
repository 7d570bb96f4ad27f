"""Registered models of the local workspace: ``name`` -> integer versions, idempotent by content.

Registering the same bytes again returns the version that already holds them (the content hash
is the identity, as the ``content_hash`` tag is on Azure), so a re-run release never makes a new
model version. References: ``name:version``, ``name@latest``, or ``name`` with ``latest``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlops.errors import NotFoundError, UsageError
from mlops.workspace.local.registry.artifacts import ArtifactStore
from mlops.workspace.local.registry.store import Store, dumps, loads, now
from mlops.workspace.port import Model, Progress, no_progress
from mlops.workspace.rules import check_asset_name


def split_reference(name: str, version: str = "latest") -> tuple[str, str]:
    """``("m@latest", _)`` -> ``("m", "latest")``; ``("m:3", _)`` -> ``("m", "3")``; else as given."""
    body = name.removeprefix("azureml:")
    if "@" in body:
        base, _, label = body.partition("@")
        if label != "latest":
            raise UsageError(f"model reference {name!r}: the only label is '@latest'")
        return base, "latest"
    if ":" in body:
        base, _, pinned = body.rpartition(":")
        return base, pinned
    return body, version


def _model(row: object) -> Model:
    return Model(row["name"], str(row["version"]), row["content_hash"], row["path"], loads(row["tags"]))  # type: ignore[index]


def register_model(store: Store, artifacts: ArtifactStore, name: str, path: Path, *,
                   tags: Mapping[str, str] | None = None, progress: Progress = no_progress) -> Model:
    """Copy ``path`` into the artifacts once and record it as the next version, unless the same
    content is already a version of ``name``."""
    check_asset_name("model", name)
    path = Path(path)
    if not path.exists():
        raise UsageError(f"model path {path} does not exist")
    digest, stored = artifacts.put(path)
    with store.transaction() as conn:
        row = conn.execute("SELECT * FROM models WHERE name = ? AND content_hash = ?", (name, digest)).fetchone()
        if row is not None:
            model = _model(row)
            progress(f"model {name}:{model.version} already holds these bytes (sha256 {digest[:12]}); reusing it")
            return model
        (latest,) = conn.execute("SELECT MAX(version) FROM models WHERE name = ?", (name,)).fetchone()
        version = (latest or 0) + 1
        all_tags = {**(tags or {}), "content_hash": digest}
        conn.execute("INSERT INTO models (name, version, content_hash, path, tags, created_at) VALUES (?,?,?,?,?,?)",
                     (name, version, digest, str(stored), dumps(all_tags), now()))
    progress(f"registered model {name}:{version} (sha256 {digest[:12]})")
    return Model(name, str(version), digest, str(stored), all_tags)


def get_model(store: Store, name: str, version: str = "latest") -> Model:
    name, version = split_reference(name, version)
    with store.read() as conn:
        if version == "latest":
            row = conn.execute("SELECT * FROM models WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)).fetchone()
        elif version.isdigit():
            row = conn.execute("SELECT * FROM models WHERE name = ? AND version = ?", (name, int(version))).fetchone()
        else:
            row = None
    if row is None:
        raise NotFoundError(f"model {name}:{version} is not registered in this workspace")
    return _model(row)


def list_models(store: Store, name: str) -> list[Model]:
    with store.read() as conn:
        rows = conn.execute("SELECT * FROM models WHERE name = ? ORDER BY version", (name,)).fetchall()
    return [_model(row) for row in rows]
