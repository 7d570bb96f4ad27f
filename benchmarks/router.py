"""Router overhead: requests/s and latency through the local router vs. direct to the same instance.

Starts a local host in a temporary workspace with one deployment (the Azure ML inference server
running a tiny echo ``score.py``), then runs the same asyncio client (aiohttp, ``--concurrency``
workers, each sending requests back to back) against the router's ``/score`` and directly against
the deployment instance's ``/score``, in alternating rounds so both see the same machine load.
Prints requests/s, p50 and p99 for each, and the ratios (targets: router >= 0.85x the direct rate,
<= 1 ms added at p50), and what recording the per-deployment metrics costs the router per request
(timed in-process over many calls of ``TrafficMetrics.record``, the whole of its hot-path work).

Usage:  python benchmarks/router.py [--concurrency 4] [--rounds 10] [--seconds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from mlops.workspace.local.online.client import LocalHostClient
from mlops.workspace.local.online.desired_state import DeploymentRuntime, EndpointRuntime
from mlops.workspace.local.online.supervisor import free_port
from mlops.workspace.local.online.traffic_metrics import ROUTED, TrafficMetrics
from mlops.workspace.port import ProbeSettings, RequestSettings

SCORE_PY = """\
import json

def init():
    pass

def run(raw_data):
    return {"echo": json.loads(raw_data)}
"""

KEY = "benchmark-key"


async def _round(url: str, headers: dict[str, str], concurrency: int, seconds: float
                 ) -> tuple[float, int, list[float]]:
    """One round: ``concurrency`` workers send back to back for ``seconds``; (elapsed, errors, latencies)."""
    latencies: list[float] = []
    errors = 0
    body = b'{"data": [1, 2, 3]}'
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                        continue
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, errors, latencies


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def _measure(router_url: str, direct_url: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, list]] = {"router": {"elapsed": [], "lat": [], "errors": []},
                                           "direct": {"elapsed": [], "lat": [], "errors": []}}
    targets = [("router", router_url, {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}),
               ("direct", direct_url, {"Content-Type": "application/json"})]
    await _round(router_url, targets[0][2], args.concurrency, 0.5)  # warm-up
    await _round(direct_url, targets[1][2], args.concurrency, 0.5)
    for index in range(args.rounds):
        order = targets if index % 2 == 0 else targets[::-1]
        for name, url, headers in order:
            elapsed, errors, latencies = await _round(url, headers, args.concurrency, args.seconds)
            results[name]["elapsed"].append(elapsed)
            results[name]["lat"].extend(latencies)
            results[name]["errors"].append(errors)
    summary = {}
    for name, data in results.items():
        summary[name] = {
            "rps": len(data["lat"]) / sum(data["elapsed"]),
            "p50_ms": _percentile(data["lat"], 50) * 1000,
            "p99_ms": _percentile(data["lat"], 99) * 1000,
            "requests": len(data["lat"]),
            "errors": sum(data["errors"]),
        }
    return summary


def recording_cost(calls: int = 200_000) -> float:
    """Microseconds per request the router spends recording it (two clock reads and ``record``)."""
    metrics = TrafficMetrics("bench")
    started = time.perf_counter()
    for index in range(calls):
        arrived = time.time()
        begin = time.perf_counter()
        metrics.record("bench", ROUTED, 200, time.perf_counter() - begin + 0.004 * (index % 7), arrived)
    return (time.perf_counter() - started) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per target")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mlops-router-bench-") as tmp:
        root = Path(tmp)
        code = root / "code"
        code.mkdir()
        (code / "score.py").write_text(SCORE_PY)
        fast = ProbeSettings(initial_delay=0, period=1, timeout=2, failure_threshold=30)
        deployment = DeploymentRuntime(
            name="bench", python=sys.executable, code_dir=str(code), scoring_script="score.py",
            model_dir=str(code), readiness_probe=fast, liveness_probe=ProbeSettings(period=30),
            request_settings=RequestSettings(max_concurrent_requests_per_instance=args.concurrency))
        port = free_port()
        endpoint = EndpointRuntime(name="bench", port=port, primary_key=KEY, secondary_key="unused-secondary",
                                   traffic={"bench": 100}, deployments=(deployment,))
        host = LocalHostClient(root / "ws")
        try:
            status = host.apply(endpoint, timeout=120)["bench"]
            if status.state != "Succeeded":
                print(status.error, file=sys.stderr)
                return 1
            instance_port = host.instances("bench")[0]["port"]
            summary = asyncio.run(_measure(f"http://127.0.0.1:{port}/score",
                                           f"http://127.0.0.1:{instance_port}/score", args))
        finally:
            host.stop()
    router, direct = summary["router"], summary["direct"]
    print(f"concurrency {args.concurrency}, {args.rounds} alternating rounds of {args.seconds:g}s per target; "
          f"{os.cpu_count()} CPUs, load average before/after {load_before:.2f}/{os.getloadavg()[0]:.2f}")
    print(f"{'target':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}")
    for name, row in summary.items():
        print(f"{name:<8} {row['rps']:>8.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['requests']:>9d} "
              f"{row['errors']:>7d}")
    print(f"router/direct throughput: {router['rps'] / direct['rps']:.2f}x (target >= 0.85x)")
    cost_us = recording_cost()
    print(f"per-deployment metrics: {cost_us:.2f} us per request recorded, {cost_us * router['rps'] / 1e4:.3f}% of "
          f"one core at the router's {router['rps']:.0f} req/s")
    print(f"added latency at p50: {router['p50_ms'] - direct['p50_ms']:+.2f} ms (target <= 1 ms); "
          f"at p99: {router['p99_ms'] - direct['p99_ms']:+.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
