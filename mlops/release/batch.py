"""Batch refresh: a new batch deployment on the release's pinned model and environment, smoke-scored
(``prepare_batch``), then made the endpoint default (``make_default``); older deployments beyond
``batch.keep`` are removed. The two halves may run apart: ``mlops.release.batch_overlap`` prepares
the deployment while the online candidate is judged and promoted.

The deployment is named after the model version (``tcn-v3``), so a re-run finds it instead of
creating another. The smoke job scores ``batch.smoke_input`` with the *new* deployment (named
explicitly: the default is untouched until the output is checked). ``check_output`` and
``prune_plan`` are pure.
"""

from __future__ import annotations

import csv
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path

from mlops.errors import ReleaseFailed
from mlops.release.context import ReleaseContext
from mlops.release.sections.batch import BatchResult
from mlops.release.slots import CODE_HASH_TAG
from mlops.release.staging import stage_code
from mlops.workspace.port import AssetRef, BatchDeployment, JobStatus
from mlops.workspace.waiting import wait_for_batch_job

REQUIRED_COLUMNS = ("date", "predicted")
OUTPUT_COLUMNS = ("date", "forecast_origin", "predicted", "count", "file")
"""The columns ``endpoints/batch/score.py`` returns, in order (its ``OUTPUT_COLUMNS``)."""
QUANTILE_OUTPUT_COLUMNS = OUTPUT_COLUMNS[:3] + ("q0.1", "q0.9") + OUTPUT_COLUMNS[3:]
"""The same with the interval columns that ``endpoints/batch/deployment.yml`` asks for
(``MLOPS_BATCH_QUANTILES: "0.1,0.9"``): they follow ``predicted``."""


