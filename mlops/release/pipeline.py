"""The release, step by step: register -> environment -> deploy -> loadtest -> gate -> promote -> batch.

Each ``step_*`` function is idempotent and usable alone (the CLI's step commands and the GitHub
jobs call them one at a time); the state between them is the release record. ``run_release`` runs
them in order, and is what a re-run after a crash calls: finished steps are skipped, an
interrupted promotion resumes at its step, a failed gate is rolled back. Re-releasing the model and
environment that already serve 100% (with the batch default on them too) is "nothing to release"
and creates nothing.

Safety: the endpoint's release lock (``Workspace.acquire_release_lock``, holder = the release id)
is taken before the first change and released when the release ends; a second release is refused
with the holder and its start time. The record also names the process running it, so a second
process on the same record is refused too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.config import Config, require_model_folder
from mlops.errors import (
    ConflictError,
    DeploymentFailedError,
    Inconclusive,
    MlopsError,
    ReleaseFailed,
    UsageError,
)
from mlops.release.baseline import (
    BASELINE_SLOT,
    archived_code_dir,
    baseline_mode,
    deploy_baseline,
    plan_baseline,
    remove_baseline,
    safe_remove_baseline,
)
from mlops.release.batch import batch_refresh
from mlops.release.context import ReleaseContext
from mlops.release.gates import LatencyStats, Measurements, Phase, QualityMeasurement, Verdict, evaluate
from mlops.release.loadtest import LoadShape, run_load
from mlops.release.promote import promote, rollback
from mlops.release.quality import build_requests, read_rows, score_deployment
from mlops.release.record import Record, new_release_id
from mlops.release.slots import NoFreeSlot, already_live, choose_slots, serving_release
from mlops.release.staging import CODE_HASH_TAG, code_hash, stage_code
from mlops.workspace.port import Progress, Workspace, no_progress

CURRENT = "current.json"


def default_record_path(config: Config) -> Path:
    return config.records / CURRENT


def open_record(config: Config, workspace: Workspace, path: Path | None = None, *, create: bool = True) -> Record:
    """The record to work on: an unfinished one at ``path`` is continued; otherwise a new one is
    started (``create``) or ``UsageError`` says which step creates it."""
    path = path or default_record_path(config)
    record = Record.load(path)
    if record is not None and record.running_elsewhere():
        raise ConflictError(f"release {record.release_id} of endpoint {record.get('endpoint')} is in progress "
                            f"(pid {record.get('pid')} on {record.get('host')}, started {record.get('started_at')})")
    if record is not None and (not record.finished or not create):
        if not record.finished:
            record.claim()
        return record
    if not create:
        raise UsageError(f"no release record at {path}: start with `mlops register` or `mlops release`")
    return _new_record(config, workspace, path)


def _new_record(config: Config, workspace: Workspace, path: Path, release_id: str | None = None) -> Record:
    return Record.create(path, release_id=release_id, workspace=workspace.uri, endpoint=config.online.endpoint.name,
                         batch_endpoint=config.batch.endpoint.name, config=str(config.file), profile=config.profile)


# ---------------------------------------------------------------------------------------------
# Steps


def step_register(ctx: ReleaseContext) -> dict[str, Any]:
    config, workspace, record = ctx.config, ctx.workspace, ctx.record
    with record.step("register"):
        if config.model.ref is not None:
            model = workspace.get_model(config.model.ref.name, config.model.ref.version)
            created = False
        elif config.model.job is not None:
            before = {m.version for m in workspace.list_models(config.model.name)}
            model = workspace.register_model_from_job(config.model.name, config.model.job, progress=ctx.progress)
            created = model.version not in before
        else:
            folder = require_model_folder(config)
            before = {m.version for m in workspace.list_models(config.model.name)}
            model = workspace.register_model(config.model.name, folder, progress=ctx.progress)
            created = model.version not in before
        summary = {"name": model.name, "version": model.version, "content_hash": model.content_hash,
                   "source": config.model.describe(), "created": created}
        record.data["model"] = summary
    ctx.progress(f"register: {model.name}:{model.version} ({'new version' if created else 'existing version'})")
    return summary


def step_environment(ctx: ReleaseContext) -> dict[str, Any]:
    config, record = ctx.config, ctx.record
    with record.step("environment"):
        environment = ctx.workspace.ensure_environment(config.environment, progress=ctx.progress)
        summary = {"name": environment.name, "version": environment.version,
                   "content_hash": environment.content_hash, "image": environment.image}
        record.data["environment"] = summary
    ctx.progress(f"environment: pinned {environment.name}:{environment.version}")
    return summary


def _code_hash(ctx: ReleaseContext) -> str:
    """The online scoring code's hash, computed once per release and kept in the record."""
    value = ctx.record.get("code_hash")
    if not value:
        value = code_hash(ctx.config.online.code_dir)
        ctx.record.set("code_hash", value)
    return value


