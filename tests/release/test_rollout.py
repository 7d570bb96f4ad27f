"""Rollout steps and traffic plans: pure, table-tested."""

from __future__ import annotations

import pytest

from mlops.release.rollout import completed_traffic_steps, first_release_steps, rollback_plan, traffic_plan
from mlops.settings.rollout import BakeStep, TrafficStep, parse_steps


def test_parse_steps() -> None:
    steps = parse_steps([{"traffic": 10}, {"bake": "30s", "check": "health"}, {"bake": "2m"}, {"check": "health"},
                         {"traffic": 100}])
    assert steps == (TrafficStep(10), BakeStep(30.0, "health"), BakeStep(120.0), BakeStep(0.0, "health"),
                     TrafficStep(100))
    assert completed_traffic_steps(steps, 3) == 10
    assert completed_traffic_steps(steps, 0) == 0


@pytest.mark.parametrize(("raw", "message"), [
    ([], "non-empty list"),
    ("traffic: 10", "non-empty list"),
    ([{"traffic": 10}], "last traffic step must be"),
    ([{"traffic": 50}, {"traffic": 10}, {"traffic": 100}], "below the previous"),
    ([{"traffic": 101}], "integer 0-100"),
    ([{"traffic": "10"}], "integer 0-100"),
    ([{"traffic": 10, "bake": "1s"}], "only `traffic`"),
    ([{"traffic": 10}, {"bake": "soon"}, {"traffic": 100}], "step 2: bake"),
    ([{"traffic": 10}, {"check": "vibes"}, {"traffic": 100}], "check must be one of"),
    ([{"traffic": 10}, {"pause": "1s"}, {"traffic": 100}], "unknown key"),
    ([{"traffic": 10}, {}, {"traffic": 100}], "expected `traffic`"),
])
def test_parse_steps_rejects(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_steps(raw)


@pytest.mark.parametrize(("current", "live", "candidate", "percent", "expected"), [
    ({"blue": 100, "green": 0}, "blue", "green", 10, {"blue": 90, "green": 10}),
    ({"blue": 90, "green": 10}, "blue", "green", 50, {"blue": 50, "green": 50}),
    ({"blue": 50, "green": 50}, "blue", "green", 100, {"blue": 0, "green": 100}),
    ({"blue": 100}, "blue", "green", 10, {"blue": 90, "green": 10}),
    # a third deployment keeps its share; live and candidate split the rest
    ({"blue": 80, "green": 0, "canary": 20}, "blue", "green", 50, {"blue": 40, "green": 40, "canary": 20}),
    ({"blue": 80, "green": 0, "canary": 20}, "blue", "green", 10, {"blue": 72, "green": 8, "canary": 20}),
    # first release: nobody is served yet, so the candidate takes everything at once
    ({}, None, "blue", 10, {"blue": 100}),
    ({"blue": 0}, None, "blue", 100, {"blue": 100}),
    ({"blue": 0}, None, "blue", 0, {"blue": 0}),
    # idempotent: re-applying a step (a resumed release) gives the same map
    ({"blue": 90, "green": 10}, "blue", "green", 10, {"blue": 90, "green": 10}),
])
def test_traffic_plan(current, live, candidate, percent, expected) -> None:
    plan = traffic_plan(current, live, candidate, percent)
    assert plan == expected
    assert sum(plan.values()) in (0, 100)


@pytest.mark.parametrize(("current", "live", "candidate", "expected"), [
    ({"blue": 90, "green": 10}, "blue", "green", {"blue": 100, "green": 0}),
    ({"blue": 0, "green": 100}, "blue", "green", {"blue": 100, "green": 0}),
    ({"blue": 100, "green": 0}, "blue", "green", {"blue": 100, "green": 0}),
    ({"blue": 40, "green": 40, "canary": 20}, "blue", "green", {"blue": 80, "green": 0, "canary": 20}),
    ({"blue": 100}, None, "blue", {"blue": 0}),
])
def test_rollback_plan(current, live, candidate, expected) -> None:
    assert rollback_plan(current, live, candidate) == expected


def test_first_release_goes_to_100_at_once_then_checks_health() -> None:
    steps = parse_steps([{"traffic": 10}, {"bake": "5s", "check": "health"}, {"traffic": 100},
                         {"bake": "2s", "check": "health"}])
    assert first_release_steps(steps) == (TrafficStep(100), BakeStep(2.0, "health"))
    assert first_release_steps(parse_steps([{"traffic": 100}])) == (TrafficStep(100),)