def read_output(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """``(columns, rows)`` of a batch job's ``append_row`` output, in either of its two shapes.

    The local workspace writes a CSV with a header. Azure ML's ``append_row`` writes the rows of the
    DataFrame ``run()`` returns *without* a header, separated by spaces (Azure's own samples read
    ``predictions.csv`` with ``header=None, sep=' '``); such rows are named by ``OUTPUT_COLUMNS``, or
    by ``QUANTILE_OUTPUT_COLUMNS`` when they have that many fields.
    """
    with path.open(newline="") as handle:
        lines = handle.read().splitlines()
    first = lines[0] if lines else ""
    if any(column in first.split(",") for column in REQUIRED_COLUMNS):
        reader = csv.DictReader(lines)
        return list(reader.fieldnames or []), list(reader)
    delimiter = "," if "," in first else " "
    records = [fields for fields in csv.reader(lines, delimiter=delimiter) if fields]
    shapes = {len(names): names for names in (OUTPUT_COLUMNS, QUANTILE_OUTPUT_COLUMNS)}
    names = shapes.get(len(records[0])) if records else OUTPUT_COLUMNS
    if names is None or any(len(fields) != len(names) for fields in records):
        return [f"(no header; {len(records[0])} unnamed fields)"], []
    return list(names), [dict(zip(names, fields, strict=True)) for fields in records]


def check_output(path: Path, *, min_rows: int) -> tuple[list[str], list[dict[str, str]]]:
    """``(problems, rows)`` of a smoke job's output (see ``read_output``): enough rows, the required
    columns, and a finite, non-negative number in every ``predicted`` cell."""
    columns, rows = read_output(path)
    problems = [f"column {column!r} missing (columns: {columns})" for column in REQUIRED_COLUMNS
                if column not in columns]
    if len(rows) < min_rows:
        problems.append(f"{len(rows)} output rows, expected at least {min_rows}")
    if "predicted" in columns:
        bad = 0
        for row in rows:
            try:
                value = float(row["predicted"])
            except (TypeError, ValueError):
                bad += 1
                continue
            if not math.isfinite(value) or value < 0:
                bad += 1
        if bad:
            problems.append(f"{bad} rows with a missing, non-finite or negative prediction")
    return problems, rows


def _version_of(name: str, prefix: str) -> int | None:
    match = re.fullmatch(rf"{re.escape(prefix)}-v(\d+)", name)
    return int(match.group(1)) if match else None


def prune_plan(names: Sequence[str], *, default: str | None, keep: int, prefix: str) -> list[str]:
    """Deployments to delete: ours (``prefix-vN``) beyond the newest ``keep``, never the default;
    deployments named otherwise are not ours and are left alone."""
    ours = sorted((v, n) for n in names if (v := _version_of(n, prefix)) is not None)
    ours.reverse()
    kept = {default} if default else set()
    for _version, name in ours:
        if len(kept) >= keep:
            break
        kept.add(name)
    return [name for _version, name in ours if name not in kept]


def batch_refresh(ctx: ReleaseContext, *, model: AssetRef, environment: AssetRef, code_hash: str,
                  release_tag: tuple[str, str]) -> BatchResult:
    """Refresh the batch endpoint in one go (``prepare_batch`` then ``make_default``); returns the
    summary stored in the record."""
    return make_default(ctx, prepare_batch(ctx, model=model, environment=environment, code_hash=code_hash,
                                           release_tag=release_tag))


def prepare_batch(ctx: ReleaseContext, *, model: AssetRef, environment: AssetRef, code_hash: str,
                  release_tag: tuple[str, str]) -> BatchResult:
    """Create the release's batch deployment (unless it already runs this model, environment and
    batch code) and smoke-score it, naming it explicitly: the endpoint's default is untouched.

    The deployment carries the batch scoring code's hash (``mlops.code_hash``), so a change of the
    batch code alone makes a new deployment even with the same model and environment. Writes nothing
    to the record (``mlops.release.batch_overlap`` runs it in a thread beside the online release)."""
    config, workspace, progress = ctx.config, ctx.workspace, ctx.progress
    spec_endpoint = config.batch.endpoint
    workspace.ensure_batch_endpoint(spec_endpoint, progress=progress)
    name = config.batch_deployment_name(model)
    existing = {d.name: d for d in workspace.list_batch_deployments(spec_endpoint.name)}
    endpoint = workspace.get_batch_endpoint(spec_endpoint.name)
    summary = BatchResult(endpoint=spec_endpoint.name, deployment=name, model=str(model), environment=str(environment),
                          default_before=endpoint.default_deployment if endpoint else None)
    current = existing.get(name)
    same = _same(current, model, environment, code_hash)
    if endpoint is not None and endpoint.default_deployment == name and same:
        progress(f"batch: {name} is already the default on {model} / {environment}")
        summary.default_after = name
        return summary
    if not same or current is None or current.state != "Succeeded":
        code = stage_code(config.batch.code_dir, ctx.artifacts / "code" / "batch")
        spec = config.batch_deployment_spec(model, environment, code,
                                            tags={CODE_HASH_TAG: code_hash, release_tag[0]: release_tag[1]},
                                            environment_variables=ctx.deployment_variables())
        progress(f"batch: creating deployment {name} ({model}, {environment})")
        workspace.create_batch_deployment(spec, progress=progress)
    _smoke(ctx, name, summary)
    return summary


def make_default(ctx: ReleaseContext, summary: BatchResult) -> BatchResult:
    """Make the prepared (smoke-scored) deployment the default, then remove ours beyond ``batch.keep``."""
    config, workspace, progress = ctx.config, ctx.workspace, ctx.progress
    endpoint, name = summary.endpoint, summary.deployment
    if summary.default_after != name:
        workspace.set_batch_default(endpoint, name)
        progress(f"batch: {name} is now the default of {endpoint}")
        summary.changed, summary.default_after = True, name
    names = [d.name for d in workspace.list_batch_deployments(endpoint)]
    removed = prune_plan(names, default=name, keep=config.batch.keep, prefix=config.batch.deployment_prefix)
    for old in removed:
        workspace.delete_batch_deployment(endpoint, old, progress=progress)
        progress(f"batch: removed the old deployment {old}")
    summary.removed = removed
    return summary


def _same(deployment: BatchDeployment | None, model: AssetRef, environment: AssetRef, code_hash: str) -> bool:
    """The deployment runs this model, environment and batch code (an untagged one: model and environment)."""
    if deployment is None or deployment.model != model or deployment.environment != environment:
        return False
    deployed_code = deployment.tags.get(CODE_HASH_TAG)
    return deployed_code is None or deployed_code == code_hash


def _smoke(ctx: ReleaseContext, deployment: str, summary: BatchResult) -> None:
    config, workspace, progress = ctx.config, ctx.workspace, ctx.progress
    endpoint = config.batch.endpoint.name
    started = time.monotonic()
    job = workspace.invoke_batch(endpoint, config.batch.smoke_input, deployment_name=deployment)
    progress(f"batch: smoke job {job.name} on {deployment} over {config.batch.smoke_input}")
    left = config.batch.job_timeout_s - (time.monotonic() - started)  # the time limit counts from the invoke
    job = wait_for_batch_job(workspace, job, timeout=left, sleep=ctx.sleep,
                             on_change=lambda seen: progress(f"batch: {seen.name} {seen.status} "
                                                             f"{seen.mini_batches_done}/{seen.mini_batches_total} "
                                                             "mini-batches"))
    if not job.finished:
        raise ReleaseFailed(f"batch smoke job {job.name} did not finish within {config.batch.job_timeout_s:g}s; "
                            f"the default deployment is unchanged")
    if job.status is not JobStatus.COMPLETED:
        logs = workspace.get_batch_job_logs(job.name, lines=30)
        raise ReleaseFailed(f"batch smoke job {job.name} {job.status}: {job.error}; the default deployment is "
                            f"unchanged\n--- job log tail ---\n{logs}")
    out_dir = ctx.artifacts / "batch"
    output = workspace.download_batch_output(job.name, out_dir)
    problems, rows = check_output(output, min_rows=config.batch.min_output_rows)
    if problems:
        raise ReleaseFailed(f"batch smoke output {output} is wrong: " + "; ".join(problems)
                            + "; the default deployment is unchanged")
    from mlops.release.report import forecast_svg

    svg = out_dir / "forecast-vs-actual.svg"
    svg.write_text(forecast_svg(rows, title=f"{deployment}: smoke forecast vs actual"))
    progress(f"batch: smoke job {job.name} completed: {len(rows)} rows checked in {time.monotonic() - started:.1f}s")
    summary.smoke_job, summary.smoke_rows, summary.smoke_output = job.name, len(rows), str(output)
    summary.forecast_svg, summary.smoke_seconds = str(svg), round(time.monotonic() - started, 3)
