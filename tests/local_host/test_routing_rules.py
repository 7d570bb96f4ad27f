"""The router's pure decisions (no sockets): auth, header targeting, weighted choice, mirror, headers."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from mlops.workspace.local.online.routing import (
    Dealer,
    Deck,
    Refusal,
    Route,
    RoutingTable,
    authorize,
    choose_route,
    concurrency_limit,
    forwarded_headers,
    pick_weighted,
)
from mlops.workspace.local.online.upstream import UpstreamError, parse_response

TABLE = RoutingTable("ep", "key", ("k1", "k2"), {"blue": 70, "green": 30, "idle": 0}, {"shadow": 20})
DEPLOYMENTS = {"blue", "green", "idle", "shadow", "broken"}


def route(table: RoutingTable, target: str | None, dealer: Dealer | None = None,
          ready=DEPLOYMENTS - {"broken"}):
    return choose_route(table, target, lambda n: n in ready, lambda n: n in DEPLOYMENTS,
                        dealer or Dealer.for_table(table, random.Random(7)))


@pytest.mark.parametrize(("header", "expected"), [
    ("Bearer k1", None), ("Bearer k2", None), ("bearer k2", None),
    (None, 401), ("", 401), ("Bearer", 401), ("Bearer k3", 401), ("Basic k1", 401), ("k1", 401), ("Bearer k1x", 401),
])
def test_authorize(header, expected):
    result = authorize(TABLE, header)
    assert (result.status if result else None) == expected
    if result:
        assert "k1" not in result.message and "k2" not in result.message  # never echoes a key


def test_deck_split_is_exact_and_order_random():
    deck = Deck({"a": 70, "b": 30}, random.Random(1))
    draws = [deck.draw() for _ in range(2000)]
    assert Counter(draws) == {"a": 1400, "b": 600}
    assert Counter(draws[:100]) == {"a": 70, "b": 30}
    assert draws[:100] != ["a"] * 70 + ["b"] * 30
    assert Deck({}).draw() is None


def test_weighted_choice_and_mirror_share():
    dealer = Dealer.for_table(TABLE, random.Random(3))
    routes = [route(TABLE, None, dealer) for _ in range(1000)]
    assert Counter(r.deployment for r in routes) == {"blue": 700, "green": 300}
    assert Counter(r.mirror for r in routes) == {None: 800, "shadow": 200}


def test_header_targets_any_known_ready_deployment_and_is_never_mirrored():
    always_mirror = RoutingTable("ep", "key", ("k",), {"blue": 100}, {"shadow": 50})
    dealer = Dealer.for_table(always_mirror)
    assert {route(always_mirror, "idle", dealer) for _ in range(20)} == {Route("idle")}
    assert route(TABLE, "shadow") == Route("shadow")
    unknown = route(TABLE, "nope")
    assert isinstance(unknown, Refusal) and unknown.status == 404 and "'nope' not found" in unknown.message
    broken = route(TABLE, "broken")
    assert isinstance(broken, Refusal) and broken.status == 404 and "no ready instance" in broken.message


def test_no_traffic_and_no_ready_deployment():
    idle = RoutingTable("ep", "key", ("k",), {"blue": 0, "green": 0})
    refusal = route(idle, None)
    assert isinstance(refusal, Refusal) and refusal.status == 404 and "no deployment has traffic" in refusal.message
    only_broken = RoutingTable("ep", "key", ("k",), {"broken": 100})
    refusal = route(only_broken, None)
    assert isinstance(refusal, Refusal) and refusal.status == 503


def test_failed_deployment_with_weight_takes_no_traffic():
    table = RoutingTable("ep", "key", ("k",), {"broken": 50, "blue": 50})
    dealer = Dealer.for_table(table)
    assert {route(table, None, dealer).deployment for _ in range(200)} == {"blue"}


def test_mirror_never_copies_to_the_serving_deployment():
    table = RoutingTable("ep", "key", ("k",), {"blue": 100}, {"blue": 50})
    dealer = Dealer.for_table(table)
    assert {route(table, None, dealer) for _ in range(50)} == {Route("blue")}


def test_pick_weighted_edges():
    assert pick_weighted([("a", 1)], 0.999999) == "a"
    assert pick_weighted([("a", 50), ("b", 50)], 0.5) == "b"


def test_concurrency_limit():
    assert concurrency_limit(2, 3) == 6
    assert concurrency_limit(4, 0) == 0


def test_forwarded_headers_drop_key_and_hop_by_hop_but_keep_target():
    headers = [("Authorization", "Bearer k1"), ("Host", "x"), ("Content-Length", "3"), ("Connection", "keep-alive"),
               ("azureml-model-deployment", "blue"), ("Content-Type", "application/json"), ("X-Custom", "1")]
    assert forwarded_headers(headers) == [("azureml-model-deployment", "blue"), ("Content-Type", "application/json"),
                                          ("X-Custom", "1")]


def test_table_repr_hides_keys():
    assert "k1" not in repr(TABLE)


def test_parse_response_content_length_and_chunked():
    plain = parse_response(b"HTTP/1.1 400 BAD REQUEST\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nbad")
    assert (plain.status, plain.reason, plain.body) == (400, "BAD REQUEST", b"bad")
    chunked = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert chunked.body == b"abcde"
    head = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head=True)
    assert (head.status, head.body) == (200, b"")
    with pytest.raises(UpstreamError):
        parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
