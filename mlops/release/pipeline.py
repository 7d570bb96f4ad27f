"""The release, step by step: register -> environment -> deploy -> loadtest -> gate -> promote -> batch.

The batch deployment is prepared (created, smoke-scored) *beside* deploy, loadtest, gate and the
promotion - a thread in ``run_release``, the ``batch-prepare`` job in Actions - and only made the
default by the ``batch`` step after the promotion; a release that does not succeed removes it
(``mlops.release.batch_overlap``).

Each ``step_*`` function is idempotent and usable alone (the CLI's step commands and the GitHub
jobs call them one at a time); the state between them is the release record. ``run_release`` calls
them in order, and is what a re-run after a crash calls: finished steps are skipped, an interrupted
promotion resumes at its step, a failed gate is rolled back.

"Nothing to release" - the model, environment and scoring code that would be released already
serve 100% (and the batch default runs them too) - is decided once per release, read-only, before
the release lock is taken (``_decide_serving``): such a release changes nothing anywhere.

Safety: every step that changes the online endpoint runs inside ``lock.holding`` (the endpoint's
release lock, holder = the release id); a second release is refused with the holder and its start
time before it writes anything. The record also names the process running it, so a second process
on the same record is refused too. Any failure after the candidate exists removes it (``_fail``).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from mlops.config import Config, require_model_folder
from mlops.errors import (
    ConflictError,
    DeploymentFailedError,
    Inconclusive,
    MlopsError,
    ReleaseFailed,
    UsageError,
)
from mlops.release import batch_overlap
from mlops.release.baseline import (
    BASELINE_SLOT,
    archived_code_dir,
    baseline_mode,
    deploy_baseline,
    plan_baseline,
    remove_baseline,
    safe_remove_baseline,
)
from mlops.release.batch import make_default, prepare_batch
from mlops.release.context import ReleaseContext
from mlops.release.gates import LatencyStats, Measurements, Phase, QualityMeasurement, Verdict, evaluate
from mlops.release.loadtest import run_load
from mlops.release.lock import holding, refuse_if_held
from mlops.release.model_environment import choose_environment
from mlops.release.promote import checked_rollback_plan, promote, rollback
from mlops.release.quality import build_requests, read_rows, score_deployment
from mlops.release.record import (
    BaselineSlot,
    BatchPrepared,
    BatchPrepState,
    BatchResult,
    EnvironmentPin,
    LoadTestResult,
    ModelPin,
    Promotion,
    QualityResult,
    Record,
    ReleaseStatus,
    Slots,
    StepState,
    TrialPick,
    UnpinnedDependency,
    new_release_id,
)
from mlops.release.slots import RELEASE_TAG, NoFreeSlot, already_live, choose_slots, serving_release
from mlops.release.staging import CODE_HASH_TAG, code_hash, stage_code
from mlops.release.trust import pickles_trusted
from mlops.workspace import runs_on_this_machine
from mlops.workspace.automl import (
    AUTOML_CHILD_TAG,
    AUTOML_METRIC_TAG,
    AUTOML_PARENT_TAG,
    AUTOML_SCORE_TAG,
)
from mlops.workspace.port import Progress, Workspace, no_progress

CURRENT = "current.json"
_Step = TypeVar("_Step", bound=Callable[..., Any])


def _settles_batch(step: _Step) -> _Step:
    """The step, then: if it ended the release without success, the batch deployment prepared beside
    the online release is removed (``batch_overlap.settle``) - on every exit path, exceptions included."""
    @wraps(step)
    def wrapper(ctx: ReleaseContext, *args: Any, **kwargs: Any) -> Any:
        try:
            return step(ctx, *args, **kwargs)
        finally:
            batch_overlap.settle(ctx)
    return wrapper  # type: ignore[return-value]


def default_record_path(config: Config) -> Path:
    return config.records / CURRENT


def _refuse_if_running(record: Record | None) -> None:
    if record is not None and record.running_elsewhere():
        raise ConflictError(f"release {record.release_id} of endpoint {record.endpoint} is in progress "
                            f"(pid {record.pid} on {record.host}, started {record.started_at})")


def open_record(config: Config, workspace: Workspace, path: Path | None = None, *, create: bool = True) -> Record:
    """The record to work on: an unfinished one at ``path`` is continued; otherwise a new one is
    started (``create``) or ``UsageError`` says which step creates it."""
    path = path or default_record_path(config)
    record = Record.load(path)
    _refuse_if_running(record)
    if record is not None and (not record.finished or not create):
        if not record.finished:
            record.claim()
        return record
    if not create:
        raise UsageError(f"no release record at {path}: start with `mlops register` or `mlops release`")
    return _new_record(config, workspace, path)


def _new_record(config: Config, workspace: Workspace, path: Path, release_id: str | None = None) -> Record:
    release_id = release_id or new_release_id()
    refuse_if_held(workspace, config.online.endpoint.name, Record(release_id=release_id).holder)
    return Record.create(path, release_id=release_id, workspace=workspace.uri, endpoint=config.online.endpoint.name,
                         batch_endpoint=config.batch.endpoint.name, config=str(config.file), profile=config.profile)


# ---------------------------------------------------------------------------------------------
# Steps


def step_register(ctx: ReleaseContext) -> ModelPin:
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
        trusted = pickles_trusted(config.model, model.tags)
        trial = None
        if model.tags.get(AUTOML_PARENT_TAG):
            trial = TrialPick(job=model.tags[AUTOML_PARENT_TAG], trial=model.tags.get(AUTOML_CHILD_TAG, ""),
                              primary_metric=model.tags.get(AUTOML_METRIC_TAG, ""),
                              score=model.tags.get(AUTOML_SCORE_TAG, ""))
        record.model = ModelPin(name=model.name, version=model.version, content_hash=model.content_hash,
                                source=config.model.describe(), created=created, trusted_pickles=trusted,
                                trial=trial)
    ctx.progress(f"register: {model.name}:{model.version} ({'new version' if created else 'existing version'})"
                 + (f" from trial {trial.trial} of job {trial.job}" if trial else "")
                 + ("; its deployments trust pickles" if trusted else ""))
    return record.model


def _model_folder(ctx: ReleaseContext) -> Path | None:
    """Where the registered model's files can be read (only when the environment may come from them)."""
    if ctx.config.environment_from_model is None:
        return None
    source = ctx.config.model.path
    if source is not None and ctx.record.model is not None and ctx.record.model.source == str(source) \
            and source.is_dir():
        return source  # the folder this record registered: no download needed
    model = ctx.model_ref()  # else the registered files themselves (a step run with another --model)
    target = ctx.artifacts / "model"
    if target.exists():
        shutil.rmtree(target)
    return ctx.workspace.download_model(model.name, model.version, target)


