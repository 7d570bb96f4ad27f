"""The local workspace's online host process: one long-lived process per workspace folder.

The host (``python -m mlops.workspace.local.online.host --workspace DIR``) is started on demand by
``LocalHostClient.ensure_running()`` (``client.py``) in its own session, so it outlives the CLI
command that started it. It never reads the store: it serves exactly what ``apply(EndpointRuntime)``
(``desired_state.py``) tells it - one router listener per endpoint (``router.py``) and one
supervisor per deployment (``supervisor.py``). After a crash the workspace re-applies every endpoint
from its store, so ports (scoring URIs) and keys come back unchanged.

Files in the workspace folder (all owner-only):

* ``host.lock`` - an ``fcntl`` lock held for the host's life: a second host for the folder exits;
* ``host.json`` - pid, control port, metrics port and a random control token (mode 0600);
* ``logs/host.log`` - the host's own log; ``logs/<endpoint>/<deployment>.log`` - each deployment's
  instances (what ``logs()`` reads).

The control channel (``control.py``: its wire forms and the folder contract shared with the client)
is a small HTTP API on a random loopback port; every call carries the token.
``GET /endpoints/<e>/deployments/<d>/metrics?since=<epoch s>&until=<epoch s>`` returns what the
router recorded for that deployment (``traffic_metrics``).

The **metrics URL** ``http://127.0.0.1:<metrics_port>/metrics`` serves every router's per-deployment
counters and latency histograms in the Prometheus text format, without the token (loopback only; it
holds counts and durations, never keys or payloads). The port is ``$MLOPS_LOCAL_METRICS_PORT`` when
set (a fixed port for a Prometheus scrape config), else a free one; ``mlops local status`` shows it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from mlops.errors import ConflictError, NotFoundError
from mlops.workspace.local.online import control
from mlops.workspace.local.online.control import INFO_FILE, TOKEN_HEADER, deployment_log_path
from mlops.workspace.local.online.desired_state import DeploymentStatus, EndpointRuntime
from mlops.workspace.local.online.router import EndpointRouter
from mlops.workspace.local.online.routing import RoutingTable
from mlops.workspace.local.online.supervisor import LOOPBACK, DeploymentSupervisor, tail
from mlops.workspace.local.online.traffic_metrics import prometheus_text

log = logging.getLogger("mlops.host")
METRICS_PORT_ENV = "MLOPS_LOCAL_METRICS_PORT"

LOCK_FILE = "host.lock"


class _Endpoint:
    def __init__(self, name: str) -> None:
        self.name = name
        self.router = EndpointRouter(name)
        self.deployments: dict[str, DeploymentSupervisor] = {}
        self.starting: dict[str, DeploymentSupervisor] = {}
        """Deployments being (re)started by an ``apply`` in progress: shown by ``status`` as Creating."""
        self.lock = asyncio.Lock()


class Host:
    """The state of the host process: endpoints, their routers and deployment supervisors."""

    def __init__(self, workspace_dir: Path) -> None:
        self.workspace_dir = workspace_dir
        self.endpoints: dict[str, _Endpoint] = {}
        self.stopped = asyncio.Event()
        self.socket_dir = _socket_dir(workspace_dir)

    async def apply(self, runtime: EndpointRuntime, timeout: float) -> dict[str, DeploymentStatus]:
        endpoint = self.endpoints.get(runtime.name)
        if endpoint is None:
            endpoint = self.endpoints[runtime.name] = _Endpoint(runtime.name)
        async with endpoint.lock:
            if endpoint.router.port != runtime.port:
                await endpoint.router.close()
                try:
                    await endpoint.router.listen(runtime.port)
                except OSError as exc:
                    if not endpoint.deployments:
                        del self.endpoints[runtime.name]
                    raise ConflictError(f"endpoint '{runtime.name}': cannot listen on {LOOPBACK}:{runtime.port}: "
                                        f"{exc}") from exc
                log.info("endpoint %s listening on %s:%d", runtime.name, LOOPBACK, runtime.port)
            current = endpoint.deployments
            wanted = {d.name: d for d in runtime.deployments}
            starting: dict[str, DeploymentSupervisor] = {}
            for name, deployment in wanted.items():
                existing = current.get(name)
                if existing is None or existing.runtime != deployment:
                    path = deployment_log_path(self.workspace_dir, runtime.name, name)
                    starting[name] = DeploymentSupervisor(runtime.name, deployment, path, self.socket_dir)
            if starting:
                log.info("endpoint %s: starting %s", runtime.name, ", ".join(sorted(starting)))
                endpoint.starting = starting
                try:
                    _, pending = await asyncio.wait([asyncio.ensure_future(s.start()) for s in starting.values()],
                                                    timeout=timeout)
                finally:
                    endpoint.starting = {}
                for task in pending:
                    task.cancel()
                for sup in starting.values():
                    if sup.state == "Creating":
                        await sup.stop()
                        sup.state = "Failed"
                        sup.error = (f"deployment '{sup.name}' was not ready within the apply timeout of "
                                     f"{timeout:.0f}s\n--- log tail ---\n{tail(sup.log_path, 50)}")
            retired = [sup for name, sup in current.items() if name not in wanted or name in starting]
            endpoint.deployments = {name: starting.get(name) or current[name] for name in wanted}
            table = RoutingTable(
                runtime.name, runtime.auth_mode,
                tuple(key for key in (runtime.primary_key, runtime.secondary_key) if key),
                dict(runtime.traffic), dict(runtime.mirror_traffic),
            )
            endpoint.router.swap(table, endpoint.deployments)  # atomic: one assignment
            for sup in retired:
                log.info("endpoint %s: retiring deployment %s", runtime.name, sup.name)
            await asyncio.gather(*(sup.stop(drain_timeout=sup.request_timeout + 1) for sup in retired))
            return {name: sup.status() for name, sup in endpoint.deployments.items()}

    async def remove_endpoint(self, name: str) -> None:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return
        async with endpoint.lock:
            await endpoint.router.close()
            await asyncio.gather(*(sup.stop(drain_timeout=1.0) for sup in endpoint.deployments.values()))
            self.endpoints.pop(name, None)
            log.info("endpoint %s removed", name)

    def status(self) -> dict[str, dict[str, DeploymentStatus]]:
        """What serves now; a deployment being replaced is ``Updating`` (the old one serves meanwhile),
        a new one ``Creating``."""
        result: dict[str, dict[str, DeploymentStatus]] = {}
        for name, endpoint in self.endpoints.items():
            statuses = {d: sup.status() for d, sup in endpoint.deployments.items()}
            for d, sup in endpoint.starting.items():
                if d in statuses and statuses[d].state == "Succeeded":
                    statuses[d] = dataclasses.replace(statuses[d], state="Updating")
                else:
                    statuses[d] = sup.status()
            result[name] = statuses
        return result

    def deployment_metrics(self, name: str, deployment: str, since: float, until: float) -> dict[str, Any]:
        """What the endpoint's router recorded for ``deployment`` in [since, until) (epoch seconds)."""
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise NotFoundError(f"endpoint '{name}' is not served by the host")
        stats = endpoint.router.metrics.window(deployment, since, until)
        data = dataclasses.asdict(stats)
        data["status_codes"] = {str(code): count for code, count in stats.status_codes.items()}
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            data[key] = None if data[key] != data[key] else data[key]  # NaN is not JSON
        data["until"] = min(until, time.time())
        return data

    def prometheus(self) -> str:
        return prometheus_text(endpoint.router.metrics for endpoint in self.endpoints.values())

    def instances(self, name: str) -> list[dict[str, Any]]:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise NotFoundError(f"endpoint '{name}' is not served by the host")
        return [{"deployment": d, "index": inst.index, "pid": inst.pid, "port": inst.port, "ready": inst.ready,
                 "in_flight": inst.in_flight}
                for d, sup in endpoint.deployments.items() for inst in sup.instances]

    async def shutdown(self) -> None:
        for name in list(self.endpoints):
            await self.remove_endpoint(name)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        self.stopped.set()


