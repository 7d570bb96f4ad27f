"""AutoML forecasting jobs (a parent with child trials) - see the module's functions; until a job is
seeded with ``seed`` there are none, and every lookup answers None (the routes then 404)."""

from __future__ import annotations

from typing import Any


def _jobs(emu: Any) -> dict[str, Any]:
    return emu.store("automl_jobs")


def arm_job(emu: Any, name: str) -> dict[str, Any] | None:
    job = _jobs(emu).get(name)
    return None if job is None else job["arm"](emu)


def children(emu: Any, name: str) -> list[dict[str, Any]] | None:
    job = _jobs(emu).get(name)
    return None if job is None else job["children"](emu)


def run(emu: Any, run_id: str) -> dict[str, Any] | None:
    for job in _jobs(emu).values():
        found = job["run"](emu, run_id)
        if found is not None:
            return found
    return None


def run_metadata(emu: Any, run_id: str) -> dict[str, Any] | None:
    for job in _jobs(emu).values():
        meta = job["run_metadata"](emu, run_id)
        if meta is not None:
            return meta
    return None


def resolve_output(emu: Any, asset_id: str) -> dict[str, str] | None:
    for job in _jobs(emu).values():
        found = job["resolve"](emu, asset_id)
        if found is not None:
            return found
    return None
