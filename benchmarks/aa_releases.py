"""Real A/A releases on a local workspace: what ``gate_power.py --releases`` judges, and the proof of
the shipped gates.

In ``--root`` (a new folder: a copy of this repository's configuration) the committed model is
released once (``--profile fast``, batch refresh off): blue is live. Then ``--releases`` times the
SAME model is released again with ``mlops release --until gate`` - the candidate's scoring folder is
``endpoints/online/score.py`` plus a comment (a new code hash, so there is something to release;
the same code) - so candidate, fresh baseline and live all serve one model, and every latency
difference between them is deployment-to-deployment noise. A passed candidate is removed with
``mlops rollback`` before the next. ``--slow S`` then releases one candidate whose ``run()`` first
sleeps ``S`` seconds (the test suite's way of slowing a candidate, tests/release/test_release_local.py).

One JSON line per release on stdout: the exit code, per deployment (requests, median, p95 ms), the
relative gates' reasons, the load average, and the samples file for ``gate_power.py --releases``.

Usage:  python benchmarks/aa_releases.py --root /tmp/aa --releases 5 [--slow 0.009] [--profile standard]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
RUN_HEAD = "@rawhttp\ndef run(request) -> AMLResponse:\n"


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLOPS_BATCH_REFRESH": "false"}
    return subprocess.run([sys.executable, "-m", "mlops", "--workspace", f"local:{root / '.mlops'}", *args],  # noqa: S603
                          cwd=root, capture_output=True, text=True, env=env, check=False)


def _candidate_config(root: Path, kind: str, sleep_s: float) -> Path:
    """``mlops-<kind>.yaml``: the repository's configuration with its own copy of the scoring folder."""
    folder = root / f"score-{kind}"
    folder.mkdir(exist_ok=True)
    source = (REPO / "endpoints/online/score.py").read_text()
    if sleep_s:
        assert RUN_HEAD in source, "score.py's run() changed: update RUN_HEAD"
        source = source.replace(RUN_HEAD, RUN_HEAD + f"    import time\n    time.sleep({sleep_s})\n"
                                "    return _real_run(request)\n\n\ndef _real_run(request) -> AMLResponse:\n", 1)
    (folder / "score.py").write_text(source + f"\n# candidate {kind}\n")
    template = yaml.safe_load((root / "endpoints/online/deployment.yml").read_text())
    template["code_configuration"]["code"] = str(folder)
    (root / f"deployment-{kind}.yml").write_text(yaml.safe_dump(template))
    config = yaml.safe_load((root / "mlops.yaml").read_text())
    config["online"]["deployment"] = f"deployment-{kind}.yml"
    path = root / f"mlops-{kind}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _summary(record: Path) -> dict[str, object]:
    data = json.loads(record.read_text())
    loadtest = data.get("loadtest") or {}
    out: dict[str, object] = {"release": data.get("release_id"), "targets": loadtest.get("targets")}
    for name, values in (loadtest.get("samples_ms") or {}).items():
        out[name] = [len(values), round(float(np.median(values)), 2), round(float(np.percentile(values, 95)), 2)]
    out["relative"] = [gate["reason"] for gate in (data.get("verdict") or {}).get("gates", [])
                       if gate["name"] in ("mann_whitney", "p95_vs_baseline", "p95_vs_live")]
    out["samples"] = str(record.with_suffix("") / "loadtest-samples.csv")
    return out


def release(root: Path, kind: str, profile: str, sleep_s: float = 0.0) -> dict[str, object]:
    config = _candidate_config(root, kind, sleep_s)
    result = _cli(root, "release", "--yes", "--config", str(config), "--profile", profile, "--until", "gate")
    records = root / ".mlops" / "releases"
    current = records / "current.json"
    record = current if current.exists() else max(records.glob("2*.json"), key=lambda p: p.stat().st_mtime)
    summary = {"kind": kind, "exit": result.returncode, **_summary(record),
               "load_average": [round(v, 2) for v in os.getloadavg()]}
    summary["samples"] = str(records / f"{summary['release']}" / "loadtest-samples.csv")
    if result.returncode == 0:
        _cli(root, "rollback", "--config", str(config), "--reason", "A/A release measured")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="working folder (created; reused if it has a workspace)")
    parser.add_argument("--releases", type=int, default=5, help="A/A releases of the committed model")
    parser.add_argument("--slow", type=float, default=0.0, help="then one candidate sleeping this many s per request")
    parser.add_argument("--profile", default="standard")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not (root / ".mlops").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        for name in ("mlops.yaml", "endpoints", "environments", "load_tests", "models"):
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(source, root / name)
        first = _cli(root, "release", "--yes", "--profile", "fast")
        print(f"first release (live): exit {first.returncode}", file=sys.stderr)
        if first.returncode != 0:
            print(first.stderr[-3000:], file=sys.stderr)
            return 1
    try:
        for _ in range(args.releases):
            print(json.dumps(release(root, "aa", args.profile)), flush=True)
        if args.slow:
            print(json.dumps(release(root, f"slow{args.slow:g}", args.profile, args.slow)), flush=True)
    finally:
        print(f"the workspace's host keeps running: `mlops --workspace local:{root / '.mlops'} local down`",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
