"""The shape of a locust run (``load_tests/profile.yml``), as typed values: what ``mlops.release.loadtest``
runs for the load test and the health checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops.errors import ConfigError
from mlops.yaml_fields import get_duration, get_float, get_int, profile_entry, read_yaml


@dataclass(frozen=True)
class LoadProfile:
    """The shape of a locust run (``load_tests/profile.yml``): the load test's, and - with the health
    check's users and duration - each health check's."""

    users: int = 4
    spawn_rate: float = 4.0
    run_time_s: float = 10.0
    data: Path | None = None
    """A CSV of the series the requests are cut from."""
    context_days: int = 28
    horizon: int = 7
    warmup_s: float = 0.0
    """Run this long first and drop those samples: a deployment that just started (cold caches,
    first allocations) is not judged on its first requests."""


def read_load_profile(path: Path, profile: str, base: Path) -> LoadProfile:
    """``profile.yml``: the named profile's locust shape and the payload; the data path is relative to
    ``base``. Raises ``ConfigError`` naming the file and the key."""
    data = read_yaml(path)
    where = str(path)
    entry = profile_entry(data, profile, where)
    if not isinstance(entry, dict):
        raise ConfigError("expected a mapping with users, spawn_rate, run_time", file=where, key=f"profiles.{profile}")
    prefix = f"profiles.{profile}."
    payload = data.get("payload") or {}
    data_path = None
    if payload.get("data"):
        data_path = (base / str(payload["data"])).resolve()
        if not data_path.is_file():
            raise ConfigError(f"{data_path} does not exist", file=where, key="payload.data")
    return LoadProfile(
        users=get_int(entry, "users", where, default=4, minimum=1, prefix=prefix),
        spawn_rate=get_float(entry, "spawn_rate", where, default=4.0, prefix=prefix) or 1.0,
        run_time_s=get_duration(entry, "run_time", where, default=10.0, prefix=prefix),
        warmup_s=get_duration(entry, "warmup", where, default=0.0, prefix=prefix),
        data=data_path,
        context_days=get_int(payload, "context_days", where, default=28, minimum=1, prefix="payload."),
        horizon=get_int(payload, "horizon", where, default=7, minimum=1, prefix="payload."),
    )
