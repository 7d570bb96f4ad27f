"""The workspace's side of the online host: ``LocalHostClient``, the ``HostClient`` of one folder.

It starts the host process (``host.py``) on demand in its own session, finds it through
``host.json`` and talks to it over the token-guarded loopback control channel (``control.py``).
``stop()`` asks the host to stop every instance and exit, then kills it by pid if it does not.
This module does not import aiohttp: the CLI only pays for the host's server when it runs one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlops.errors import ConflictError, NotFoundError, WorkspaceError
from mlops.processes import process_alive
from mlops.workspace.local.online import control
from mlops.workspace.local.online.control import INFO_FILE, TOKEN_HEADER, deployment_log_path
from mlops.workspace.local.online.desired_state import DeploymentStatus, EndpointRuntime
from mlops.workspace.local.online.supervisor import LOOPBACK, tail

log = logging.getLogger("mlops.host")

HOST_MODULE = "mlops.workspace.local.online.host"
"""What the client runs with ``python -m`` and looks for in a pid's command line."""
SPAWN_LOCK_FILE = "host.spawn.lock"
START_TIMEOUT = 30.0


class LocalHostClient:
    """``HostClient`` for the host of one workspace folder (see the module docstring)."""

    def __init__(self, workspace_dir: Path) -> None:
        self.workspace_dir = Path(workspace_dir).resolve()
        self._spawned: subprocess.Popen | None = None

    # -- plumbing -------------------------------------------------------------------------------

    def _info(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.workspace_dir / INFO_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _call(self, method: str, path: str, body: Any = None, *, timeout: float = 30.0,
              info: dict[str, Any] | None = None) -> Any:
        info = info or self._info()
        if info is None:
            raise WorkspaceError(f"the local host of {self.workspace_dir} is not running (run `mlops local up`)")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{info['control_port']}{path}", data=data, method=method,
            headers={TOKEN_HEADER: info["token"], "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                payload = json.loads(detail)
            except ValueError:
                payload = {"error": detail}
            kind = payload.get("kind")
            error = payload.get("error", detail)
            if kind == "not_found":
                raise NotFoundError(error) from None
            if kind == "conflict":
                raise ConflictError(error) from None
            raise WorkspaceError(f"the local host refused {method} {path}: {exc.code} {error}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise WorkspaceError(f"the local host of {self.workspace_dir} did not answer: {exc}") from exc

    def _answers(self, info: dict[str, Any] | None) -> bool:
        if info is None:
            return False
        try:
            self._call("GET", "/health", timeout=5.0, info=info)
        except WorkspaceError:
            return False
        return True

    def _host_log_tail(self) -> str:
        return tail(self.workspace_dir / "logs" / "host.log", 30)

    # -- HostClient -----------------------------------------------------------------------------

    def is_running(self) -> bool:
        if self._spawned is not None:
            self._spawned.poll()  # reap a host that died, so its pid is not a zombie
        return self._answers(self._info())

    def ensure_running(self) -> None:
        if self.is_running():
            return
        self.workspace_dir.mkdir(parents=True, exist_ok=True)
        logs = self.workspace_dir / "logs"
        logs.mkdir(mode=0o700, exist_ok=True)
        with (self.workspace_dir / SPAWN_LOCK_FILE).open("a") as spawn_lock:
            fcntl.flock(spawn_lock, fcntl.LOCK_EX)  # one starter at a time; others find it running
            if self.is_running():
                return
            with contextlib.suppress(FileNotFoundError):
                (self.workspace_dir / INFO_FILE).unlink()
            fd = os.open(logs / "host.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                self._spawned = subprocess.Popen(  # noqa: S603 - our own module, no shell
                    [sys.executable, "-m", HOST_MODULE, "--workspace", str(self.workspace_dir)],
                    stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True,
                    cwd=str(self.workspace_dir))
            finally:
                os.close(fd)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                info = self._info()
                if info is not None and info.get("pid") == self._spawned.pid and self._answers(info):
                    return
                if self._spawned.poll() is not None:
                    if self.is_running():  # another host won the folder lock
                        return
                    raise WorkspaceError(f"the local host exited with code {self._spawned.returncode} while "
                                         f"starting\n--- host.log ---\n{self._host_log_tail()}")
                time.sleep(0.05)
            raise WorkspaceError(f"the local host did not answer within {START_TIMEOUT:.0f}s\n--- host.log ---\n"
                                 f"{self._host_log_tail()}")

    def apply(self, endpoint: EndpointRuntime, *, timeout: float = 300.0) -> dict[str, DeploymentStatus]:
        """Starts the host if needed (the caller re-applies the other endpoints after a host restart)."""
        self.ensure_running()
        result = self._call("PUT", f"/endpoints/{endpoint.name}?timeout={timeout}",
                            control.endpoint_to_json(endpoint), timeout=timeout + 60)
        return {name: control.status_from_json(data) for name, data in result.items()}

    def remove_endpoint(self, name: str) -> None:
        if self.is_running():
            self._call("DELETE", f"/endpoints/{name}", timeout=60)

    def status(self) -> dict[str, dict[str, DeploymentStatus]]:
        if not self.is_running():
            return {}
        result = self._call("GET", "/status")
        return {ep: {d: control.status_from_json(s) for d, s in deps.items()} for ep, deps in result.items()}

    def deployment_metrics(self, endpoint_name: str, deployment_name: str, since: float,
                           until: float | None = None) -> dict[str, Any]:
        """What the router recorded for the deployment in [since, until) (epoch s); raises
        ``WorkspaceError`` when the host is not running (nothing is being recorded)."""
        query = f"since={since!r}" + (f"&until={until!r}" if until is not None else "")
        return self._call("GET", f"/endpoints/{endpoint_name}/deployments/{deployment_name}/metrics?{query}")

    def metrics_url(self) -> str | None:
        """The loopback Prometheus URL of the running host, or ``None``."""
        info = self._info()
        if not info or not info.get("metrics_port") or not self._answers(info):
            return None
        return f"http://{LOOPBACK}:{info['metrics_port']}/metrics"

    def instances(self, endpoint_name: str) -> list[dict[str, Any]]:
        """Diagnostics (not part of ``HostClient``): each instance's deployment, pid, port and readiness."""
        return self._call("GET", f"/endpoints/{endpoint_name}/instances")

    def logs(self, endpoint_name: str, deployment_name: str, *, lines: int = 100) -> str:
        path = deployment_log_path(self.workspace_dir, endpoint_name, deployment_name)
        if not path.exists():
            raise NotFoundError(f"no logs for deployment '{deployment_name}' of endpoint '{endpoint_name}'")
        return tail(path, lines)

    def host_pid(self) -> int | None:
        """The running host's pid (diagnostics and tests), or ``None``."""
        info = self._info()
        return int(info["pid"]) if info and self._answers(info) else None

    def stop(self) -> None:
        info = self._info()
        pid = int(info["pid"]) if info else None
        if info is not None and self._answers(info):
            with contextlib.suppress(WorkspaceError):
                self._call("POST", "/shutdown", timeout=10, info=info)
        if pid is not None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _alive(pid, self._spawned):
                time.sleep(0.05)
            if _alive(pid, self._spawned) and _is_host_process(pid, self.workspace_dir):
                log.warning("local host %d did not stop; killing it", pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        if self._spawned is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._spawned.wait(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            (self.workspace_dir / INFO_FILE).unlink()


def _alive(pid: int, spawned: subprocess.Popen | None) -> bool:
    if spawned is not None and spawned.pid == pid:
        return spawned.poll() is None
    return process_alive(pid)


def _is_host_process(pid: int, workspace_dir: Path) -> bool:
    """Whether ``pid`` is this folder's host (a stale ``host.json`` may name a pid reused by anything)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return HOST_MODULE.encode() in cmdline and str(workspace_dir).encode() in cmdline
