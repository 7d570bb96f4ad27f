"""The release record's load-test sections (``loadtest`` and ``gate``): the baseline the candidate was
compared with (``mlops.release.baseline``), each deployment's side of the locust run with the latency
samples the rank test needs, and the forecast quality on the holdout."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlops.release.gates import LatencyStats
from mlops.release.typed_json import from_json


class BaselineState(StrEnum):
    DEPLOYING = "deploying"
    DEPLOYED = "deployed"
    REMOVED = "removed"

    def __str__(self) -> str:
        return self.value


@dataclass
class BaselineSlot:
    """What the gate compared the candidate with (``mlops.release.baseline``). ``fresh``: a new copy of
    live in its own slot, deployed for the load test and removed in every outcome; ``live``: live itself."""

    mode: str = "live"
    deployment: str | None = None
    copy_of: str | None = None
    model: str | None = None
    environment: str | None = None
    instance_count: int | None = None
    code: str = ""
    reason: str = ""
    state: BaselineState | None = None
    removed_because: str | None = None
    seconds: float = 0.0
    """Wall time spent creating and removing it (the price of the fresh comparison)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def may_exist(self) -> bool:
        """This release created (or was creating) it and has not removed it yet."""
        return self.state in (BaselineState.DEPLOYING, BaselineState.DEPLOYED)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


@dataclass
class DeploymentLoad:
    """One deployment's side of a load, as ``LatencyStats.summary()`` writes it."""

    requests: int = 0
    failures: int = 0
    error_rate: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    rps: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, stats: LatencyStats) -> DeploymentLoad:
        return from_json(cls, stats.summary())

    def stats(self, samples_ms: tuple[float, ...] = ()) -> LatencyStats:
        return LatencyStats(requests=self.requests, failures=self.failures, p50_ms=_nan(self.p50_ms),
                            p95_ms=_nan(self.p95_ms), p99_ms=_nan(self.p99_ms), rps=self.rps, samples_ms=samples_ms)


@dataclass
class LoadTestResult:
    """A locust run (``LoadResult.summary()``), with the latency samples the rank test needs."""

    seconds: float = 0.0
    requests: int = 0
    failures: int = 0
    deployments: dict[str, DeploymentLoad] = field(default_factory=dict)
    html_report: str | None = None
    errors_by_status: dict[str, int] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    samples_ms: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, summary: Mapping[str, Any]) -> LoadTestResult:
        return from_json(cls, dict(summary))

    def stats(self, name: str | None) -> LatencyStats | None:
        """``name``'s side of the load, or ``None`` when it was not loaded."""
        if not name or name not in self.deployments:
            return None
        return self.deployments[name].stats(tuple(self.samples_ms.get(name) or ()))


@dataclass
class QualityResult:
    candidate_mape: float | None = None
    live_mape: float | None = None
    points: int = 0
    candidate_failures: int = 0
    holdout: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
