"""Long-running operations of the fake MLClient: in flight for a modelled time, one at a time per resource.

A ``begin_*`` call of the fake starts an ``Operation`` on the fake clock; the change it makes is
applied when it *ends*, not when it starts, and until then the resource shows it is busy. What this
models, and where each rule comes from:

* **Durations** (virtual seconds, ``LRO_SECONDS``), read off the SDK team's recorded sessions
  (``shared/azure-recordings/``; the wire emulator's ``routes/online.py`` and ``routes/batch.py`` use
  the same numbers): an online endpoint create 62 s (``online_endpoint_e2e.jsonl``), a traffic
  update 92 s ("a traffic change is a long-running operation", ``online_deployment_create.jsonl``),
  a deployment create 425 s (7 min 5 s, same file), a deployment re-PUT 322 s
  (``online_deployment_update.jsonl``), a batch endpoint create 30 s and deletes about 10 s
  (``batch_endpoint_create.jsonl``). Tests set ``FakeAzure.lro_seconds`` to change one.
* **Meanwhile the resource says so**: a new endpoint is ``provisioning_state: Creating`` with no
  scoring URI (the recorded PUT answers ``"provisioningState": "Creating", "scoringUri": null`` and
  the GET after the operation ``Succeeded`` with the URI - line 1 and 5 of
  ``online_deployment_create.jsonl``, lines 1 and 4 of ``batch_endpoint_create.jsonl``); an existing
  one keeps its old state (traffic, tags) with ``Updating`` until the operation ends.
* **One operation at a time**: a write to an online endpoint, or to one of its deployments, while
  an operation runs on that endpoint or any of its deployments is refused with 409 - a second
  write is refused, not queued. The service's words, as users met them: "(Conflict) ...
  (OperationDuplicationConflict) Conflict of operation, another operation on same entity is
  already running in workspace <ws>." (Azure/carnegie-mop, ``doc/troubleshooting/model_wrapper/
  AmlEndpoint.md``); a deployment PUT while its endpoint is itself being written: "Cannot create a
  deployment in endpoint <name> because it is in Updating provisioning state."
  (Azure/azure-sdk-for-net#36961). Both come to azure-ai-ml as azure-core's ``ResourceExistsError``
  (409 in the generated clients' ``error_map``), which is what Microsoft's MLOps template scripts
  catch and retry (the ``deploy_with_retry`` of microsoft/dstoolkit-mlops-v2's
  ``provision_*_deployment.py`` forks) after waiting for ``provisioning_state`` to be ``Succeeded``.
  Batch endpoints the same, per endpoint and its deployments (the wire emulator's rule). The
  status of #36961's message is not in the stored thread; 409 is what the emulator answers too.
* **The poller** is azure-core's ``LROPoller`` on the fake clock: ``done()`` once the time has
  passed, ``wait(timeout)`` waits at most ``timeout`` (to the end when ``None``), ``result()``
  blocks until the end and raises the operation's failure. Waiting on a poller moves the clock on
  (``FakeClock.advance``) without counting as the adapter's own ``sleep``: azure-core polls in its
  own thread with its own sleeps, not the ``sleep`` the adapter was given.
* An operation the caller never waits for still ends when its time has passed (the service does
  not care who polls): every call of the fake first settles what is due (``Operations.settle``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LRO_SECONDS: dict[str, float] = {
    "online_endpoints.create": 62.0,
    "online_endpoints.update": 92.0,
    "online_endpoints.delete": 10.0,
    "online_deployments.create": 425.0,
    "online_deployments.update": 322.0,
    "online_deployments.delete": 10.0,
    "batch_endpoints.create": 30.0,
    "batch_endpoints.update": 30.0,
    "batch_endpoints.delete": 10.0,
}
"""Virtual seconds an operation of that kind runs (see the module docstring for the recordings).
Kinds not listed (key regeneration, batch deployments - whose readiness ``FakeAzure.batch_ready_after``
models by reads) end at once."""


class FakeClock:
    """``clock``/``sleep`` pair: sleeping advances the clock at once, so waits and backoffs are
    exercised in full (and recorded in ``slept``) without taking time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """The adapter's own ``sleep`` (its backoffs and polls): recorded."""
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        """Time passing while something else waits (an SDK poller): not the adapter's sleep."""
        self.now += max(seconds, 0.0)


