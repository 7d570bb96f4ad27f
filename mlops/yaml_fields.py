"""Typed field readers for the project's YAML files (``mlops.yaml``, the Azure CLI v2 specs under
``endpoints/`` and ``jobs/``, ``rollout.yml``, ``profile.yml``, ``gates.yml``): each reads one key of
a mapping and raises ``ConfigError`` naming the file, the key and what was expected (exit 2)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mlops.errors import ConfigError
from mlops.settings.durations import parse_duration


def read_yaml(path: Path, *, missing: str = "file not found") -> dict[str, Any]:
    """The file's top-level mapping; ``missing`` is the message when there is no such file."""
    if not path.is_file():
        raise ConfigError(missing, file=str(path))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {error}", file=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"expected a YAML mapping at the top, got {type(data).__name__}", file=str(path))
    return data


def get_mapping(data: Mapping[str, Any], key: str, where: str, prefix: str = "") -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"expected a mapping, got {value!r}", file=where, key=prefix + key)
    return value


def get_str(data: Mapping[str, Any], key: str, where: str, prefix: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"expected a non-empty string, got {value!r}", file=where, key=prefix + key)
    return value


def get_int(data: Mapping[str, Any], key: str, where: str, *, default: int, minimum: int, prefix: str = "") -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"expected an integer >= {minimum}, got {value!r}", file=where, key=prefix + key)
    return value


def get_float(data: Mapping[str, Any], key: str, where: str, *, default: float | None, prefix: str = "") -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"expected a non-negative number, got {value!r}", file=where, key=prefix + key)
    return float(value)


def parse_bool(value: object, key: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise ConfigError(f"expected true or false, got {value!r}", file=where, key=key)


def get_duration(data: Mapping[str, Any], key: str, where: str, *, default: float, prefix: str = "") -> float:
    if key not in data:
        return default
    try:
        return parse_duration(data[key])
    except ValueError as error:
        raise ConfigError(str(error), file=where, key=prefix + key) from None


def get_path(data: Mapping[str, Any], key: str, base: Path, where: str, *, prefix: str = "",
             must_exist: bool = False) -> Path:
    value = get_str(data, key, where, prefix)
    path = (base / value).resolve()
    if must_exist and not path.exists():
        raise ConfigError(f"{path} does not exist", file=where, key=prefix + key)
    return path


def get_str_mapping(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping of names to values", file=where, key=key)
    return {str(k): str(v) for k, v in value.items()}


def profile_entry(data: Mapping[str, Any], profile: str, where: str) -> Any:
    profiles = get_mapping(data, "profiles", where)
    if profile not in profiles:
        raise ConfigError(f"no profile {profile!r}; expected one of {sorted(profiles)} "
                          "(--profile, MLOPS_PROFILE or `profile:` in mlops.yaml)", file=where, key="profiles")
    return profiles[profile]
