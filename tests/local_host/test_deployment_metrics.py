"""The router records what every deployment served - routed, header-targeted and mirrored - and the
host exposes it on the control channel and as Prometheus text on the loopback metrics URL."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.local_host.conftest import Setup, auth, load, settled

pytestmark = pytest.mark.slow


def _metrics_page(setup: Setup) -> str:
    url = setup.host.metrics_url()
    assert url is not None and url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback, no token needed
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode()


def test_every_kind_of_traffic_is_recorded_per_deployment(setup: Setup):
    blue, green = setup.deployment("blue"), setup.deployment("green")
    setup.host.apply(setup.endpoint((blue, green), {"blue": 100, "green": 0}, mirror={"green": 50}), timeout=120)
    since = time.time()

    routed = load(setup.url, count=200, concurrency=2)
    failing = load(setup.url, count=10, concurrency=1, body=b'{"status": 503}')
    targeted = load(setup.url, count=30, concurrency=2, headers=auth(**{"azureml-model-deployment": "green"}))
    assert routed.statuses == {200: 200} and failing.statuses == {503: 10} and targeted.statuses == {200: 30}
    # mirrored copies finish in the background: until green's log and its metrics agree, and stay so
    def green_counts() -> tuple[int, int, int]:
        window = setup.host.deployment_metrics("ep-test", "green", since)
        return setup.received("green"), window["kinds"].get("mirrored", 0), window["mirror_dropped"]

    settled(green_counts, done=lambda counts: counts[0] == 30 + counts[1])

    blue_window = setup.host.deployment_metrics("ep-test", "blue", since)
    assert blue_window["requests"] == 210
    assert blue_window["status_codes"] == {"200": 200, "503": 10}
    assert blue_window["kinds"] == {"routed": 210}
    assert 0 < blue_window["p50_ms"] <= blue_window["p95_ms"] <= blue_window["p99_ms"]

    green_window = setup.host.deployment_metrics("ep-test", "green", since)
    mirrored = green_window["kinds"].get("mirrored", 0) + green_window["mirror_dropped"]
    assert green_window["kinds"]["targeted"] == 30
    assert abs(mirrored - 105) <= 12, green_window  # 50% of the 210 header-less requests
    assert setup.received("green") == 30 + green_window["kinds"]["mirrored"]
    # the mirrored 503 requests failed on green too: the mirror's own answers are what the shadow step judges
    assert green_window["status_codes"].get("503", 0) >= 1

    later = setup.host.deployment_metrics("ep-test", "blue", time.time() + 1)
    assert later["requests"] == 0

    page = _metrics_page(setup)
    assert 'mlops_requests_total{endpoint="ep-test",deployment="blue",kind="routed",status_class="2xx"} 200' in page
    assert 'mlops_requests_total{endpoint="ep-test",deployment="blue",kind="routed",status_class="5xx"} 10' in page
    assert 'mlops_requests_total{endpoint="ep-test",deployment="green",kind="targeted",status_class="2xx"} 30' in page
    assert 'deployment="green",kind="mirrored"' in page
    assert "Bearer" not in page and "primary-key-for-tests" not in page
    json.dumps(blue_window)  # JSON-clean (no NaN)
