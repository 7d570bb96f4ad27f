"""The release record's view of the online endpoint: which slot got the candidate and which was live
(``deploy``), the traffic before and after the release, and a rollback's traffic and what became of
the candidate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Slots:
    candidate: str | None = None
    """``None``: nothing was deployed (the release's model already serves)."""
    live: str | None = None
    live_model: str | None = None
    live_environment: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrafficSplit:
    before: dict[str, int] | None = None
    after: dict[str, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RollbackResult:
    reason: str
    at: str = ""
    traffic_before: dict[str, int] = field(default_factory=dict)
    traffic_after: dict[str, int] = field(default_factory=dict)
    candidate: str = "absent"
    """What became of the candidate: ``deleted``, ``kept at 0%``, ``absent``."""
    extra: dict[str, Any] = field(default_factory=dict)
