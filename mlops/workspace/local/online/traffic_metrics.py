"""Per-deployment request metrics the local router keeps: what every deployment served, and how.

Azure ML keeps these facts for a managed online endpoint in Azure Monitor (the
``AmlOnlineEndpointTrafficLog`` table has one row per request with ``DeploymentName``,
``ResponseCode`` and ``TotalDurationMs``; the deployment resource has per-deployment metrics such as
request latency): the local workspace keeps them in the router, over *all* traffic a deployment
served - requests routed by the traffic split, requests targeted with the
``azureml-model-deployment`` header, and mirrored copies (whose responses nobody sees, which is
exactly why the shadow step needs them recorded).

The hot path is ``TrafficMetrics.record``: one tuple appended to a bounded deque and two counter
increments - no lock (the router's event loop is single-threaded), no I/O, no percentile work.
Percentiles are computed only when somebody asks (``window``), over the requests of the window.

Two read-outs:

* ``window(deployment, since)`` -> ``WindowStats``: requests, status codes, latency percentiles of
  the requests that *arrived* at or after ``since`` (epoch seconds), split by kind; it says when the
  recording started, so a window that reaches back before a host restart is marked incomplete;
* ``prometheus_text()``: the Prometheus text exposition format (version 0.0.4) - counters
  ``mlops_requests_total`` and a latency histogram ``mlops_request_duration_seconds`` per endpoint,
  deployment, kind and status class - served by the host on a loopback metrics URL.
  Format: https://prometheus.io/docs/instrumenting/exposition_formats/
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

ROUTED = "routed"
TARGETED = "targeted"
MIRRORED = "mirrored"
KINDS = (ROUTED, TARGETED, MIRRORED)

MAX_RECORDS_PER_DEPLOYMENT = 200_000
"""Requests kept per deployment for windowed queries (about 10 MB; at 500 req/s, the last ~7 min).
A window older than what is kept is reported incomplete, never silently short."""

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Histogram bucket upper bounds in seconds (Prometheus client libraries' default buckets)."""


def status_class(status: int) -> str:
    """``2xx`` / ``3xx`` / ``4xx`` / ``5xx`` (anything else, e.g. 0 for no answer, is ``5xx``)."""
    return f"{status // 100}xx" if 200 <= status < 600 else "5xx"


@dataclass(frozen=True)
class WindowStats:
    """One deployment's requests in a window (what ``Workspace.deployment_metrics`` reports locally)."""

    requests: int
    status_codes: Mapping[int, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    kinds: Mapping[str, int] = field(default_factory=dict)
    recorded_since: float = 0.0
    """Epoch seconds from which every request of this deployment is still held."""
    mirror_dropped: int = 0
    """Mirrored copies dropped because the deployment was at its concurrency limit."""


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return math.nan, math.nan, math.nan
    import numpy as np

    p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99]))
    return p50, p95, p99


