"""The release record: one JSON file that every step reads and writes.

It is the state that passes between steps (and between GitHub jobs: the workflow carries it as an
artifact), the evidence of what happened (versions, slots, traffic before/after, each gate's
values and limits, verdicts, per-step wall time, who triggered it) and the resume point of a
release that was killed: each step's state is ``running`` / ``done`` / ``failed`` / ``skipped``,
written atomically (temp file + rename) at every transition, so a re-run knows where to continue.

Default path: ``<records>/current.json`` (``records`` in mlops.yaml, default ``.mlops/releases``);
finished releases are also copied to ``<records>/<release_id>.json``. Artifacts (locust HTML
report, samples, the batch smoke output and its forecast-vs-actual SVG) go to
``<records>/<release_id>/``.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.processes import process_alive

STEPS = ("register", "environment", "deploy", "loadtest", "gate", "promote", "batch")
TERMINAL = ("succeeded", "failed", "rolled_back", "inconclusive", "nothing_to_release")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_release_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def trigger(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Who or what started the release: GitHub Actions' variables, else the local user."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true":
        keys = ("GITHUB_EVENT_NAME", "GITHUB_ACTOR", "GITHUB_REPOSITORY", "GITHUB_REF", "GITHUB_SHA",
                "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_WORKFLOW", "GITHUB_JOB")
        return {"by": "github-actions", **{key.removeprefix("GITHUB_").lower(): env[key] for key in keys if key in env}}
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"by": "user", "user": user, "host": socket.gethostname()}


class Record:
    """A release record backed by a JSON file. ``data`` is the plain dict that is saved."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    # lifecycle -----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> Record | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError):
            return None
        return cls(path, data) if isinstance(data, dict) and "release_id" in data else None

    @classmethod
    def create(cls, path: Path, *, release_id: str | None = None, **fields: Any) -> Record:
        data: dict[str, Any] = {
            "schema": 1,
            "release_id": release_id or new_release_id(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "status": "running",
            "started_at": utc_now(),
            "finished_at": None,
            "trigger": trigger(),
            "steps": {},
            **fields,
        }
        record = cls(path, data)
        record.save()
        return record

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        os.replace(tmp, self.path)

    def finish(self, status: str, *, error: str | None = None) -> None:
        self.data["status"] = status
        self.data["finished_at"] = utc_now()
        if error:
            self.data["error"] = error
        self.save()
        archive = self.path.with_name(f"{self.release_id}.json")
        if archive != self.path:
            archive.write_text(json.dumps(self.data, indent=2, default=str) + "\n")

    # accessors -----------------------------------------------------------------------------
    @property
    def release_id(self) -> str:
        return str(self.data["release_id"])

    @property
    def status(self) -> str:
        return str(self.data.get("status", "running"))

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def artifacts_dir(self) -> Path:
        return self.path.parent / self.release_id

    def running_elsewhere(self) -> bool:
        """True when another live process on this machine is running this (unfinished) release."""
        if self.finished or self.data.get("host") != socket.gethostname():
            return False
        pid = int(self.data.get("pid") or 0)
        if pid <= 0 or pid == os.getpid():
            return False
        return process_alive(pid)

    def claim(self) -> None:
        """This process now runs the release (a resumed release, or a later step command)."""
        self.data["pid"] = os.getpid()
        self.data["host"] = socket.gethostname()
        self.save()

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def step_state(self, name: str) -> str | None:
        return (self.data["steps"].get(name) or {}).get("state")

    def step_done(self, name: str) -> bool:
        return self.step_state(name) in ("done", "skipped")

    def mark(self, name: str, state: str, **fields: Any) -> None:
        entry = self.data["steps"].setdefault(name, {})
        entry.update(state=state, **fields)
        self.save()

    @contextmanager
    def step(self, name: str, *, configured_wait_s: float = 0.0) -> Iterator[dict[str, Any]]:
        """Time a step: ``running`` on entry, ``done`` (or ``failed`` on an exception) on exit.

        ``configured_wait_s`` is load/bake time the configuration asked for, kept apart so the
        release's own overhead can be judged. Yields the step's dict for results."""
        entry = self.data["steps"].setdefault(name, {})
        previous = float(entry.get("seconds") or 0.0)
        entry.update(state="running", started_at=utc_now())
        entry.setdefault("configured_wait_s", 0.0)
        entry["configured_wait_s"] = float(entry["configured_wait_s"]) + configured_wait_s
        self.save()
        started = time.monotonic()
        try:
            yield entry
        except BaseException as error:
            entry.update(state="failed", seconds=round(previous + time.monotonic() - started, 3),
                         error=str(error).splitlines()[0] if str(error) else type(error).__name__)
            self.save()
            raise
        if entry.get("state") == "running":
            entry["state"] = "done"
        entry.update(seconds=round(previous + time.monotonic() - started, 3), finished_at=utc_now())
        self.save()

    def timings(self) -> dict[str, dict[str, float]]:
        return {name: {"seconds": float(step.get("seconds") or 0.0),
                       "configured_wait_s": float(step.get("configured_wait_s") or 0.0)}
                for name, step in self.data["steps"].items()}

    def overhead_seconds(self) -> float:
        """Wall time of all steps minus the configured load and bake durations."""
        return sum(max(0.0, t["seconds"] - t["configured_wait_s"]) for t in self.timings().values())
