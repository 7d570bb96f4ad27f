"""How what a deployment served is judged (``rollout.yml``'s ``health.deployment_metrics`` and
``shadow``), as typed values; the judging is ``mlops.release.served.judge_served``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServedCheck:
    min_requests: int = 20
    max_error_rate: float = 0.0
    max_p95_ms: float | None = None
    p95_tolerance: float | None = 0.5
    p95_slack_ms: float = 25.0
    too_few: str = "inconclusive"
    """Below ``min_requests``: ``inconclusive``, or ``report`` (latency not judged, errors still are)."""
