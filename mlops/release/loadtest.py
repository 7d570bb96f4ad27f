"""Run locust as a subprocess and turn its per-request samples into ``LatencyStats`` per deployment.

Locust monkey-patches the standard library with gevent when imported, so it never runs inside this
process: ``run_load`` starts ``python -m locust --headless -f load_tests/locustfile.py`` with the
scoring URI, the key (environment variable only: never on a command line or in a log) and the
targets, and tails the samples file the locustfile writes (one line per request) to print live
progress on stderr. Candidate and live are loaded in the same run by the same number of users each
(targeted with the ``azureml-model-deployment`` header), so machine noise hits both alike; without
targets, each response is attributed to the deployment named in its response header (the
promotion's health check). Locust's own HTML report is kept beside the release record.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlops.errors import ReleaseFailed
from mlops.processes import stop_process_group
from mlops.release.gates import LatencyStats
from mlops.settings.durations import format_duration
from mlops.settings.load_profile import LoadProfile
from mlops.workspace.port import Progress, no_progress

UNATTRIBUTED = "(unattributed)"
"""Responses that name no deployment (e.g. refused by the router before reaching one)."""


@dataclass(frozen=True)
class Sample:
    time: float
    target: str
    served_by: str
    latency_ms: float
    ok: bool
    status: int


@dataclass(frozen=True)
class LoadResult:
    stats: Mapping[str, LatencyStats]
    """Deployment name (the requested target, or the responding one when untargeted) -> stats."""
    seconds: float
    requests: int
    failures: int
    html_report: Path | None
    samples_file: Path
    errors: Mapping[str, int] = field(default_factory=dict)
    """A few failure kinds (HTTP status -> count), for the report."""

    def summary(self) -> dict[str, object]:
        return {"seconds": round(self.seconds, 2), "requests": self.requests, "failures": self.failures,
                "deployments": {name: stats.summary() for name, stats in self.stats.items()},
                "html_report": str(self.html_report) if self.html_report else None,
                "errors_by_status": dict(self.errors)}


def parse_samples(lines: Iterable[str]) -> list[Sample]:
    """Parse ``time,target,served_by,latency_ms,ok,status`` lines; a torn last line is skipped."""
    samples = []
    for line in lines:
        parts = line.rstrip("\n").split(",")
        if len(parts) != 6:
            continue
        try:
            samples.append(Sample(float(parts[0]), parts[1], parts[2], float(parts[3]), parts[4] == "1",
                                  int(parts[5])))
        except ValueError:
            continue
    return samples


def attribute(sample: Sample) -> str:
    """Targeted requests count for their target; untargeted ones for the deployment that answered."""
    return sample.target or sample.served_by or UNATTRIBUTED


def stats_by_deployment(samples: Sequence[Sample], seconds: float | None = None) -> dict[str, LatencyStats]:
    """Per-deployment stats over one run (``seconds``: the run's length; default: the samples' span)."""
    if not samples:
        return {}
    if seconds is None:
        seconds = max(max(s.time for s in samples) - min(s.time for s in samples), 1e-3)
    groups: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        groups[attribute(sample)].append(sample)
    return {name: LatencyStats.from_samples([s.latency_ms for s in group if s.ok],
                                            sum(1 for s in group if not s.ok), seconds)
            for name, group in sorted(groups.items())}


def progress_line(elapsed: float, samples: Sequence[Sample], total_s: float) -> str:
    """``loadtest 6/10s  requests 412  errors 0  p95 green 23ms blue 21ms`` from the samples so far."""
    import numpy as np

    failures = sum(1 for s in samples if not s.ok)
    parts = [f"loadtest {elapsed:.0f}/{total_s:.0f}s", f"requests {len(samples)}", f"errors {failures}"]
    recent = samples[-2000:]
    groups: dict[str, list[float]] = defaultdict(list)
    for sample in recent:
        if sample.ok:
            groups[attribute(sample)].append(sample.latency_ms)
    if groups:
        parts.append("p95 " + " ".join(f"{name} {float(np.percentile(values, 95)):.0f}ms"
                                       for name, values in sorted(groups.items())))
    return "  ".join(parts)


def run_load(*, scoring_uri: str, key: str, targets: Sequence[str], shape: LoadProfile, locustfile: Path,
             out_dir: Path, name: str, progress: Progress = no_progress, progress_every: float = 2.0) -> LoadResult:
    """Run one headless locust and return per-deployment stats. Raises ``ReleaseFailed`` if locust
    itself fails (not if requests fail: that is what the gates judge)."""
    out_dir = out_dir.resolve()
    locustfile = locustfile.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    samples_file = out_dir / f"{name}-samples.csv"
    samples_file.unlink(missing_ok=True)
    samples_file.touch()
    html = out_dir / f"{name}-locust.html"
    log = out_dir / f"{name}-locust.log"
    env = {**os.environ,
           "MLOPS_SCORING_URI": scoring_uri,
           "MLOPS_ENDPOINT_KEY": key,
           "MLOPS_LOADTEST_TARGETS": ",".join(targets),
           "MLOPS_LOADTEST_SAMPLES": str(samples_file),
           "MLOPS_LOADTEST_CONTEXT_DAYS": str(shape.context_days),
           "MLOPS_LOADTEST_HORIZON": str(shape.horizon),
           "MLOPS_LOADTEST_DATA": str(shape.data.resolve()) if shape.data else ""}
    users = -(-shape.users // len(targets)) * len(targets) if targets else shape.users  # same users per target
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
               "-u", str(users), "-r", f"{max(shape.spawn_rate, users):g}",
               "-t", format_duration(shape.run_time_s + shape.warmup_s),
               "--html", str(html), "--only-summary", "--exit-code-on-error", "0", "--stop-timeout", "2",
               "--loglevel", "WARNING"]
    what = ", ".join(targets) if targets else "the endpoint's traffic split"
    warmup = f" after a {shape.warmup_s:g}s warm-up" if shape.warmup_s else ""
    progress(f"loadtest: {users} users for {shape.run_time_s:g}s{warmup} against {what}")
    started = time.monotonic()
    with log.open("wb") as handle:
        proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=str(out_dir),  # noqa: S603
                                start_new_session=True)
        try:
            total_s = shape.run_time_s + shape.warmup_s
            deadline = started + total_s + 60
            last = started
            while proc.poll() is None:
                time.sleep(0.25)
                now = time.monotonic()
                if now > deadline:
                    stop_process_group(proc)
                    raise ReleaseFailed(f"locust did not finish within {total_s + 60:.0f}s; "
                                        f"log: {log}\n{_tail(log)}")
                if now - last >= progress_every:
                    last = now
                    progress(progress_line(now - started, _read(samples_file), total_s))
        except BaseException:
            stop_process_group(proc)
            raise
    samples = _read(samples_file)
    if samples and shape.warmup_s:
        cutoff = min(s.time for s in samples) + shape.warmup_s
        samples = [s for s in samples if s.time >= cutoff]
    if proc.returncode not in (0, 1) or not samples:
        raise ReleaseFailed(f"locust exited with {proc.returncode} after {len(samples)} requests; log: {log}\n"
                            f"{_tail(log)}")
    span = max(max(s.time for s in samples) - min(s.time for s in samples), 1e-3)
    stats = stats_by_deployment(samples, seconds=span)
    errors: dict[str, int] = defaultdict(int)
    for sample in samples:
        if not sample.ok:
            errors[str(sample.status)] += 1
    result = LoadResult(stats=stats, seconds=span, requests=len(samples),
                        failures=sum(1 for s in samples if not s.ok),
                        html_report=html if html.exists() else None, samples_file=samples_file, errors=dict(errors))
    summary = "  ".join(f"{dep}: {s.requests} req, p95 {s.p95_ms:.0f}ms, errors {s.failures}"
                        for dep, s in stats.items())
    progress(f"loadtest: done in {time.monotonic() - started:.1f}s - {summary}")
    return result


def _read(path: Path) -> list[Sample]:
    try:
        return parse_samples(path.read_text().splitlines())
    except FileNotFoundError:
        return []


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""