def conflict_message(resource: str, workspace: str) -> str:
    """The 409 of a write while another operation runs on ``resource`` (Azure/carnegie-mop)."""
    return (f"Conflict: Conflict of operation, another operation on same entity is already running in workspace "
            f"{workspace}. (OperationDuplicationConflict: {resource})")


def endpoint_busy_message(endpoint: str, state: str) -> str:
    """The 409 of a deployment PUT while its endpoint is being written (Azure/azure-sdk-for-net#36961)."""
    return f"Conflict: Cannot create a deployment in endpoint {endpoint} because it is in {state} provisioning state."


@dataclass
class Operation:
    resource: tuple[str, ...]
    """``("online", endpoint)``, ``("online", endpoint, deployment)``, ``("batch", endpoint)``, ..."""
    kind: str
    """``"create"``, ``"update"`` or ``"delete"``."""
    ends: float
    finish: Callable[[], Any] | None
    """Applies the change when the operation ends; returns the poller's result or raises its failure."""
    finished: bool = False
    result: Any = None
    error: Exception | None = None

    @property
    def state(self) -> str:
        """What the resource's ``provisioning_state`` says meanwhile."""
        return {"create": "Creating", "delete": "Deleting"}.get(self.kind, "Updating")


class Operations:
    """The operations in flight, on the clock ``clock()`` returns (``FakeAzure.clock``)."""

    def __init__(self, clock: Callable[[], FakeClock]) -> None:
        self._clock = clock
        self._running: list[Operation] = []

    def now(self) -> float:
        return self._clock()()

    def start(self, resource: tuple[str, ...], kind: str, seconds: float,
              finish: Callable[[], Any] | None = None) -> Operation:
        operation = Operation(resource, kind, self.now() + max(seconds, 0.0), finish)
        self._running.append(operation)
        self.settle()  # a zero-length operation ends at once
        return operation

    def settle(self) -> None:
        """End every operation whose time has come, in the order they end."""
        now = self.now()
        for operation in sorted(self._running, key=lambda op: op.ends):
            if operation.ends <= now:
                self._end(operation)

    def _end(self, operation: Operation) -> None:
        self._running.remove(operation)
        operation.finished = True
        if operation.finish is None:
            return
        try:
            operation.result = operation.finish()
        except Exception as error:  # noqa: BLE001 - the operation's failure, raised by result()
            operation.error = error

    def busy(self, resource: tuple[str, ...]) -> Operation | None:
        """The unfinished operation on ``resource`` or on one of its children (an endpoint's
        deployments), if any."""
        self.settle()
        return next((op for op in self._running if op.resource[:len(resource)] == resource), None)

    def on(self, resource: tuple[str, ...]) -> Operation | None:
        """The unfinished operation on exactly ``resource``."""
        self.settle()
        return next((op for op in self._running if op.resource == resource), None)

    def wait(self, operation: Operation, timeout: float | None) -> None:
        if operation.finished:
            return
        remaining = operation.ends - self.now()
        self._clock().advance(remaining if timeout is None else min(timeout, remaining))
        self.settle()


class FakePoller:
    """``LROPoller`` stand-in over an ``Operation`` (see the module docstring)."""

    def __init__(self, operation: Operation, operations: Operations) -> None:
        self._operation = operation
        self._operations = operations

    def result(self, timeout: float | None = None) -> Any:
        self._operations.wait(self._operation, timeout)
        if not self._operation.finished:
            return None  # azure-core: result(timeout) returns None when the operation has not ended
        if self._operation.error is not None:
            raise self._operation.error
        return self._operation.result

    def done(self) -> bool:
        self._operations.settle()
        return self._operation.finished

    def wait(self, timeout: float | None = None) -> None:
        self._operations.wait(self._operation, timeout)

    def status(self) -> str:
        if not self.done():
            return "InProgress"
        return "Failed" if self._operation.error is not None else "Succeeded"
