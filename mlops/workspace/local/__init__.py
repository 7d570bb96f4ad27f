"""The embedded local workspace: Azure ML's models, environments, online and batch endpoints on this
machine, with real processes and no Docker (DESIGN.md section 2, "The local workspace").

``LocalWorkspace`` (``workspace/``) is the adapter's face: it implements the ``Workspace`` port, by
operation group as the Azure adapter does (``base``, ``assets``, ``online``, ``batch``, ``lock``), and
is the only package that reaches into the three rooms behind it:

* ``registry/`` - the store (SQLite), content-addressed artifacts, models and environments;
* ``online/`` - online endpoints: the long-lived host process, its client, the router and its pure
  routing decisions, the upstream HTTP client, the control channel, the deployment supervisor, and
  the desired-state seam between the store and the host;
* ``batch/`` - batch jobs: the public job API, the pure plan, the job folder, the job process
  (runner) and the worker.
"""

from __future__ import annotations

from mlops.workspace.local.workspace import LocalWorkspace

__all__ = ["LocalWorkspace"]
