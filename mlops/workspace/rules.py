"""Azure ML's rules for names, traffic, mirror traffic and deletions, as pure functions.

Both adapters call these *before* changing anything, so a release that would break a rule stops
early with a message naming the endpoint, the deployment and the rule - on the local workspace
exactly as Azure ML would refuse it, and on Azure before a slow, half-applied request. Each
function takes plain data and returns nothing or raises ``RuleViolation``; none reads or writes
state, which is what makes "state unchanged on a violation" hold by construction.

The rules (DESIGN.md section 3, from the Azure ML endpoint documentation):

* endpoint names: 3-32 characters, start with a letter, letters/digits/``-``, not ending with ``-``;
* deployment names: the same, lowercase (Azure lower-cases deployment names);
* at most 20 deployments per online endpoint;
* ``traffic``: integers 0-100 summing to 0 or 100, only for existing deployments;
* ``mirror_traffic``: at most one deployment, at most 50%, never a deployment with live traffic;
* a deployment with live or mirrored traffic cannot be deleted, nor can a batch endpoint's default.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from mlops.errors import RuleViolation

MAX_DEPLOYMENTS_PER_ENDPOINT = 20
MAX_MIRROR_PERCENT = 50

_ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
_DEPLOYMENT_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
_ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


def check_endpoint_name(name: str) -> None:
    """Refuse an endpoint name Azure ML would refuse."""
    if not isinstance(name, str) or not _ENDPOINT_NAME.match(name):
        raise RuleViolation(
            f"endpoint name {name!r} is invalid: it must be 3-32 characters, start with a letter, "
            "hold only letters, digits and '-', and not end with '-'"
        )


def check_deployment_name(endpoint_name: str, name: str) -> None:
    """Refuse a deployment name Azure ML would refuse."""
    if not isinstance(name, str) or not _DEPLOYMENT_NAME.match(name):
        raise RuleViolation(
            f"deployment name {name!r} on endpoint {endpoint_name!r} is invalid: it must be 3-32 "
            "characters, start with a lowercase letter, hold only lowercase letters, digits and '-', "
            "and not end with '-'"
        )


def check_asset_name(kind: str, name: str) -> None:
    """Model and environment names: letters, digits, ``_``, ``.``, ``-``; up to 255 characters."""
    if not isinstance(name, str) or not _ASSET_NAME.match(name):
        raise RuleViolation(
            f"{kind} name {name!r} is invalid: it must start with a letter or digit and hold only "
            "letters, digits, '_', '.' and '-' (at most 255 characters)"
        )


def check_deployment_count(endpoint_name: str, existing: Collection[str], new_name: str) -> None:
    """Adding ``new_name`` must not take the endpoint past 20 deployments (an update is fine)."""
    if new_name in existing:
        return
    if len(existing) >= MAX_DEPLOYMENTS_PER_ENDPOINT:
        raise RuleViolation(
            f"endpoint {endpoint_name!r} already has {len(existing)} deployments: Azure ML allows at "
            f"most {MAX_DEPLOYMENTS_PER_ENDPOINT}; delete one before creating {new_name!r}"
        )


def _check_percent(endpoint_name: str, what: str, deployment: str, value: object, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleViolation(
            f"{what} of deployment {deployment!r} on endpoint {endpoint_name!r} must be an integer "
            f"0-{top}, got {value!r}"
        )
    if not 0 <= value <= top:
        raise RuleViolation(
            f"{what} of deployment {deployment!r} on endpoint {endpoint_name!r} must be 0-{top}%, "
            f"got {value}"
        )
    return value


def check_traffic(
    endpoint_name: str,
    traffic: Mapping[str, int],
    mirror_traffic: Mapping[str, int],
    deployments: Collection[str],
    *,
    failed: Collection[str] = (),
) -> None:
    """Validate a whole (traffic, mirror) pair against the endpoint's deployments.

    ``failed`` names deployments in state ``Failed``: they may not take live or mirrored traffic
    (a deployment that failed to start takes no traffic).
    """
    for name, value in traffic.items():
        if name not in deployments:
            raise RuleViolation(
                f"traffic names deployment {name!r}, which does not exist on endpoint {endpoint_name!r} "
                f"(deployments: {', '.join(sorted(deployments)) or 'none'})"
            )
        _check_percent(endpoint_name, "traffic", name, value, 100)
    total = sum(traffic.values())
    if total not in (0, 100):
        split = ", ".join(f"{name}={value}" for name, value in sorted(traffic.items()))
        raise RuleViolation(
            f"traffic of endpoint {endpoint_name!r} sums to {total} ({split}): it must sum to 100 "
            "(or 0 for no live traffic)"
        )
    mirrored = {name: value for name, value in mirror_traffic.items() if value != 0}
    for name, value in mirror_traffic.items():
        if name not in deployments:
            raise RuleViolation(
                f"mirror traffic names deployment {name!r}, which does not exist on endpoint "
                f"{endpoint_name!r}"
            )
        _check_percent(endpoint_name, "mirror traffic", name, value, 100)
    if len(mirrored) > 1:
        raise RuleViolation(
            f"mirror traffic of endpoint {endpoint_name!r} names {len(mirrored)} deployments "
            f"({', '.join(sorted(mirrored))}): at most one deployment may receive mirrored traffic"
        )
    for name, value in mirrored.items():
        if value > MAX_MIRROR_PERCENT:
            raise RuleViolation(
                f"mirror traffic of deployment {name!r} on endpoint {endpoint_name!r} is {value}%: "
                f"at most {MAX_MIRROR_PERCENT}% may be mirrored"
            )
        if traffic.get(name, 0) > 0:
            raise RuleViolation(
                f"deployment {name!r} on endpoint {endpoint_name!r} cannot take live traffic "
                f"({traffic[name]}%) and mirrored traffic ({value}%) at once"
            )
    for name in failed:
        if traffic.get(name, 0) > 0 or mirrored.get(name, 0) > 0:
            raise RuleViolation(
                f"deployment {name!r} on endpoint {endpoint_name!r} is Failed and cannot take traffic; "
                "fix and re-create it first"
            )


def check_deployment_deletion(
    endpoint_name: str, name: str, traffic: Mapping[str, int], mirror_traffic: Mapping[str, int]
) -> None:
    """A deployment that serves live or mirrored traffic cannot be deleted."""
    if traffic.get(name, 0) > 0:
        raise RuleViolation(
            f"deployment {name!r} on endpoint {endpoint_name!r} has {traffic[name]}% live traffic and "
            "cannot be deleted: move its traffic to another deployment first"
        )
    if mirror_traffic.get(name, 0) > 0:
        raise RuleViolation(
            f"deployment {name!r} on endpoint {endpoint_name!r} receives {mirror_traffic[name]}% mirrored "
            "traffic and cannot be deleted: set its mirror traffic to 0 first"
        )


def check_batch_deployment_deletion(endpoint_name: str, name: str, default_deployment: str | None) -> None:
    """The default deployment of a batch endpoint cannot be deleted."""
    if name == default_deployment:
        raise RuleViolation(
            f"deployment {name!r} is the default of batch endpoint {endpoint_name!r} and cannot be "
            "deleted: make another deployment the default first"
        )


def without_deployment(traffic: Mapping[str, int], name: str) -> dict[str, int]:
    """The traffic map after ``name`` stops taking traffic, the rest rescaled to sum to 100.

    Used when a deployment fails after an update: its share goes to the others in proportion
    (largest remainder, ties by name), so the map stays valid. No others with traffic -> all 0.
    """
    rest = {key: value for key, value in traffic.items() if key != name}
    total = sum(rest.values())
    if total in (0, 100):
        return {**rest, name: 0} if name in traffic else rest
    exact = {key: value * 100 / total for key, value in rest.items()}
    result = {key: int(share) for key, share in exact.items()}
    missing = 100 - sum(result.values())
    for key in sorted(exact, key=lambda k: (-(exact[k] - result[k]), k))[:missing]:
        result[key] += 1
    return {**result, name: 0}
