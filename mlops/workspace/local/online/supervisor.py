"""Runs one online deployment's instances: ``azmlinfsrv`` processes, probes, restarts, capacity.

Each instance is the Azure ML inference server (``azureml_inference_server_http``, the server Azure
runs score.py in) started with the deployment's interpreter (its environment's venv), cwd = the
code folder, ``AZUREML_MODEL_DIR`` = the model folder, the deployment's environment variables and
one worker (``WORKER_COUNT`` unless the deployment sets it). Each instance gets its own free
loopback port; the server's health route (``GET /``) is probed:

* readiness: after ``initial_delay`` the instance is polled (every 0.1 s, so a ready deployment
  takes traffic at once) until it answers within ``timeout``; it is ``Failed`` when the process
  exits during start-up (``init()`` raised) or when ``period x failure_threshold`` seconds pass
  without an answer. A deployment is ``Succeeded`` when every instance is ready, ``Failed`` (with
  the last log lines) as soon as one instance fails to start - and then takes no traffic.
* liveness: every ``period`` seconds; ``failure_threshold`` consecutive misses restart the instance.
  An instance that exits is restarted at once (with a growing back-off when it keeps crashing) on a
  fresh port, and takes no traffic until it is ready again.

Capacity: at most ``max_concurrent_requests_per_instance`` requests per ready instance; ``acquire``
picks the least busy ready instance, so requests spread across instances, and returns ``None``
when the deployment is full (the router answers 429).

Instances run in their own process group (killed whole, by pid) and die with the host: the launch
shim asks Linux for ``PR_SET_PDEATHSIG`` in the gunicorn master (dies with the host) and in each
worker (dies with its master), so a ``kill -9`` of the host leaves no server behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from mlops.workspace.local.online import upstream
from mlops.workspace.local.online.desired_state import DeploymentRuntime, DeploymentStatus
from mlops.workspace.local.online.routing import concurrency_limit
from mlops.workspace.port import DeploymentState

log = logging.getLogger("mlops.host.supervisor")

LOOPBACK = "127.0.0.1"
LOG_TAIL_LINES = 50
STARTUP_POLL_SECONDS = 0.1
STOP_GRACE_SECONDS = 3.0

# Runs inside the deployment's interpreter (which has azureml-inference-server-http, not mlops):
# die with the host, bind loopback only (the server's default host is 0.0.0.0) plus a unix socket
# for the router (a second gunicorn bind: the per-request connection is much cheaper than loopback
# TCP, and gunicorn's sync workers close every connection), no gunicorn control socket in $HOME
# (instances would fight over it), then the server's own entry point.
LAUNCH_SHIM = """\
import ctypes, os, signal, sys

def die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass

die_with_parent()
if str(os.getppid()) != os.environ.get("MLOPS_HOST_PID", str(os.getppid())):
    sys.exit("the host that started this instance is gone")
import gunicorn.workers.base as gunicorn_worker
original_init_process = gunicorn_worker.Worker.init_process
def init_process_dying_with_master(self):
    die_with_parent()
    if os.getppid() != self.ppid:
        sys.exit(0)
    original_init_process(self)
gunicorn_worker.Worker.init_process = init_process_dying_with_master
uds = os.environ.pop("MLOPS_INSTANCE_SOCKET", "")
if uds:
    import gunicorn.app.wsgiapp as wsgiapp
    original_init = wsgiapp.WSGIApplication.__init__
    def init_with_unix_bind(self, *args, **kwargs):
        sys.argv[1:1] = ["-b", "unix:" + uds]
        original_init(self, *args, **kwargs)
    wsgiapp.WSGIApplication.__init__ = init_with_unix_bind
import azureml_inference_server_http.amlserver as server
server.DEFAULT_HOST = "127.0.0.1"
from gunicorn import config as gunicorn_config
if any(s.name == "control_socket_disable" for s in gunicorn_config.KNOWN_SETTINGS):
    os.environ["GUNICORN_CMD_ARGS"] = (os.environ.get("GUNICORN_CMD_ARGS", "") + " --no-control-socket").strip()