def step_environment(ctx: ReleaseContext) -> EnvironmentPin:
    config, record = ctx.config, ctx.record
    if config.environment_from_model is not None and record.model is None:
        step_register(ctx)  # the environment may come from the model's own conda file
    with record.step("environment"):
        model = str(ctx.model_ref()) if record.model is not None else ""
        choice = choose_environment(config, model, _model_folder(ctx), ctx.artifacts / "environment")
        environment = ctx.workspace.ensure_environment(choice.spec, progress=ctx.progress)
        record.environment = EnvironmentPin(
            name=environment.name, version=environment.version, content_hash=environment.content_hash,
            image=environment.image, source=choice.source,
            unpinned=[UnpinnedDependency(u.name, u.was, u.now, u.section) for u in choice.unpinned],
            unpin_not_found=list(choice.not_found))
    if choice.from_model:
        ctx.progress(f"environment: from {choice.source}; unpinned "
                     + (", ".join(f"{u.was} -> {u.now}" for u in choice.unpinned) or "nothing"))
        if choice.not_found:
            ctx.progress(f"environment: note - unpin names {', '.join(choice.not_found)}, which the file does not list")
    ctx.progress(f"environment: pinned {environment.name}:{environment.version}")
    return record.environment


def _code_hash(ctx: ReleaseContext) -> str:
    """The online scoring code's hash, computed once per release and kept in the record."""
    if not ctx.record.code_hash:
        ctx.record.code_hash = code_hash(ctx.config.online.code_dir)
        ctx.record.save()
    return ctx.record.code_hash


