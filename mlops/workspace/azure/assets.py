"""Models, AutoML jobs and environments: versioned assets, content-addressed by ``mlops.content_hash``.

Choosing the next version lists *all* versions: ``models.list`` / ``environments.list`` default to
``list_view_type=ListViewType.ACTIVE_ONLY`` (azure-ai-ml 1.35, ``ModelOperations.list`` and
``EnvironmentOperations.list``), so an archived version is invisible there - the SDK team's
recording ``test_model_archive_restore_version`` shows the list without it while ``GET`` still reads
it - and its number would be chosen again. A version that exists anyway with other content (a race)
is reported as such: azure-core's 409 ``ResourceExistsError`` (for a model "Asset paths cannot be
updated.", which the SDK does not turn into its ``AssetPathException``), for an environment too.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from azure.ai.ml.constants import AssetTypes, ListViewType
from azure.ai.ml.entities import (
    Environment as AzEnvironment,
)
from azure.ai.ml.entities import (
    Model as AzModel,
)
from azure.ai.ml.exceptions import MlException, ValidationException

from mlops.errors import (
    ConflictError,
    UsageError,
)
from mlops.workspace import automl, rules
from mlops.workspace import azure_decisions as decide
from mlops.workspace.automl import AUTOML_CHILD_TAG, AUTOML_METRIC_TAG, AUTOML_PARENT_TAG, AUTOML_SCORE_TAG
from mlops.workspace.azure.calls import AzureCalls, _tags
from mlops.workspace.azure_decisions import CONTENT_HASH_TAG
from mlops.workspace.port import (
    AutoMLJobRequest,
    Environment,
    EnvironmentSpec,
    Model,
    Progress,
    TrainingJob,
    Trial,
    no_progress,
)


class AssetOps(AzureCalls):
    """Models (plain and from an AutoML job's best trial), AutoML jobs, environments."""

    # models ----------------------------------------------------------------------------------
    def _model(self, entity: Any) -> Model:
        tags = _tags(entity)
        return Model(name=entity.name, version=str(entity.version), content_hash=tags.get(CONTENT_HASH_TAG, ""),
                     path=str(getattr(entity, "path", "") or ""), tags=tags)

    def register_model(self, name: str, path: Path, *, tags: Mapping[str, str] | None = None,
                       progress: Progress = no_progress) -> Model:
        from mlops.workspace.hashing import content_hash

        rules.check_asset_name("model", name)
        path = Path(path)
        if not path.exists():
            raise UsageError(f"model path {path} does not exist")
        digest = content_hash(path)
        versions = self._list(f"list versions of model {name}", self._ml.models.list, name=name,
                              list_view_type=ListViewType.ALL)
        found = decide.version_with_hash(((str(m.version), _tags(m)) for m in versions), digest)
        if found is not None:
            progress(f"model {name}:{found} already holds these files (sha256 {digest[:12]}); nothing registered")
            return self.get_model(name, found)
        version = decide.next_version(str(m.version) for m in versions)
        entity = AzModel(name=name, version=version, path=str(path), type=AssetTypes.CUSTOM_MODEL,
                         tags={**dict(tags or {}), CONTENT_HASH_TAG: digest},
                         description="registered by mlops")
        progress(f"registering model {name}:{version} from {path} (uploading)")
        created = self._call(f"register model {name}:{version}", self._ml.models.create_or_update, entity,
                             progress=progress, retry=False)
        return self._model(created)

    def get_model(self, name: str, version: str = "latest") -> Model:
        what = f"get model {name}:{version}"
        if version == "latest":
            return self._model(self._call(what, self._ml.models.get, name=name, label="latest"))
        return self._model(self._call(what, self._ml.models.get, name=name, version=version))

    def list_models(self, name: str) -> list[Model]:
        models = [self._model(m) for m in self._list(f"list model {name}", self._ml.models.list, name=name)]
        order = {v: i for i, v in enumerate(decide.sort_versions(m.version for m in models))}
        return sorted(models, key=lambda m: order[m.version])

    def _automl_parent(self, job_name: str) -> tuple[Any, str]:
        """The parent job and its primary metric's name, or the error that says why it gives no model."""
        parent = self._call(f"get AutoML job {job_name}", self._ml.jobs.get, job_name)
        properties = dict(getattr(parent, "properties", None) or {})
        metric = automl.metric_name(getattr(parent, "primary_metric", None) or properties.get("primary_metric"))
        problem = decide.automl_job_problem(job_name, getattr(parent, "status", None), metric)
        if problem is not None:
            raise problem
        return parent, metric

    def _automl_children(self, job_name: str) -> list[automl.ChildRun | None]:
        # jobs.list(parent_job_name=...) yields None for a child whose REST object did not parse
        return [
            None if child is None else
            automl.ChildRun(name=child.name, status=decide._enum_text(child.status),
                            properties=dict(getattr(child, "properties", None) or {}), tags=_tags(child))
            for child in self._list(f"list trials of AutoML job {job_name}", self._ml.jobs.list,
                                    parent_job_name=job_name)
        ]

    def register_model_from_job(self, name: str, job_name: str, *, tags: Mapping[str, str] | None = None,
                                progress: Progress = no_progress) -> Model:
        """Register the best trial of the AutoML job ``job_name`` as model ``name``.

        The trial is AutoML's own choice (the parent's ``automl_best_child_run_id`` tag), else the
        completed child with the best ``score`` by the primary metric's direction (see
        ``azure_decisions.choose_best_child``). The child's default artifacts are downloaded
        (``jobs.download``: ``artifacts/outputs/...``), and ``outputs/model.pt`` (or ``model.pkl``),
        the conda environment file and the scoring file are registered together as one folder,
        tagged with the parent, the child, the metric and the score. The same files -> the same version.
        """
        parent, metric = self._automl_parent(job_name)
        properties = dict(getattr(parent, "properties", None) or {})
        best = automl.choose_best_child(job_name, metric, self._automl_children(job_name), parent_tags=_tags(parent),
                                        settings_json=properties.get("AMLSettingsJsonString"))
        for warning in best.warnings:
            progress(f"warning: {warning}")
        progress(f"AutoML job {job_name}: best trial {best.name} ({best.reason}; {metric} {best.score})")
        with tempfile.TemporaryDirectory(prefix="mlops-automl-") as tmp:
            download = Path(tmp) / "download"
            self._call(f"download outputs of trial {best.name}", self._ml.jobs.download, best.name,
                       download_path=str(download), progress=progress)
            files = {p.relative_to(download).as_posix(): p for p in download.rglob("*") if p.is_file()}
            picked = automl.pick_automl_files(files)
            stage = Path(tmp) / "model"
            stage.mkdir()
            for relative in (picked.model, picked.conda_file, picked.scoring_file):
                shutil.copy2(files[relative], stage / files[relative].name)
            job_tags = {AUTOML_PARENT_TAG: job_name, AUTOML_CHILD_TAG: best.name, AUTOML_METRIC_TAG: metric,
                        AUTOML_SCORE_TAG: "" if best.score is None else repr(best.score)}
            return self.register_model(name, stage, tags={**job_tags, **dict(tags or {})}, progress=progress)

    def download_model(self, name: str, version: str, dest: Path) -> Path:
        """``models.download`` puts the files under ``dest/<name>/`` (a registered folder one level
        deeper, under the folder's own name: azure-ai-ml's ``ModelOperations.download``); returns
        ``dest/<name>``."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        self._call(f"download model {name}:{version}", self._ml.models.download, name=name, version=version,
                   download_path=str(dest))
        folder = dest / name
        return folder if folder.is_dir() else dest

    # AutoML jobs -----------------------------------------------------------------------------
    def _trial(self, child: Any) -> Trial:
        properties = {str(k): str(v) for k, v in (getattr(child, "properties", None) or {}).items()}
        return Trial(name=child.name, status=decide.job_status(child.status),
                     score=automl.parse_score(properties["score"]) if "score" in properties else None,
                     algorithm=properties.get("run_algorithm", ""), properties=properties)

    def _training_job(self, job: Any, children: Iterable[Any] = ()) -> TrainingJob:
        properties = {str(k): str(v) for k, v in (getattr(job, "properties", None) or {}).items()}
        metric = automl.metric_name(getattr(job, "primary_metric", None) or properties.get("primary_metric"))
        try:
            goal = automl.metric_goal(metric, properties.get("AMLSettingsJsonString")) if metric else None
        except UsageError:
            goal = None
        tags = _tags(job)
        return TrainingJob(name=job.name, status=decide.job_status(job.status), primary_metric=metric, goal=goal,
                           best_child=tags.get(automl.AUTOML_BEST_CHILD_TAG),
                           trials=tuple(self._trial(c) for c in children if c is not None and "score" in
                                        (getattr(c, "properties", None) or {})),
                           created_at=str((getattr(job, "creation_context", None) and
                                           getattr(job.creation_context, "created_at", "")) or ""),
                           properties=properties, tags=tags)

    def submit_automl_job(self, request: AutoMLJobRequest, *, progress: Progress = no_progress) -> TrainingJob:
        """``load_job`` the CLI v2 spec (the SDK validates it) and ``jobs.create_or_update`` it."""
        from azure.ai.ml import load_job

        if request.data:
            raise UsageError("--data is for the local workspace: on Azure ML the spec's training_data (an MLTable "
                             "data asset) is what the job trains on")
        if not Path(request.spec_file).is_file():
            raise UsageError(f"AutoML job spec {request.spec_file} does not exist")
        try:
            job = load_job(str(request.spec_file))
        except (ValidationException, MlException) as exc:
            raise self._translate(f"load AutoML job spec {request.spec_file}", exc) from exc
        if getattr(job, "type", "") != "automl":
            raise UsageError(f"{request.spec_file}: expected an AutoML job spec (type: automl)")
        if request.name:
            job.name = request.name
        if request.trials:
            job.limits.max_trials = request.trials
        progress(f"submitting AutoML job from {request.spec_file} (experiment {job.experiment_name}, "
                 f"compute {job.compute})")
        created = self._call(f"submit AutoML job {request.spec_file}", self._ml.jobs.create_or_update, job,
                             progress=progress, retry=False)
        studio = getattr(created, "studio_url", "") or ""
        progress(f"AutoML job {created.name} submitted ({decide._enum_text(created.status)})"
                 + (f": {studio}" if studio else ""))
        return self._training_job(created)

    def get_training_job(self, name: str) -> TrainingJob:
        job = self._call(f"get job {name}", self._ml.jobs.get, name)
        children = self._list(f"list trials of job {name}", self._ml.jobs.list, parent_job_name=name)
        return self._training_job(job, children)

    def list_training_jobs(self) -> list[TrainingJob]:
        jobs = self._list("list jobs", self._ml.jobs.list)
        return [self._training_job(job) for job in jobs if job is not None and getattr(job, "type", "") == "automl"]

    # environments ----------------------------------------------------------------------------
    def _environment(self, entity: Any) -> Environment:
        tags = _tags(entity)
        return Environment(name=entity.name, version=str(entity.version), content_hash=tags.get(CONTENT_HASH_TAG, ""),
                           image=str(getattr(entity, "image", "") or ""), tags=tags)

    def ensure_environment(self, spec: EnvironmentSpec, *, progress: Progress = no_progress) -> Environment:
        rules.check_asset_name("environment", spec.name)
        digest = spec.content_hash()
        for attempt in (1, 2):
            versions = self._list(f"list versions of environment {spec.name}", self._ml.environments.list,
                                  name=spec.name, list_view_type=ListViewType.ALL)
            found = decide.version_with_hash(((str(e.version), _tags(e)) for e in versions), digest)
            if found is not None:
                progress(f"environment {spec.name}:{found} matches the spec (sha256 {digest[:12]}); reused")
                return self.get_environment(spec.name, found)
            version = decide.next_version(str(e.version) for e in versions)
            entity = AzEnvironment(name=spec.name, version=version, image=spec.image,
                                   conda_file=str(spec.conda_file), description=spec.description or None,
                                   tags={CONTENT_HASH_TAG: digest})
            try:
                created = self._call(f"create environment {spec.name}:{version}",
                                     self._ml.environments.create_or_update, entity, progress=progress, retry=False)
            except ConflictError as exc:
                if attempt == 2:  # still taken though every version, archived ones included, was seen
                    azure_said = exc.__cause__ if exc.__cause__ is not None else exc
                    raise decide.translate("version_exists", f"create environment {spec.name}:{version}",
                                           str(getattr(azure_said, "message", None) or azure_said)) from exc
                continue  # someone created that version meanwhile: look again
            progress(f"environment {spec.name}:{version} created; Azure builds its image when a deployment "
                     "first uses it (several minutes), and every later deployment reuses the pinned version")
            return self._environment(created)
        raise AssertionError("unreachable")

    def get_environment(self, name: str, version: str) -> Environment:
        return self._environment(self._call(f"get environment {name}:{version}", self._ml.environments.get,
                                            name=name, version=version))