class _Deployment:
    __slots__ = ("records", "counts", "buckets", "sums", "dropped", "mirror_dropped")

    def __init__(self, max_records: int) -> None:
        self.records: deque[tuple[float, int, float, str]] = deque(maxlen=max_records)
        self.counts: dict[tuple[str, int], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        self.dropped = 0
        self.mirror_dropped: list[float] = []


class TrafficMetrics:
    """The metrics of one endpoint's router. ``clock`` gives epoch seconds (tests pass a fake)."""

    def __init__(self, endpoint: str, *, clock=time.time, max_records: int = MAX_RECORDS_PER_DEPLOYMENT) -> None:
        self.endpoint = endpoint
        self._clock = clock
        self._max = max_records
        self._deployments: dict[str, _Deployment] = {}
        self.started = clock()

    def _get(self, deployment: str) -> _Deployment:
        entry = self._deployments.get(deployment)
        if entry is None:
            entry = self._deployments[deployment] = _Deployment(self._max)
        return entry

    def record(self, deployment: str, kind: str, status: int, latency_s: float, arrived: float) -> None:
        """One request ``deployment`` answered (or that was answered for it: 408/429/502 by the router)."""
        entry = self._get(deployment)
        records = entry.records
        if len(records) == records.maxlen:
            entry.dropped += 1
        records.append((arrived, status, latency_s * 1000.0, kind))
        key = (kind, status)
        entry.counts[key] = entry.counts.get(key, 0) + 1
        buckets = entry.buckets.get(kind)
        if buckets is None:
            buckets = entry.buckets[kind] = [0] * (len(BUCKETS_S) + 1)
            entry.sums[kind] = 0.0
        buckets[bisect.bisect_left(BUCKETS_S, latency_s)] += 1
        entry.sums[kind] += latency_s

    def mirror_dropped(self, deployment: str) -> None:
        """A mirrored copy the deployment had no free slot for (Azure drops such copies too)."""
        self._get(deployment).mirror_dropped.append(self._clock())

    def deployments(self) -> list[str]:
        return sorted(self._deployments)

    def window(self, deployment: str, since: float, until: float = math.inf) -> WindowStats:
        entry = self._deployments.get(deployment)
        if entry is None:
            return WindowStats(0, {}, math.nan, math.nan, math.nan, {}, recorded_since=self.started)
        # the router records every request from its start; only the deque's bound can lose some
        held_from = entry.records[0][0] if entry.dropped and entry.records else self.started
        codes: dict[int, int] = {}
        kinds: dict[str, int] = {}
        ok: list[float] = []
        for arrived, status, latency_ms, kind in entry.records:
            if arrived < since or arrived >= until:
                continue
            codes[status] = codes.get(status, 0) + 1
            kinds[kind] = kinds.get(kind, 0) + 1
            if 200 <= status < 400:
                ok.append(latency_ms)
        p50, p95, p99 = _percentiles(ok)
        dropped = sum(1 for t in entry.mirror_dropped if since <= t < until)
        return WindowStats(sum(codes.values()), codes, p50, p95, p99, kinds, recorded_since=held_from,
                           mirror_dropped=dropped)

    def prometheus_lines(self) -> Iterable[str]:
        """This endpoint's samples (no HELP/TYPE header: ``prometheus_text`` writes those once)."""
        ep = _label(self.endpoint)
        for name in sorted(self._deployments):
            entry = self._deployments[name]
            dep = _label(name)
            classes: dict[tuple[str, str], int] = {}
            for (kind, status), count in entry.counts.items():
                key = (kind, status_class(status))
                classes[key] = classes.get(key, 0) + count
            for (kind, klass), count in sorted(classes.items()):
                yield (f'mlops_requests_total{{endpoint="{ep}",deployment="{dep}",kind="{kind}",'
                       f'status_class="{klass}"}} {count}')
            for kind, buckets in sorted(entry.buckets.items()):
                labels = f'endpoint="{ep}",deployment="{dep}",kind="{kind}"'
                running = 0
                for bound, count in zip((*BUCKETS_S, math.inf), buckets, strict=True):
                    running += count
                    le = "+Inf" if bound == math.inf else f"{bound:g}"
                    yield f'mlops_request_duration_seconds_bucket{{{labels},le="{le}"}} {running}'
                yield f"mlops_request_duration_seconds_sum{{{labels}}} {entry.sums[kind]:.6f}"
                yield f"mlops_request_duration_seconds_count{{{labels}}} {running}"
            yield (f'mlops_mirror_dropped_total{{endpoint="{ep}",deployment="{dep}"}} '
                   f"{len(entry.mirror_dropped)}")


def prometheus_text(metrics: Iterable[TrafficMetrics]) -> str:
    """The exposition text for every endpoint's router (``# HELP`` / ``# TYPE`` once per family)."""
    collected = list(metrics)
    lines = [
        "# HELP mlops_requests_total Requests a deployment answered, by kind (routed, targeted, mirrored) "
        "and status class.",
        "# TYPE mlops_requests_total counter",
    ]
    samples = [line for m in collected for line in m.prometheus_lines()]
    lines += [s for s in samples if s.startswith("mlops_requests_total")]
    lines += ["# HELP mlops_request_duration_seconds Time from the router receiving a request to its "
              "response (or the mirror copy's answer).",
              "# TYPE mlops_request_duration_seconds histogram"]
    lines += [s for s in samples if s.startswith("mlops_request_duration_seconds")]
    lines += ["# HELP mlops_mirror_dropped_total Mirrored copies dropped: the deployment was at its limit.",
              "# TYPE mlops_mirror_dropped_total counter"]
    lines += [s for s in samples if s.startswith("mlops_mirror_dropped_total")]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    """Escape a label value (backslash, double quote, newline) as the exposition format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
