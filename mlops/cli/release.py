"""CLI commands of the release: ``register``, ``environment``, ``deploy``, ``loadtest``, ``gate``,
``promote``, ``rollback``, ``batch-prepare``, ``batch-refresh``, ``release``, ``report`` and ``demo``.

Each step command is idempotent and usable alone; state passes through the release record
(``--record PATH``, env ``MLOPS_RECORD``, default ``<records>/current.json`` from mlops.yaml, i.e.
``.mlops/releases/current.json``). Configuration: ``mlops.yaml`` (``--config``, env ``MLOPS_CONFIG``),
then ``MLOPS_*`` variables, then flags; it is validated before the workspace is touched (exit 2).
With ``--json`` the result goes to stdout as JSON; when ``GITHUB_OUTPUT`` is set the commands write
``model_version``, ``environment``, ``candidate``, ``verdict``, ``status`` and ``release_id`` there,
and when ``GITHUB_STEP_SUMMARY`` is set they append the markdown report to it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops.cli import add_command, emit, progress
from mlops.errors import UsageError


def _common(parser: argparse.ArgumentParser, *, model: bool = False, profile: bool = False) -> None:
    parser.add_argument("--config", metavar="PATH", help="mlops.yaml (env MLOPS_CONFIG; default ./mlops.yaml)")
    parser.add_argument("--record", metavar="PATH",
                        help="the release record (env MLOPS_RECORD; default <records>/current.json, "
                             "records from mlops.yaml: .mlops/releases)")
    if model:
        parser.add_argument("--model", metavar="SOURCE",
                            help="model folder holding model.pt, azureml:NAME:VERSION, or job:NAME (an Azure AutoML "
                                 "job; Azure only) (env MLOPS_MODEL)")
    if profile:
        parser.add_argument("--profile", metavar="NAME",
                            help="rollout/load profile from rollout.yml and profile.yml (env MLOPS_PROFILE)")


def _prepared(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prepared", metavar="PATH",
                        help="the record of the same release written by `mlops batch-prepare` (another GitHub job): "
                             "its prepared batch deployment is taken over")


def _load(args: argparse.Namespace):
    """Configuration first (exit 2 on any problem, nothing touched), then the workspace."""
    from mlops.config import Overrides, load_config

    overrides = Overrides(model=getattr(args, "model", None), profile=getattr(args, "profile", None),
                          batch_refresh=False if getattr(args, "no_batch", False) else None)
    return load_config(args.config, overrides=overrides)


def _connect(args: argparse.Namespace):
    from mlops.workspace import connect

    return connect(args.workspace)


def _record_path(args: argparse.Namespace, config) -> Path:
    from mlops.release.current import default_record_path

    value = args.record or os.environ.get("MLOPS_RECORD")
    return Path(value) if value else default_record_path(config)


def _context(args: argparse.Namespace, *, create: bool):
    from mlops.release.context import ReleaseContext
    from mlops.release.current import open_record

    config = _load(args)
    workspace = _connect(args)
    record = open_record(config, workspace, _record_path(args, config), create=create)
    return ReleaseContext(config, workspace, record, progress)


def _publish(record, *, summary: bool) -> None:
    """GitHub Actions outputs and step summary, when running there."""
    from mlops.release.report import github_outputs, markdown_summary

    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a") as handle:
            for key, value in github_outputs(record).items():
                handle.write(f"{key}={value}\n")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and step_summary:
        with open(step_summary, "a") as handle:
            handle.write(markdown_summary(record) + "\n")


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a cancelled CI job, ``timeout``) becomes KeyboardInterrupt, so a traffic shift in
    progress rolls back instead of dying half-way (``kill -9`` is handled by resuming instead)."""
    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_step(args: argparse.Namespace, step: Callable[[Any], Any], *, create: bool, text: Callable[[Any, Any], str],
              summary: bool = False) -> int:
    ctx = _context(args, create=create)
    try:
        with _terminate_as_interrupt():
            result = step(ctx)
    finally:
        _publish(ctx.record, summary=summary)
    from mlops.release.report import github_outputs
    from mlops.release.typed_json import to_json

    payload = {"record": str(ctx.record.path), **github_outputs(ctx.record), "result": to_json(result)}
    emit(payload, as_json=args.json, text=text(ctx, result))
    return 0


# ---------------------------------------------------------------------------------------------
# handlers


def _register(args: argparse.Namespace) -> int:
    from mlops.release.steps.prepare import step_register

    return _run_step(args, step_register, create=True,
                     text=lambda ctx, r: f"{r.name}:{r.version}")


def _environment(args: argparse.Namespace) -> int:
    from mlops.release.steps.prepare import step_environment

    return _run_step(args, step_environment, create=True,
                     text=lambda ctx, r: f"{r.name}:{r.version}")


