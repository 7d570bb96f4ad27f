"""``mlops jobs``: AutoML jobs - submit the spec and follow it, list them, show one with its trials.

``mlops jobs submit jobs/automl-tcn-forecasting.yml`` submits the CLI v2 AutoML spec to Azure ML
(``--wait`` follows it until it ends, one progress line per status change) and prints the job's
name; on the local workspace the same command runs the local sweep (``--data CSV|synthetic``).
``mlops jobs show NAME --json`` names the best trial (AutoML's ``automl_best_child_run_id``) and
each trial's primary-metric value. ``job_document``/``job_text`` (pure) shape the output.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops.cli import add_command, emit, group_help, progress
from mlops.errors import MlopsError, UsageError, WorkspaceError
from mlops.workspace import connect
from mlops.workspace.port import AutoMLJobRequest, TrainingJob, Workspace
from mlops.workspace.waiting import wait_for_training_job

DEFAULT_SPEC = Path("jobs/automl-tcn-forecasting.yml")


def job_document(job: TrainingJob) -> dict[str, Any]:
    return job.to_dict()


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.5f}"


def job_text(job: TrainingJob) -> str:
    lines = [f"job {job.name}  {job.status}  primary metric {job.primary_metric or '-'}"
             + (f" ({job.goal})" if job.goal else ""),
             f"best trial {job.best_child or '- (set when the sweep completes)'}"]
    if job.error:
        lines.append(f"error: {job.error}")
    if job.trials:
        rows = [["TRIAL", "STATUS", "ALGORITHM", (job.primary_metric or "SCORE").upper(), ""]]
        rows += [[t.name, t.status, t.algorithm or "-", _score(t.score), "<- best" if t.name == job.best_child else ""]
                 for t in job.trials]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def jobs_text(jobs: list[TrainingJob]) -> str:
    if not jobs:
        return "no AutoML jobs yet (mlops train --data synthetic --trials 3 --job NAME)"
    rows = [["JOB", "STATUS", "PRIMARY METRIC", "BEST TRIAL", "CREATED"]]
    rows += [[j.name, j.status, j.primary_metric or "-", j.best_child or "-", j.created_at or "-"] for j in jobs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def follow(workspace: Workspace, job: TrainingJob, *, timeout_s: float, poll_s: float = 30.0,
           sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> TrainingJob:
    """Follow ``job`` until it ends (a progress line per change); ``WorkspaceError`` on timeout."""
    def report(current: TrainingJob) -> None:
        done = sum(1 for t in current.trials if t.status.finished)
        progress(f"job {current.name}: {current.status}, {done} trial(s) finished")

    job = wait_for_training_job(workspace, job, poll=poll_s, timeout=timeout_s, on_change=report, sleep=sleep,
                                clock=clock)
    if not job.finished:
        raise WorkspaceError(f"job {job.name} is still {job.status} after {timeout_s:.0f}s; follow it with "
                             f"`mlops jobs show {job.name}` (it keeps running)")
    return job


def register(subparsers: argparse._SubParsersAction) -> None:
    jobs = add_command(subparsers, "jobs", help="AutoML jobs: submit, list, show",
                       description="AutoML jobs of the workspace (Azure ML or the local one).",
                       example="mlops jobs submit jobs/automl-tcn-forecasting.yml --data synthetic\n"
                               "mlops jobs list\nmlops jobs show dau-sweep-1 --json",
                       handler=lambda _args: 2)
    sub = jobs.add_subparsers(dest="jobs_command", metavar="COMMAND")

    parser = add_command(
        sub, "submit", handler=run_submit, json_output=True,
        help="submit the AutoML job spec (local workspace: run the local sweep); prints the job name",
        example=("mlops --workspace azureml://subscriptions/SUB/resourceGroups/RG/workspaces/WS jobs submit "
                 "jobs/automl-tcn-forecasting.yml --wait\n"
                 "mlops jobs submit jobs/automl-tcn-forecasting.yml --data synthetic --name dau-sweep-1"),
    )
    parser.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC, help=f"the spec (default {DEFAULT_SPEC})")
    parser.add_argument("--name", help="the job's name (default: Azure's / <experiment>-<UTC time>)")
    parser.add_argument("--data", metavar="CSV|synthetic", help="local workspace: the training series")
    parser.add_argument("--trials", metavar="N", help="override limits.max_trials (local default: min(max_trials, 3))")
    parser.add_argument("--fast", action="store_true", help="local workspace: tiny trials (tests, demos)")
    parser.add_argument("--wait", action="store_true", help="Azure: follow the job until it ends; exit 1 unless "
                        "it completes (the local sweep always finishes before the command returns)")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds --wait waits (default 6 h)")

    parser = add_command(sub, "list", handler=run_list, json_output=True, help="AutoML jobs, newest first",
                         example="mlops jobs list\nmlops jobs list --json")
    parser = add_command(sub, "show", handler=run_show, json_output=True,
                         help="an AutoML job: status, primary metric, best trial, every trial's score",
                         example="mlops jobs show dau-sweep-1\nmlops jobs show dau-sweep-1 --json")
    parser.add_argument("name", help="the job's name")
    jobs.set_defaults(handler=group_help(jobs))


def job_markdown(job: TrainingJob) -> str:
    """The ``$GITHUB_STEP_SUMMARY`` of a job: status, best trial, the trials' primary-metric values."""
    lines = [f"## AutoML job `{job.name}`: **{job.status}**", "",
             f"Primary metric `{job.primary_metric}` ({job.goal or '?'}); best trial `{job.best_child or '-'}`", ""]
    if job.trials:
        lines += ["| Trial | Status | Algorithm | Primary metric | |", "|---|---|---|---|---|"]
        lines += [f"| `{t.name}` | {t.status} | {t.algorithm or '-'} | {_score(t.score)} | "
                  f"{'best' if t.name == job.best_child else ''} |" for t in job.trials]
    return "\n".join(lines) + "\n"


