"""The release record: one JSON file that every step reads and writes, typed in code.

It is the state that passes between steps (and between GitHub jobs: the workflow carries it as an
artifact), the evidence of what happened (versions, slots, traffic before/after, each gate's
values and limits, verdicts, per-step wall time, who triggered it) and the resume point of a
release that was killed: each step's state is ``running`` / ``done`` / ``failed`` / ``skipped``,
written atomically (temp file + rename) at every transition, so a re-run knows where to continue.

In code the record is a ``Record`` dataclass whose ``status`` is a ``ReleaseStatus`` and whose
sections are dataclasses too, in ``mlops.release.sections`` (``ModelPin``, ``Slots``,
``LoadTestResult``, ``Promotion``, ``BatchPrepared``, ...); this module holds the record itself: its
file (load, atomic save, the archive copy), who runs it (the pid and host a resume checks, the
release-lock holder) and its steps' states and timings. ``typed_json`` is the one place that maps
it to JSON and back. The JSON keeps the shape of schema 1 (the same keys), so records written
before still load, and keys this version does not know are kept (``extra``) and written back
unchanged.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from mlops.processes import process_alive

# Imported at run time, not under TYPE_CHECKING: typed_json resolves Record's field types (string
# annotations) in this module's globals.
from mlops.release.gates import Verdict
from mlops.release.sections.batch import BatchPrepared, BatchResult
from mlops.release.sections.endpoint import RollbackResult, Slots, TrafficSplit
from mlops.release.sections.loadtest import BaselineSlot, LoadTestResult, QualityResult
from mlops.release.sections.pins import EnvironmentPin, ModelPin
from mlops.release.sections.promotion import Promotion
from mlops.release.typed_json import fields_to_json, from_json

SCHEMA = 2
"""1: the untyped record (same keys); 2: typed sections. Both load."""

STEPS = ("register", "environment", "deploy", "loadtest", "gate", "promote", "batch")


class ReleaseStatus(StrEnum):
    RUNNING = "running"
    AWAITING_PROMOTION = "awaiting_promotion"
    """Gated and passed; waiting for ``mlops promote`` (an approval, ``--until gate``)."""
    PROMOTED = "promoted"
    """The candidate serves 100%; the batch refresh is still to do."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    INCONCLUSIVE = "inconclusive"
    NOTHING_TO_RELEASE = "nothing_to_release"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        """A terminal status: a new release may start from here."""
        return self in _FINISHED

    @property
    def holds_endpoint(self) -> bool:
        """The release still owns the online endpoint (its release lock): it is changing it, or its
        gated candidate waits at 0% for the promotion."""
        return self in (ReleaseStatus.RUNNING, ReleaseStatus.AWAITING_PROMOTION)


_FINISHED = frozenset({ReleaseStatus.SUCCEEDED, ReleaseStatus.FAILED, ReleaseStatus.ROLLED_BACK,
                       ReleaseStatus.INCONCLUSIVE, ReleaseStatus.NOTHING_TO_RELEASE})


class StepState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


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


@dataclass
class StepEntry:
    """One step's state and wall time (``Record.step``), keyed by the step's name in ``steps``."""

    state: StepState = StepState.RUNNING
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float = 0.0
    configured_wait_s: float = 0.0
    """Load/bake time the configuration asked for, kept apart so the release's overhead can be judged."""
    error: str | None = None
    reason: str | None = None
    html_report: str | None = None
    deployment: str | None = None
    rolled_back: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in (StepState.DONE, StepState.SKIPPED)


# ---------------------------------------------------------------------------------------------
# The record