sys.argv[0] = "azmlinfsrv"
server.run()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return ""
    return "\n".join(deque(data.decode(errors="replace").splitlines(), maxlen=lines))


def restart_backoff(consecutive_crashes: int) -> float:
    """Seconds to wait before restarting an instance that crashed ``consecutive_crashes`` times in a row."""
    if consecutive_crashes <= 1:
        return 0.0
    return min(10.0, 0.5 * 2 ** (consecutive_crashes - 2))


@dataclass
class Instance:
    index: int
    port: int = 0
    pid: int = 0
    ready: bool = False
    in_flight: int = 0
    socket_path: str = ""
    """The instance's unix socket (the router's way in); the TCP ``port`` serves probes and people."""
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0


class DeploymentSupervisor:
    """One deployment's instances. Lives in the host's event loop; all methods run on it."""

    def __init__(self, endpoint: str, runtime: DeploymentRuntime, log_path: Path, socket_dir: Path | None = None) -> None:
        self.endpoint = endpoint
        self._socket_dir = socket_dir
        self.runtime = runtime
        self.name = runtime.name
        self.log_path = log_path
        self.state: DeploymentState = "Creating"
        self.error = ""
        self.restarts = 0
        self.in_flight = 0
        self.instances = [Instance(i) for i in range(max(1, runtime.instance_count))]
        self._per_instance = max(1, runtime.request_settings.max_concurrent_requests_per_instance)
        self._stopping = False
        self._tasks: set[asyncio.Task] = set()
        self._crashes = [0] * len(self.instances)
        self._rr = 0

    # -- capacity (called by the router for every request) --------------------------------------

    @property
    def request_timeout(self) -> float:
        return self.runtime.request_settings.request_timeout_ms / 1000.0

    def can_serve(self) -> bool:
        return self.state == "Succeeded" and any(inst.ready for inst in self.instances)

    def ready_count(self) -> int:
        return sum(1 for inst in self.instances if inst.ready)

    def limit(self) -> int:
        return concurrency_limit(self._per_instance, self.ready_count())

    def acquire(self, exclude: Instance | None = None) -> Instance | None:
        """Reserve a slot on the least busy ready instance, or ``None`` when the deployment is full."""
        if self.state != "Succeeded" or self.in_flight >= self.limit():
            return None
        best: Instance | None = None
        count = len(self.instances)
        self._rr = (self._rr + 1) % count
        for offset in range(count):
            inst = self.instances[(self._rr + offset) % count]
            if not inst.ready or inst is exclude or inst.in_flight >= self._per_instance:
                continue
            if best is None or inst.in_flight < best.in_flight:
                best = inst
        if best is not None:
            best.in_flight += 1
            self.in_flight += 1
        return best

    def release(self, inst: Instance) -> None:
        inst.in_flight -= 1
        self.in_flight -= 1

    def connection_failed(self, inst: Instance) -> None:
        """The router could not reach ``inst``: take it out of rotation until a probe says otherwise."""
        if inst.ready and inst.process is not None:
            inst.ready = False
            self._write_log(f"instance {inst.index} (pid {inst.pid}) refused a connection; out of rotation")
            self._spawn_task(self._recheck(inst, inst.process))

    # -- lifecycle ----------------------------------------------------------------------------

    def status(self) -> DeploymentStatus:
        return DeploymentStatus(self.name, self.state, self.ready_count(), self.restarts, self.error)

    async def start(self) -> DeploymentStatus:
        """Start every instance; return once the deployment is ``Succeeded`` or ``Failed``."""
        self.log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._write_log(f"=== deployment {self.endpoint}/{self.name} generation {self.runtime.generation!r}: "
                        f"starting {len(self.instances)} instance(s)")
        results = await asyncio.gather(*(self._start_instance(inst) for inst in self.instances))
        failures = [error for error in results if error]
        if self._stopping:
            return self.status()
        if failures:
            self.state = "Failed"
            self.error = (f"deployment '{self.name}' of endpoint '{self.endpoint}' did not start: {failures[0]}\n"
                          f"--- last {LOG_TAIL_LINES} log lines ---\n{tail(self.log_path, LOG_TAIL_LINES)}")
            self._write_log(f"deployment Failed: {failures[0]}")
            await self._kill_all()
            return self.status()
        self.state = "Succeeded"
        self._write_log("deployment Succeeded")
        for inst in self.instances:
            self._watch(inst)
        return self.status()

    async def stop(self, *, drain_timeout: float = 0.0) -> None:
        """Stop taking requests, let those in flight finish (up to ``drain_timeout`` s), stop the processes."""
        self._stopping = True
        deadline = time.monotonic() + drain_timeout
        while self.in_flight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.state == "Succeeded":
            self.state = "Deleting"
        for task in list(self._tasks):
            task.cancel()
        await self._kill_all()
        self._write_log(f"=== deployment {self.endpoint}/{self.name} stopped")

    # -- internals ----------------------------------------------------------------------------

    def _open_log(self) -> int:
        """An append-only descriptor on the deployment's log (owner-only, created on first use)."""
        return os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _write_log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with contextlib.suppress(OSError):
            fd = self._open_log()
            try:
                os.write(fd, f"{stamp} [mlops-host] {message}\n".encode())
            finally:
                os.close(fd)

    def _spawn_task(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("MLOPS_", "AZUREML_", "GUNICORN_", "VIRTUAL_ENV"))}
        env["WORKER_COUNT"] = "1"
        env.update(self.runtime.environment_variables)
        env["AZUREML_MODEL_DIR"] = self.runtime.model_dir
        env["AML_APP_ROOT"] = self.runtime.code_dir
        env["MLOPS_HOST_PID"] = str(os.getpid())
        env["PYTHONUNBUFFERED"] = "1"
        return env

    async def _spawn(self, inst: Instance) -> None:
        inst.port = free_port()
        inst.ready = False
        env = self._environment()
        if self._socket_dir is not None:
            inst.socket_path = str(self._socket_dir / f"{inst.port}.sock")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(inst.socket_path)
            env["MLOPS_INSTANCE_SOCKET"] = inst.socket_path
        code_dir = Path(self.runtime.code_dir)
        entry = code_dir / self.runtime.scoring_script
        log_fd = self._open_log()
        try:
            inst.process = await asyncio.create_subprocess_exec(
                self.runtime.python, "-c", LAUNCH_SHIM, "--entry_script", str(entry), "--port", str(inst.port),
                cwd=str(code_dir), env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=log_fd, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )
        finally:
            os.close(log_fd)
        inst.pid = inst.process.pid
        inst.started_at = time.monotonic()
        self._write_log(f"instance {inst.index} started: pid {inst.pid}, port {inst.port}")

    async def _start_instance(self, inst: Instance) -> str:
        """Spawn and wait for readiness; '' on success, else why not."""
        try:
            await self._spawn(inst)
        except OSError as exc:
            return f"cannot start {self.runtime.python}: {exc}"
        return await self._await_ready(inst)

    async def _await_ready(self, inst: Instance) -> str:
        probe = self.runtime.readiness_probe
        process = inst.process
        assert process is not None
        budget = max(1, probe.period) * max(1, probe.failure_threshold)
        if await self._exited_within(process, probe.initial_delay):
            return f"instance {inst.index} exited with code {process.returncode} during start-up (did init() raise?)"
        deadline = time.monotonic() + budget
        while not self._stopping:
            if process.returncode is not None:
                return f"instance {inst.index} exited with code {process.returncode} during start-up (did init() raise?)"
            if await upstream.probe(LOOPBACK, inst.port, "/", max(0.1, probe.timeout)):
                if process.returncode is None:
                    inst.ready = True
                    self._write_log(f"instance {inst.index} ready after {time.monotonic() - inst.started_at:.1f}s")
                    return ""
            if time.monotonic() > deadline:
                await self._kill(inst)
                return (f"instance {inst.index} not ready after {budget}s of readiness probes "
                        f"(period {probe.period}s x failure_threshold {probe.failure_threshold})")
            await self._exited_within(process, STARTUP_POLL_SECONDS)
        return "stopped during start-up"

    @staticmethod
    async def _exited_within(process: asyncio.subprocess.Process, seconds: float) -> bool:
        if seconds <= 0:
            return process.returncode is not None
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), seconds)
        except TimeoutError:
            return False
        return True

    def _watch(self, inst: Instance) -> None:
        assert inst.process is not None
        self._spawn_task(self._on_exit(inst, inst.process))
        self._spawn_task(self._liveness(inst, inst.process))

    async def _on_exit(self, inst: Instance, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if inst.process is not process or self._stopping:
            return
        inst.ready = False
        await self._kill(inst)  # its workers may outlive their master for a moment
        uptime = time.monotonic() - inst.started_at
        self._crashes[inst.index] = 1 if uptime > 30 else self._crashes[inst.index] + 1
        delay = restart_backoff(self._crashes[inst.index])
        self.restarts += 1
        self._write_log(f"instance {inst.index} (pid {process.pid}) exited with code {code}; "
                        f"restart #{self.restarts} in {delay:.1f}s")
        log.warning("%s/%s instance %d exited with code %s; restarting", self.endpoint, self.name, inst.index, code)
        await asyncio.sleep(delay)
        while not self._stopping:
            try:
                await self._spawn(inst)
            except OSError as exc:
                self._write_log(f"instance {inst.index} restart failed: {exc}")
                await asyncio.sleep(5)
                continue
            error = await self._await_ready(inst)
            if not error:
                self._watch(inst)
                return
            if self._stopping:
                return
            self._write_log(f"instance {inst.index} restart failed: {error}")
            self.restarts += 1
            await self._kill(inst)
            self._crashes[inst.index] += 1
            await asyncio.sleep(restart_backoff(self._crashes[inst.index]))

    async def _liveness(self, inst: Instance, process: asyncio.subprocess.Process) -> None:
        probe = self.runtime.liveness_probe
        misses = 0
        while inst.process is process and process.returncode is None and not self._stopping:
            await asyncio.sleep(max(1, probe.period))
            if inst.process is not process or process.returncode is not None:
                return
            if await upstream.probe(LOOPBACK, inst.port, "/", max(0.1, probe.timeout)):
                misses = 0
                continue
            misses += 1
            if misses >= max(1, probe.failure_threshold):
                self._write_log(f"instance {inst.index} (pid {inst.pid}) failed {misses} liveness probes; restarting")
                inst.ready = False
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                return

    async def _recheck(self, inst: Instance, process: asyncio.subprocess.Process) -> None:
        """After a refused connection: back in rotation once it answers again (or its exit restarts it)."""
        while inst.process is process and process.returncode is None and not self._stopping:
            if await upstream.probe(LOOPBACK, inst.port, "/", 1.0):
                if inst.process is process and process.returncode is None:
                    inst.ready = True
                    self._write_log(f"instance {inst.index} answers again; back in rotation")
                return
            await asyncio.sleep(STARTUP_POLL_SECONDS)

    async def _kill(self, inst: Instance) -> None:
        process = inst.process
        if process is None:
            return
        inst.ready = False
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            if not await self._exited_within(process, STOP_GRACE_SECONDS):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        # the master is gone; its workers are in the same group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if inst.socket_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(inst.socket_path)

    async def _kill_all(self) -> None:
        await asyncio.gather(*(self._kill(inst) for inst in self.instances))
