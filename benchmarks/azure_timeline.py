"""A release's wall time on Azure ML: the batch refresh after the promotion (sequential) vs prepared
beside the online release (``mlops.release.batch_overlap``), step by step.

Usage:  python benchmarks/azure_timeline.py [--profile standard] [--json]

What runs for real, one call at a time, on the emulator's virtual clock (``tests/azure_emulator``):
the project's Azure adapter (``mlops.workspace.azure``) and the real azure-ai-ml ``MLClient`` (its
serialization and long-running-operation polling) against the loopback Azure ML emulator, with
Azurite as the workspace's blob storage (``make azurite``). Every port call the release makes on
Azure for a blue/green release of a second model is timed there: register, environment (pinned,
unchanged), candidate deployment, each traffic/mirror change of the rollout, the old deployment's
deletion; and the batch path is the release's own code - ``batch.prepare_batch`` (batch endpoint,
batch deployment, smoke job scored for real by ``endpoints/batch/score.py`` over
``endpoints/batch/smoke``, output downloaded and checked) and ``batch.make_default`` (the default
switch, a PUT of the endpoint, and the pruning).

Durations (the emulator's settings, each from a recording or a document):
online endpoint 62 s, online deployment 7 min 5 s, traffic update 1 min 32 s, batch endpoint 30 s,
deletes ~10 s: the Azure SDK team's recorded sessions (``shared/azure-recordings/README.md``:
``online_deployment_create.jsonl``, ``batch_endpoint_create.jsonl``). None was recorded for a batch
deployment or a batch job: batch deployment 300 s (``tests/azure_emulator/routes/batch.py``: it
builds its environment image on first use, minutes like an online deployment), smoke job 180 s
queued and 60 s running (``tests/azure_emulator/batch_jobs.py``: the AmlCompute cluster scales
from its minimum of 0 nodes when the job arrives - Microsoft Learn, "Create an Azure Machine
Learning compute cluster": it scales up from the minimum for submitted jobs and back down after
the idle time - and the node pulls the image; 180 s is the emulator's assumption, not a
measurement: change ``batch.job_queue_seconds`` to see its effect). The SDK polls every 5 s and
the release polls the smoke job every 0.5 s, so a few seconds of polling granularity show too.

What is modelled, not run: the configured waits of the chosen profile - the load test
(``run_time`` + ``warmup`` of ``load_tests/profile.yml``; on Azure the comparison is with live,
``baseline: auto``, so no baseline deployment), the bakes and health-check loads and the shadow
step's mirror time (``endpoints/online/rollout.yml``) - are added as configured; Azure Monitor's
ingestion wait of the per-deployment metrics is not counted. The two orders are composed from the
timed steps by ``mlops.release.batch_overlap``'s rules: sequential = prepare + online + promotion +
batch preparation + default; overlapped = prepare + max(deploy + load test + gate + the promotion's
steps before its first traffic change - the shadow step -, batch preparation) + the rest of the
promotion + default (the first traffic change waits for the preparation; the default waits for the
promotion). The virtual clock is global (it sums the calls of the one thread that makes them), so
the overlap is composed rather than run in two threads here; the threaded run itself is what
``tests/release/test_batch_overlap.py`` checks (event order) on the in-memory workspace.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mlops.config import Overrides, load_config  # noqa: E402
from mlops.release.batch import make_default, prepare_batch  # noqa: E402
from mlops.release.context import ReleaseContext  # noqa: E402
from mlops.release.record import Record  # noqa: E402
from mlops.release.rollout import traffic_plan  # noqa: E402
from mlops.release.sections.pins import EnvironmentPin, ModelPin  # noqa: E402
from mlops.release.slots import RELEASE_TAG  # noqa: E402
from mlops.release.staging import code_hash, stage_code  # noqa: E402
from mlops.settings.rollout import BakeStep, ShadowStep, TrafficStep  # noqa: E402
from mlops.workspace.azure import AzureWorkspace  # noqa: E402
from mlops.workspace.port import EnvironmentSpec  # noqa: E402
from tests.azure_emulator import AZURITE_CERT_HOSTS, start_emulator, use_azurite  # noqa: E402
from tests.azure_emulator.azurite import resolve_localhost_names, start_azurite  # noqa: E402
from tests.azure_emulator.tls import make_ca  # noqa: E402

CONDA = ("name: tcn-inference\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n"
         "      - azureml-inference-server-http==1.4.0\n      - azureml-core==1.60.0\n      - torch==2.13.0\n"
         "      - pandas\n")
"""An environment the emulator's batch rule accepts (``azureml-core``): the timeline is the point here."""


