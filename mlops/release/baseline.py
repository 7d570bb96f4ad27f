"""The fresh baseline: a new copy of the live deployment, loaded exactly like the candidate.

Kayenta's rule: never judge a canary against the production deployment - production also carries
users' traffic (on Azure, on its own instances), so it looks slower than it is, and a slow
candidate looks relatively better. A *fresh baseline* is deployed for the gate: the live
deployment's model, environment, code and instance count, in its own slot (``baseline``) at 0%
traffic; the load test loads candidate, baseline and live in the same locust run, the same users
each; the relative gates compare candidate with baseline, and live is reported beside them. Then
the baseline is removed - in every outcome: pass, fail, Inconclusive, an error, and a ``kill -9``
followed by a resume (the record says it was deployed; ``remove_baseline`` runs first on resume,
on rollback and at the end of every run).

``relative.baseline`` in ``load_tests/gates.yml`` chooses: ``fresh``, ``live``, or ``auto`` (the
default): ``fresh`` on the local workspace, where a baseline is one more local process for a few
seconds and live's share of the machine is what the candidate gets too; ``live`` on Azure ML, where
a baseline is a second managed deployment of live's instance type and count - billed for the
gate's duration, drawing on the subscription's core quota, and 5-15 minutes of provisioning that
doubles the gate's wall time - so a team turns it on (``fresh``) when users' load on live is heavy
enough to bias the comparison.

``plan_baseline`` (pure) decides what to do; ``deploy_baseline`` / ``remove_baseline`` do it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from mlops.errors import DeploymentFailedError, MlopsError
from mlops.release.sections.loadtest import BaselineSlot, BaselineState
from mlops.release.slots import RELEASE_TAG
from mlops.workspace import runs_on_this_machine
from mlops.workspace.port import OnlineDeployment

BASELINE_SLOT = "baseline"
ROLE_TAG = "mlops.role"
MODES = ("auto", "fresh", "live")


def baseline_mode(configured: str, workspace_uri: str) -> Literal["fresh", "live"]:
    """``fresh`` / ``live`` as configured; ``auto``: fresh on the local workspace, live on Azure ML."""
    if configured == "fresh":
        return "fresh"
    if configured == "live":
        return "live"
    return "fresh" if runs_on_this_machine(workspace_uri) else "live"


@dataclass(frozen=True)
class BaselinePlan:
    mode: Literal["fresh", "live"]
    name: str | None
    """The baseline deployment to create (``None``: compare with live)."""
    code: Path | None = None
    reason: str = ""


def plan_baseline(mode: Literal["fresh", "live"], live: OnlineDeployment | None, *, slots: tuple[str, ...],
                  current_code_hash: str, current_code: Path, archived_code: Path | None,
                  code_hash_tag: str) -> BaselinePlan:
    """What the gate compares the candidate with.

    A fresh baseline needs live's exact code: the current snapshot when live's code-hash tag matches
    it, else the snapshot archived with the release that deployed live; without either it falls back
    to live, saying why (a baseline running other code than live would be no baseline)."""
    if live is None:
        return BaselinePlan("live", None, reason="first release: no live deployment to copy")
    if mode == "live":
        return BaselinePlan("live", None, reason="relative.baseline: live")
    if BASELINE_SLOT in slots:
        raise ValueError(f"the slot name {BASELINE_SLOT!r} is reserved for the fresh baseline")
    live_hash = (live.tags or {}).get(code_hash_tag, "")
    if live_hash and live_hash == current_code_hash:
        return BaselinePlan("fresh", BASELINE_SLOT, current_code, "live's code is the current scoring code")
    if archived_code is not None and archived_code.is_dir():
        return BaselinePlan("fresh", BASELINE_SLOT, archived_code, f"live's code snapshot {archived_code.name}")
    return BaselinePlan("live", None, reason=f"live {live.name}'s code snapshot is not available here (code hash "
                                             f"{live_hash[:12] or 'unknown'}): compared with live instead")


def archived_code_dir(records: Path, live: OnlineDeployment | None) -> Path | None:
    """Where the release that deployed ``live`` staged its code (``<records>/<release id>/code/online``)."""
    release = (live.tags or {}).get(RELEASE_TAG) if live is not None else None
    return records / release / "code" / "online" if release else None


def is_baseline(deployment: OnlineDeployment) -> bool:
    return deployment.name == BASELINE_SLOT and (deployment.tags or {}).get(ROLE_TAG) == "baseline"


def deploy_baseline(ctx: Any, plan: BaselinePlan, live: OnlineDeployment, code_hash_tag: str) -> BaselineSlot:
    """Create the baseline at 0% (the record says so *before* it exists, so a crash leaves a trace)."""
    record, config = ctx.record, ctx.config
    entry = BaselineSlot(mode="fresh", deployment=plan.name, copy_of=live.name, model=str(live.model),
                         environment=str(live.environment), instance_count=live.instance_count, code=plan.reason,
                         state=BaselineState.DEPLOYING)
    record.baseline = entry
    record.save()
    spec = config.online_deployment_spec(plan.name, live.model, live.environment, plan.code,
                                         tags={RELEASE_TAG: record.release_id, ROLE_TAG: "baseline",
                                               code_hash_tag: (live.tags or {}).get(code_hash_tag, "")})
    spec = replace(spec, instance_count=live.instance_count)
    started = time.monotonic()
    ctx.progress(f"baseline: {plan.name} <- copy of {live.name} ({live.model} on {live.environment}, "
                 f"{live.instance_count} instance(s), 0% traffic)")
    try:
        ctx.workspace.create_online_deployment(spec, progress=ctx.progress)
    except DeploymentFailedError:
        remove_baseline(ctx, reason="the baseline failed to start")
        raise
    entry.state = BaselineState.DEPLOYED
    entry.seconds = round(time.monotonic() - started, 3)
    record.save()
    return entry


def remove_baseline(ctx: Any, *, reason: str) -> bool:
    """Delete the release's baseline deployment if it may exist. Idempotent; a baseline already gone
    is no error. Only a deployment this release created (its role and release tags) is deleted.
    Returns whether one was deleted."""
    entry: BaselineSlot | None = ctx.record.baseline
    if entry is None or not entry.may_exist:
        return False  # this release never created one, or it is gone already
    name = entry.deployment or BASELINE_SLOT
    started = time.monotonic()
    found = next((d for d in ctx.workspace.list_online_deployments(ctx.endpoint) if d.name == name), None)
    deleted = False
    if found is not None and is_baseline(found) and (found.tags or {}).get(RELEASE_TAG) == ctx.record.release_id:
        ctx.workspace.delete_online_deployment(ctx.endpoint, name, progress=ctx.progress)
        ctx.progress(f"baseline: removed {name} ({reason})")
        deleted = True
    entry.state = BaselineState.REMOVED
    entry.removed_because = reason
    entry.seconds = round(entry.seconds + time.monotonic() - started, 3)
    ctx.record.save()
    return deleted


def safe_remove_baseline(ctx: Any, *, reason: str) -> None:
    """``remove_baseline`` on a failure path: a second error is reported, never hides the first."""
    try:
        remove_baseline(ctx, reason=reason)
    except MlopsError as error:
        ctx.progress(f"baseline: could not remove it ({error}); remove it by hand: "
                     f"`az ml online-deployment delete -e {ctx.endpoint} -n {BASELINE_SLOT}` or `mlops rollback`")


def baseline_line(entry: BaselineSlot | None) -> str:
    """One line for reports."""
    if entry is None:
        return ""
    if entry.mode != "fresh":
        return f"live ({entry.reason})" if entry.reason else "live"
    return (f"{entry.deployment} = fresh copy of {entry.copy_of} ({entry.model} on {entry.environment}, "
            f"{entry.instance_count} instance(s)), {entry.state}"
            + (f" ({entry.removed_because})" if entry.removed_because else ""))