def _batch_code_hash(ctx: ReleaseContext) -> str:
    """The batch scoring code's hash (a batch-code-only change is a release), kept in the record."""
    if not ctx.record.batch_code_hash:
        ctx.record.batch_code_hash = code_hash(ctx.config.batch.code_dir)
        ctx.record.save()
    return ctx.record.batch_code_hash


def _ensure_prepared(ctx: ReleaseContext) -> None:
    if ctx.record.model is None:
        step_register(ctx)
    if ctx.record.environment is None:
        step_environment(ctx)


def _decide_serving(ctx: ReleaseContext) -> bool:
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
    if not already_live(deployments, endpoint.traffic, model, environment, code_hash=_code_hash(ctx)):
        return False
    serving = serving_release(deployments, endpoint.traffic)
    record.slots = Slots(candidate=None, live=serving.name if serving else None)
    record.traffic.before = record.traffic.after = dict(endpoint.traffic)
    record.mark("deploy", StepState.SKIPPED, reason=f"{model} on {environment} already serves 100%")
    ctx.progress(f"deploy: {model} on {environment} already serves 100% - nothing to deploy")
    return True


@_settles_batch
def step_deploy(ctx: ReleaseContext) -> Slots:
    """Put the candidate into the free slot at 0% traffic (or find it there already)."""
    config, workspace, record = ctx.config, ctx.workspace, ctx.record
    _ensure_prepared(ctx)
    if _decide_serving(ctx):
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
                                                 tags={RELEASE_TAG: record.release_id, CODE_HASH_TAG: _code_hash(ctx)},
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


def _plan_baseline(ctx: ReleaseContext, live: str | None):
    """What the gate compares the candidate with (``mlops.release.baseline``), and live's deployment."""
    config = ctx.config
    live_deployment = ctx.workspace.get_online_deployment(ctx.endpoint, live) if live else None
    mode = baseline_mode(config.load_test.gates.relative.baseline, ctx.workspace.uri)
    current = ctx.artifacts / "code" / "online"
    if live_deployment is not None and mode == "fresh" and not current.is_dir():  # a later job elsewhere
        stage_code(config.online.code_dir, current)
    plan = plan_baseline(mode, live_deployment, slots=tuple(config.online.slots), current_code_hash=_code_hash(ctx),
                         current_code=current, archived_code=archived_code_dir(config.records, live_deployment),
                         code_hash_tag=CODE_HASH_TAG)
    return plan, live_deployment


