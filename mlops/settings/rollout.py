"""Rollout steps as data (``endpoints/online/rollout.yml``): ``parse_steps`` turns the YAML list
into ``ShadowStep`` / ``TrafficStep`` / ``BakeStep`` values (Argo Rollouts' canary steps are the
model), with the health and shadow checks' settings. The plans that interpret them are
``mlops.release.rollout``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlops.errors import ConfigError
from mlops.settings.durations import parse_duration
from mlops.settings.served import ServedCheck, read_served
from mlops.yaml_fields import get_duration, get_float, get_int, profile_entry, read_yaml

CHECKS = ("health",)
MAX_MIRROR_PERCENT = 50
"""Azure ML: ``mirror_traffic`` takes at most 50% (safe-rollout guide, "mirror traffic")."""


@dataclass(frozen=True)
class TrafficStep:
    """Give the candidate ``percent`` of the traffic that live and candidate share."""

    percent: int

    def describe(self) -> str:
        return f"traffic {self.percent}%"


@dataclass(frozen=True)
class BakeStep:
    """Wait ``seconds``; with ``check`` = ``health``, a header-less load runs for that time and is judged."""

    seconds: float
    check: str | None = None

    def describe(self) -> str:
        what = f"bake {self.seconds:g}s"
        return f"{what} + {self.check} check" if self.check else what


@dataclass(frozen=True)
class ShadowStep:
    """Mirror ``percent`` of live's traffic to the candidate for ``seconds`` (answers discarded), then
    judge the candidate's own answers to those requests. Only before any live traffic."""

    percent: int
    seconds: float

    def describe(self) -> str:
        return f"mirror {self.percent}% for {self.seconds:g}s + shadow check"


Step = TrafficStep | BakeStep | ShadowStep


@dataclass(frozen=True)
class HealthCheck:
    """How a ``check: health`` step loads the endpoint (without the deployment header) and judges it."""

    duration_s: float = 5.0
    users: int = 4
    max_error_rate: float = 0.0
    max_p95_ms: float | None = None
    min_requests: int = 20
    metrics: ServedCheck = ServedCheck(too_few="report")
    """How the candidate's per-deployment metrics over the bake window (users' traffic included) are judged."""


@dataclass(frozen=True)
class ShadowCheck:
    """How a shadow step loads the endpoint (header-less, so live's requests are mirrored) and judges."""

    users: int = 4
    served: ServedCheck = ServedCheck()


@dataclass(frozen=True)
class Rollout:
    steps: tuple[Step, ...]
    old_deployment: Literal["delete", "keep"] = "delete"
    """After 100%: delete the previous live deployment, or keep it at 0% for an instant rollback."""
    failed_candidate: Literal["delete", "keep"] = "delete"
    """On a failed check: delete the candidate, or keep it at 0% for inspection."""
    health: HealthCheck = HealthCheck()
    shadow: ShadowCheck = ShadowCheck()

    def configured_seconds(self) -> float:
        """Bake time the configuration asks for (excluded when judging the release's own overhead)."""
        return sum(step.seconds if isinstance(step, BakeStep | ShadowStep) else 0.0 for step in self.steps)


