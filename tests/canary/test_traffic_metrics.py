"""The router's per-deployment metrics, pure: windows, kinds, percentiles, Prometheus text."""

from __future__ import annotations

import math

import pytest

from mlops.workspace.local.online.traffic_metrics import (
    MIRRORED,
    ROUTED,
    TARGETED,
    TrafficMetrics,
    prometheus_text,
    status_class,
)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("status", "klass"), [(200, "2xx"), (204, "2xx"), (302, "3xx"), (400, "4xx"),
                                               (408, "4xx"), (429, "4xx"), (500, "5xx"), (502, "5xx"),
                                               (0, "5xx"), (99, "5xx")])
def test_status_class(status: int, klass: str):
    assert status_class(status) == klass


def test_window_counts_every_kind_and_only_requests_inside_it():
    clock = Clock()
    metrics = TrafficMetrics("ep", clock=clock)
    for i in range(10):
        metrics.record("green", ROUTED, 200, 0.010 + i / 1000, arrived=1000 + i)
    metrics.record("green", TARGETED, 500, 0.5, arrived=1005)
    metrics.record("green", MIRRORED, 200, 0.030, arrived=1006)
    metrics.record("blue", ROUTED, 200, 0.001, arrived=1006)

    window = metrics.window("green", since=1005)
    assert window.requests == 5 + 1 + 1
    assert window.status_codes == {200: 6, 500: 1}
    assert window.kinds == {ROUTED: 5, TARGETED: 1, MIRRORED: 1}
    # percentiles over the successful requests only (the 500 at 500 ms is not a latency sample)
    assert window.p99_ms < 40
    assert window.p50_ms == pytest.approx(17.5)  # 15..19 ms routed and the 30 ms mirror copy
    assert metrics.window("green", since=1000, until=1003).requests == 3
    assert metrics.window("blue", since=0).requests == 1
    assert window.recorded_since == 1000.0


def test_unknown_deployment_is_zero_requests_not_an_error():
    metrics = TrafficMetrics("ep", clock=Clock(50.0))
    window = metrics.window("nobody", since=0)
    assert window.requests == 0 and math.isnan(window.p50_ms) and window.recorded_since == 50.0


def test_a_full_deque_says_from_when_it_still_holds_requests():
    metrics = TrafficMetrics("ep", clock=Clock(0.0), max_records=3)
    for t in range(5):
        metrics.record("d", ROUTED, 200, 0.01, arrived=10 + t)
    window = metrics.window("d", since=0)
    assert window.requests == 3 and window.recorded_since == 12


def test_mirror_drops_are_counted_apart_from_requests():
    clock = Clock(100.0)
    metrics = TrafficMetrics("ep", clock=clock)
    metrics.mirror_dropped("green")
    window = metrics.window("green", since=0)
    assert window.requests == 0 and window.mirror_dropped == 1


def test_prometheus_text_has_one_header_per_family_cumulative_buckets_and_escaped_labels():
    metrics = TrafficMetrics('e"p', clock=Clock())
    metrics.record("green", ROUTED, 200, 0.004, arrived=1)
    metrics.record("green", ROUTED, 200, 0.2, arrived=2)
    metrics.record("green", ROUTED, 503, 7.0, arrived=3)
    metrics.record("green", MIRRORED, 200, 0.02, arrived=3)
    text = prometheus_text([metrics, TrafficMetrics("other", clock=Clock())])
    lines = text.splitlines()
    assert lines.count("# TYPE mlops_requests_total counter") == 1
    assert lines.count("# TYPE mlops_request_duration_seconds histogram") == 1
    assert 'mlops_requests_total{endpoint="e\\"p",deployment="green",kind="routed",status_class="2xx"} 2' in lines
    assert 'mlops_requests_total{endpoint="e\\"p",deployment="green",kind="routed",status_class="5xx"} 1' in lines
    labels = 'endpoint="e\\"p",deployment="green",kind="routed"'
    assert f'mlops_request_duration_seconds_bucket{{{labels},le="0.005"}} 1' in lines
    assert f'mlops_request_duration_seconds_bucket{{{labels},le="0.25"}} 2' in lines
    assert f'mlops_request_duration_seconds_bucket{{{labels},le="5"}} 2' in lines
    assert f'mlops_request_duration_seconds_bucket{{{labels},le="+Inf"}} 3' in lines
    assert f"mlops_request_duration_seconds_count{{{labels}}} 3" in lines
    sum_line = next(line for line in lines if line.startswith(f"mlops_request_duration_seconds_sum{{{labels}}}"))
    assert float(sum_line.split()[-1]) == pytest.approx(7.204)
    assert text.endswith("\n")