def step_loadtest(ctx: ReleaseContext) -> LoadTestResult:
    """Load candidate, fresh baseline and live side by side (header-targeted, the same users each),
    then score the holdout through candidate and live. The baseline is removed right after the load."""
    config, workspace, record = ctx.config, ctx.workspace, ctx.record
    candidate, live = ctx.slots()
    names = {d.name for d in workspace.list_online_deployments(ctx.endpoint)}
    if candidate not in names:
        raise UsageError(f"the candidate {candidate} is not deployed on {ctx.endpoint}: run `mlops deploy`")
    if live not in names:
        live = None
    endpoint = workspace.get_online_endpoint(ctx.endpoint)
    keys = workspace.get_keys(ctx.endpoint)
    profile = config.load_test.profile
    if record.status is not ReleaseStatus.RUNNING:
        record.status = ReleaseStatus.RUNNING
    if ctx.batch_preparation is not None and runs_on_this_machine(workspace.uri):
        # On this machine the batch smoke job would take cores from the deployments being measured and
        # skew the comparison (the A/A drift of benchmarks/gate_power.py is contention): let it finish
        # first. On Azure it runs on the batch cluster, beside the load test.
        batch_overlap.join(ctx)
    with record.step("loadtest", configured_wait_s=profile.run_time_s + profile.warmup_s) as entry:
        plan, live_deployment = _plan_baseline(ctx, live)
        with holding(ctx):
            if plan.name is not None and live_deployment is not None:
                deploy_baseline(ctx, plan, live_deployment, CODE_HASH_TAG)
            else:
                record.baseline = BaselineSlot(mode="live", reason=plan.reason)
                record.save()
            targets = [candidate] + ([plan.name] if plan.name else []) + ([live] if live else [])
            try:
                result = run_load(scoring_uri=endpoint.scoring_uri, key=keys.primary_key, targets=targets,
                                  shape=profile, locustfile=config.load_test.locustfile, out_dir=ctx.artifacts,
                                  name="loadtest", progress=ctx.progress)
            finally:
                remove_baseline(ctx, reason="load test over")
        loadtest = LoadTestResult.of(result.summary())
        loadtest.samples_ms = {name: [round(v, 2) for v in stats.samples_ms] for name, stats in result.stats.items()
                               if name in targets}
        loadtest.targets = targets
        record.loadtest = loadtest
        entry.html_report = loadtest.html_report
        quality_gates = config.load_test.gates.quality
        record.quality = None
        if quality_gates.holdout:
            requests = build_requests(read_rows(Path(quality_gates.holdout)), origins=quality_gates.origins,
                                      context_days=quality_gates.context_days, horizon=quality_gates.horizon)
            candidate_mape, points, failures = score_deployment(workspace, ctx.endpoint, candidate, requests,
                                                                ctx.progress)
            live_mape = score_deployment(workspace, ctx.endpoint, live, requests, ctx.progress)[0] if live else None
            record.quality = QualityResult(candidate_mape=_finite(candidate_mape), live_mape=_finite(live_mape),
                                           points=points, candidate_failures=failures, holdout=quality_gates.holdout)
    return loadtest


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def measurements(record: Record) -> Measurements:
    """What the gate judges, read from the record's load test and quality sections: the relative gates
    compare with the fresh baseline when there was one in the load test, else with live."""
    candidate, live = record.slots.candidate, record.slots.live
    loadtest = record.loadtest or LoadTestResult()
    candidate_stats = loadtest.stats(candidate) or LatencyStats(0, 0, math.nan, math.nan, math.nan, 0.0)
    fresh = record.baseline is not None and record.baseline.mode == "fresh" and BASELINE_SLOT in loadtest.targets
    comparator = BASELINE_SLOT if fresh else live
    compared = loadtest.stats(comparator) if comparator in loadtest.targets else None
    quality = record.quality
    return Measurements(
        candidate=candidate_stats, live=compared, comparator="baseline" if fresh else "live",
        quality=QualityMeasurement(math.nan if quality.candidate_mape is None else quality.candidate_mape,
                                   quality.live_mape, quality.points, quality.candidate_failures)
        if quality else None)


