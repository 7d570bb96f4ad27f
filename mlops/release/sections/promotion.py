"""The release record's promotion (``promote``): its rollout steps with the health and shadow checks
each ran, and what the endpoint recorded a deployment served over a window (``mlops.release.served``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.release.gates import Verdict
from mlops.release.sections.loadtest import LoadTestResult


@dataclass
class ServedWindow:
    """One deployment's per-deployment metrics over a window (``served.metrics_summary``): everything it
    served - users' requests, mirrored copies, synthetic load - as the endpoint recorded it."""

    deployment: str
    requests: int = 0
    failures: int = 0
    error_rate: float = 0.0
    status_classes: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    note: str = ""
    source: str = ""
    window_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServedView:
    """A judgement of what the candidate served (``served.judge_served``), with live beside it."""

    verdict: Verdict
    candidate: ServedWindow
    live: ServedWindow | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class HealthResult:
    verdict: Verdict
    """The step's verdict: the synthetic load's and the deployment metrics' together."""
    load: LoadTestResult | None = None
    synthetic: Verdict | None = None
    """The header-less load's own verdict (``promote.judge_health``)."""
    deployment_metrics: ServedView | None = None
    """What the endpoint recorded for the candidate over the bake window, users' requests included."""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ShadowResult:
    """A shadow step: live's requests mirrored to the candidate, judged on the candidate's own answers."""

    verdict: Verdict
    mirror: dict[str, int] = field(default_factory=dict)
    """The mirror map while it ran (removed before the next step)."""
    candidate: ServedWindow | None = None
    live: ServedWindow | None = None
    load: LoadTestResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PromotionStep:
    index: int
    step: str
    started_at: str = ""
    seconds: float = 0.0
    traffic: dict[str, int] | None = None
    health: HealthResult | None = None
    shadow: ShadowResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Promotion:
    done: int = 0
    """Rollout steps completed (the resume point)."""
    steps: list[PromotionStep] = field(default_factory=list)
    state: str | None = None
    """``done`` once the candidate serves 100% and the old deployment is handled."""
    old_deployment: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state == "done"