class Timeline:
    """Steps measured on the emulator's clock, in the order run: ``(path, step, seconds, how)``."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.rows: list[tuple[str, str, float, str]] = []

    def timed(self, path: str, step: str, call: Callable[[], Any]) -> Any:
        started = self.clock.now()
        result = call()
        self.rows.append((path, step, round(self.clock.now() - started, 1), "emulator"))
        return result

    def configured(self, path: str, step: str, seconds: float) -> None:
        self.rows.append((path, step, float(seconds), "configured"))

    def total(self, path: str) -> float:
        return round(sum(seconds for p, _, seconds, _ in self.rows if p == path), 1)


def run(profile: str) -> dict[str, Any]:
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="azure-timeline-")))
        ca = make_ca(root)
        cert, key = ca.issue_pem(root, *AZURITE_CERT_HOSTS)
        azurite = start_azurite(root / "azurite", cert, key)
        stack.callback(azurite.stop)
        stack.enter_context(resolve_localhost_names())
        emu = stack.enter_context(start_emulator(ca=ca))
        use_azurite(emu, azurite)
        clock = emu.clock
        ws = AzureWorkspace(emu.ml_client(), sleep=clock.sleep, clock=clock.monotonic, wall_clock=clock.now,
                            retry_base=1.0, poll_interval=5.0)
        config = load_config(REPO / "mlops.yaml", env={}, overrides=Overrides(profile=profile))
        conda = root / "conda.yml"
        conda.write_text(CONDA)
        env_spec = EnvironmentSpec(name="tcn-inference", image=config.environment.image, conda_file=conda)
        online_code = stage_code(config.online.code_dir, root / "code-online")
        endpoint = config.online.endpoint.name
        timeline = Timeline(clock)

        # before the release: v1 live on blue at 100%, the batch default tcn-v1 (not timed)
        environment = ws.ensure_environment(env_spec).ref
        v1 = ws.register_model(config.model.name, REPO / "models" / "tcn-dau").ref
        ws.ensure_online_endpoint(config.online.endpoint)
        ws.create_online_deployment(config.online_deployment_spec("blue", v1, environment, online_code))
        ws.set_traffic(endpoint, {"blue": 100})
        record = Record.create(root / "releases" / "current.json", workspace=ws.uri, endpoint=endpoint,
                               batch_endpoint=config.batch.endpoint.name)
        batch_hash = code_hash(config.batch.code_dir)
        ctx = ReleaseContext(config, ws, record, lambda _message: None, sleep=clock.sleep)

        def batch_ctx(model) -> dict[str, Any]:  # noqa: ANN001
            record.model = ModelPin(name=model.name, version=model.version)
            record.environment = EnvironmentPin(name=environment.name, version=environment.version)
            return {"model": model, "environment": environment, "code_hash": batch_hash,
                    "release_tag": (RELEASE_TAG, record.release_id)}

        make_default(ctx, prepare_batch(ctx, **batch_ctx(v1)))

        # the release of v2
        folder = root / "model-v2"
        shutil.copytree(REPO / "models" / "tcn-dau", folder)
        (folder / "NOTES.txt").write_text("a second version\n")
        v2 = timeline.timed("prepare", "register", lambda: ws.register_model(config.model.name, folder).ref)
        timeline.timed("prepare", "environment (pinned, unchanged)", lambda: ws.ensure_environment(env_spec))
        timeline.timed("online", "deploy green at 0%", lambda: ws.create_online_deployment(
            config.online_deployment_spec("green", v2, environment, online_code)))
        shape = config.load_test.profile
        timeline.configured("online", "load test (candidate vs live)", shape.run_time_s + shape.warmup_s)
        timeline.configured("online", "gate", 0.0)
        rollout = config.online.rollout
        for step in rollout.steps:
            if isinstance(step, TrafficStep):
                plan = traffic_plan(ws.get_online_endpoint(endpoint).traffic, "blue", "green", step.percent)
                timeline.timed("promotion", f"traffic {step.percent}%", lambda plan=plan: ws.set_traffic(endpoint, plan))
            elif isinstance(step, ShadowStep):
                traffic = ws.get_online_endpoint(endpoint).traffic
                timeline.timed("promotion", f"mirror {step.percent}% on",
                               lambda traffic=traffic, step=step: ws.set_traffic(endpoint, traffic,
                                                                                 {"green": step.percent}))
                timeline.configured("promotion", f"shadow {step.seconds:g}s", step.seconds)
                timeline.timed("promotion", "mirror off", lambda traffic=traffic: ws.set_traffic(endpoint, traffic, {}))
            elif isinstance(step, BakeStep):
                seconds = step.seconds or (rollout.health.duration_s if step.check == "health" else 0.0)
                timeline.configured("promotion", step.describe(), seconds)
        timeline.timed("promotion", "delete the old deployment blue",
                       lambda: ws.delete_online_deployment(endpoint, "blue"))
        prepared = timeline.timed("batch", "prepare: endpoint, deployment tcn-v2, smoke job",
                                  lambda: prepare_batch(ctx, **batch_ctx(v2)))
        timeline.timed("default", "make tcn-v2 the default, prune", lambda: make_default(ctx, prepared))
        assert ws.get_batch_endpoint(config.batch.endpoint.name).default_deployment == "tcn-v2"

    totals = {path: timeline.total(path) for path in ("prepare", "online", "promotion", "batch", "default")}
    promotion = [(step, seconds) for path, step, seconds, _ in timeline.rows if path == "promotion"]
    first_traffic = next((i for i, (step, _) in enumerate(promotion) if step.startswith("traffic")), len(promotion))
    before_traffic = round(sum(seconds for _, seconds in promotion[:first_traffic]), 1)
    sequential = sum(totals.values())
    beside = totals["online"] + before_traffic
    overlapped = (totals["prepare"] + max(beside, totals["batch"]) + totals["promotion"] - before_traffic
                  + totals["default"])
    online_only = totals["prepare"] + totals["online"] + totals["promotion"]
    return {"profile": profile, "steps": [{"path": p, "step": s, "seconds": t, "how": h} for p, s, t, h in timeline.rows],
            "totals": totals, "sequential_s": round(sequential, 1), "overlapped_s": round(overlapped, 1),
            "online_only_s": round(online_only, 1), "online_beside_batch_s": round(beside, 1),
            "batch_on_critical_path_s": round(overlapped - online_only, 1),
            "smoke_rows": prepared.smoke_rows}


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard", help="load-test and rollout profile (default standard)")
    parser.add_argument("--json", action="store_true", help="the numbers as JSON on stdout")
    args = parser.parse_args()
    result = run(args.profile)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Release of a second model, profile {result['profile']}, simulated wall time (virtual clock)")
    for row in result["steps"]:
        print(f"  {row['path']:<10} {row['step']:<48} {row['seconds']:>7.1f} s  ({row['how']})")
    totals = result["totals"]
    print("  " + ", ".join(f"{path} {seconds:.1f} s" for path, seconds in totals.items()))
    print(f"sequential (batch after the promotion): {_minutes(result['sequential_s'])}")
    print(f"overlapped (batch beside the online release): {_minutes(result['overlapped_s'])}")
    print(f"online alone: {_minutes(result['online_only_s'])}; the batch path adds "
          f"{result['batch_on_critical_path_s']:.1f} s to it (the default switch"
          + (f", and the preparation's excess over the {result['online_beside_batch_s']:.1f} s of deploy, load test, "
             "gate and shadow beside it" if totals["batch"] > result["online_beside_batch_s"] else "") + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
