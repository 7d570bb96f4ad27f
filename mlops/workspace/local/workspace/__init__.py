"""``LocalWorkspace``: the ``Workspace`` port on this machine, with real processes and no Docker.

The store (``registry/store.py``) is the truth; the long-lived host process (``online/host.py``,
through the ``HostClient`` seam of ``online/desired_state.py``) is made to match it. Every change follows one shape:

1. validate against the Azure rules (``mlops.workspace.rules``) inside one ``BEGIN IMMEDIATE``
   transaction, and write it - a violation raises and rolls back, so nothing changed;
2. push the endpoint's *whole* desired state to the host (``HostClient.apply``), under a
   workspace-wide file lock so two CLI processes' pushes cannot land out of order (each push
   reads the store afresh, so the last one always carries the latest state);
3. record the states the host reports (``Creating`` -> ``Succeeded`` / ``Failed`` + log tail).

Its modules, by operation group, as the Azure adapter's (``mlops.workspace.azure``) are:

* ``base``: what every group shares - the folder, the store, artifacts, the venv cache, stored specs;
* ``assets``: models, AutoML-shaped jobs (the local sweep), environments;
* ``online``: the host (and its self-repair), online endpoints, deployments, traffic, keys, invoke,
  logs, metrics;
* ``batch``: batch endpoints, deployments, jobs, outputs, logs;
* ``lock``: the release lock.
"""

from __future__ import annotations

from mlops.workspace.local.workspace.assets import AssetOps
from mlops.workspace.local.workspace.batch import BatchOps
from mlops.workspace.local.workspace.lock import LockOps
from mlops.workspace.local.workspace.online import OnlineOps


class LocalWorkspace(AssetOps, OnlineOps, BatchOps, LockOps):
    """``Workspace`` on the embedded workspace under ``path`` (see the package docstring): the
    operation groups of ``assets``, ``online``, ``batch`` and ``lock`` on the shared ``base``."""


__all__ = ["LocalWorkspace"]