def publish(job: TrainingJob, environ: Mapping[str, str] | None = None) -> None:
    """Under GitHub Actions: ``job_name``/``job_status``/``best_trial`` outputs and the step summary."""
    environ = os.environ if environ is None else environ
    if environ.get("GITHUB_OUTPUT"):
        with open(environ["GITHUB_OUTPUT"], "a") as handle:
            handle.write(f"job_name={job.name}\njob_status={job.status}\nbest_trial={job.best_child or ''}\n")
    if environ.get("GITHUB_STEP_SUMMARY"):
        with open(environ["GITHUB_STEP_SUMMARY"], "a") as handle:
            handle.write(job_markdown(job))


def run_submit(args: argparse.Namespace) -> int:
    trials = None
    if args.trials:  # a workflow passes its (possibly empty) input as text
        if not args.trials.isdigit() or int(args.trials) < 1:
            raise UsageError(f"--trials: expected a positive integer, got {args.trials!r}")
        trials = int(args.trials)
    workspace = connect(args.workspace)
    request = AutoMLJobRequest(spec_file=args.spec, name=args.name, data=args.data, trials=trials, fast=args.fast)
    job = workspace.submit_automl_job(request, progress=progress)
    publish(job)  # the name first: a follow that times out still leaves it behind
    if args.wait and not job.finished:
        job = follow(workspace, job, timeout_s=args.timeout)
        publish(job)
    emit(job_document(job), as_json=args.json, text=job.name)
    if (args.wait or job.finished) and job.status != "Completed":
        raise _JobFailed(f"job {job.name} ended {job.status}: {job.error or 'see mlops jobs show ' + job.name}")
    return 0


class _JobFailed(MlopsError):
    pass


def run_list(args: argparse.Namespace) -> int:
    jobs = connect(args.workspace).list_training_jobs()
    emit([job_document(j) for j in jobs], as_json=args.json, text=jobs_text(jobs))
    return 0


def run_show(args: argparse.Namespace) -> int:
    job = connect(args.workspace).get_training_job(args.name)
    emit(job_document(job), as_json=args.json, text=job_text(job))
    return 0