def parse_steps(raw: object) -> tuple[Step, ...]:
    """Parse the YAML list of steps. Raises ``ValueError`` naming the step index and what was expected.

    Rules: traffic is an integer 0-100 and never decreases; the last traffic step is 100 (a rollout
    that ends half-way is a configuration mistake); ``check`` is one of ``CHECKS``; a shadow step
    (``{mirror: 1-50, bake: D, check: shadow}``) comes before any traffic step above 0%, with a bake.
    """
    if not isinstance(raw, list) or not raw:
        raise ValueError("expected a non-empty list of steps like [{traffic: 10}, {bake: 30s, check: health}]")
    steps: list[Step] = []
    last_percent = 0
    for index, item in enumerate(raw):
        where = f"step {index + 1}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping like {{traffic: 10}}, got {item!r}")
        unknown = set(item) - {"traffic", "bake", "check", "mirror"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; expected traffic, mirror, bake, check")
        if "mirror" in item:
            steps.append(_shadow_step(item, where, last_percent))
            continue
        if "traffic" in item:
            if set(item) != {"traffic"}:
                raise ValueError(f"{where}: a traffic step holds only `traffic`")
            percent = item["traffic"]
            if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
                raise ValueError(f"{where}: traffic must be an integer 0-100, got {percent!r}")
            if percent < last_percent:
                raise ValueError(f"{where}: traffic {percent} is below the previous step's {last_percent}")
            last_percent = percent
            steps.append(TrafficStep(percent))
            continue
        check = item.get("check")
        if check is not None and check not in CHECKS:
            raise ValueError(f"{where}: check must be one of {list(CHECKS)}, got {check!r}")
        if "bake" not in item and check is None:
            raise ValueError(f"{where}: expected `traffic`, `bake` or `check`")
        try:
            seconds = parse_duration(item["bake"]) if "bake" in item else 0.0
        except ValueError as error:
            raise ValueError(f"{where}: bake: {error}") from None
        steps.append(BakeStep(seconds, check))
    if last_percent != 100:
        raise ValueError("the last traffic step must be {traffic: 100}")
    return tuple(steps)


def _shadow_step(item: dict, where: str, last_percent: int) -> ShadowStep:
    if set(item) - {"mirror", "bake", "check"}:
        raise ValueError(f"{where}: a mirror step holds `mirror`, `bake` and `check: shadow`")
    percent = item["mirror"]
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= MAX_MIRROR_PERCENT:
        raise ValueError(f"{where}: mirror must be an integer 1-{MAX_MIRROR_PERCENT} (Azure ML's mirror_traffic "
                         f"limit), got {percent!r}")
    if item.get("check", "shadow") != "shadow":
        raise ValueError(f"{where}: a mirror step's check is `shadow`, got {item.get('check')!r}")
    if last_percent > 0:
        raise ValueError(f"{where}: a shadow step must come before any live traffic (the candidate already has "
                         f"{last_percent}%)")
    if "bake" not in item:
        raise ValueError(f"{where}: a mirror step needs `bake` (how long to mirror), e.g. {{mirror: 20, bake: 60s, "
                         "check: shadow}")
    try:
        seconds = parse_duration(item["bake"])
    except ValueError as error:
        raise ValueError(f"{where}: bake: {error}") from None
    if seconds <= 0:
        raise ValueError(f"{where}: a mirror step's bake must be longer than 0s")
    return ShadowStep(percent, seconds)


def read_rollout(path: Path, profile: str) -> Rollout:
    """``rollout.yml``: the named profile's steps, what happens to the old and the failed deployment,
    and the health and shadow checks. Raises ``ConfigError`` naming the file and the key."""
    data = read_yaml(path)
    where = str(path)
    try:
        steps = parse_steps(profile_entry(data, profile, where))
    except ValueError as error:
        raise ConfigError(str(error), file=where, key=f"profiles.{profile}") from None
    after = data.get("after_success") or {}
    failure = data.get("on_failure") or {}
    old = after.get("old_deployment", "delete")
    failed = failure.get("candidate", "delete")
    if old not in ("delete", "keep"):
        raise ConfigError(f"expected delete or keep, got {old!r}", file=where, key="after_success.old_deployment")
    if failed not in ("delete", "keep"):
        raise ConfigError(f"expected delete or keep, got {failed!r}", file=where, key="on_failure.candidate")
    health_raw = data.get("health") or {}
    if not isinstance(health_raw, dict):
        raise ConfigError("expected a mapping", file=where, key="health")
    health = HealthCheck(
        duration_s=get_duration(health_raw, "duration", where, default=5.0, prefix="health."),
        users=get_int(health_raw, "users", where, default=4, minimum=1, prefix="health."),
        max_error_rate=get_float(health_raw, "max_error_rate", where, default=0.0, prefix="health.") or 0.0,
        max_p95_ms=get_float(health_raw, "max_p95_ms", where, default=None, prefix="health."),
        min_requests=get_int(health_raw, "min_requests", where, default=20, minimum=1, prefix="health."),
        metrics=read_served(health_raw.get("deployment_metrics"), where, "health.deployment_metrics.", too_few="report"),
    )
    shadow_raw = data.get("shadow") or {}
    if not isinstance(shadow_raw, dict):
        raise ConfigError("expected a mapping", file=where, key="shadow")
    shadow = ShadowCheck(users=get_int(shadow_raw, "users", where, default=4, minimum=1, prefix="shadow."),
                         served=read_served(shadow_raw, where, "shadow."))
    return Rollout(steps=steps, old_deployment=old, failed_candidate=failed, health=health, shadow=shadow)