def _deploy(args: argparse.Namespace) -> int:
    from mlops.release.steps.deploy import step_deploy

    return _run_step(args, step_deploy, create=True,
                     text=lambda ctx, r: r.candidate or "nothing to deploy: already live")


def _loadtest(args: argparse.Namespace) -> int:
    from mlops.release.steps.loadtest import step_loadtest

    def text(ctx, result) -> str:
        rows = [f"{name}: {s.requests} requests, p50/p95/p99 {s.p50_ms}/{s.p95_ms}/{s.p99_ms} ms, "
                f"errors {s.failures}" for name, s in result.deployments.items()]
        return "\n".join(rows + [f"locust report: {result.html_report}"])

    return _run_step(args, step_loadtest, create=False, text=text)


def _gate(args: argparse.Namespace) -> int:
    from mlops.release.steps.gate import step_gate

    return _run_step(args, step_gate, create=False, summary=True,
                     text=lambda ctx, verdict: f"{verdict.phase}: " + "; ".join(verdict.reasons))


def _promote(args: argparse.Namespace) -> int:
    from mlops.release.steps.promote import step_promote

    def text(ctx, result) -> str:
        after = ctx.record.traffic.after or {}
        return "promoted: " + " ".join(f"{k}={v}%" for k, v in sorted(after.items()))

    return _run_step(args, step_promote, create=False, summary=True, text=text)


