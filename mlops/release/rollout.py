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

from mlops.settings.rollout import (
    MAX_MIRROR_PERCENT,
    BakeStep,
    Step,
    TrafficStep,
)


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