def _ensure_prepared(ctx: ReleaseContext) -> None:
    if not (ctx.record.get("model") or {}).get("version"):
        step_register(ctx)
    if not (ctx.record.get("environment") or {}).get("version"):
        step_environment(ctx)


def step_deploy(ctx: ReleaseContext) -> dict[str, Any]:
    """Put the candidate into the free slot at 0% traffic (or find it there already)."""
    config, workspace, record = ctx.config, ctx.workspace, ctx.record
    _ensure_prepared(ctx)
    model, environment = ctx.model_ref(), ctx.environment_ref()
    workspace.acquire_release_lock(ctx.endpoint, ctx.holder)
    workspace.ensure_online_endpoint(config.online.endpoint, progress=ctx.progress)
    slots = record.get("slots") or {}
    if slots.get("candidate"):
        existing = workspace.get_online_deployment(ctx.endpoint, slots["candidate"])
        if (existing is not None and existing.state == "Succeeded" and existing.model == model
                and existing.environment == environment):
            ctx.progress(f"deploy: {slots['candidate']} already runs {model} on {environment}")
            record.mark("deploy", "done")
            return slots
    endpoint = workspace.get_online_endpoint(ctx.endpoint)
    traffic = dict(endpoint.traffic) if endpoint else {}
    deployments = workspace.list_online_deployments(ctx.endpoint)
    if not slots.get("candidate"):
        if already_live(deployments, traffic, model, environment, code_hash=_code_hash(ctx)):
            serving = serving_release(deployments, traffic)
            record.data["slots"] = {"candidate": None, "live": serving.name if serving else None}
            record.data.setdefault("traffic", {}).update(before=traffic, after=traffic)
            record.mark("deploy", "skipped", reason=f"{model} on {environment} already serves 100%")
            ctx.progress(f"deploy: {model} on {environment} already serves 100% - nothing to deploy")
            return record.data["slots"]
        try:
            choice = choose_slots(config.online.slots, traffic)
        except NoFreeSlot as error:
            raise ConflictError(f"endpoint {ctx.endpoint}: {error}; finish it with `mlops promote` or undo it with "
                                "`mlops rollback` (same --record)") from None
        live = next((d for d in deployments if d.name == choice.live), None)
        slots = {"candidate": choice.candidate, "live": choice.live,
                 "live_model": str(live.model) if live else None,
                 "live_environment": str(live.environment) if live else None}
        record.data["slots"] = slots
        record.data.setdefault("traffic", {})["before"] = traffic
        record.save()
    candidate = slots["candidate"]
    # (re)create even when the slot already runs this model at 0%: the template may have changed
    with record.step("deploy"):
        code = stage_code(config.online.code_dir, ctx.artifacts / "code" / "online")
        spec = config.online_deployment_spec(candidate, model, environment, code,
                                             tags={"mlops.release": record.release_id,
                                                   CODE_HASH_TAG: _code_hash(ctx)})
        ctx.progress(f"deploy: {candidate} <- {model} on {environment} (0% traffic)")
        try:
            workspace.create_online_deployment(spec, progress=ctx.progress)
        except DeploymentFailedError as error:
            ctx.progress(f"deploy: {candidate} failed to start - removing it")
            rollback(ctx, reason=f"deployment {candidate} failed to start")
            raise ReleaseFailed(f"candidate {candidate} did not start: {error}") from None
    return slots


def _stats_from_record(data: dict[str, Any], name: str | None) -> LatencyStats | None:
    if not name:
        return None
    summary = (data.get("deployments") or {}).get(name)
    if not summary:
        return None
    samples = tuple((data.get("samples_ms") or {}).get(name) or ())

    def number(key: str) -> float:
        value = summary.get(key)
        return math.nan if value is None else float(value)

    return LatencyStats(requests=int(summary["requests"]), failures=int(summary["failures"]),
                        p50_ms=number("p50_ms"), p95_ms=number("p95_ms"), p99_ms=number("p99_ms"),
                        rps=float(summary.get("rps") or 0.0), samples_ms=samples)