@_settles_batch
def step_gate(ctx: ReleaseContext) -> Verdict:
    """Judge the load test. Failed -> rollback + ``ReleaseFailed``; Inconclusive -> ``Inconclusive``
    (nothing promoted; the candidate stays at 0%)."""
    config, record = ctx.config, ctx.record
    candidate, _live = ctx.slots()
    if record.loadtest is None:
        raise UsageError("no load test in the release record: run `mlops loadtest` first")
    with record.step("gate"):
        verdict = evaluate(config.load_test.gates, measurements(record))
        record.verdict = verdict
    ctx.progress(f"gate: {verdict.phase}")
    for result in verdict.results:
        ctx.progress(f"  [{result.phase}] {result.reason}")
    reasons = "; ".join(verdict.reasons)
    if verdict.phase is Phase.FAILED:
        with holding(ctx):
            rollback(ctx, reason="gate failed: " + reasons)
            record.finish(ReleaseStatus.ROLLED_BACK, error="gate failed: " + reasons)
        raise ReleaseFailed(f"the candidate {candidate} failed its gates and was removed; live traffic is "
                            f"untouched: {reasons}")
    if verdict.phase is Phase.INCONCLUSIVE:
        with holding(ctx):
            record.finish(ReleaseStatus.INCONCLUSIVE, error=reasons)
        raise Inconclusive(f"not enough evidence to judge {candidate}: {reasons} - nothing "
                           "promoted, live traffic untouched; the candidate is left at 0% to be judged again "
                           "(`mlops loadtest`, then `mlops gate`) or removed (`mlops rollback`, which the "
                           "release workflow's rollback job runs)")
    return verdict


def _gated(ctx: ReleaseContext) -> Verdict:
    """The candidate's Passed verdict: the recorded one, or a new load test and gate."""
    record = ctx.record
    if record.step_done("gate") and record.verdict is not None and record.verdict.passed:
        return record.verdict
    if not record.step_done("loadtest") or record.step_state("gate") is StepState.FAILED:
        step_loadtest(ctx)
    return step_gate(ctx)


@_settles_batch
def step_promote(ctx: ReleaseContext) -> Promotion:
    """The stepwise traffic shift. A batch deployment prepared beside it must be ready before the first
    traffic change (a shadow step before it still overlaps the preparation): a failed preparation
    rolls the promotion back before any traffic moves (``batch_overlap``)."""
    with holding(ctx):
        try:
            ctx.before_traffic = lambda: batch_overlap.await_ready(ctx, **_batch_args(ctx))
            promotion = promote(ctx)
        except ReleaseFailed as error:
            if not ctx.record.finished:
                ctx.record.finish(ReleaseStatus.ROLLED_BACK, error=str(error))
            raise
        finally:
            ctx.before_traffic = None
        if ctx.config.batch.refresh and not ctx.record.step_done("batch"):
            ctx.record.set_status(ReleaseStatus.PROMOTED)
        else:
            ctx.record.finish(ReleaseStatus.SUCCEEDED)
    return promotion


def _batch_args(ctx: ReleaseContext) -> dict[str, Any]:
    return {"model": ctx.model_ref(), "environment": ctx.environment_ref(), "code_hash": _batch_code_hash(ctx)}


def step_batch_prepare(ctx: ReleaseContext) -> BatchPrepared | None:
    """Create and smoke-score the release's batch deployment without making it the default (``mlops
    batch-prepare``: beside the online release; ``mlops batch-refresh`` makes it the default after the
    promotion). ``None`` when there is nothing to prepare beside it (see ``batch_overlap.overlap_refusal``)."""
    _ensure_prepared(ctx)
    record = ctx.record
    if not ctx.config.batch.refresh:
        ctx.progress("batch: the batch refresh is off - nothing to prepare")
        return None
    prep = record.batch_prep
    if prep is not None and prep.state in (BatchPrepState.READY, BatchPrepState.DEFAULT):
        ctx.progress(f"batch: {prep.deployment} is prepared already ({prep.state})")
        return prep
    if _batch_current(ctx):
        ctx.progress("batch: the batch default already runs this release - nothing to prepare")
        return None
    prep = batch_overlap.prepare_now(ctx, **_batch_args(ctx))
    if prep is not None and prep.state is BatchPrepState.FAILED:
        raise ReleaseFailed(f"batch deployment {prep.deployment} failed its preparation: {prep.error}; the batch "
                            f"default {prep.default_before} is unchanged (the release's rollback removes it)")
    return prep


