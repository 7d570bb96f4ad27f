"""What every release step works with: configuration, workspace, record, progress sink."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.config import Config
from mlops.errors import UsageError
from mlops.release.record import Record
from mlops.release.staging import code_hash
from mlops.release.trust import trust_variables
from mlops.workspace.port import AssetRef, Progress, Workspace, no_progress


@dataclass
class ReleaseContext:
    config: Config
    workspace: Workspace
    record: Record
    progress: Progress = no_progress
    sleep: Callable[[float], None] = field(default=time.sleep)
    lock_depth: int = 0
    """How many ``lock.holding`` blocks are open in this process (the lock is taken by the first)."""
    before_traffic: Callable[[], None] | None = None
    """Called by the promotion before each traffic change (``mlops.release.batch_overlap``: the first
    one waits for the batch deployment prepared beside it; raising rolls the promotion back)."""
    batch_preparation: Any = None
    """The batch deployment's preparation running beside the online release in this process
    (``mlops.release.batch_overlap.Preparation``); what survives the process is in the record."""

    @property
    def holder(self) -> str:
        return self.record.holder

    @property
    def endpoint(self) -> str:
        return self.config.online.endpoint.name

    @property
    def artifacts(self) -> Path:
        path = self.record.artifacts_dir
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model_ref(self) -> AssetRef:
        if self.record.model is None or not self.record.model.version:
            raise UsageError(f"the release record {self.record.path} has no registered model yet: "
                             "run `mlops register` first")
        return self.record.model.ref

    def environment_ref(self) -> AssetRef:
        if self.record.environment is None or not self.record.environment.version:
            raise UsageError(f"the release record {self.record.path} has no pinned environment yet: "
                             "run `mlops environment` first")
        return self.record.environment.ref

    def deployment_variables(self) -> dict[str, str]:
        """What this release sets on each of its deployments, online and batch: the pickle trust of
        its model (``mlops.release.trust``), decided when the model was registered."""
        return trust_variables(self.record.model is not None and self.record.model.trusted_pickles)

    def slots(self) -> tuple[str, str | None]:
        if not self.record.slots.candidate:
            raise UsageError(f"the release record {self.record.path} has no candidate deployment: "
                             "run `mlops deploy` first")
        return self.record.slots.candidate, self.record.slots.live

    def code_hash(self) -> str:
        """The online scoring code's hash, computed once per release and kept in the record."""
        if not self.record.code_hash:
            self.record.code_hash = code_hash(self.config.online.code_dir)
            self.record.save()
        return self.record.code_hash

    def batch_code_hash(self) -> str:
        """The batch scoring code's hash (a batch-code-only change is a release), kept in the record."""
        if not self.record.batch_code_hash:
            self.record.batch_code_hash = code_hash(self.config.batch.code_dir)
            self.record.save()
        return self.record.batch_code_hash