def _plan_baseline(ctx: ReleaseContext, live: str | None):
    """What the gate compares the candidate with (``mlops.release.baseline``)."""
    config = ctx.config
    live_deployment = ctx.workspace.get_online_deployment(ctx.endpoint, live) if live else None
    mode = baseline_mode(config.load_test.gates.relative.baseline, ctx.workspace.uri)
    current = ctx.artifacts / "code" / "online"
    if live_deployment is not None and not current.is_dir():  # a later job on another machine: stage it again
        stage_code(config.online.code_dir, current)
    plan = plan_baseline(mode, live_deployment, slots=tuple(config.online.slots), current_code_hash=_code_hash(ctx),
                         current_code=current, archived_code=archived_code_dir(config.records, live_deployment),
                         code_hash_tag=CODE_HASH_TAG)
    return plan, live_deployment


def step_loadtest(ctx: ReleaseContext) -> dict[str, Any]:
    """Load candidate, fresh baseline and live side by side (header-targeted), then score the holdout."""
    config, workspace, record = ctx.config, ctx.workspace, ctx.record
    candidate, live = ctx.slots()
    if candidate is None:
        raise UsageError("nothing was deployed (the model already serves 100%): nothing to load-test")
    names = {d.name for d in workspace.list_online_deployments(ctx.endpoint)}
    if candidate not in names:
        raise UsageError(f"the candidate {candidate} is not deployed on {ctx.endpoint}: run `mlops deploy`")
    if live not in names:
        live = None
    endpoint = workspace.get_online_endpoint(ctx.endpoint)
    keys = workspace.get_keys(ctx.endpoint)
    profile = config.load_test.profile
    shape = LoadShape(users=profile.users, spawn_rate=profile.spawn_rate, run_time_s=profile.run_time_s,
                      data=profile.data, context_days=profile.context_days, horizon=profile.horizon,
                      warmup_s=profile.warmup_s)
    if record.status != "running":
        record.data["status"] = "running"
    with record.step("loadtest", configured_wait_s=profile.run_time_s + profile.warmup_s) as entry:
        plan, live_deployment = _plan_baseline(ctx, live)
        if plan.name is not None and live_deployment is not None:
            deploy_baseline(ctx, plan, live_deployment, CODE_HASH_TAG)
        else:
            record.data["baseline"] = {"mode": "live", "reason": plan.reason}
        targets = [candidate] + ([plan.name] if plan.name else []) + ([live] if live else [])
        try:
            result = run_load(scoring_uri=endpoint.scoring_uri, key=keys.primary_key, targets=targets, shape=shape,
                              locustfile=config.load_test.locustfile, out_dir=ctx.artifacts, name="loadtest",
                              progress=ctx.progress)
        finally:
            if plan.name is not None:
                remove_baseline(ctx, reason="load test over")
        summary = result.summary()
        summary["samples_ms"] = {name: [round(v, 2) for v in stats.samples_ms] for name, stats in result.stats.items()
                                 if name in targets}
        summary["targets"] = targets
        record.data["loadtest"] = summary
        entry["html_report"] = summary["html_report"]
        quality_gates = config.load_test.gates.quality
        if quality_gates.holdout:
            requests = build_requests(read_rows(Path(quality_gates.holdout)), origins=quality_gates.origins,
                                      context_days=quality_gates.context_days, horizon=quality_gates.horizon)
            candidate_mape, points, failures = score_deployment(workspace, ctx.endpoint, candidate, requests,
                                                                ctx.progress)
            live_mape = score_deployment(workspace, ctx.endpoint, live, requests, ctx.progress)[0] if live else None
            record.data["quality"] = {"candidate_mape": _finite(candidate_mape), "live_mape": _finite(live_mape),
                                      "points": points, "candidate_failures": failures,
                                      "holdout": quality_gates.holdout}
        else:
            record.data.pop("quality", None)
    return summary


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def step_gate(ctx: ReleaseContext) -> Verdict:
    """Judge the load test. Failed -> rollback + ``ReleaseFailed``; Inconclusive -> ``Inconclusive``
    (the candidate stays at 0%, nothing promoted)."""
    config, record = ctx.config, ctx.record
    candidate, live = ctx.slots()
    loadtest = record.get("loadtest")
    if not loadtest:
        raise UsageError("no load test in the release record: run `mlops loadtest` first")
    with record.step("gate"):
        candidate_stats = _stats_from_record(loadtest, candidate)
        if candidate_stats is None:
            candidate_stats = LatencyStats(0, 0, math.nan, math.nan, math.nan, 0.0)
        targets = loadtest.get("targets") or []
        fresh = (record.get("baseline") or {}).get("mode") == "fresh" and BASELINE_SLOT in targets
        comparator = BASELINE_SLOT if fresh else live
        compared = _stats_from_record(loadtest, comparator) if comparator in targets else None
        quality = record.get("quality")
        measurements = Measurements(
            candidate=candidate_stats, live=compared, comparator="baseline" if fresh else "live",
            quality=QualityMeasurement(_nan(quality["candidate_mape"]), quality.get("live_mape"),
                                       quality.get("points", 0), quality.get("candidate_failures", 0))
            if quality else None)
        verdict = evaluate(config.load_test.gates, measurements)
        record.data["verdict"] = verdict.to_dict()
    ctx.progress(f"gate: {verdict.phase}")
    for result in verdict.results:
        ctx.progress(f"  [{result.phase}] {result.reason}")
    if verdict.phase is Phase.FAILED:
        rollback(ctx, reason="gate failed: " + "; ".join(verdict.reasons))
        record.finish("rolled_back", error="gate failed: " + "; ".join(verdict.reasons))
        raise ReleaseFailed(f"the candidate {candidate} failed its gates and was removed; live traffic is "
                            f"untouched: {'; '.join(verdict.reasons)}")
    if verdict.phase is Phase.INCONCLUSIVE:
        record.finish("inconclusive", error="; ".join(verdict.reasons))
        _unlock(ctx)
        raise Inconclusive(f"not enough evidence to judge {candidate}: {'; '.join(verdict.reasons)} - nothing "
                           "promoted (the candidate stays at 0%; re-run `mlops loadtest` and `mlops gate`, "
                           "or `mlops rollback`)")
    return verdict


