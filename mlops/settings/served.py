"""How what a deployment served is judged (``rollout.yml``'s ``health.deployment_metrics`` and
``shadow``), as typed values; the judging is ``mlops.release.served.judge_served``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.errors import ConfigError
from mlops.yaml_fields import get_float, get_int


@dataclass(frozen=True)
class ServedCheck:
    min_requests: int = 20
    max_error_rate: float = 0.0
    max_p95_ms: float | None = None
    p95_tolerance: float | None = 0.5
    p95_slack_ms: float = 25.0
    too_few: str = "inconclusive"
    """Below ``min_requests``: ``inconclusive``, or ``report`` (latency not judged, errors still are)."""


def read_served(raw: Any, where: str, prefix: str, *, too_few: str = "inconclusive") -> ServedCheck:
    """Limits on what a deployment served (``mlops.release.served``): shadow step, health metrics."""
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping", file=where, key=prefix.rstrip("."))
    return ServedCheck(
        min_requests=get_int(raw, "min_requests", where, default=20, minimum=1, prefix=prefix),
        max_error_rate=get_float(raw, "max_error_rate", where, default=0.0, prefix=prefix) or 0.0,
        max_p95_ms=get_float(raw, "max_p95_ms", where, default=None, prefix=prefix),
        p95_tolerance=get_float(raw, "p95_tolerance", where, default=0.5, prefix=prefix),
        p95_slack_ms=get_float(raw, "p95_slack_ms", where, default=25.0, prefix=prefix) or 0.0,
        too_few=too_few,
    )
