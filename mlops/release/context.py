"""What every release step works with: configuration, workspace, record, progress sink."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlops.config import Config
from mlops.errors import UsageError
from mlops.release.record import Record
from mlops.release.trust import trust_variables
from mlops.workspace.port import AssetRef, Progress, Workspace, no_progress


@dataclass
class ReleaseContext:
    config: Config
    workspace: Workspace
    record: Record
    progress: Progress = no_progress
    sleep: Callable[[float], None] = field(default=time.sleep)

    @property
    def holder(self) -> str:
        """The release-lock holder: the release id, so the later steps of one release (other
        processes, other GitHub jobs) re-acquire it while a different release is refused."""
        return f"release {self.record.release_id}"

    @property
    def endpoint(self) -> str:
        return self.config.online.endpoint.name

    @property
    def artifacts(self) -> Path:
        path = self.record.artifacts_dir
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model_ref(self) -> AssetRef:
        return self._pinned("model", "no registered model yet: run `mlops register` first")

    def environment_ref(self) -> AssetRef:
        return self._pinned("environment", "no pinned environment yet: run `mlops environment` first")

    def _pinned(self, key: str, missing: str) -> AssetRef:
        """The ``name:version`` an earlier step wrote into the record under ``key``."""
        entry = self.record.get(key) or {}
        if not entry.get("version"):
            raise UsageError(f"the release record {self.record.path} has {missing}")
        return AssetRef(entry["name"], str(entry["version"]))

    def deployment_variables(self) -> dict[str, str]:
        """What this release sets on each of its deployments, online and batch: the pickle trust of
        its model (``mlops.release.trust``), decided when the model was registered."""
        return trust_variables(bool((self.record.get("model") or {}).get("trusted_pickles")))

    def slots(self) -> tuple[str, str | None]:
        slots = self.record.get("slots") or {}
        if not slots.get("candidate"):
            raise UsageError(f"the release record {self.record.path} has no candidate deployment: "
                             "run `mlops deploy` first")
        return slots["candidate"], slots.get("live")
