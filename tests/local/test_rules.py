"""Azure ML's rules as pure functions: every violation is refused with a message naming the rule."""

from __future__ import annotations

import pytest

from mlops.errors import RuleViolation
from mlops.workspace import rules

DEPLOYMENTS = ("blue", "green", "red")


@pytest.mark.parametrize("name", ["abc", "tcn-forecaster", "A1-b", "x" * 32, "Endpoint9"])
def test_good_endpoint_names(name: str) -> None:
    rules.check_endpoint_name(name)


@pytest.mark.parametrize("name", ["ab", "x" * 33, "1abc", "-abc", "abc-", "ab_c", "ab c", "ab.c", ""])
def test_bad_endpoint_names(name: str) -> None:
    with pytest.raises(RuleViolation, match="endpoint name .* is invalid: it must be 3-32 characters"):
        rules.check_endpoint_name(name)


@pytest.mark.parametrize("name", ["blue", "green", "tcn-v2", "a" * 32])
def test_good_deployment_names(name: str) -> None:
    rules.check_deployment_name("ep", name)


@pytest.mark.parametrize("name", ["bl", "Blue", "blue_1", "a" * 33, "9blue", "blue-"])
def test_bad_deployment_names(name: str) -> None:
    with pytest.raises(RuleViolation, match=f"deployment name '{name}' on endpoint 'ep' is invalid"):
        rules.check_deployment_name("ep", name)


def test_a_21st_deployment_is_refused_but_updating_the_20th_is_not() -> None:
    existing = [f"dep{i:02d}" for i in range(20)]
    rules.check_deployment_count("ep", existing, "dep05")  # an update of an existing one
    with pytest.raises(RuleViolation, match="already has 20 deployments: Azure ML allows at most 20"):
        rules.check_deployment_count("ep", existing, "dep20")
    rules.check_deployment_count("ep", existing[:19], "dep20")


@pytest.mark.parametrize(
    ("traffic", "mirror"),
    [
        ({}, {}),
        ({"blue": 100}, {}),
        ({"blue": 0, "green": 0}, {}),
        ({"blue": 70, "green": 30}, {}),
        ({"blue": 100, "green": 0}, {"green": 50}),
        ({"blue": 100}, {"green": 20, "red": 0}),
        ({"blue": 100, "green": 0}, {"green": 0}),
    ],
)
def test_valid_traffic(traffic: dict[str, int], mirror: dict[str, int]) -> None:
    rules.check_traffic("ep", traffic, mirror, DEPLOYMENTS)


@pytest.mark.parametrize(
    ("traffic", "mirror", "message"),
    [
        ({"blue": 60, "green": 30}, {}, r"traffic of endpoint 'ep' sums to 90 \(blue=60, green=30\): it must sum to 100"),
        ({"blue": 70, "green": 40}, {}, "sums to 110"),
        ({"blue": 100, "green": -0.5}, {}, "must be an integer 0-100"),
        ({"blue": 150, "green": -50}, {}, "must be 0-100%, got 150"),
        ({"blue": True}, {}, "must be an integer"),
        ({"blue": 50, "purple": 50}, {}, "names deployment 'purple', which does not exist on endpoint 'ep'"),
        ({"blue": 100}, {"green": 60}, "mirror traffic of deployment 'green' on endpoint 'ep' is 60%: at most 50%"),
        ({"blue": 100}, {"green": 10, "red": 10}, "at most one deployment may receive mirrored traffic"),
        ({"blue": 100}, {"blue": 10}, "'blue' on endpoint 'ep' cannot take live traffic .100%. and mirrored"),
        ({"blue": 100}, {"purple": 10}, "mirror traffic names deployment 'purple', which does not exist"),
    ],
)
def test_traffic_violations(traffic: dict[str, int], mirror: dict[str, int], message: str) -> None:
    with pytest.raises(RuleViolation, match=message):
        rules.check_traffic("ep", traffic, mirror, DEPLOYMENTS)


def test_a_failed_deployment_takes_no_traffic() -> None:
    rules.check_traffic("ep", {"blue": 100, "green": 0}, {}, DEPLOYMENTS, failed=["green"])
    with pytest.raises(RuleViolation, match="'green' on endpoint 'ep' is Failed and cannot take traffic"):
        rules.check_traffic("ep", {"blue": 90, "green": 10}, {}, DEPLOYMENTS, failed=["green"])
    with pytest.raises(RuleViolation, match="is Failed"):
        rules.check_traffic("ep", {"blue": 100}, {"green": 10}, DEPLOYMENTS, failed=["green"])


@pytest.mark.parametrize(
    ("traffic", "mirror", "message"),
    [
        ({"blue": 100, "green": 0}, {}, None),
        ({"blue": 100}, {"green": 0}, None),
        ({"green": 100}, {}, "has 100% live traffic and cannot be deleted"),
        ({"blue": 90, "green": 10}, {}, "has 10% live traffic"),
        ({"blue": 100}, {"green": 20}, "receives 20% mirrored traffic and cannot be deleted"),
    ],
)
def test_deleting_a_deployment(traffic: dict[str, int], mirror: dict[str, int], message: str | None) -> None:
    if message is None:
        rules.check_deployment_deletion("ep", "green", traffic, mirror)
    else:
        with pytest.raises(RuleViolation, match=message):
            rules.check_deployment_deletion("ep", "green", traffic, mirror)


def test_the_batch_default_cannot_be_deleted() -> None:
    rules.check_batch_deployment_deletion("bep", "old", "new")
    with pytest.raises(RuleViolation, match="'new' is the default of batch endpoint 'bep'"):
        rules.check_batch_deployment_deletion("bep", "new", "new")


@pytest.mark.parametrize(
    ("traffic", "expected"),
    [
        ({"blue": 100, "green": 0}, {"blue": 100, "green": 0}),
        ({"blue": 0, "green": 100}, {"blue": 0, "green": 0}),
        ({"blue": 70, "green": 30}, {"blue": 100, "green": 0}),
        ({"blue": 50, "green": 25, "red": 25}, {"blue": 67, "red": 33, "green": 0}),
        ({"blue": 40, "green": 20, "red": 40}, {"blue": 50, "red": 50, "green": 0}),
        ({}, {}),
    ],
)
def test_without_deployment_keeps_a_valid_map(traffic: dict[str, int], expected: dict[str, int]) -> None:
    result = rules.without_deployment(traffic, "green")
    assert result == expected
    rules.check_traffic("ep", result, {}, DEPLOYMENTS)


@pytest.mark.parametrize("name", ["tcn", "tcn-forecaster", "tcn_forecaster.v2", "9model"])
def test_good_asset_names(name: str) -> None:
    rules.check_asset_name("model", name)


@pytest.mark.parametrize("name", ["", "-tcn", "tcn forecaster", "tcn:1", "tcn@latest", "a" * 256])
def test_bad_asset_names(name: str) -> None:
    with pytest.raises(RuleViolation, match="model name .* is invalid"):
        rules.check_asset_name("model", name)
