"""Durations as people write them in YAML (``30s``, ``2m``, ``500ms``, ``1h``, or a number of seconds)."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds as a float. Raises ``ValueError`` with the accepted forms for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, 2m or 500ms, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected a non-negative duration, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match["value"]) * _UNIT_SECONDS[match["unit"]]
    raise ValueError(f"expected a duration like 30s, 2m or 500ms, got {value!r}")


def format_duration(seconds: float) -> str:
    """The short form locust's ``--run-time`` accepts (whole seconds, at least 1s)."""
    return f"{max(1, round(seconds))}s"
