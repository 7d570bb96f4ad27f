"""Pure routing decisions of the local router: which deployment serves a request, and why not.

The router (``router.py``) does the I/O; every decision it takes is a function
here, so the Azure ML rules of DESIGN.md section 3 are testable without sockets:

* auth mode ``key``: ``Authorization: Bearer <primary|secondary>``, anything else is 401 before a
  deployment is even chosen (the local workspace has no token service, so the other auth modes are
  served with the same keys rather than left open);
* header ``azureml-model-deployment: NAME`` targets that deployment whatever its traffic and is
  never mirrored; an unknown or not-ready deployment is a 404 that says which;
* otherwise a weighted random choice by ``traffic`` (a shuffled deck, so the observed split is the
  one asked for) among deployments that can serve (a ``Failed`` or not-ready deployment takes no
  traffic); all weights 0 is 404 "no deployment has traffic";
* ``mirror_traffic`` copies that percentage of non-targeted requests to the mirror deployment.

A ``RoutingTable`` is immutable: the router swaps the whole table when the workspace re-applies an
endpoint, so a request routed by the old table finishes where it started.
"""

from __future__ import annotations

import hmac
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

DEPLOYMENT_HEADER = "azureml-model-deployment"


@dataclass(frozen=True)
class RoutingTable:
    """One endpoint's routing rules at one moment (never mutated; replaced whole)."""

    endpoint: str
    auth_mode: str
    keys: tuple[str, ...]
    traffic: Mapping[str, int] = field(default_factory=dict)
    mirror: Mapping[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:  # keys are never printed by accident
        return f"RoutingTable(endpoint={self.endpoint!r}, traffic={dict(self.traffic)!r}, mirror={dict(self.mirror)!r})"


@dataclass(frozen=True)
class Route:
    """Where a request goes: ``deployment`` serves it; ``mirror`` (if set) gets a discarded copy."""

    deployment: str
    mirror: str | None = None


@dataclass(frozen=True)
class Refusal:
    """A request the router answers itself, with an Azure-like status and a message."""

    status: int
    message: str


def authorize(table: RoutingTable, authorization: str | None) -> Refusal | None:
    """``None`` when the ``Authorization`` header carries one of the endpoint's keys, else a 401.

    Compared in constant time; the message never echoes what was sent."""
    if not table.keys:
        return None
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return Refusal(401, f"endpoint '{table.endpoint}' requires 'Authorization: Bearer <key>' "
                            f"(primary or secondary key, see `mlops keys {table.endpoint}`)")
    token_bytes = token.strip().encode()
    valid = False
    for key in table.keys:  # no short-circuit: the time taken does not depend on which key matched
        valid |= hmac.compare_digest(token_bytes, key.encode())
    if not valid:
        return Refusal(401, f"invalid key for endpoint '{table.endpoint}' (regenerated? see `mlops keys "
                            f"{table.endpoint}`)")
    return None


class Deck:
    """Weighted random draws whose observed split is exact: every block of ``sum(weights)`` draws holds
    each name exactly ``weight`` times, in a fresh random order (sampling without replacement).

    Plain independent draws would make a 70/30 split over 2,000 requests wander by +-1 point (one
    standard deviation); a shuffled deck keeps the order random and the proportions what was asked."""

    def __init__(self, weights: Mapping[str, int], rng: random.Random | None = None) -> None:
        self._cards = [name for name, weight in weights.items() for _ in range(max(0, weight))]
        self._rng = rng or random.Random()
        self._next = len(self._cards)

    def draw(self) -> str | None:
        if not self._cards:
            return None
        if self._next >= len(self._cards):
            self._rng.shuffle(self._cards)
            self._next = 0
        card = self._cards[self._next]
        self._next += 1
        return card


@dataclass
class Dealer:
    """The draws of one routing table: which deployment takes the next request, and whether it is mirrored."""

    traffic: Deck
    mirror: Deck
    mirror_target: str | None
    rand: Callable[[], float]

    @classmethod
    def for_table(cls, table: RoutingTable, rng: random.Random | None = None) -> Dealer:
        rng = rng or random.Random()
        target, pct = next(((name, pct) for name, pct in table.mirror.items() if pct > 0), (None, 0))
        mirror = Deck({"mirror": pct, "": 100 - pct} if target else {}, rng)
        return cls(Deck({n: p for n, p in table.traffic.items() if p > 0}, rng), mirror, target, rng.random)


def choose_route(
    table: RoutingTable,
    target: str | None,
    can_serve: Callable[[str], bool],
    known: Callable[[str], bool],
    dealer: Dealer,
) -> Route | Refusal:
    """Pick the deployment for one request.

    ``target`` is the ``azureml-model-deployment`` header (or ``None``), ``can_serve(name)`` says
    whether the deployment has a ready instance now, ``known(name)`` whether the endpoint has it at
    all. The dealer's traffic deck picks the deployment; when the drawn one cannot serve, a weighted
    choice among those that can takes the request instead."""
    if target:
        if not known(target):
            return Refusal(404, f"deployment '{target}' not found on endpoint '{table.endpoint}' "
                                f"(header {DEPLOYMENT_HEADER})")
        if not can_serve(target):
            return Refusal(404, f"deployment '{target}' of endpoint '{table.endpoint}' has no ready "
                                f"instance (Failed, starting or restarting; see `mlops logs {table.endpoint} "
                                f"{target}`)")
        return Route(target)  # targeted requests are never mirrored
    chosen = dealer.traffic.draw()
    if chosen is None:
        return Refusal(404, f"no deployment has traffic on endpoint '{table.endpoint}'; set traffic or "
                            f"target one with the {DEPLOYMENT_HEADER} header")
    if not can_serve(chosen):
        serving = [(name, pct) for name, pct in table.traffic.items() if pct > 0 and can_serve(name)]
        if not serving:
            names = ", ".join(name for name, pct in table.traffic.items() if pct > 0)
            return Refusal(503, f"no ready instance in the deployments with traffic on endpoint "
                                f"'{table.endpoint}' ({names})")
        chosen = pick_weighted(serving, dealer.rand())
    mirrored = dealer.mirror_target if dealer.mirror.draw() == "mirror" else None
    return Route(chosen, mirrored if mirrored != chosen else None)


def pick_weighted(weighted: list[tuple[str, int]], draw: float) -> str:
    """The deployment whose cumulative weight interval contains ``draw`` x total weight."""
    total = sum(pct for _, pct in weighted)
    point = draw * total
    running = 0
    for name, pct in weighted:
        running += pct
        if point < running:
            return name
    return weighted[-1][0]


def concurrency_limit(max_per_instance: int, ready_instances: int) -> int:
    """Requests a deployment may have in flight: ``max_concurrent_requests_per_instance`` x ready instances."""
    return max(0, max_per_instance) * max(0, ready_instances)


# Headers that describe one connection, not the request: never forwarded (RFC 9110 section 7.6.1;
# ``expect`` too: the router has read the whole body already), plus the caller's key, which no
# deployment ever sees.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length", "authorization", "expect",
})


def forwarded_headers(headers: Mapping[str, str] | list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The request headers a deployment receives: all but hop-by-hop ones and ``Authorization``."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(name, value) for name, value in items if name.lower() not in HOP_BY_HOP]
