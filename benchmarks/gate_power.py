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

Why that is not enough (measured, issue 12): in a real load test the latencies of identical
deployments are not independent draws. Three single-worker processes share 2 cores with the router
and locust, and which process gets the CPU drifts over seconds: per-second medians of identical
deployments in one locust run differ by 10-30% for several seconds at a time, the start of a run
(the first ~5 s: fresh processes) is slowest for whichever is coldest, and over a whole 60 s run two
identical fresh deployments still differ by a few per cent, an older process by ~10%. Resampling
requests one by one averages all of that away. So ``--releases`` judges real A/A runs instead:
the ``loadtest-samples.csv`` of real releases whose candidate, fresh baseline and live deployment
serve the same model (``benchmarks/aa_releases.py`` makes them). Each trial draws one release and
one ordered pair of its deployments (candidate, baseline), and rebuilds a run of the profile's
length from the part of that release a real run of the profile judges (after its warm-up) by a
*paired moving-block bootstrap*: blocks of ``--block`` seconds drawn with replacement, the same
seconds for both sides - as the same locust run loads them - so the drift between processes, the
correlation in time and each pair's own bias all stay in. Printed beside the resampled figures.

Usage:  python benchmarks/gate_power.py [--samples 3000] [--trials 400] [--model DIR]
        python benchmarks/gate_power.py --samples-from POOLS.npz --releases RUN/loadtest-samples.csv ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, inference_server  # noqa: E402

from mlops.forecasting.synthetic import generate_dau  # noqa: E402
from mlops.forecasting.training import train_model  # noqa: E402
from mlops.release.gates import REFERENCE_RUN_S, LatencyStats, Measurements, Phase, evaluate  # noqa: E402
from mlops.release.loadtest import attribute, parse_samples  # noqa: E402
from mlops.release.quality import build_requests, read_rows  # noqa: E402
from mlops.settings.gates import (
    Gates,
    RelativeGates,
    read_gates,  # noqa: E402
)
from mlops.settings.load_profile import read_load_profile  # noqa: E402

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


RELEASE_SCENARIOS = (("A/A", 0.0), ("+10%", 0.10), ("+25%", 0.25), ("+50%", 0.50))


@dataclass(frozen=True)
class ReleaseRun:
    """One real load test: per deployment, the latencies of its successful requests by whole second
    since the run's first sample."""

    name: str
    seconds: dict[str, dict[int, list[float]]]
    candidate: str = ""
    """The release's candidate (first target in its record), when the record is beside the samples."""

    def pairs(self, which: str = "all") -> list[tuple[str, str]]:
        """Ordered (candidate, baseline) pairs of its deployments (all serve the same model): ``gate``
        the one the gate compares - the candidate with the fresh baseline, both fresh processes; ``all``
        every ordered pair, the long-running live deployment too (harsher: an older process)."""
        if which == "gate" and self.candidate and "baseline" in self.seconds:
            return [(self.candidate, "baseline")]
        names = sorted(self.seconds)
        return [(a, b) for a in names for b in names if a != b]


def read_release(path: Path) -> ReleaseRun:
    """A ``loadtest-samples.csv`` as ``mlops.release.loadtest`` writes it (the locustfile's lines)."""
    samples = parse_samples(path.read_text().splitlines())
    if not samples:
        raise SystemExit(f"{path}: no samples")
    start = min(sample.time for sample in samples)
    seconds: dict[str, dict[int, list[float]]] = {}
    for sample in samples:
        if sample.ok:
            seconds.setdefault(attribute(sample), {}).setdefault(int(sample.time - start), []).append(
                sample.latency_ms)
    record = path.parent.with_suffix(".json")  # <records>/<release id>.json beside <release id>/
    candidate = ""
    if record.is_file():
        targets = (json.loads(record.read_text()).get("loadtest") or {}).get("targets") or []
        candidate = targets[0] if targets else ""
    return ReleaseRun(path.parent.name or str(path), seconds, candidate)


