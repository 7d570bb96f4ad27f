"""Blue/green slot choice: pure functions over an endpoint's deployments and traffic.

The live deployment is the one holding the most traffic; the candidate goes into the slot that
holds none. A first release on an empty endpoint deploys the first slot (``blue``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlops.workspace.port import AssetRef, OnlineDeployment

CODE_HASH_TAG = "mlops.code_hash"
"""Tag of every deployment: the hash of the scoring code it runs (a changed score.py is a release)."""
RELEASE_TAG = "mlops.release"
"""Tag of every deployment a release creates: the release id. A rollback touches only its own."""


class NoFreeSlot(Exception):
    """Every slot holds live traffic: a rollout is half-way (resume it or roll it back first)."""


@dataclass(frozen=True)
class SlotChoice:
    candidate: str
    live: str | None
    """``None`` on a first release (no deployment takes traffic)."""


def live_deployment(traffic: Mapping[str, int]) -> str | None:
    """The deployment with the largest share (ties: the first name alphabetically), or ``None``."""
    serving = [(share, name) for name, share in traffic.items() if share > 0]
    if not serving:
        return None
    return sorted(serving, key=lambda item: (-item[0], item[1]))[0][1]


def choose_slots(slots: Sequence[str], traffic: Mapping[str, int]) -> SlotChoice:
    """Which slot receives the candidate, and which deployment is live.

    Raises ``NoFreeSlot`` when every slot has traffic (a half-done rollout)."""
    live = live_deployment(traffic)
    if live is None:
        return SlotChoice(candidate=slots[0], live=None)
    for slot in slots:
        if traffic.get(slot, 0) == 0:
            return SlotChoice(candidate=slot, live=live)
    shares = ", ".join(f"{slot}={traffic.get(slot, 0)}%" for slot in slots)
    raise NoFreeSlot(f"every slot takes traffic ({shares}): a rollout is half-way")


def serving_release(deployments: Sequence[OnlineDeployment], traffic: Mapping[str, int]) -> OnlineDeployment | None:
    """The deployment that takes 100% of the traffic, if one does."""
    for deployment in deployments:
        if traffic.get(deployment.name, 0) == 100:
            return deployment
    return None


def already_live(deployments: Sequence[OnlineDeployment], traffic: Mapping[str, int],
                 model: AssetRef, environment: AssetRef, *, code_hash: str | None = None) -> bool:
    """True when one deployment serves 100% with exactly this model and pinned environment (and,
    when the deployment carries one, the same scoring-code hash tag)."""
    serving = serving_release(deployments, traffic)
    if not (serving is not None and serving.state == "Succeeded" and serving.model == model
            and serving.environment == environment):
        return False
    deployed_code = serving.tags.get(CODE_HASH_TAG)
    return code_hash is None or deployed_code is None or deployed_code == code_hash
