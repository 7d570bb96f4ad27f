"""Gate power: how often the latency gates fail an identical candidate (A/A), and how often they
catch a candidate whose latency is slower by +10%, +25%, +50% of the median.

In the run: trains a tiny TCN (unless ``--model``), starts two real ``azmlinfsrv`` processes
serving it with ``endpoints/online/score.py`` (A and A': what a fresh baseline and an identical
candidate are), and loads them side by side - half the workers on each, each worker back to back on
its own server, as the locustfile gives every user one target - with the load test's own payloads
(``load_tests/holdout.csv`` windows of ``payload.context_days`` rows). That gives two pools of real
latency samples measured under the same machine noise.

Then, per profile of ``load_tests/profile.yml`` (``fast``, ``standard``), a gate run is simulated by
resampling (with replacement) as many requests per side as that profile's run would make at the
measured rate, and judged by the project's pure ``mlops.release.gates.evaluate`` with the gates of
``load_tests/gates.yml`` (or ``--gates``): A/A pairs draw the candidate from one process's pool and
the baseline from the other's (which is which drawn per trial); slowed pairs add
``slowdown x median`` (of both pools) to every candidate sample. Printed: failures /
trials for each scenario and profile, with the gates' relative settings, for the shipped gates and
for ``--tuned`` settings side by side.

Usage:  python benchmarks/gate_power.py [--samples 3000] [--trials 400] [--model DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, inference_server  # noqa: E402

from mlops.config import _gates, _load_profile  # noqa: E402
from mlops.forecasting.synthetic import generate_dau  # noqa: E402
from mlops.forecasting.training import train_model  # noqa: E402
from mlops.release.gates import LatencyStats, Measurements, Phase, evaluate  # noqa: E402
from mlops.release.quality import build_requests, read_rows  # noqa: E402
from mlops.settings.gates import Gates, RelativeGates

SCENARIOS = (("A/A 1p", True, 0.0), ("+10% 1p", True, 0.10), ("+25% 1p", True, 0.25),
             ("A/A 2p", False, 0.0), ("+10% 2p", False, 0.10), ("+25% 2p", False, 0.25), ("+50% 2p", False, 0.50))
"""(label, both sides from one process, slowdown): "1p" isolates the statistic's own power (sampling
noise only); "2p" draws candidate and baseline from two identical processes - what a real gate faces."""


async def _collect(urls: tuple[str, str], bodies: list[bytes], samples: int, concurrency: int
                   ) -> tuple[list[float], list[float]]:
    """``samples`` latencies (ms) per server; worker ``i`` sends to server ``i % 2`` only, back to back
    (the locustfile's users each keep one target: a slow target never holds up the other's users)."""
    import aiohttp

    pools: tuple[list[float], list[float]] = ([], [])
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2)) as session:
        async def worker(index: int) -> None:
            turn = index % 2
            i = index
            while len(pools[turn]) < samples:
                body = bodies[i % len(bodies)]
                i += 1
                started = time.perf_counter()
                async with session.post(urls[turn] + "/score", data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"server {turn} answered {response.status}")
                pools[turn].append((time.perf_counter() - started) * 1000.0)

        warm = asyncio.gather(*(worker(i) for i in range(concurrency)))
        await warm
    return pools[0][:samples], pools[1][:samples]


def _stats(values: np.ndarray, seconds: float) -> LatencyStats:
    return LatencyStats.from_samples(values.tolist(), 0, seconds)


def power(gates: Gates, pool_a: np.ndarray, pool_b: np.ndarray, per_side: int, seconds: float, trials: int,
          rng: np.random.Generator) -> dict[str, int]:
    """Failed verdicts per scenario over ``trials`` resampled gate runs."""
    failed: dict[str, int] = {}
    for label, same_process, slowdown in SCENARIOS:
        count = 0
        for _ in range(trials):
            # which process plays the baseline is drawn per trial: A/A is symmetric, the one-sided test is not
            base_pool, cand_pool = (pool_a, pool_b) if rng.random() < 0.5 else (pool_b, pool_a)
            if same_process:
                cand_pool = base_pool
            baseline = rng.choice(base_pool, per_side)
            candidate = rng.choice(cand_pool, per_side) + slowdown * float(np.median(base_pool))
            verdict = evaluate(gates, Measurements(_stats(candidate, seconds), _stats(baseline, seconds)))
            count += verdict.phase is Phase.FAILED
        failed[label] = count
    return failed


def _describe(relative: RelativeGates) -> str:
    return (f"p95_tolerance {relative.p95_tolerance:g} + {relative.p95_slack_ms:g} ms, mann_whitney alpha "
            f"{relative.mann_whitney_alpha:g}, min_shift max({relative.min_shift_ms:g} ms, "
            f"{relative.min_shift_ratio:g} x median)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=3000, help="latency samples collected per server")
    parser.add_argument("--trials", type=int, default=400, help="resampled gate runs per scenario and profile")
    parser.add_argument("--concurrency", type=int, default=4, help="load workers, half on each server")
    parser.add_argument("--model", type=Path, help="a folder with model.pt (default: train a tiny one now)")
    parser.add_argument("--gates", type=Path, default=REPO / "load_tests" / "gates.yml")
    parser.add_argument("--tuned", default="", help="relative settings to compare, e.g. "
                        "'min_shift_ms=2,min_shift_ratio=0.2' (default: none)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--save-samples", type=Path, help="write the collected pools here (.npz)")
    parser.add_argument("--samples-from", type=Path, help="judge pools saved by --save-samples (collect nothing)")
    args = parser.parse_args(argv)

    shipped = _gates(args.gates, REPO)
    variants = [("shipped", shipped)]
    if args.tuned:
        overrides = {key: float(value) for key, value in (pair.split("=") for pair in args.tuned.split(","))}
        variants.append(("tuned", replace(shipped, relative=replace(shipped.relative, **overrides))))
    profile_file = REPO / "load_tests" / "profile.yml"
    profiles = {name: _load_profile(profile_file, name, REPO) for name in ("fast", "standard")}
    context = profiles["standard"].context_days
    horizon = profiles["standard"].horizon
    bodies = [r.body for r in build_requests(read_rows(REPO / "load_tests" / "holdout.csv"), origins=50,
                                             context_days=context, horizon=horizon)]
    load_before = os.getloadavg()[0]
    if args.samples_from:
        saved = np.load(args.samples_from)
        _report(args, variants, profiles, saved["a"], saved["b"], float(saved["rate"]), "pools from "
                f"{args.samples_from}")
        return 0
    # as endpoints/online/deployment.yml runs each instance: one math thread, so the two servers do not
    # fight over the cores inside one request
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix="mlops-gate-power-") as tmp:
        model_dir = args.model
        if model_dir is None:
            model_dir = Path(tmp) / "model"
            print("training a tiny model (synthetic series, 3 epochs) ...", file=sys.stderr)
            train_model(generate_dau(900, start="2015-01-01"), model_dir, epochs=3)
        with inference_server(model_dir) as url_a, inference_server(model_dir) as url_b:
            print(f"collecting {args.samples} latency samples from each of two azmlinfsrv processes ...",
                  file=sys.stderr)
            asyncio.run(_collect((url_a, url_b), bodies, 200, args.concurrency))  # warm-up, dropped
            started = time.perf_counter()
            pool_a, pool_b = asyncio.run(_collect((url_a, url_b), bodies, args.samples, args.concurrency))
            elapsed = time.perf_counter() - started
    pool_a_np, pool_b_np = np.array(pool_a), np.array(pool_b)
    rate_per_side = args.samples / elapsed
    if args.save_samples:
        np.savez(args.save_samples, a=pool_a_np, b=pool_b_np, rate=rate_per_side)
    _report(args, variants, profiles, pool_a_np, pool_b_np, rate_per_side,
            f"{args.samples} samples per server in {elapsed:.1f}s ({rate_per_side:.0f} req/s per side at concurrency "
            f"{args.concurrency}); {os.cpu_count()} CPUs, load average before/after {load_before:.2f}/"
            f"{os.getloadavg()[0]:.2f} (a shared machine: busy)")
    return 0


def _report(args: argparse.Namespace, variants: list[tuple[str, Gates]], profiles: dict, pool_a_np: np.ndarray,
            pool_b_np: np.ndarray, rate_per_side: float, header_line: str) -> None:
    print(header_line)
    for name, pool in (("A", pool_a_np), ("A'", pool_b_np)):
        p50, p95, p99 = np.percentile(pool, [50, 95, 99])
        print(f"  {name:<3} p50 {p50:.2f} ms  p95 {p95:.2f} ms  p99 {p99:.2f} ms")
    rng = np.random.default_rng(args.seed)
    header = f"{'gates':<8} {'profile':<9} {'req/side':>8} " + " ".join(f"{label:>12}" for label, _, _ in SCENARIOS)
    print(f"\nfailed verdicts / trials ({args.trials} resampled gate runs per cell)")
    print(header)
    for label, gates in variants:
        for profile_name, profile in profiles.items():
            # requests per side a run of this profile makes at the rate measured here (2 cores saturate
            # at a few users, so the profile's user count barely changes the rate)
            per_side = max(1, int(rate_per_side * profile.run_time_s))
            failed = power(gates, pool_a_np, pool_b_np, per_side, profile.run_time_s, args.trials, rng)
            cells = " ".join(f"{failed[label]:>5}/{args.trials:<3} {failed[label] / args.trials:>3.0%}"
                             for label, _, _ in SCENARIOS)
            print(f"{label:<8} {profile_name:<9} {per_side:>8} {cells}")
        print(f"  {label}: {_describe(gates.relative)}")
    print("\n1p: both sides resampled from one process (sampling noise only); 2p: candidate and baseline from two "
          "identical processes (what a real gate faces); slowdowns add x median of the baseline's pool")
    print("targets (standard profile): A/A false failures <= 1%, +25% caught >= 95%")


if __name__ == "__main__":
    sys.exit(main())