def step_promote(ctx: ReleaseContext) -> dict[str, Any]:
    try:
        summary = promote(ctx)
    except ReleaseFailed as error:
        ctx.record.finish("rolled_back", error=str(error))
        raise
    if not ctx.config.batch.refresh:
        ctx.record.finish("succeeded")
    else:
        ctx.record.set("status", "promoted")
    _unlock(ctx)
    return summary


def step_batch(ctx: ReleaseContext) -> dict[str, Any]:
    _ensure_prepared(ctx)
    record = ctx.record
    with record.step("batch") as entry:
        summary = batch_refresh(ctx, model=ctx.model_ref(), environment=ctx.environment_ref())
        entry["deployment"] = summary["deployment"]
        record.data["batch"] = summary
    if record.get("status") in ("promoted", "running"):
        record.finish("succeeded")
    return summary


def step_rollback(ctx: ReleaseContext, *, reason: str = "requested") -> dict[str, Any]:
    candidate, _live = ctx.slots() if (ctx.record.get("slots") or {}).get("candidate") else (None, None)
    if candidate is None:
        ctx.progress("rollback: this release deployed nothing - nothing to roll back")
        return {"reason": reason, "candidate": "none"}
    existing = {d.name for d in ctx.workspace.list_online_deployments(ctx.endpoint)}
    endpoint = ctx.workspace.get_online_endpoint(ctx.endpoint)
    candidate_share = dict(endpoint.traffic).get(candidate, 0) if endpoint else 0
    if candidate_share > 0 and (_live is None or _live not in existing) and ctx.record.status == "succeeded":
        raise UsageError(f"{candidate} serves {candidate_share}% and the previous deployment "
                         f"{_live or '(none)'} no longer exists: rolling back would leave the endpoint serving "
                         "nothing. Release the previous model again instead (or set after_success.old_deployment: "
                         "keep in rollout.yml for instant rollbacks).")
    ctx.workspace.acquire_release_lock(ctx.endpoint, ctx.holder)
    summary = rollback(ctx, reason=reason)
    ctx.record.finish("rolled_back", error=reason)
    return summary


def _unlock(ctx: ReleaseContext) -> None:
    try:
        ctx.workspace.release_release_lock(ctx.endpoint, ctx.holder)
    except MlopsError:
        pass


# ---------------------------------------------------------------------------------------------
# The whole release


def _batch_current(ctx: ReleaseContext) -> bool:
    """True when the batch default already runs this release's model and environment (or batch is off)."""
    if not ctx.config.batch.refresh:
        return True
    endpoint = ctx.workspace.get_batch_endpoint(ctx.config.batch.endpoint.name)
    if endpoint is None or not endpoint.default_deployment:
        return False
    for deployment in ctx.workspace.list_batch_deployments(endpoint.name):
        if deployment.name == endpoint.default_deployment:
            return deployment.model == ctx.model_ref() and deployment.environment == ctx.environment_ref()
    return False


