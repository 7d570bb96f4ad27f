"""The gates ``mlops gate`` judges by (``load_tests/gates.yml``), as typed values; the judging is
``mlops.release.gates.evaluate``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AbsoluteGates:
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_error_rate: float | None = None
    min_rps: float | None = None
    min_requests: int = 1


@dataclass(frozen=True)
class RelativeGates:
    p95_tolerance: float | None = None
    """Candidate p95 <= live p95 * (1 + tolerance) + slack."""
    p95_slack_ms: float = 0.0
    mann_whitney_alpha: float | None = None
    min_shift_ms: float = 0.0
    min_shift_ratio: float = 0.0
    """A significant difference fails only when the median increase exceeds both ``min_shift_ms``
    and ``min_shift_ratio`` x live's median: on a busy machine, a few ms are significant but immaterial."""
    baseline: str = "auto"
    """What the candidate is compared with: ``fresh`` (a new copy of live, ``mlops.release.baseline``),
    ``live``, or ``auto`` (fresh on the local workspace, live on Azure ML)."""


@dataclass(frozen=True)
class QualityGates:
    holdout: str | None = None
    """Path of the holdout CSV (``None``: no quality gate)."""
    origins: int = 8
    horizon: int = 7
    context_days: int = 56
    max_mape: float | None = None
    max_mape_increase: float = 0.0
    relative_tolerance: float = 0.0


@dataclass(frozen=True)
class Gates:
    absolute: AbsoluteGates = AbsoluteGates()
    relative: RelativeGates = RelativeGates()
    quality: QualityGates = QualityGates()