def block_run(run: ReleaseRun, pair: tuple[str, str], first_s: int, length_s: int, block_s: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(candidate, baseline) latencies of a run of ``length_s`` seconds rebuilt from seconds
    ``[first_s, first_s + length_s)`` of ``run`` by a paired moving-block bootstrap: blocks of
    ``block_s`` consecutive seconds, drawn with replacement, the same seconds for both sides."""
    candidate, baseline = run.seconds[pair[0]], run.seconds[pair[1]]
    last = max(max(candidate), max(baseline)) + 1
    span = range(first_s, min(first_s + length_s, last))
    if len(span) < 1:
        raise SystemExit(f"{run.name}: shorter than {first_s + 1} s")
    block = max(1, min(block_s, len(span)))
    starts = np.arange(span.start, span.stop - block + 1)
    cand: list[float] = []
    base: list[float] = []
    for _ in range(-(-len(span) // block)):
        first = int(rng.choice(starts))
        for second in range(first, first + block):
            cand += candidate.get(second, [])
            base += baseline.get(second, [])
    return np.array(cand), np.array(base)


def release_power(gates: Gates, runs: list[ReleaseRun], warmup_s: float, run_time_s: float, block_s: int,
                  trials: int, rng: np.random.Generator, which: str = "all", legacy: bool = False) -> dict[str, int]:
    """Failed verdicts per ``RELEASE_SCENARIOS`` entry over ``trials`` runs rebuilt from real releases.
    ``legacy``: judged as before the run-length rule (``gates.REFERENCE_RUN_S``): each run's stats say
    it lasted the reference length, so the material shift is the configured one whatever the profile."""
    judged_s = max(run_time_s, REFERENCE_RUN_S) if legacy else run_time_s
    pairs = [(run, pair) for run in runs for pair in run.pairs(which)]
    failed: dict[str, int] = {}
    for label, slowdown in RELEASE_SCENARIOS:
        count = 0
        for _ in range(trials):
            run, pair = pairs[int(rng.integers(len(pairs)))]
            candidate, baseline = block_run(run, pair, math.ceil(warmup_s), int(run_time_s), block_s, rng)
            candidate = candidate + slowdown * float(np.median(baseline))
            verdict = evaluate(gates, Measurements(_stats(candidate, judged_s), _stats(baseline, judged_s)))
            count += verdict.phase is Phase.FAILED
        failed[label] = count
    return failed


def _describe(relative: RelativeGates) -> str:
    return (f"p95_tolerance {relative.p95_tolerance:g} + {relative.p95_slack_ms:g} ms, mann_whitney alpha "
            f"{relative.mann_whitney_alpha:g}, min_shift max({relative.min_shift_ms:g} ms, "
            f"{relative.min_shift_ratio:g} x median)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=3000, help="latency samples collected per server "
                        "(0: judge --releases only)")
    parser.add_argument("--trials", type=int, default=400, help="resampled gate runs per scenario and profile")
    parser.add_argument("--concurrency", type=int, default=4, help="load workers, half on each server")
    parser.add_argument("--model", type=Path, help="a folder with model.pt (default: train a tiny one now)")
    parser.add_argument("--gates", type=Path, default=REPO / "load_tests" / "gates.yml")
    parser.add_argument("--tuned", action="append", default=[], help="relative settings to compare, e.g. "
                        "'before:min_shift_ms=25,min_shift_ratio=0.3' (an optional label, then settings; "
                        "repeatable; default: none)")
    parser.add_argument("--releases", type=Path, nargs="*", default=[], help="loadtest-samples.csv files of real "
                        "A/A releases (benchmarks/aa_releases.py) to judge by paired block resampling")
    parser.add_argument("--pairs", choices=("gate", "all"), default="all", help="gate: only each release's "
                        "candidate vs its fresh baseline; all: every ordered pair of its deployments (default)")
    parser.add_argument("--block", type=int, default=5, help="seconds per resampled block of a real release")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--save-samples", type=Path, help="write the collected pools here (.npz)")
    parser.add_argument("--samples-from", type=Path, help="judge pools saved by --save-samples (collect nothing)")
    args = parser.parse_args(argv)

    shipped = read_gates(args.gates, REPO)
    variants = [("shipped", shipped)]
    for index, tuned in enumerate(args.tuned, 1):
        label, _, settings = tuned.rpartition(":")
        overrides = {key: float(value) for key, value in (pair.split("=") for pair in settings.split(","))}
        variants.append((label or (f"tuned{index}" if len(args.tuned) > 1 else "tuned"),
                         replace(shipped, relative=replace(shipped.relative, **overrides))))
    profile_file = REPO / "load_tests" / "profile.yml"
    profiles = {name: read_load_profile(profile_file, name, REPO) for name in ("fast", "standard")}
    context = profiles["standard"].context_days
    horizon = profiles["standard"].horizon
    bodies = [r.body for r in build_requests(read_rows(REPO / "load_tests" / "holdout.csv"), origins=50,
                                             context_days=context, horizon=horizon)]
    load_before = os.getloadavg()[0]
    if args.samples == 0 and not args.samples_from:  # real releases only
        print(f"{os.cpu_count()} CPUs, load average {load_before:.2f}")
        _report_releases(args, variants, profiles)
        return 0
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
    if args.releases:
        _report_releases(args, variants, profiles)
    print("targets (standard profile): A/A false failures <= 1%, +25% caught >= 95%")


def _report_releases(args: argparse.Namespace, variants: list[tuple[str, Gates]], profiles: dict) -> None:
    runs = [read_release(path) for path in args.releases]
    pairs = sum(len(run.pairs(args.pairs)) for run in runs)
    print(f"\nreal A/A releases: {len(runs)} load tests, {pairs} ordered (candidate, baseline) pairs of identical "
          f"deployments ({args.pairs}); runs rebuilt from {args.block} s blocks, the same seconds on both sides")
    for run in runs:
        medians = "  ".join(f"{name} {np.median([v for values in seconds.values() for v in values]):.1f}"
                            for name, seconds in sorted(run.seconds.items()))
        print(f"  {run.name}: median ms {medians}")
    rng = np.random.default_rng(args.seed)
    print(f"failed verdicts / trials ({args.trials} rebuilt gate runs per cell)")
    print(f"{'gates':<8} {'profile':<9} " + " ".join(f"{label:>12}" for label, _ in RELEASE_SCENARIOS))
    for label, gates in variants:
        for profile_name, profile in profiles.items():
            failed = release_power(gates, runs, profile.warmup_s, profile.run_time_s, args.block, args.trials, rng,
                                   args.pairs, legacy=label.startswith("before"))
            cells = " ".join(f"{failed[name]:>5}/{args.trials:<3} {failed[name] / args.trials:>3.0%}"
                             for name, _ in RELEASE_SCENARIOS)
            print(f"{label:<8} {profile_name:<9} {cells}")
        print(f"  {label}: {_describe(gates.relative)}")
    print("the fast rows judge seconds [warm-up, warm-up + 8 s) of standard-profile releases (9 users, not 6); "
          "'before*' variants are judged without the run-length rule (as the gate was before it)")


if __name__ == "__main__":
    sys.exit(main())
