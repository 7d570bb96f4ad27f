"""The embedded local workspace: Azure ML's models, environments, online and batch endpoints on this
machine, with real processes and no Docker (DESIGN.md section 2, "The local workspace").

``LocalWorkspace`` (``workspace.py``) is the adapter; ``store.py`` (SQLite), ``artifacts.py``,
``models.py`` and ``environments.py`` hold its state and assets; ``host.py`` serves online endpoints
and ``batch.py`` runs batch jobs.
"""

from __future__ import annotations

from mlops.workspace.local.workspace import LocalWorkspace

__all__ = ["LocalWorkspace"]
