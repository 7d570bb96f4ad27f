"""Long-running operations as Azure ML's resource provider runs them, on the virtual clock.

Read off the recorded sessions (``shared/azure-recordings/README.md``):

* a long-running PUT answers ``201`` with the resource in ``provisioningState: Creating`` (or
  ``Updating`` for an existing one), ``Azure-AsyncOperation`` =
  ``.../locations/{loc}/mfeOperationsStatus/{prefix}:{workspaceId}:{guid}?api-version=...``,
  ``Location`` = the resource, ``x-ms-async-operation-timeout: PT30M``;
* a poll answers ``200`` ``{"status": "InProgress"/"Updating", ...}`` until ``Succeeded`` / ``Failed``
  (online polls also carry ``startTime``, ``endTime``, ``percentComplete``); no ``Retry-After`` is
  ever sent, so the SDK polls on its own interval (``LROConfigurations.POLL_INTERVAL`` = 5 s in
  azure-ai-ml 1.35's ``constants/_common.py``);
* a DELETE answers ``202`` with body ``null``, the polling header and ``Location`` to
  ``mfeOperationResults``.

An operation's effect on the state (``on_done``) is applied once, the first time the operation is
observed finished - by a poll or by any read of the resource (``settle``), so a GET never shows a
resource the poll has not yet said is done.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Operation:
    id: str
    started: float
    duration: float
    on_done: Callable[[], str | None] | None
    """Applies the operation's effect; returns an error message to end it ``Failed``."""
    resource: str = ""
    """The ARM id of the resource it changes (for ``busy``)."""
    status: str = "InProgress"
    error: str = ""
    ended: float | None = None
    log: list[str] = field(default_factory=list)


class Operations:
    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._ops: dict[str, Operation] = {}

    def start(self, prefix: str, workspace_id: str, duration: float, on_done: Callable[[], str | None] | None,
              *, resource: str = "") -> Operation:
        op = Operation(id=f"{prefix}:{workspace_id}:{uuid.uuid4()}", started=self._clock.now(),
                       duration=float(duration), on_done=on_done, resource=resource.lower())
        with self._lock:
            self._ops[op.id] = op
        return op

    def get(self, op_id: str) -> Operation | None:
        with self._lock:
            op = self._ops.get(op_id)
            if op is not None:
                self._finish_if_due(op)
            return op

    def settle(self) -> None:
        """Apply every operation whose time has come (call before reading the state)."""
        with self._lock:
            for op in list(self._ops.values()):
                self._finish_if_due(op)

    def busy(self, resource: str) -> Operation | None:
        """The unfinished operation on ``resource`` (an ARM id) or one of its children, if any."""
        resource = resource.lower()
        with self._lock:
            self.settle()
            for op in self._ops.values():
                if op.status == "InProgress" and (op.resource == resource or op.resource.startswith(resource + "/")):
                    return op
        return None

    def _finish_if_due(self, op: Operation) -> None:
        if op.status != "InProgress" or self._clock.now() < op.started + op.duration:
            return
        error = op.on_done() if op.on_done is not None else None
        op.status, op.error = ("Failed", error) if error else ("Succeeded", "")
        op.ended = op.started + op.duration

    def body(self, op: Operation) -> dict[str, Any]:
        """The ``mfeOperationsStatus`` answer, as recorded (``online_deployment_create.jsonl``): while
        running ``status: Updating``, ``endTime: 0001-01-01T00:00:00+00:00``, ``percentComplete: 0.0``."""
        clock = self._clock
        body: dict[str, Any] = {"id": op.id, "name": op.id, "percentComplete": 0.0,
                                "startTime": clock.iso(op.started), "status": "Updating",
                                "endTime": "0001-01-01T00:00:00+00:00"}
        if op.status != "InProgress":
            body["status"] = op.status
            body["endTime"] = clock.iso(op.ended)
        if op.status == "Failed":
            body["error"] = {"code": "DeploymentFailed", "message": op.error, "details": [], "additionalInfo": []}
        return body