def step_batch(ctx: ReleaseContext) -> BatchResult:
    """Make the release's batch deployment the default: the one prepared beside the online release
    when there is one (ready), else prepared now, in sequence."""
    _ensure_prepared(ctx)
    record = ctx.record
    args = _batch_args(ctx)
    batch_overlap.await_ready(ctx, **args)
    with record.step("batch") as entry:
        summary = batch_overlap.ready_result(record) or prepare_batch(
            ctx, release_tag=(RELEASE_TAG, record.release_id), **args)
        summary = make_default(ctx, summary)
        entry.deployment = summary.deployment
        record.batch = summary
        batch_overlap.mark_default(record)
    if record.status in (ReleaseStatus.PROMOTED, ReleaseStatus.RUNNING):
        record.finish(ReleaseStatus.SUCCEEDED)
    return summary


@_settles_batch
def step_rollback(ctx: ReleaseContext, *, reason: str = "requested") -> dict[str, object]:
    if not ctx.record.slots.candidate:
        batch_overlap.remove_prepared(ctx, reason=f"rollback: {reason}")
        ctx.progress("rollback: this release deployed no online candidate - nothing to roll back online")
        return {"reason": reason, "candidate": "none"}
    candidate, live = ctx.slots()
    checked_rollback_plan(ctx, candidate, live, manual=True)  # a refused rollback takes no lock
    with holding(ctx):
        summary = rollback(ctx, reason=reason, manual=True)
        ctx.record.finish(ReleaseStatus.ROLLED_BACK, error=reason)
    return {"reason": summary.reason, "traffic_before": summary.traffic_before,
            "traffic_after": summary.traffic_after, "candidate": summary.candidate}


# ---------------------------------------------------------------------------------------------
# The whole release


def _batch_current(ctx: ReleaseContext) -> bool:
    """True when the batch default already runs this release's model, environment and batch code
    (or batch is off). Read-only."""
    if not ctx.config.batch.refresh:
        return True
    endpoint = ctx.workspace.get_batch_endpoint(ctx.config.batch.endpoint.name)
    if endpoint is None or not endpoint.default_deployment:
        return False
    for deployment in ctx.workspace.list_batch_deployments(endpoint.name):
        if deployment.name == endpoint.default_deployment:
            deployed_code = deployment.tags.get(CODE_HASH_TAG)
            return (deployment.model == ctx.model_ref() and deployment.environment == ctx.environment_ref()
                    and (deployed_code is None or deployed_code == _batch_code_hash(ctx)))
    return False


def _start(config: Config, workspace: Workspace, path: Path, progress: Progress) -> tuple[ReleaseContext, bool]:
    """The release to run: the unfinished one at ``path`` (resumed) or a new one."""
    record = Record.load(path)
    _refuse_if_running(record)
    if record is not None and not record.finished and record.endpoint == config.online.endpoint.name:
        refuse_if_held(workspace, config.online.endpoint.name, record.holder)
        record.claim()
        progress(f"release {record.release_id}: resuming (status {record.status})")
        ctx = ReleaseContext(config, workspace, record, progress)
        if record.baseline is not None and record.baseline.may_exist:
            with holding(ctx):
                safe_remove_baseline(ctx, reason="the release was interrupted while its baseline existed")
        return ctx, True
    record = _new_record(config, workspace, path)
    progress(f"release {record.release_id}: started on {workspace.uri}")
    return ReleaseContext(config, workspace, record, progress), False


def _prepare(ctx: ReleaseContext, resuming: bool) -> None:
    previous_model = ctx.record.model.version if ctx.record.model else None
    step_register(ctx)
    step_environment(ctx)
    current = ctx.record.model.version if ctx.record.model else None
    if resuming and previous_model and previous_model != current:
        raise ReleaseFailed(f"release {ctx.record.release_id} was interrupted with model version {previous_model}, "
                            f"but the model source now gives {current}: the interrupted release is rolled back; "
                            "run the release again to release the new model")


