"""The ``deploy`` step: the candidate into the free slot at 0% traffic - or, decided once per release
and read-only (``decide_serving``), nothing to deploy because this release already serves 100%."""

from __future__ import annotations

from mlops.errors import ConflictError, DeploymentFailedError, ReleaseFailed
from mlops.release.batch_overlap import settles_batch
from mlops.release.context import ReleaseContext
from mlops.release.lock import holding
from mlops.release.promote import rollback
from mlops.release.record import ReleaseStatus, StepState
from mlops.release.sections.endpoint import Slots
from mlops.release.slots import RELEASE_TAG, NoFreeSlot, already_live, choose_slots, serving_release
from mlops.release.staging import CODE_HASH_TAG, stage_code
from mlops.release.steps.prepare import ensure_prepared


def decide_serving(ctx: ReleaseContext) -> bool:
    """Read-only, once per release: does one deployment already serve 100% with this release's model,
    environment and scoring code? If so the deploy step is recorded as skipped (no candidate), so
    every later step - in this process or another job - reads the decision instead of re-taking it."""
    record, workspace = ctx.record, ctx.workspace
    if record.step_done("deploy") or record.slots.candidate:
        return record.slots.candidate is None and record.step_done("deploy")
    endpoint = workspace.get_online_endpoint(ctx.endpoint)
    if endpoint is None:
        return False
    model, environment = ctx.model_ref(), ctx.environment_ref()
    deployments = workspace.list_online_deployments(ctx.endpoint)
    if not already_live(deployments, endpoint.traffic, model, environment, code_hash=ctx.code_hash()):
        return False
    serving = serving_release(deployments, endpoint.traffic)
    record.slots = Slots(candidate=None, live=serving.name if serving else None)
    record.traffic.before = record.traffic.after = dict(endpoint.traffic)
    record.mark("deploy", StepState.SKIPPED, reason=f"{model} on {environment} already serves 100%")
    ctx.progress(f"deploy: {model} on {environment} already serves 100% - nothing to deploy")
    return True


@settles_batch
def step_deploy(ctx: ReleaseContext) -> Slots:
    """Put the candidate into the free slot at 0% traffic (or find it there already)."""
    config, workspace, record = ctx.config, ctx.workspace, ctx.record
    ensure_prepared(ctx)
    if decide_serving(ctx):
        return record.slots
    model, environment = ctx.model_ref(), ctx.environment_ref()
    with holding(ctx):
        workspace.ensure_online_endpoint(config.online.endpoint, progress=ctx.progress)
        slots = record.slots
        if slots.candidate:
            existing = workspace.get_online_deployment(ctx.endpoint, slots.candidate)
            if (existing is not None and existing.state == "Succeeded" and existing.model == model
                    and existing.environment == environment):
                ctx.progress(f"deploy: {slots.candidate} already runs {model} on {environment}")
                record.mark("deploy", StepState.DONE)
                return slots
        else:
            endpoint = workspace.get_online_endpoint(ctx.endpoint)
            traffic = dict(endpoint.traffic) if endpoint else {}
            try:
                choice = choose_slots(config.online.slots, traffic)
            except NoFreeSlot as error:
                raise ConflictError(f"endpoint {ctx.endpoint}: {error}; finish it with `mlops promote` or undo it "
                                    "with `mlops rollback` (same --record)") from None
            live = next((d for d in workspace.list_online_deployments(ctx.endpoint) if d.name == choice.live), None)
            record.slots = slots = Slots(candidate=choice.candidate, live=choice.live,
                                         live_model=str(live.model) if live else None,
                                         live_environment=str(live.environment) if live else None)
            record.traffic.before = traffic
            record.save()
        candidate = slots.candidate
        assert candidate is not None
        # (re)create even when the slot already runs this model at 0%: the template may have changed
        with record.step("deploy"):
            code = stage_code(config.online.code_dir, ctx.artifacts / "code" / "online")
            spec = config.online_deployment_spec(candidate, model, environment, code,
                                                 tags={RELEASE_TAG: record.release_id, CODE_HASH_TAG: ctx.code_hash()},
                                                 environment_variables=ctx.deployment_variables())
            ctx.progress(f"deploy: {candidate} <- {model} on {environment} (0% traffic)")
            try:
                workspace.create_online_deployment(spec, progress=ctx.progress)
            except DeploymentFailedError as error:
                ctx.progress(f"deploy: {candidate} failed to start - removing it")
                rollback(ctx, reason=f"deployment {candidate} failed to start")
                record.finish(ReleaseStatus.ROLLED_BACK, error=f"deployment {candidate} failed to start")
                raise ReleaseFailed(f"candidate {candidate} did not start: {error}") from None
    return slots
