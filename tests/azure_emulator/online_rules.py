"""Pure rules of Azure ML's online endpoints, as the resource provider enforces them (no I/O;
table-tested in ``tests/azure_wire/test_online_rules.py``).

* Endpoint names: 3-32 characters, a letter first, then letters, digits and ``-``, not ending in
  ``-`` (https://learn.microsoft.com/azure/machine-learning/how-to-manage-quotas#azure-machine-learning-online-endpoints-and-batch-endpoints
  "Endpoint name ... must begin with a letter ... 3-32 characters"); deployment names the same.
* ``traffic``: integer percentages 0-100 over existing deployments, summing to 0 or 100;
  ``mirrorTraffic``: at most one deployment, at most 50%, never a deployment that also takes live
  traffic (https://learn.microsoft.com/azure/machine-learning/how-to-safely-rollout-online-endpoints
  "mirror traffic ... can't exceed 50%", "a deployment can't receive both live and mirrored traffic").
* At most 20 deployments per endpoint (the quota table of the page above).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
MAX_DEPLOYMENTS = 20


def name_problem(kind: str, name: str) -> str | None:
    if NAME.match(name or ""):
        return None
    return (f"{kind} name '{name}' is invalid: it must be 3-32 characters, begin with a letter, end with a letter "
            "or digit, and contain only letters, digits and '-'.")


def traffic_problem(traffic: Mapping[str, object], mirror: Mapping[str, object],
                    deployments: set[str]) -> str | None:
    """The 400 message for a traffic/mirror split Azure refuses, or None."""
    known = {d.lower() for d in deployments}
    for label, split in (("traffic", traffic), ("mirror traffic", mirror)):
        for name, value in split.items():
            if name.lower() not in known:
                return f"Deployment '{name}' in {label} does not exist on the endpoint."
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
                return f"The {label} value of deployment '{name}' must be an integer between 0 and 100."
    total = sum(int(v) for v in traffic.values())
    if total not in (0, 100):
        return f"Traffic values must sum to 0 or 100; they sum to {total}."
    mirrored = {n: v for n, v in mirror.items() if int(v) > 0}
    if len(mirrored) > 1:
        return "Mirror traffic can be set for one deployment only."
    for name, value in mirrored.items():
        if int(value) > 50:
            return f"Mirror traffic of deployment '{name}' is {value}%; it cannot exceed 50%."
        if int(traffic.get(name, 0) or 0) > 0:
            return f"Deployment '{name}' cannot take both live traffic and mirror traffic."
    return None
