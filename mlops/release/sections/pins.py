"""The release record's pins: the model and the environment the release deploys (the ``register``
and ``environment`` steps write them, ``mlops.release.steps.prepare``), with the AutoML trial a
job-sourced model came from and the conda pins an environment built from the model's file dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.workspace.port import AssetRef


@dataclass
class TrialPick:
    """The AutoML trial a job-sourced model came from (``job:NAME``)."""

    job: str
    trial: str
    primary_metric: str = ""
    score: str = ""
    """The trial's primary-metric value as AutoML reported it ("" when only the tag was known)."""


@dataclass
class ModelPin:
    name: str
    version: str
    content_hash: str = ""
    source: str = ""
    created: bool = False
    trusted_pickles: bool = False
    """Its deployments run with ``MLOPS_TRUST_PICKLED_MODEL=1`` (a job-sourced model only)."""
    trial: TrialPick | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> AssetRef:
        return AssetRef(self.name, str(self.version))


@dataclass
class UnpinnedDependency:
    """A dependency of the model's conda file whose version pin the environment dropped."""

    name: str
    was: str
    now: str
    section: str = "conda"


@dataclass
class EnvironmentPin:
    name: str
    version: str
    content_hash: str = ""
    image: str = ""
    source: str = ""
    """``spec <file>`` or ``model <name:version> <conda file>`` (built from the model's conda file)."""
    unpinned: list[UnpinnedDependency] = field(default_factory=list)
    unpin_not_found: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> AssetRef:
        return AssetRef(self.name, str(self.version))