def _pause(ctx: ReleaseContext, message: str) -> Record:
    batch_overlap.join(ctx)  # the process ends here: the preparation's outcome goes into the record first
    ctx.record.set_status(ReleaseStatus.AWAITING_PROMOTION)
    ctx.progress(message)
    return ctx.record


@_settles_batch
def _fail(ctx: ReleaseContext, error: MlopsError) -> None:
    """Never leave a failed candidate behind: a failure before the traffic shift completed removes it
    (``promote`` rolls back by itself once traffic moves). The record ends failed or rolled back."""
    record = ctx.record
    if record.finished:
        return
    if "deploy" not in record.steps and not record.slots.candidate:  # never took the lock: nothing to undo
        record.finish(ReleaseStatus.FAILED, error=str(error))
        return
    with holding(ctx):
        safe_remove_baseline(ctx, reason="the release failed")
        if record.slots.candidate and record.rollback is None and not record.promotion.finished:
            try:
                rollback(ctx, reason=f"release failed: {str(error).splitlines()[0] if str(error) else error}")
            except MlopsError as second:
                ctx.progress(f"rollback after the failure also failed: {second}")
        record.finish(ReleaseStatus.ROLLED_BACK if record.rollback else ReleaseStatus.FAILED, error=str(error))


def run_release(config: Config, workspace: Workspace, record_path: Path | None = None, *,
                until: str | None = None, confirm: Callable[[str], bool] | None = None,
                progress: Progress = no_progress) -> Record:
    """Run (or resume) a release. Raises ``ReleaseFailed`` (rolled back), ``Inconclusive`` (paused)
    or ``ConflictError`` (another release holds the endpoint)."""
    ctx, resuming = _start(config, workspace, record_path or default_record_path(config), progress)
    record = ctx.record
    try:
        _prepare(ctx, resuming)
        if _decide_serving(ctx) and _batch_current(ctx):
            record.finish(ReleaseStatus.NOTHING_TO_RELEASE)
            progress(f"nothing to release: {ctx.model_ref()} on {ctx.environment_ref()} already serves "
                     "100% and is the batch default")
            return record
    except MlopsError as error:
        _fail(ctx, error)
        raise
    with holding(ctx):
        try:
            if not _batch_current(ctx):
                batch_overlap.begin(ctx, **_batch_args(ctx))  # beside deploy, load test, gate and promotion
            return _release_steps(ctx, until, confirm)
        except Inconclusive:
            raise
        except MlopsError as error:
            _fail(ctx, error)
            raise
        finally:
            batch_overlap.settle(ctx)
            if ctx.batch_preparation is not None:  # interrupted (a signal, a crash): the record says
                ctx.batch_preparation.cancel()     # "preparing"; a resumed release prepares again


def _release_steps(ctx: ReleaseContext, until: str | None, confirm: Callable[[str], bool] | None) -> Record:
    """deploy -> (loadtest -> gate) -> promote -> batch, each skipped when the record says it is done."""
    record, config = ctx.record, ctx.config
    step_deploy(ctx)
    if record.slots.candidate is not None:
        _gated(ctx)
        if until == "gate":
            return _pause(ctx, "release: stopped after the gate (--until gate); promote with `mlops promote`")
        if not record.promotion.finished:
            question = (f"Shift traffic to {record.slots.candidate} ({ctx.model_ref()}) in "
                        f"{len(config.online.rollout.steps)} steps?")
            if confirm is not None and not confirm(question):
                return _pause(ctx, "release: promotion declined; the candidate stays at 0% (`mlops promote` later)")
            step_promote(ctx)
    elif until == "gate":
        return _pause(ctx, "release: nothing to gate (already live); `mlops promote` finishes it")
    if config.batch.refresh and not record.step_done("batch"):
        step_batch(ctx)
    endpoint = ctx.workspace.get_online_endpoint(ctx.endpoint)
    record.traffic.after = dict(endpoint.traffic) if endpoint else {}
    record.finish(ReleaseStatus.SUCCEEDED)
    return record
