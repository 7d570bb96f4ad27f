"""The SQLite store and the content-addressed artifacts: concurrency, idempotence, permissions."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.errors import NotFoundError, RuleViolation, UsageError
from mlops.workspace.hashing import content_hash
from mlops.workspace.local.registry.artifacts import ArtifactStore
from mlops.workspace.local.registry.models import get_model, list_models, register_model, split_reference
from mlops.workspace.local.registry.store import Store
from tests.conftest import REPO


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_two_processes_write_one_store_without_losing_or_duplicating(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    shared = _folder(tmp_path / "shared", {"model.pt": b"the same bytes"})
    Store(workspace).close()
    count = 15
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.local.store_worker", str(workspace), tag, str(count), str(shared)],  # noqa: S603 - our own test commands
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for tag in ("a", "b")
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    versions = [line.split() for out, _ in outputs for line in out.splitlines()]
    assert sorted(int(v) for v, _ in versions) == list(range(1, 2 * count + 1))  # every version exactly once
    assert {shared_version for _, shared_version in versions} == {"1"}  # same bytes: one version, ever
    store = Store(workspace)
    with store.read() as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM models WHERE name = 'shared'").fetchone()[0] == 1


def test_store_folder_db_and_artifacts_are_private(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    store = Store(workspace)
    artifacts = ArtifactStore(workspace / "artifacts")
    register_model(store, artifacts, "m", _folder(tmp_path / "src", {"model.pt": b"x"}))
    assert stat.S_IMODE(workspace.stat().st_mode) == 0o700
    for name in ("workspace.db", "workspace.db-wal"):
        assert stat.S_IMODE((workspace / name).stat().st_mode) == 0o600, name
    model = get_model(store, "m")
    stored = Path(model.path) / "model.pt"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(model.path).stat().st_mode) == 0o700


def test_a_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("INSERT INTO batch_endpoints (name, default_deployment, created_at) VALUES ('b', NULL, 'now')")
        raise RuntimeError("crash in the middle")
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM batch_endpoints").fetchone()[0] == 0
    assert sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_models_are_versioned_by_content(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    artifacts = ArtifactStore(tmp_path / "ws" / "artifacts")
    v1_src = _folder(tmp_path / "v1", {"model.pt": b"weights-1", "conf/meta.json": b"{}"})
    first = register_model(store, artifacts, "tcn", v1_src, tags={"stage": "dev"})
    assert (first.version, first.tags["stage"]) == ("1", "dev")
    assert first.content_hash == content_hash(v1_src)
    assert (Path(first.path) / "conf" / "meta.json").read_bytes() == b"{}"

    # the same bytes from another folder (and a byte-code cache) are the same model
    copy = _folder(tmp_path / "elsewhere", {"model.pt": b"weights-1", "conf/meta.json": b"{}",
                                           "__pycache__/x.cpython-311.pyc": b"junk"})
    messages: list[str] = []
    again = register_model(store, artifacts, "tcn", copy, progress=messages.append)
    assert again == first
    assert "already holds these bytes" in messages[0]

    # a renamed file is other content
    renamed = _folder(tmp_path / "renamed", {"weights.pt": b"weights-1", "conf/meta.json": b"{}"})
    assert register_model(store, artifacts, "tcn", renamed).version == "2"
    v3 = register_model(store, artifacts, "tcn", _folder(tmp_path / "v3", {"model.pt": b"weights-3"}))
    assert v3.version == "3"

    # the registered copy does not change when the source does
    (v1_src / "model.pt").write_bytes(b"edited later")
    assert (Path(get_model(store, "tcn", "1").path) / "model.pt").read_bytes() == b"weights-1"

    assert get_model(store, "tcn").version == "3"
    assert get_model(store, "tcn@latest").version == "3"
    assert get_model(store, "tcn:2").version == "2"
    assert get_model(store, "azureml:tcn:1").version == "1"
    assert [m.version for m in list_models(store, "tcn")] == ["1", "2", "3"]
    with pytest.raises(NotFoundError, match="model tcn:9 is not registered"):
        get_model(store, "tcn", "9")
    with pytest.raises(NotFoundError, match="model other:latest"):
        get_model(store, "other")


def test_model_registration_errors(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    artifacts = ArtifactStore(tmp_path / "ws" / "artifacts")
    with pytest.raises(UsageError, match="does not exist"):
        register_model(store, artifacts, "tcn", tmp_path / "missing")
    with pytest.raises(UsageError, match="holds no files"):
        register_model(store, artifacts, "tcn", _folder(tmp_path / "empty", {}))
    with pytest.raises(RuleViolation, match="model name 'bad name' is invalid"):
        register_model(store, artifacts, "bad name", _folder(tmp_path / "ok", {"a": b"1"}))
    with pytest.raises(UsageError, match="only label is '@latest'"):
        split_reference("tcn@prod")
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 0


def test_a_single_file_model(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    artifacts = ArtifactStore(tmp_path / "ws" / "artifacts")
    file = tmp_path / "model.pt"
    file.write_bytes(b"w")
    model = register_model(store, artifacts, "single", file)
    assert sorted(os.listdir(model.path)) == ["model.pt"]


def test_processes_opening_a_new_workspace_at_once_all_succeed(tmp_path: Path) -> None:
    """Several CLI processes may meet a workspace that does not exist yet (the first command of two
    workflow steps): each must open it, none may see "database is locked"."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from mlops.workspace.local.registry.store import Store\n"
        "start = float(sys.argv[2])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "Store(Path(sys.argv[1])).close()\n"
    )
    for attempt in range(5):
        workspace = tmp_path / f"ws{attempt}"
        start = f"{__import__('time').time() + 1.0:.3f}"
        procs = [subprocess.Popen([sys.executable, "-c", script, str(workspace), start], cwd=REPO,  # noqa: S603
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(6)]
        outputs = [proc.communicate(timeout=60)[0] for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * 6, outputs
    with sqlite3.connect(tmp_path / "ws0" / "workspace.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
