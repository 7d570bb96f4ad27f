"""The steps that pin what is released: ``register`` (the model, from a folder, a registered
reference or an AutoML job's best trial) and ``environment`` (the fixed spec, or one made from the
model's own conda file)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops.config import require_model_folder
from mlops.release.context import ReleaseContext
from mlops.release.model_environment import choose_environment
from mlops.release.sections.pins import EnvironmentPin, ModelPin, TrialPick, UnpinnedDependency
from mlops.release.trust import pickles_trusted
from mlops.workspace.automl import AUTOML_CHILD_TAG, AUTOML_METRIC_TAG, AUTOML_PARENT_TAG, AUTOML_SCORE_TAG


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


def ensure_prepared(ctx: ReleaseContext) -> None:
    if ctx.record.model is None:
        step_register(ctx)
    if ctx.record.environment is None:
        step_environment(ctx)
