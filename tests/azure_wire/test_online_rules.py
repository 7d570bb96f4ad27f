"""The emulator's online-endpoint rules (``tests.azure_emulator.online_rules``): pure, by table."""

from __future__ import annotations

import pytest

from tests.azure_emulator import online_rules


@pytest.mark.parametrize(("name", "ok"), [
    ("tcn-forecast", True), ("abc", True), ("a" * 32, True),
    ("ab", False), ("a" * 33, False), ("1tcn", False), ("tcn-", False), ("tcn_forecast", False), ("", False),
])
def test_endpoint_names(name: str, ok: bool) -> None:
    assert (online_rules.name_problem("Endpoint", name) is None) is ok


DEPLOYMENTS = {"blue", "green", "shadow"}


@pytest.mark.parametrize(("traffic", "mirror", "problem"), [
    ({}, {}, None),
    ({"blue": 100}, {}, None),
    ({"blue": 80, "green": 20}, {"shadow": 50}, None),
    ({"blue": 0, "green": 0}, {}, None),
    ({"blue": 90}, {}, "sum to 0 or 100"),
    ({"blue": 60, "green": 60}, {}, "sum to 0 or 100"),
    ({"red": 100}, {}, "does not exist"),
    ({"blue": 100}, {"red": 10}, "does not exist"),
    ({"blue": 100}, {"green": 51}, "cannot exceed 50%"),
    ({"blue": 100}, {"green": 10, "shadow": 10}, "one deployment only"),
    ({"blue": 50, "green": 50}, {"green": 10}, "both live traffic and mirror"),
    ({"blue": 100.0}, {}, "integer"),
    ({"blue": 101}, {}, "between 0 and 100"),
])
def test_traffic_and_mirror(traffic: dict, mirror: dict, problem: str | None) -> None:
    found = online_rules.traffic_problem(traffic, mirror, DEPLOYMENTS)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
