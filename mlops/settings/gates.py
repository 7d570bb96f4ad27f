"""The gates ``mlops gate`` judges by (``load_tests/gates.yml``), as typed values; the judging is
``mlops.release.gates.evaluate``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops.errors import ConfigError
from mlops.yaml_fields import get_float, get_int, read_yaml


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


def read_gates(path: Path, base: Path) -> Gates:
    """``gates.yml``: the absolute, relative and quality gates; the holdout path is relative to ``base``.
    Raises ``ConfigError`` naming the file and the key."""
    data = read_yaml(path)
    where = str(path)
    absolute_raw = data.get("absolute") or {}
    relative_raw = data.get("relative") or {}
    quality_raw = data.get("quality") or {}
    for key, value in (("absolute", absolute_raw), ("relative", relative_raw), ("quality", quality_raw)):
        if not isinstance(value, dict):
            raise ConfigError("expected a mapping", file=where, key=key)
    absolute = AbsoluteGates(
        p50_ms=get_float(absolute_raw, "p50_ms", where, default=None, prefix="absolute."),
        p95_ms=get_float(absolute_raw, "p95_ms", where, default=None, prefix="absolute."),
        p99_ms=get_float(absolute_raw, "p99_ms", where, default=None, prefix="absolute."),
        max_error_rate=get_float(absolute_raw, "max_error_rate", where, default=None, prefix="absolute."),
        min_rps=get_float(absolute_raw, "min_rps", where, default=None, prefix="absolute."),
        min_requests=get_int(absolute_raw, "min_requests", where, default=1, minimum=1, prefix="absolute."),
    )
    mann_whitney = relative_raw.get("mann_whitney") or {}
    if not isinstance(mann_whitney, dict):
        raise ConfigError("expected a mapping with alpha, min_shift_ms", file=where, key="relative.mann_whitney")
    alpha = get_float(mann_whitney, "alpha", where, default=None, prefix="relative.mann_whitney.")
    if alpha is not None and not 0 < alpha < 1:
        raise ConfigError(f"expected a probability between 0 and 1, got {alpha}", file=where,
                          key="relative.mann_whitney.alpha")
    baseline = relative_raw.get("baseline", "auto")
    if baseline not in ("auto", "fresh", "live"):
        raise ConfigError(f"expected auto, fresh or live, got {baseline!r}", file=where, key="relative.baseline")
    relative = RelativeGates(
        baseline=baseline,
        p95_tolerance=get_float(relative_raw, "p95_tolerance", where, default=None, prefix="relative."),
        p95_slack_ms=get_float(relative_raw, "p95_slack_ms", where, default=0.0, prefix="relative.") or 0.0,
        mann_whitney_alpha=alpha,
        min_shift_ms=get_float(mann_whitney, "min_shift_ms", where, default=0.0, prefix="relative.mann_whitney.") or 0.0,
        min_shift_ratio=get_float(mann_whitney, "min_shift_ratio", where, default=0.0,
                                  prefix="relative.mann_whitney.") or 0.0,
    )
    holdout = None
    if quality_raw.get("holdout"):
        holdout_path = (base / str(quality_raw["holdout"])).resolve()
        if not holdout_path.is_file():
            raise ConfigError(f"{holdout_path} does not exist", file=where, key="quality.holdout")
        holdout = str(holdout_path)
    quality = QualityGates(
        holdout=holdout,
        origins=get_int(quality_raw, "origins", where, default=8, minimum=1, prefix="quality."),
        horizon=get_int(quality_raw, "horizon", where, default=7, minimum=1, prefix="quality."),
        context_days=get_int(quality_raw, "context_days", where, default=56, minimum=1, prefix="quality."),
        max_mape=get_float(quality_raw, "max_mape", where, default=None, prefix="quality."),
        max_mape_increase=get_float(quality_raw, "max_mape_increase", where, default=0.0, prefix="quality.") or 0.0,
        relative_tolerance=get_float(quality_raw, "relative_tolerance", where, default=0.0, prefix="quality.") or 0.0,
    )
    return Gates(absolute=absolute, relative=relative, quality=quality)
