"""Rollout steps as data, and the pure traffic plans that interpret them.

``endpoints/online/rollout.yml`` lists steps such as ``[{mirror: 20, bake: 60s, check: shadow},
{traffic: 10}, {bake: 30s, check: health}, {traffic: 50}, ..., {traffic: 100}]`` (Argo Rollouts'
canary steps are the model). ``parse_steps`` turns them into ``ShadowStep`` / ``TrafficStep`` /
``BakeStep`` values; ``traffic_plan`` and ``rollback_plan`` say
what the endpoint's *whole* traffic map must become. They never touch a workspace: the promoter
reads the current map, asks these functions, and writes the answer (read-modify-write), so a
third deployment that somebody else put on the endpoint keeps its share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mlops.release.durations import parse_duration
from mlops.release.served import ServedCheck

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


def mirror_plan(current_mirror: Mapping[str, int], candidate: str, percent: int) -> dict[str, int]:
    """The whole mirror map that mirrors ``percent``% to ``candidate`` (0: no mirror to it).

    Azure allows one mirror deployment: another deployment's mirror is never replaced silently
    (``ValueError``), and removing ours keeps theirs."""
    if not 0 <= percent <= MAX_MIRROR_PERCENT:
        raise ValueError(f"mirror percent must be 0-{MAX_MIRROR_PERCENT}, got {percent}")
    others = {name: int(pct) for name, pct in current_mirror.items() if name != candidate and pct}
    if percent and others:
        raise ValueError(f"the endpoint already mirrors traffic to {', '.join(sorted(others))}; Azure ML allows one "
                         "mirror deployment")
    return {**others, candidate: percent} if percent else others


def traffic_plan(current: Mapping[str, int], live: str | None, candidate: str, percent: int) -> dict[str, int]:
    """The whole traffic map that gives ``candidate`` ``percent``% of what live and candidate share.

    Deployments other than live and candidate keep their share exactly. With no live deployment
    (a first release) nobody is being served yet, so any positive step gives the candidate the
    whole share at once.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be 0-100, got {percent}")
    plan = {name: int(share) for name, share in current.items()}
    others = sum(share for name, share in plan.items() if name not in (live, candidate))
    shared = 100 - others if others else 100
    if live is None:
        plan[candidate] = shared if percent > 0 else 0
        if not any(plan.values()):
            plan[candidate] = 0
        return plan
    candidate_share = round(shared * percent / 100)
    plan[candidate] = candidate_share
    plan[live] = shared - candidate_share
    return plan


def rollback_plan(current: Mapping[str, int], live: str | None, candidate: str) -> dict[str, int]:
    """Live takes back the candidate's share (live to 100% when they are alone); the candidate gets 0.

    A third deployment keeps its share. Without a live deployment the candidate simply drops to 0
    (the endpoint then serves nothing, which is what it did before the first release)."""
    plan = {name: int(share) for name, share in current.items()}
    taken = plan.get(candidate, 0)
    plan[candidate] = 0
    if live is not None:
        plan[live] = plan.get(live, 0) + taken
        others = sum(share for name, share in plan.items() if name not in (live, candidate))
        if others == 0:
            plan[live] = 100
    return plan


def first_release_steps(steps: Sequence[Step]) -> tuple[Step, ...]:
    """With no live deployment there is no split to step through: 100% at once, then the last
    health check of the rollout (if any) to vouch for the endpoint."""
    checks = [step for step in steps if isinstance(step, BakeStep) and step.check]
    return (TrafficStep(100), *checks[-1:])  # no shadow: there is no live traffic to mirror


def completed_traffic_steps(steps: Sequence[Step], done: int) -> int:
    """The candidate's percent after the first ``done`` steps (0 if no traffic step ran yet)."""
    percent = 0
    for step in steps[:done]:
        if isinstance(step, TrafficStep):
            percent = step.percent
    return percent


def rollback_refusal(*, release_id: str, candidate: str, candidate_release: str | None,
                     before: Mapping[str, int], after: Mapping[str, int], may_empty: bool) -> str | None:
    """Pure: why a rollback must not run (``None``: it may).

    * The candidate exists but another release created it (its ``mlops.release`` tag names another
      release id, or it has none): a rollback touches only the deployments of its own release - an
      old record whose slot name a later release reused must not delete that release's deployment.
    * Afterwards no deployment would take traffic while one does now: the rollback would take the
      endpoint down (its previous deployment is gone, or the record names the wrong one). Only a
      release's own automatic rollback of a first release (``may_empty``: nothing served before it)
      may leave the endpoint as empty as it found it.
    """
    if candidate_release is not None and candidate_release != release_id:
        owner = f"release {candidate_release}" if candidate_release else "no release of this repository (no mlops.release tag)"
        return (f"deployment {candidate} was created by {owner}, not by release {release_id}: a rollback only "
                "touches the deployments of its own release - nothing was changed")
    serving_now = {name: share for name, share in before.items() if share > 0}
    serving_after = {name: share for name, share in after.items() if share > 0 and name != candidate}
    if serving_now and not serving_after and not may_empty:
        now = " ".join(f"{name}={share}%" for name, share in sorted(serving_now.items()))
        return (f"it would leave no deployment taking traffic (now {now}; after the rollback {candidate} would be "
                "at 0% and nothing else serves) - nothing was changed. Release the previous model again instead "
                "(or set after_success.old_deployment: keep in rollout.yml for instant rollbacks)")
    return None
