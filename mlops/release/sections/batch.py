"""The release record's batch sections: the batch deployment prepared beside the online release
(``batch-prepare``, ``mlops.release.batch_overlap``) and the batch refresh that made it the
endpoint's default (``batch``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass
class BatchResult:
    endpoint: str
    deployment: str
    model: str = ""
    environment: str = ""
    default_before: str | None = None
    default_after: str | None = None
    changed: bool = False
    removed: list[str] = field(default_factory=list)
    smoke_job: str | None = None
    smoke_rows: int | None = None
    smoke_output: str | None = None
    forecast_svg: str | None = None
    smoke_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BatchPrepState(StrEnum):
    PREPARING = "preparing"
    """Being created and smoke-scored beside the online release (it may exist, half-made)."""
    READY = "ready"
    """Created and smoke-scored; waits for the online promotion to be made the default."""
    FAILED = "failed"
    """Its creation or smoke job failed; the release fails before traffic moves."""
    DEFAULT = "default"
    """Made the batch endpoint's default (the ``batch`` step, after the online promotion)."""
    REMOVED = "removed"
    """Removed (or left alone: not this release's) because the release did not succeed."""

    def __str__(self) -> str:
        return self.value


@dataclass
class BatchPrepared:
    """The batch deployment this release prepares while the online candidate is judged and promoted
    (``mlops.release.batch_overlap``): created and smoke-scored early, the default only after the
    online promotion succeeded, removed when the release fails. ``PREPARING`` is written before the
    first call that may create it, so a release killed meanwhile knows to finish or remove it."""

    endpoint: str
    deployment: str
    state: BatchPrepState = BatchPrepState.PREPARING
    default_before: str | None = None
    """The endpoint's default when the preparation started: kept if the release fails."""
    result: BatchResult | None = None
    """The creation and smoke job's summary (``default_after`` still unset)."""
    error: str | None = None
    started_at: str = ""
    seconds: float = 0.0
    """Wall time of the preparation (creation + smoke), spent beside the online release."""
    removed_because: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def may_exist(self) -> bool:
        """This release may have created (or changed) it, and it is not the default yet."""
        return self.state in (BatchPrepState.PREPARING, BatchPrepState.READY, BatchPrepState.FAILED)