@dataclass
class Record:
    """A release record backed by a JSON file (``path``, not part of the JSON)."""

    path: Path = field(default=Path("current.json"), metadata={"json": False})
    release_id: str = ""
    schema: int = SCHEMA
    status: ReleaseStatus = ReleaseStatus.RUNNING
    pid: int = 0
    host: str = ""
    started_at: str = ""
    finished_at: str | None = None
    trigger: dict[str, str] = field(default_factory=dict)
    workspace: str = ""
    endpoint: str = ""
    batch_endpoint: str = ""
    config: str = ""
    profile: str = ""
    error: str | None = None
    code_hash: str | None = None
    """The online scoring code's hash (tag ``mlops.code_hash`` of the candidate)."""
    batch_code_hash: str | None = None
    """The batch scoring code's hash (tag ``mlops.code_hash`` of the batch deployment)."""
    steps: dict[str, StepEntry] = field(default_factory=dict)
    model: ModelPin | None = None
    environment: EnvironmentPin | None = None
    slots: Slots = field(default_factory=Slots)
    traffic: TrafficSplit = field(default_factory=TrafficSplit)
    baseline: BaselineSlot | None = None
    loadtest: LoadTestResult | None = None
    quality: QualityResult | None = None
    verdict: Verdict | None = None
    promotion: Promotion = field(default_factory=Promotion)
    batch: BatchResult | None = None
    batch_prep: BatchPrepared | None = None
    """The batch deployment prepared beside the online release (``mlops.release.batch_overlap``)."""
    rollback: RollbackResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # file ----------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> Record | None:
        """The record at ``path``, or ``None`` when there is none (or it is torn or not a record)."""
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return cls.parse(path, data) if isinstance(data, dict) and "release_id" in data else None

    @classmethod
    def parse(cls, path: Path, data: Mapping[str, Any]) -> Record:
        """A record from its JSON (schema 1 or 2), kept at ``path``."""
        record = from_json(cls, dict(data))
        record.path = path
        return record

    @classmethod
    def create(cls, path: Path, *, release_id: str | None = None, **fields: Any) -> Record:
        record = cls(path=path, release_id=release_id or new_release_id(), pid=os.getpid(),
                     host=socket.gethostname(), started_at=utc_now(), trigger=trigger(), **fields)
        record.save()
        return record

    def to_dict(self) -> dict[str, Any]:
        data = fields_to_json(self)
        data["schema"] = SCHEMA
        return data

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        os.replace(tmp, self.path)

    def finish(self, status: ReleaseStatus, *, error: str | None = None) -> None:
        self.status = status
        self.finished_at = utc_now()
        if error:
            self.error = error
        self.save()
        archive = self.path.with_name(f"{self.release_id}.json")
        if archive != self.path:
            archive.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")

    def set_status(self, status: ReleaseStatus) -> None:
        self.status = status
        self.save()

    # state ---------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def artifacts_dir(self) -> Path:
        return self.path.parent / self.release_id

    @property
    def holder(self) -> str:
        """The release-lock holder: the release id, so the later steps of one release (other
        processes, other GitHub jobs) re-acquire it while a different release is refused."""
        return f"release {self.release_id}"

    def running_elsewhere(self) -> bool:
        """True when another live process on this machine is running this (unfinished) release."""
        if self.finished or self.host != socket.gethostname():
            return False
        if self.pid <= 0 or self.pid == os.getpid():
            return False
        return process_alive(self.pid)

    def claim(self) -> None:
        """This process now runs the release (a resumed release, or a later step command)."""
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.save()

    # steps ---------------------------------------------------------------------------------
    def step_state(self, name: str) -> StepState | None:
        entry = self.steps.get(name)
        return entry.state if entry is not None else None

    def step_done(self, name: str) -> bool:
        entry = self.steps.get(name)
        return entry is not None and entry.done

    def mark(self, name: str, state: StepState, *, reason: str | None = None) -> None:
        entry = self.steps.setdefault(name, StepEntry())
        entry.state = state
        if reason is not None:
            entry.reason = reason
        self.save()

    @contextmanager
    def step(self, name: str, *, configured_wait_s: float = 0.0) -> Iterator[StepEntry]:
        """Time a step: ``running`` on entry, ``done`` (or ``failed`` on an exception) on exit.

        ``configured_wait_s`` is load/bake time the configuration asked for. Yields the step's entry."""
        entry = self.steps.setdefault(name, StepEntry())
        previous = entry.seconds
        entry.state = StepState.RUNNING
        entry.started_at = utc_now()
        entry.configured_wait_s += configured_wait_s
        self.save()
        started = time.monotonic()
        try:
            yield entry
        except BaseException as error:
            entry.state = StepState.FAILED
            entry.seconds = round(previous + time.monotonic() - started, 3)
            entry.error = str(error).splitlines()[0] if str(error) else type(error).__name__
            self.save()
            raise
        if entry.state is StepState.RUNNING:
            entry.state = StepState.DONE
        entry.seconds = round(previous + time.monotonic() - started, 3)
        entry.finished_at = utc_now()
        self.save()

    def timings(self) -> dict[str, dict[str, float]]:
        return {name: {"seconds": step.seconds, "configured_wait_s": step.configured_wait_s}
                for name, step in self.steps.items()}

    def overhead_seconds(self) -> float:
        """Wall time of all steps minus the configured load and bake durations."""
        return sum(max(0.0, t["seconds"] - t["configured_wait_s"]) for t in self.timings().values())
