"""CLI commands for people looking at a workspace: status, keys, invoke, logs, batch, local host.

Every command except ``mlops local ...`` goes through the ``Workspace`` port, so it works the same on
``local:`` and ``azureml://`` workspaces. Keys are printed by ``mlops keys`` and nowhere else.
``status_document`` (pure) builds the ``mlops status --json`` document; ``status_table`` renders it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mlops.cli import add_command, emit, group_help, progress
from mlops.errors import BatchJobFailedError, UsageError
from mlops.workspace import connect
from mlops.workspace.port import BatchJob, JobStatus, Workspace
from mlops.workspace.waiting import wait_for_batch_job

# ---------------------------------------------------------------------------------------------
# status


def status_document(workspace: Workspace) -> dict[str, Any]:
    """What the workspace serves, as the ``mlops status --json`` document (shape in the README)."""
    online = []
    for endpoint in workspace.list_online_endpoints():
        deployments = workspace.list_online_deployments(endpoint.name)
        traffic = {d.name: int(endpoint.traffic.get(d.name, 0)) for d in deployments}
        online.append({
            "name": endpoint.name,
            "scoring_uri": endpoint.scoring_uri,
            "traffic": traffic,
            "mirror_traffic": {k: int(v) for k, v in endpoint.mirror_traffic.items() if v},
            "deployments": [{"name": d.name, "model": str(d.model), "environment": str(d.environment),
                             "state": d.state} for d in deployments],
        })
    batch = []
    for endpoint in workspace.list_batch_endpoints():
        batch.append({
            "name": endpoint.name,
            "default_deployment": endpoint.default_deployment,
            "deployments": [{"name": d.name, "model": str(d.model), "environment": str(d.environment),
                             "state": d.state} for d in workspace.list_batch_deployments(endpoint.name)],
        })
    return {"workspace": workspace.uri, "online_endpoints": online, "batch_endpoints": batch}


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def status_table(document: dict[str, Any]) -> str:
    """The readable form of ``status_document``."""
    lines = [f"workspace {document['workspace']}"]
    if not document["online_endpoints"] and not document["batch_endpoints"]:
        lines.append("no endpoints yet")
    for endpoint in document["online_endpoints"]:
        lines += ["", f"online endpoint {endpoint['name']}  {endpoint['scoring_uri']}"]
        if not endpoint["deployments"]:
            lines.append("  no deployments")
            continue
        mirror = endpoint["mirror_traffic"]
        rows = [["DEPLOYMENT", "MODEL", "ENVIRONMENT", "STATE", "TRAFFIC", "MIRROR"]]
        for d in endpoint["deployments"]:
            rows.append([d["name"], d["model"], d["environment"], d["state"],
                         f"{endpoint['traffic'].get(d['name'], 0)}%", f"{mirror[d['name']]}%" if d["name"] in mirror else "-"])
        lines += _table(rows)
    for endpoint in document["batch_endpoints"]:
        lines += ["", f"batch endpoint {endpoint['name']}  default: {endpoint['default_deployment'] or '-'}"]
        if not endpoint["deployments"]:
            lines.append("  no deployments")
            continue
        rows = [["DEPLOYMENT", "MODEL", "ENVIRONMENT", "STATE", "DEFAULT"]]
        for d in endpoint["deployments"]:
            rows.append([d["name"], d["model"], d["environment"], d["state"],
                         "yes" if d["name"] == endpoint["default_deployment"] else ""])
        lines += _table(rows)
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> None:
    document = status_document(connect(args.workspace))
    emit(document, as_json=args.json, text=status_table(document))


# ---------------------------------------------------------------------------------------------
# keys, invoke, logs


def _keys(args: argparse.Namespace) -> None:
    workspace = connect(args.workspace)
    if args.regenerate:
        keys = workspace.regenerate_key(args.endpoint, args.regenerate)
        progress(f"regenerated the {args.regenerate} key of endpoint {args.endpoint}")
    else:
        keys = workspace.get_keys(args.endpoint)
    result = {"primary_key": keys.primary_key, "secondary_key": keys.secondary_key}
    emit(result, as_json=args.json,
         text=f"primary_key: {keys.primary_key}\nsecondary_key: {keys.secondary_key}")


def _read_request(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read the request file {path}: {error.strerror}") from error


def _invoke(args: argparse.Namespace) -> None:
    body = _read_request(args.request)
    response = connect(args.workspace).invoke(args.endpoint, body, deployment_name=args.deployment)
    sys.stdout.write(response.decode(errors="replace").rstrip("\n") + "\n")


def _logs(args: argparse.Namespace) -> None:
    if args.lines < 1:
        raise UsageError("--lines must be at least 1")
    print(connect(args.workspace).get_logs(args.endpoint, args.deployment, lines=args.lines))


# ---------------------------------------------------------------------------------------------
# batch


def job_document(job: BatchJob) -> dict[str, Any]:
    return {"name": job.name, "endpoint": job.endpoint_name, "deployment": job.deployment_name,
            "status": job.status, "mini_batches_total": job.mini_batches_total,
            "mini_batches_done": job.mini_batches_done, "mini_batches_failed": job.mini_batches_failed,
            "error": job.error}


def _job_line(job: BatchJob) -> str:
    line = (f"job {job.name} ({job.endpoint_name}/{job.deployment_name}): {job.status}, "
            f"{job.mini_batches_done}/{job.mini_batches_total} mini-batches done, {job.mini_batches_failed} failed")
    return line + (f"\n  {job.error}" if job.error else "")


def _batch_invoke(args: argparse.Namespace) -> None:
    if args.output and not args.wait:
        raise UsageError("--output needs --wait: the output exists only once the job has completed")
    workspace = connect(args.workspace)
    job = workspace.invoke_batch(args.endpoint, Path(args.input), deployment_name=args.deployment)
    progress(f"started batch job {job.name} on {job.endpoint_name}/{job.deployment_name}")
    if args.wait:
        job = wait_for_batch_job(workspace, job, on_change=lambda seen: progress(_job_line(seen)))
    document = job_document(job)
    if args.output and job.status is JobStatus.COMPLETED:
        destination = Path(args.output)
        destination.mkdir(parents=True, exist_ok=True)
        document["output_file"] = str(workspace.download_batch_output(job.name, destination))
        progress(f"output: {document['output_file']}")
    emit(document, as_json=args.json, text=job.name if not args.wait else _job_line(job))
    if args.wait and job.status is not JobStatus.COMPLETED:
        raise BatchJobFailedError(f"batch job {job.name} ended {job.status}"
                                  + (f": {job.error}" if job.error else "")
                                  + f" (logs: mlops batch status {job.name} --logs)")


def _batch_status(args: argparse.Namespace) -> None:
    workspace = connect(args.workspace)
    job = workspace.get_batch_job(args.job)
    text = _job_line(job)
    if args.logs:
        text += "\n" + workspace.get_batch_job_logs(args.job, lines=args.logs)
    emit(job_document(job), as_json=args.json, text=text)


# ---------------------------------------------------------------------------------------------
# local host


def _local_workspace(args: argparse.Namespace):
    from mlops.workspace import resolve_uri
    from mlops.workspace.local import LocalWorkspace

    workspace = connect(args.workspace)
    if not isinstance(workspace, LocalWorkspace):
        raise UsageError(f"`mlops local` manages the host of a local: workspace, not {resolve_uri(args.workspace)}")
    return workspace


def _local_up(args: argparse.Namespace) -> None:
    workspace = _local_workspace(args)
    restored = workspace.sync_host(progress=progress, start=True)
    served = workspace.host.status()
    emit({"workspace": workspace.uri, "running": True, "endpoints_restored": restored,
          "endpoints": sorted(served)}, as_json=args.json,
         text=f"local host of {workspace.uri} is running; serving {len(served)} endpoint(s)")


def _local_down(args: argparse.Namespace) -> None:
    workspace = _local_workspace(args)
    was_running = workspace.host.is_running()
    workspace.host.stop()
    emit({"workspace": workspace.uri, "running": False, "was_running": was_running}, as_json=args.json,
         text=f"local host of {workspace.uri} " + ("stopped" if was_running else "was not running"))


def _local_status(args: argparse.Namespace) -> None:
    workspace = _local_workspace(args)
    host = workspace.host
    running = host.is_running()
    served = host.status() if running else {}
    pid = host.host_pid() if running and hasattr(host, "host_pid") else None
    metrics_url = host.metrics_url() if running and hasattr(host, "metrics_url") else None
    endpoints = {name: {d: status.state for d, status in deployments.items()} for name, deployments in served.items()}
    lines = [f"local host of {workspace.uri}: " + (f"running (pid {pid})" if running else "not running")]
    if metrics_url:
        lines.append(f"  metrics (Prometheus text): {metrics_url}")
    for name, deployments in sorted(endpoints.items()):
        states = ", ".join(f"{d}={state}" for d, state in sorted(deployments.items())) or "no deployments"
        lines.append(f"  {name}: {states}")
    emit({"workspace": workspace.uri, "running": running, "pid": pid, "metrics_url": metrics_url,
          "endpoints": endpoints}, as_json=args.json,
         text="\n".join(lines))


# ---------------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this area's commands."""
    add_command(subparsers, "status", help="what the workspace serves: endpoints, traffic, deployments, batch defaults",
                example="mlops status\nmlops status --json", handler=_status, json_output=True)

    keys = add_command(subparsers, "keys", help="print (or regenerate) an online endpoint's keys",
                       example="mlops keys tcn-online --json\nmlops keys tcn-online --regenerate secondary",
                       handler=_keys, json_output=True)
    keys.add_argument("endpoint", metavar="ENDPOINT")
    keys.add_argument("--regenerate", choices=("primary", "secondary"), help="make a new key first (the other stays valid)")

    invoke = add_command(subparsers, "invoke", help="score one request on an online endpoint (with its key)",
                         example="mlops invoke tcn-online --request request.json\n"
                                 "mlops invoke tcn-online --request request.json --deployment green",
                         handler=_invoke)
    invoke.add_argument("endpoint", metavar="ENDPOINT")
    invoke.add_argument("--request", required=True, metavar="FILE", help="JSON body to POST ('-' for stdin)")
    invoke.add_argument("--deployment", metavar="NAME", help="target this deployment whatever its traffic "
                        "(header azureml-model-deployment)")

    logs = add_command(subparsers, "logs", help="the last lines of an online deployment's logs",
                       example="mlops logs tcn-online green --lines 50", handler=_logs)
    logs.add_argument("endpoint", metavar="ENDPOINT")
    logs.add_argument("deployment", metavar="DEPLOYMENT")
    logs.add_argument("--lines", type=int, default=100, metavar="N", help="how many lines (default 100)")

    batch = add_command(subparsers, "batch", help="batch endpoints: start a scoring job, follow it",
                        example="mlops batch invoke tcn-batch --input data/batch --wait\nmlops batch status JOB",
                        handler=lambda _args: 2)
    batch_commands = batch.add_subparsers(dest="batch_command", metavar="COMMAND")
    batch.set_defaults(handler=group_help(batch))
    batch_invoke = add_command(batch_commands, "invoke", help="start a batch job over the files of a folder",
                               example="mlops batch invoke tcn-batch --input data/batch --wait --output scored/\n"
                                       "mlops batch invoke tcn-batch --input data/batch --deployment batch-v2 --json",
                               handler=_batch_invoke, json_output=True)
    batch_invoke.add_argument("endpoint", metavar="ENDPOINT")
    batch_invoke.add_argument("--input", required=True, metavar="DIR", help="folder whose files are scored")
    batch_invoke.add_argument("--deployment", metavar="NAME", help="default: the endpoint's default deployment")
    batch_invoke.add_argument("--wait", action="store_true", help="follow the job until it ends (exit 1 unless Completed)")
    batch_invoke.add_argument("--output", metavar="DIR", help="with --wait: copy the job's output file into DIR")
    batch_status = add_command(batch_commands, "status", help="a batch job's status and progress",
                               example="mlops batch status tcn-batch-20260101120000-a1b2c3 --logs 50",
                               handler=_batch_status, json_output=True)
    batch_status.add_argument("job", metavar="JOB")
    batch_status.add_argument("--logs", type=int, default=0, metavar="N", help="also print the last N log lines")

    local = add_command(subparsers, "local", help="the local workspace's host process (serves online endpoints)",
                        example="mlops local up\nmlops local status\nmlops local down", handler=lambda _args: 2)
    local_commands = local.add_subparsers(dest="local_command", metavar="COMMAND")
    local.set_defaults(handler=group_help(local))
    add_command(local_commands, "up", help="start the host and restore every endpoint from the store",
                example="mlops local up", handler=_local_up, json_output=True)
    add_command(local_commands, "down", help="stop the host and every deployment process it runs",
                example="mlops local down", handler=_local_down, json_output=True)
    add_command(local_commands, "status", help="whether the host runs and what it serves",
                example="mlops local status --json", handler=_local_status, json_output=True)