def _adopting(args: argparse.Namespace, step: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``step``, after taking the batch preparation from ``--prepared`` (the ``batch-prepare`` job's record)."""
    if not getattr(args, "prepared", None):
        return step

    def adopted(ctx):  # noqa: ANN001, ANN202
        from mlops.release.batch_overlap import adopt_prepared
        from mlops.release.record import Record

        adopt_prepared(ctx.record, Record.load(Path(args.prepared)), source=args.prepared)
        return step(ctx)
    return adopted


def _rollback(args: argparse.Namespace) -> int:
    from mlops.release.steps.promote import step_rollback

    def text(ctx, result) -> str:
        after = result.get("traffic_after") or {}
        return "rolled back: " + (" ".join(f"{k}={v}%" for k, v in sorted(after.items())) or "nothing to do")

    return _run_step(args, _adopting(args, lambda ctx: step_rollback(ctx, reason=args.reason)), create=False,
                     summary=True, text=text)


def _batch_prepare(args: argparse.Namespace) -> int:
    from mlops.release.steps.batch import step_batch_prepare

    def text(ctx, prep) -> str:
        if prep is None:
            return "nothing prepared: `mlops batch-refresh` refreshes the batch endpoint after the promotion"
        result = prep.result
        return (f"prepared {prep.deployment} ({prep.state}); smoke job {result.smoke_job if result else '-'}: "
                f"{result.smoke_rows if result else 0} rows; default still {prep.default_before}")

    return _run_step(args, step_batch_prepare, create=True, summary=False, text=text)


def _batch_refresh(args: argparse.Namespace) -> int:
    from mlops.release.steps.batch import step_batch

    return _run_step(args, _adopting(args, step_batch), create=True, summary=True,
                     text=lambda ctx, r: f"batch default: {r.default_after} ({r.model}, {r.environment})")


def _confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _release(args: argparse.Namespace) -> int:
    from mlops.release.pipeline import run_release
    from mlops.release.record import Record, ReleaseStatus
    from mlops.release.report import console_report, github_outputs

    config = _load(args)
    if not args.yes and args.until != "gate" and not sys.stdin.isatty():
        raise UsageError("promotion needs a confirmation and stdin is not a terminal: pass --yes "
                         "(or --until gate to stop before the traffic shift)")
    workspace = _connect(args)
    path = _record_path(args, config)
    confirm = None if args.yes else _confirm
    try:
        with _terminate_as_interrupt():
            record = run_release(config, workspace, path, until=args.until, confirm=confirm, progress=progress)
    except BaseException:
        loaded = Record.load(path)
        if loaded is not None:
            _publish(loaded, summary=True)
            progress(console_report(loaded))
        raise
    _publish(record, summary=True)
    if record.status is ReleaseStatus.NOTHING_TO_RELEASE:
        model = f"{record.model.name}:{record.model.version}" if record.model else "the model"
        text = f"nothing to release: {model} already serves 100%"
    else:
        text = console_report(record)
    emit({"record": str(record.path), **github_outputs(record), "result": record.to_dict()}, as_json=args.json,
         text=text)
    return 0


def _report(args: argparse.Namespace) -> int:
    from mlops.config import load_config
    from mlops.release.record import Record
    from mlops.release.report import console_report, markdown_summary

    value = args.record or os.environ.get("MLOPS_RECORD")
    if value:
        path = Path(value)
    else:
        from mlops.release.current import default_record_path

        path = default_record_path(load_config(args.config))
    record = Record.load(path)
    if record is None:
        raise UsageError(f"no release record at {path}")
    text = markdown_summary(record) if args.markdown else console_report(record)
    emit(record.to_dict(), as_json=args.json, text=text)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mlops.demo.run import run_demo

    config = _load(args)
    workspace = _connect(args)
    result = run_demo(config, workspace, workdir=Path(args.workdir) if args.workdir else None, epochs=args.epochs,
                      profile=args.profile, automl=not args.no_automl, progress=progress)
    emit(result.to_dict(), as_json=args.json, text=result.text())
    return 0


# ---------------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this area's commands."""
    parser = add_command(subparsers, "register", help="register the model (the same bytes never make a new version)",
                         example="mlops register --model out/model --json", handler=_register, json_output=True)
    _common(parser, model=True)

    parser = add_command(subparsers, "environment", help="find or build the serving environment; print the pinned "
                         "name:version", example="mlops environment", handler=_environment, json_output=True)
    _common(parser)

    parser = add_command(subparsers, "deploy", help="deploy the candidate into the free blue/green slot with no traffic",
                         example="mlops deploy --record .mlops/releases/current.json", handler=_deploy,
                         json_output=True)
    _common(parser, model=True)

    parser = add_command(subparsers, "loadtest", help="locust load test of candidate and live side by side, and the "
                         "holdout quality scoring", example="mlops loadtest --profile fast", handler=_loadtest,
                         json_output=True)
    _common(parser, profile=True)

    parser = add_command(subparsers, "gate", help="judge the load test (exit 0 passed, 1 failed and rolled back, "
                         "3 inconclusive)", example="mlops gate --json", handler=_gate, json_output=True)
    _common(parser)

    parser = add_command(subparsers, "promote", help="shift traffic to the candidate step by step with health "
                         "checks; roll back on any failure", example="mlops promote --profile fast",
                         handler=_promote, json_output=True)
    _common(parser, profile=True)

    parser = add_command(subparsers, "rollback", help="give live its traffic back and remove the candidate",
                         example="mlops rollback --reason 'bad forecasts'", handler=_rollback, json_output=True)
    _common(parser)
    parser.add_argument("--reason", default="requested", help="why (kept in the record)")
    _prepared(parser)

    parser = add_command(subparsers, "batch-prepare", help="create the release's batch deployment and run its smoke "
                         "job beside the online release; the default is untouched (batch-refresh sets it)",
                         example="mlops batch-prepare --record release-batch/record.json", handler=_batch_prepare,
                         json_output=True)
    _common(parser, model=True)

    parser = add_command(subparsers, "batch-refresh", help="new batch deployment on the release's model and "
                         "environment, smoke job, then make it the default (a prepared one: only the default)",
                         example="mlops batch-refresh\nmlops batch-refresh --record release/record.json "
                         "--prepared release-batch/record.json", handler=_batch_refresh, json_output=True)
    _common(parser, model=True)
    _prepared(parser)

    parser = add_command(
        subparsers, "release", help="register, environment, deploy, loadtest, gate, promote, batch-refresh in order "
        "(resumes an interrupted release)",
        example="mlops release --yes\nmlops release --until gate --model out/model --profile fast --json",
        handler=_release, json_output=True)
    _common(parser, model=True, profile=True)
    parser.add_argument("--until", choices=["gate"], help="stop after the gate, before the traffic shift")
    parser.add_argument("--yes", action="store_true", help="do not ask before shifting traffic")
    parser.add_argument("--no-batch", action="store_true", help="skip the batch refresh (env MLOPS_BATCH_REFRESH=false)")

    parser = add_command(subparsers, "report", help="print a release record as a report (or markdown)",
                         example="mlops report --markdown >> \"$GITHUB_STEP_SUMMARY\"", handler=_report,
                         json_output=True)
    _common(parser)
    parser.add_argument("--markdown", action="store_true", help="the markdown summary (tables + mermaid chart)")

    parser = add_command(subparsers, "demo", help="train two model versions on synthetic data and release both "
                         "locally (blue, then green with gates, stepwise shift and batch refresh), then the "
                         "AutoML path (trials -> best -> environment from its conda file -> release)",
                         example="mlops demo", handler=_demo, json_output=True)
    parser.add_argument("--config", metavar="PATH", help="mlops.yaml (env MLOPS_CONFIG; default ./mlops.yaml)")
    parser.add_argument("--workdir", metavar="DIR", help="where the trained models go (default .mlops/demo)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs of the second model")
    parser.add_argument("--profile", default="fast", help="rollout/load profile (default fast)")
    parser.add_argument("--no-automl", action="store_true",
                        help="skip the AutoML path (a local sweep whose best trial is released into "
                        "<endpoint>-automl with an environment built from its conda file)")