def _socket_dir(workspace_dir: Path) -> Path:
    """An owner-only folder for the instances' unix sockets: ``<workspace>/run`` when its paths fit the
    108-byte limit of a socket address, else a fresh temporary folder."""
    candidate = workspace_dir / "run"
    if len(str(candidate)) > 80:
        return Path(tempfile.mkdtemp(prefix="mlops-host-"))
    shutil.rmtree(candidate, ignore_errors=True)  # sockets of a host that was killed
    candidate.mkdir(mode=0o700)
    return candidate


def _control_app(host: Host, token: str) -> web.Application:
    @web.middleware
    async def check_token(request: web.Request, handler):
        if not secrets.compare_digest(request.headers.get(TOKEN_HEADER, ""), token):
            return web.json_response({"error": "bad control token"}, status=403)
        try:
            return await handler(request)
        except NotFoundError as exc:
            return web.json_response({"error": str(exc), "kind": "not_found"}, status=404)
        except ConflictError as exc:
            return web.json_response({"error": str(exc), "kind": "conflict"}, status=409)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"pid": os.getpid(), "endpoints": sorted(host.endpoints)})

    async def put_endpoint(request: web.Request) -> web.Response:
        runtime = control.endpoint_from_json(await request.json())
        timeout = float(request.query.get("timeout", "300"))
        statuses = await host.apply(runtime, timeout)
        return web.json_response({name: control.status_to_json(s) for name, s in statuses.items()})

    async def delete_endpoint(request: web.Request) -> web.Response:
        await host.remove_endpoint(request.match_info["name"])
        return web.json_response({})

    async def status(_request: web.Request) -> web.Response:
        return web.json_response({ep: {d: control.status_to_json(s) for d, s in deps.items()}
                                  for ep, deps in host.status().items()})

    async def instances(request: web.Request) -> web.Response:
        return web.json_response(host.instances(request.match_info["name"]))

    async def deployment_metrics(request: web.Request) -> web.Response:
        since = float(request.query.get("since", "0"))
        until = float(request.query.get("until", "inf"))
        return web.json_response(host.deployment_metrics(request.match_info["name"], request.match_info["deployment"],
                                                         since, until))

    async def shutdown(_request: web.Request) -> web.Response:
        asyncio.get_running_loop().create_task(host.shutdown())
        return web.json_response({"stopping": True})

    app = web.Application(middlewares=[check_token], client_max_size=16 * 1024 * 1024)
    app.add_routes([
        web.get("/health", health),
        web.put("/endpoints/{name}", put_endpoint),
        web.delete("/endpoints/{name}", delete_endpoint),
        web.get("/status", status),
        web.get("/endpoints/{name}/instances", instances),
        web.get("/endpoints/{name}/deployments/{deployment}/metrics", deployment_metrics),
        web.post("/shutdown", shutdown),
    ])
    return app


