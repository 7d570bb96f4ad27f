"""What every operation group of ``LocalWorkspace`` shares: the workspace folder, its store, the
artifact store, the venv cache, and how a deployment's spec is kept (code copied to an immutable artifact)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlops.errors import ConfigError
from mlops.workspace.local.online.desired_state import HostClient
from mlops.workspace.local.registry import environments, store
from mlops.workspace.local.registry.artifacts import ArtifactStore
from mlops.workspace.local.registry.store import Store
from mlops.workspace.port import AssetRef, BatchDeploymentSpec, OnlineDeploymentSpec, Progress


def _spec_json(spec: OnlineDeploymentSpec | BatchDeploymentSpec, code_dir: Path) -> dict[str, Any]:
    """A deployment spec as stored: plain JSON, with ``code_path`` pointing at the artifact copy."""
    data = json.loads(json.dumps(asdict(spec), default=str))
    data["code_path"] = str(code_dir)
    return data


def stored_ref(data: Mapping[str, str]) -> AssetRef:
    """An ``AssetRef`` from a stored spec's ``{"name": ..., "version": ...}``."""
    return AssetRef(data["name"], data["version"])


class LocalBase:
    """The embedded workspace under ``path`` (state in ``path/workspace.db``, files beside it).

    ``host`` and ``venv_cache`` default to the real host process of this folder and the
    machine-wide venv cache; they are parameters so that another host (or cache) can be plugged
    into the same seam.
    """

    def __init__(self, path: Path, *, host: HostClient | None = None, venv_cache: Path | None = None) -> None:
        self.dir = Path(path).expanduser().resolve()
        self.uri = f"local:{self.dir}"
        self.store = Store(self.dir)
        self.artifacts = ArtifactStore(store.private_dir(self.dir / "artifacts"))
        self.venvs = environments.VenvCache(venv_cache)
        self._host = host
        self._synced = False

    def __repr__(self) -> str:
        return f"LocalWorkspace({str(self.dir)!r})"

    def _stored_spec(self, spec: OnlineDeploymentSpec | BatchDeploymentSpec, progress: Progress) -> dict[str, Any]:
        """Check what a deployment refers to (model, built environment, scoring script) and store its
        code as an immutable artifact; return the spec as the store keeps it."""
        self.get_model(spec.model.name, spec.model.version)
        environments.environment_python(self.store, self.venvs, spec.environment.name, spec.environment.version,
                                         progress=progress)
        code_path = Path(spec.code_path)
        if not (code_path / spec.scoring_script).is_file():
            raise ConfigError(f"scoring script {spec.scoring_script!r} not found in {code_path}",
                              key="code_configuration.scoring_script")
        _, code_dir = self.artifacts.put(code_path)
        return _spec_json(spec, code_dir)
