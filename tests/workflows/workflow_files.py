"""Reading the workflow files the way GitHub does, for the graph checks and the rehearsal.

PyYAML follows YAML 1.1, where a bare ``on`` key is the boolean ``True``; GitHub reads it as the
string ``on``. ``load_workflow`` puts it back, so tests can say ``workflow["on"]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"

PINNED_USES = re.compile(r"^(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})$")
"""A third-party action pinned to a full commit SHA (local ``./`` actions and ``docker://`` aside)."""

PINNED_ACTIONS: dict[str, tuple[str, str]] = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "azure/login": ("f5d393ae46f8fde4be8b75f32e3fc50e654ad0ca", "v3.0.1"),
}
"""The only actions the workflows use, each at the commit of its tag (all ``runs.using: node24``;
checked in the action repositories: ``git rev-parse vX.Y.Z^{commit}`` and their ``action.yml``).
The rehearsal simulates exactly these versions' behaviour and refuses any other pin."""

SELF_REPOSITORY = ("$/", "./")
"""How a workflow names a reusable workflow of its own repository: ``$/path`` (self-repository
syntax: the same repository at the running commit, GitHub changelog 2026-07-30) or ``./path``."""


def load_workflow(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")
    if True in data and "on" not in data:
        data["on"] = data.pop(True)
    return data


def workflow_paths() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def all_workflows() -> dict[str, dict[str, Any]]:
    return {path.name: load_workflow(path) for path in workflow_paths()}


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Every step of every job: (job id, index, step)."""
    for job_id, job in (workflow.get("jobs") or {}).items():
        for index, step in enumerate(job.get("steps") or []):
            yield job_id, index, step


def uses_comment_versions(path: Path) -> dict[str, str]:
    """``uses: owner/repo@SHA # vX.Y.Z`` -> {"owner/repo@SHA": "vX.Y.Z"} (comments are not in the YAML data)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.search(r"uses:\s*(\S+)\s*#\s*(v\d+(?:\.\d+)*)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def logs_in_to_azure(job: dict[str, Any]) -> bool:
    return any(str(step.get("uses", "")).startswith("azure/login@") for step in job.get("steps") or [])


def needs_of(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)
