"""Is a process we started still there? One answer for every part that records pids
(release locks, batch jobs, the release record).

On Linux ``/proc/<pid>/stat`` tells a zombie from a live process and gives the process's start
time, which guards against a recycled pid. Elsewhere the signal-0 probe is the best there is.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def process_identity(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against pid reuse), or None where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def process_alive(pid: int, identity: str | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when ``identity`` is given, is the process we recorded."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): the signal-0 probe is the best we have
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return False
    return identity is None or fields[19] == identity


def stop_process_group(proc: subprocess.Popen, *, grace: float = 5.0) -> None:
    """End a process started with ``start_new_session=True`` and everything it started: SIGTERM to
    its group, SIGKILL after ``grace`` seconds. Only ever the processes we started, by id."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