def _metrics_app(host: Host) -> web.Application:
    """The loopback metrics URL: Prometheus text, no token (see the module docstring)."""

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(text=host.prometheus(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics)])
    return app


def _metrics_port(environ: Any = None) -> int:
    raw = (environ if environ is not None else os.environ).get(METRICS_PORT_ENV, "")
    try:
        port = int(raw) if raw.strip() else 0
    except ValueError:
        log.warning("%s=%r is not a port number; using a free port", METRICS_PORT_ENV, raw)
        return 0
    return port if 0 <= port <= 65535 else 0


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


async def _serve(workspace_dir: Path) -> None:
    host = Host(workspace_dir)
    token = secrets.token_urlsafe(32)
    runner = web.AppRunner(_control_app(host, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    metrics_runner = web.AppRunner(_metrics_app(host), access_log=None)
    await metrics_runner.setup()
    metrics_site = web.TCPSite(metrics_runner, LOOPBACK, _metrics_port())
    try:
        await metrics_site.start()
    except OSError as exc:  # a fixed port already taken: serve on a free one rather than not at all
        log.warning("metrics port %s unavailable (%s); using a free port", os.environ.get(METRICS_PORT_ENV), exc)
        metrics_site = web.TCPSite(metrics_runner, LOOPBACK, 0)
        await metrics_site.start()
    metrics_port = metrics_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: loop.create_task(host.shutdown()))
    info_path = workspace_dir / INFO_FILE
    _write_private(info_path, json.dumps({"pid": os.getpid(), "control_port": port, "token": token,
                                          "metrics_port": metrics_port,
                                          "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    log.info("host %d serving %s; control on %s:%d", os.getpid(), workspace_dir, LOOPBACK, port)
    try:
        await host.stopped.wait()
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError, OSError):
            if json.loads(info_path.read_text()).get("pid") == os.getpid():
                info_path.unlink()
        await metrics_runner.cleanup()
        await runner.cleanup()
        log.info("host %d stopped", os.getpid())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.workspace.local.online.host",
                                     description="The local workspace's online host (started by the workspace).")
    parser.add_argument("--workspace", required=True, type=Path, help="the workspace folder")
    args = parser.parse_args(argv)
    workspace_dir: Path = args.workspace.resolve()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
    lock_handle = (workspace_dir / LOCK_FILE).open("a")
    try:
        fcntl.flock(lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("another host already serves %s; exiting", workspace_dir)
        return 0
    try:
        asyncio.run(_serve(workspace_dir))
    finally:
        lock_handle.close()
    return 0

if __name__ == "__main__":
    sys.exit(main())