def run_release(config: Config, workspace: Workspace, record_path: Path | None = None, *,
                until: str | None = None, confirm: Callable[[str], bool] | None = None,
                progress: Progress = no_progress) -> Record:
    """Run (or resume) a release. Raises ``ReleaseFailed`` (rolled back), ``Inconclusive`` (paused)
    or ``ConflictError`` (another release holds the endpoint)."""
    path = record_path or default_record_path(config)
    record = Record.load(path)
    if record is not None and record.running_elsewhere():
        raise ConflictError(f"release {record.release_id} of endpoint {record.get('endpoint')} is in progress "
                            f"(pid {record.get('pid')} on {record.get('host')}, started {record.get('started_at')})")
    resuming = record is not None and not record.finished and record.get("endpoint") == config.online.endpoint.name
    release_id = record.release_id if resuming and record is not None else new_release_id()
    # the lock first: a refused release writes nothing, not even its record
    workspace.acquire_release_lock(config.online.endpoint.name, f"release {release_id}")
    if resuming and record is not None:
        record.claim()
        progress(f"release {record.release_id}: resuming (status {record.status})")
    else:
        record = _new_record(config, workspace, path, release_id)
        progress(f"release {record.release_id}: started on {workspace.uri}")
    ctx = ReleaseContext(config, workspace, record, progress)
    if (record.get("baseline") or {}).get("state") in ("deploying", "deployed"):
        safe_remove_baseline(ctx, reason="the release was interrupted while its baseline existed")
    try:
        previous_model = (record.get("model") or {}).get("version")
        step_register(ctx)
        step_environment(ctx)
        if resuming and previous_model and previous_model != record.data["model"]["version"]:
            raise ReleaseFailed(f"release {record.release_id} was interrupted with model version {previous_model}, "
                                f"but the model source now gives {record.data['model']['version']}: the interrupted "
                                "release is rolled back; run the release again to release the new model")
        online_live = False
        if not record.step_done("deploy"):
            endpoint = workspace.get_online_endpoint(ctx.endpoint)
            if endpoint is not None:
                deployments = workspace.list_online_deployments(ctx.endpoint)
                online_live = already_live(deployments, endpoint.traffic, ctx.model_ref(), ctx.environment_ref(),
                                           code_hash=_code_hash(ctx))
                if online_live and _batch_current(ctx) and not (record.get("slots") or {}).get("candidate"):
                    record.data.setdefault("traffic", {}).update(before=dict(endpoint.traffic),
                                                                 after=dict(endpoint.traffic))
                    record.finish("nothing_to_release")
                    _unlock(ctx)
                    progress(f"nothing to release: {ctx.model_ref()} on {ctx.environment_ref()} already serves "
                             "100% and is the batch default")
                    return record
        step_deploy(ctx)
        candidate = (record.get("slots") or {}).get("candidate")
        if candidate is not None:
            if not record.step_done("gate") or (record.get("verdict") or {}).get("phase") != "Passed":
                if not record.step_done("loadtest") or record.step_state("gate") == "failed":
                    step_loadtest(ctx)
                step_gate(ctx)
            if until == "gate":
                record.set("status", "awaiting_promotion")
                progress("release: stopped after the gate (--until gate); promote with `mlops promote`")
                return record
            if (record.get("promotion") or {}).get("state") != "done":
                if confirm is not None and not confirm(f"Shift traffic to {candidate} "
                                                       f"({ctx.model_ref()}) in {len(config.online.rollout.steps)} "
                                                       "steps?"):
                    record.set("status", "awaiting_promotion")
                    progress("release: promotion declined; the candidate stays at 0% (`mlops promote` later)")
                    return record
                promote(ctx)
        elif until == "gate":
            record.set("status", "awaiting_promotion")
            return record
        if config.batch.refresh and not record.step_done("batch"):
            step_batch(ctx)
        record.data.setdefault("traffic", {})["after"] = dict(workspace.get_online_endpoint(ctx.endpoint).traffic)
        record.finish("succeeded")
    except Inconclusive:
        _unlock(ctx)
        raise
    except MlopsError as error:
        safe_remove_baseline(ctx, reason="the release failed")
        # never leave a failed candidate behind: any failure before the traffic shift removes it
        # (promote() rolls back by itself once traffic moves)
        if (record.get("slots") or {}).get("candidate") and not record.get("rollback") \
                and (record.get("promotion") or {}).get("state") != "done":
            try:
                rollback(ctx, reason=f"release failed: {str(error).splitlines()[0] if str(error) else error}")
            except MlopsError as second:
                progress(f"rollback after the failure also failed: {second}")
        record.finish("rolled_back" if record.get("rollback") else "failed", error=str(error))
        _unlock(ctx)
        raise
    _unlock(ctx)
    return record
