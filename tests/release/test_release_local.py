"""The release on the local workspace with real processes: the issue's "must show" list.

``mlops demo`` runs first, as the README's first command does, in a copy of the repository's
configuration (a fresh clone: no .mlops). It leaves model v2 live on ``green``; the scenarios then
release candidates into ``blue`` through the CLI, with short load/bake times, and each failing one
must leave green at 100%. Bad candidates are test scoring folders wrapping the real score.py
(slower, flaky, or failing only without the deployment header) - the product's score.py has no
test hooks - or a model trained on shuffled targets.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from mlops.release.record import Record
from tests.conftest import REPO, run_cli
from tests.release.helpers import write_config

pytestmark = pytest.mark.slow

HEADER = "azureml-model-deployment"

WRAPPER = '''\
"""Test scoring script: the real score.py ({what})."""
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_score  # noqa: E402  (applies @rawhttp, so run() gets the raw request)

init = real_score.init


def _context_rows(request):
    import io
    import json

    body = request.stream.read()
    request.__dict__["stream"] = io.BytesIO(body)  # werkzeug's cached stream: the real score.py reads it again
    return sum(1 for row in json.loads(body)["Inputs"]["data"] if "count" in row)


def run(request):
{body}
    return real_score.run(request)
'''

WRAPPERS = {
    "slow": ("plus 100 ms per request", "    time.sleep(0.1)"),
    "flaky": ("failing 5% of requests", "    if random.random() < 0.05:\n"
              "        return real_score.AMLResponse({'error': 'injected'}, 500, json_str=True)"),
    "untargeted": ("failing every request that is not header-targeted, i.e. live traffic",
                   "    if not request.headers.get('azureml-model-deployment'):\n"
                   "        return real_score.AMLResponse({'error': 'injected'}, 500, json_str=True)"),
    # users send more context than the load test's payloads (56 rows with `count`) and the quality gate's (84)
    "long-fails": ("failing every request with more than 90 context rows",
                   "    if _context_rows(request) > 90:\n"
                   "        return real_score.AMLResponse({'error': 'injected'}, 500, json_str=True)"),
    "long-slow": ("300 ms slower on requests with more than 90 context rows",
                  "    if _context_rows(request) > 90:\n"
                  "        time.sleep(0.3)"),
}


def _wrapper(root: Path, kind: str) -> Path:
    folder = root / f"score-{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "endpoints/online/score.py", folder / "real_score.py")
    what, body = WRAPPERS[kind]
    (folder / "score.py").write_text(WRAPPER.format(what=what, body=body))
    return folder


class Demo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"local:{root / '.mlops'}"
        self.models = root / ".mlops" / "demo"

    def cli(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return run_cli("--workspace", self.uri, *args, cwd=self.root, timeout=timeout, env=env)

    def status(self) -> dict:
        result = self.cli("status", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def endpoint(self) -> dict:
        return next(e for e in self.status()["online_endpoints"] if e["name"] == "tcn-dau")

    def key(self) -> str:
        result = self.cli("keys", "tcn-dau", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["primary_key"]

    def config(self, name: str, **kwargs) -> Path:
        return write_config(self.root / "configs" / name, model=self.models / "model-v1", **kwargs)


def _request_body(context_days: int = 56) -> bytes:
    from mlops.release.quality import build_requests, read_rows

    return build_requests(read_rows(REPO / "load_tests/holdout.csv"), origins=1, context_days=context_days,
                          horizon=7)[0].body


class Users:
    """Clients sending users' requests (``context_days`` rows of actuals) through the endpoint meanwhile."""

    def __init__(self, harness: Demo, *, context_days: int, clients: int = 2) -> None:
        self.uri, self.key, self.body = harness.endpoint()["scoring_uri"], harness.key(), _request_body(context_days)
        self.outcomes: Counter[tuple[int, str]] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, daemon=True) for _ in range(clients)]

    def _send(self) -> None:
        while not self._stop.is_set():
            self.outcomes[_post(self.uri, self.key, self.body)] += 1
            time.sleep(0.01)

    def __enter__(self) -> Users:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)


def _post(uri: str, key: str | None, body: bytes, deployment: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if deployment:
        headers[HEADER] = deployment
    request = urllib.request.Request(uri, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.headers.get(HEADER, "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get(HEADER, "")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("clone")
    for name in ("mlops.yaml", "endpoints", "environments", "load_tests"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)
    started = time.monotonic()
    result = run_cli("demo", cwd=root, timeout=900)  # the README's first command (make demo)
    seconds = time.monotonic() - started
    harness = Demo(root)
    try:
        assert result.returncode == 0, f"mlops demo failed:\n{result.stdout}\n{result.stderr[-6000:]}"
        print(f"mlops demo took {seconds:.0f}s")
        yield harness, result
    finally:
        run_cli("--workspace", harness.uri, "local", "down", cwd=root, timeout=120)


def test_demo_leaves_v2_at_100_with_the_batch_default_on_the_same_model_and_environment(demo) -> None:
    harness, result = demo
    assert "demo finished" in result.stdout and "mlops keys tcn-dau" in result.stdout
    endpoint = harness.endpoint()
    serving = [name for name, share in endpoint["traffic"].items() if share == 100]
    assert serving == ["green"] and len(endpoint["deployments"]) == 1
    green = endpoint["deployments"][0]
    assert green["model"] == "tcn-dau:2" and green["state"] == "Succeeded"
    batch = next(b for b in harness.status()["batch_endpoints"] if b["name"] == "tcn-dau-batch")
    default = next(d for d in batch["deployments"] if d["name"] == batch["default_deployment"])
    assert (default["model"], default["environment"]) == (green["model"], green["environment"])
    # a key-protected scoring URI that forecasts
    body = _request_body()
    assert _post(endpoint["scoring_uri"], None, body)[0] == 401
    status, served_by = _post(endpoint["scoring_uri"], harness.key(), body)
    assert (status, served_by) == (200, "green")
    # the record: per-step wall time, and the release's own overhead with a warm environment
    record = Record.load(harness.root / ".mlops/releases/current.json")
    assert record.status == "succeeded"
    timings = record.timings()
    assert {"register", "environment", "deploy", "loadtest", "gate", "promote", "batch"} <= set(timings)
    assert all(t["seconds"] > 0 or name in ("register", "environment") for name, t in timings.items())
    print("overhead", round(record.overhead_seconds(), 1), "s; of which the fresh baseline",
          record.baseline.seconds if record.baseline else 0, "s; steps", timings)
    # the fresh baseline's start and removal are the price of an unbiased comparison, paid on purpose
    # like the configured load and bake time; the shadow step's extra locust start is overhead
    assert record.overhead_seconds() - record.baseline.seconds < 30
    assert record.baseline is not None and record.baseline.mode == "fresh" and record.baseline.state == "removed"
    assert record.promotion.steps[0].shadow is not None and record.promotion.steps[0].shadow.verdict.passed
    svg = Path(record.batch.forecast_svg)
    assert svg.read_text().count("<polyline") == 2


def test_demo_walks_the_automl_path_into_an_endpoint_of_its_own(demo) -> None:
    harness, result = demo
    assert "AutoML path     job demo-automl: 3 TCNForecaster trials, best trial demo-automl_" in result.stdout
    assert "from the model's conda_env_v_1_0_0.yml, unpinned numpy==" in result.stdout
    status = harness.status()
    (online,) = [e for e in status["online_endpoints"] if e["name"] == "tcn-dau-automl"]
    (serving,) = [d for d in online["deployments"] if online["traffic"].get(d["name"]) == 100]
    assert serving["model"] == "tcn-dau-automl:1" and serving["environment"].startswith("tcn-automl-inference:")
    (batch,) = [b for b in status["batch_endpoints"] if b["name"] == "tcn-dau-batch-automl"]
    default = next(d for d in batch["deployments"] if d["name"] == batch["default_deployment"])
    assert (default["model"], default["environment"]) == (serving["model"], serving["environment"])
    record = Record.load(harness.root / ".mlops/releases/automl.json")
    assert record.model.trial.job == "demo-automl" and [u.name for u in record.environment.unpinned] == [
        "numpy", "pandas"]


def test_same_release_again_is_nothing_to_release(demo) -> None:
    harness, _ = demo
    versions = harness.cli("status", "--json").stdout
    started = time.monotonic()
    result = harness.cli("release", "--yes", "--model", str(harness.models / "model-v2"), "--profile", "fast")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "nothing to release" in result.stdout
    assert elapsed < 10
    assert harness.cli("status", "--json").stdout == versions


def _release(harness: Demo, config: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return harness.cli("release", "--yes", "--config", str(config), *extra, timeout=timeout)


def _green_untouched(harness: Demo) -> None:
    endpoint = harness.endpoint()
    assert endpoint["traffic"] == {"green": 100}, endpoint
    assert [d["name"] for d in endpoint["deployments"]] == ["green"]


def test_slow_candidate_fails_the_gate_while_a_client_sees_no_error(demo) -> None:
    harness, _ = demo
    config = harness.config("slow", online_code=_wrapper(harness.root, "slow"), run_time="4s")
    uri, key, body = harness.endpoint()["scoring_uri"], harness.key(), _request_body()
    outcomes: Counter[tuple[int, str]] = Counter()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            outcomes[_post(uri, key, body)] += 1
            time.sleep(0.02)

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        result = _release(harness, config)
    finally:
        stop.set()
        thread.join(15)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "failed its gates" in result.stderr
    verdict = Record.load(config.parent / "releases/current.json").verdict
    failed = {g.name for g in verdict.results if g.phase == "Failed"}
    assert failed & {"p95_vs_live", "p95_vs_baseline", "mann_whitney"}, verdict
    _green_untouched(harness)
    assert sum(outcomes.values()) > 20
    assert set(outcomes) == {(200, "green")}, outcomes


def test_flaky_candidate_fails_at_the_gate(demo) -> None:
    harness, _ = demo
    config = harness.config("flaky", online_code=_wrapper(harness.root, "flaky"), run_time="4s")
    result = _release(harness, config)
    assert result.returncode == 1, result.stderr[-3000:]
    verdict = Record.load(config.parent / "releases/current.json").verdict
    failed = {g.name for g in verdict.results if g.phase == "Failed"}
    assert "error_rate" in failed, verdict  # (and quality_requests when a holdout request hit a failure)
    _green_untouched(harness)


def test_candidate_failing_under_live_traffic_is_rolled_back_at_the_first_step(demo) -> None:
    harness, _ = demo
    steps = [{"traffic": 10}, {"bake": "3s", "check": "health"}, {"traffic": 100}]
    config = harness.config("untargeted", online_code=_wrapper(harness.root, "untargeted"), run_time="3s",
                            steps=steps, health={"users": 6})
    result = _release(harness, config)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "health check at step 2" in result.stderr
    record = Record.load(config.parent / "releases/current.json")
    assert record.status == "rolled_back" and record.verdict.phase == "Passed"
    assert record.promotion.steps[0].traffic == {"blue": 10, "green": 90}
    _green_untouched(harness)


def test_too_few_requests_is_inconclusive(demo) -> None:
    harness, _ = demo
    config = harness.config("inconclusive", run_time="2s", gates={"absolute": {"min_requests": 100_000}})
    result = _release(harness, config)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "not enough evidence" in result.stderr
    endpoint = harness.endpoint()
    assert endpoint["traffic"].get("green") == 100 and endpoint["traffic"].get("blue", 0) == 0
    record = Record.load(config.parent / "releases/current.json")
    assert record.status == "inconclusive"
    _fresh_baseline_came_and_went(harness, record)


def test_a_release_killed_while_its_baseline_exists_removes_it_on_resume(demo, processes) -> None:
    harness, _ = demo
    # too few requests on purpose: the resumed release ends Inconclusive; no rank test, whose verdict on a
    # 6 s run on a busy machine is not what this test is about (Failed would outrank Inconclusive)
    config = harness.config("killed-baseline", run_time="6s", gates={"absolute": {"min_requests": 100_000},
                                                                     "relative": {"mann_whitney": None}})
    record_path = config.parent / "releases/current.json"
    command = [sys.executable, "-m", "mlops", "--workspace", harness.uri, "release", "--yes", "--config", str(config)]
    first = processes.start(command, cwd=harness.root, name="release-baseline")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # until the baseline serves and the load test runs
        record = Record.load(record_path)
        if record is not None and record.baseline is not None and record.baseline.state == "deployed":
            break
        assert first.poll() is None, processes.logs()
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert "baseline" in {d["name"] for d in harness.endpoint()["deployments"]}  # kill -9 left it behind
    resumed = _release(harness, config)
    assert resumed.returncode == 3, resumed.stderr[-3000:]  # then Inconclusive: too few requests to judge
    assert "resuming" in resumed.stderr
    assert "baseline: removed baseline (the release was interrupted while its baseline existed)" in resumed.stderr
    endpoint = harness.endpoint()
    assert "baseline" not in {d["name"] for d in endpoint["deployments"]}
    assert endpoint["traffic"].get("green") == 100
    assert Record.load(record_path).baseline.state == "removed"


def test_clearly_worse_model_is_stopped_by_the_quality_gate(demo) -> None:
    harness, _ = demo
    from mlops.demo.sample_data import demo_split
    from mlops.forecasting.training import train_model

    worse = harness.root / "worse-model"
    train_model(demo_split()[0], worse, epochs=3, seed=0, shuffle_targets=True)
    config = write_config(harness.root / "configs" / "worse", model=worse, run_time="2s")
    result = _release(harness, config)
    assert result.returncode == 1, result.stderr[-3000:]
    quality = Record.load(config.parent / "releases/current.json").quality
    assert quality.candidate_mape > 2 * quality.live_mape
    assert "mape_vs_live" in result.stderr
    _green_untouched(harness)
    _fresh_baseline_came_and_went(harness, Record.load(config.parent / "releases/current.json"))


def _fresh_baseline_came_and_went(harness: Demo, record: Record) -> None:
    """The gate had a fresh copy of live (green) in the same load test, and it is gone now."""
    baseline = record.baseline
    assert baseline is not None and baseline.mode == "fresh", baseline
    assert baseline.copy_of == "green" and baseline.state == "removed", baseline
    assert "baseline" in record.loadtest.targets and record.loadtest.deployments["baseline"].requests > 0
    assert "baseline" not in {d["name"] for d in harness.endpoint()["deployments"]}


def test_shadow_step_stops_a_candidate_failing_on_users_requests_while_users_see_no_error(demo) -> None:
    harness, _ = demo
    steps = [{"mirror": 50, "bake": "4s", "check": "shadow"}, {"traffic": 10}, {"bake": "2s", "check": "health"},
             {"traffic": 100}]
    config = harness.config("shadow", online_code=_wrapper(harness.root, "long-fails"), run_time="3s", steps=steps)
    with Users(harness, context_days=100) as users:
        result = _release(harness, config)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "shadow check at step 1" in result.stderr, result.stderr[-3000:]
    record = Record.load(config.parent / "releases/current.json")
    assert record.verdict.phase == "Passed"  # the load test's shorter payloads never showed it
    shadow = record.promotion.steps[0].shadow
    assert shadow.verdict.phase == "Failed" and shadow.mirror == {"blue": 50}
    assert shadow.candidate.kinds.get("mirrored", 0) > 0 and shadow.candidate.failures > 0
    assert record.promotion.steps[0].traffic is None and len(record.promotion.steps) == 1  # no live traffic, ever
    _green_untouched(harness)
    assert harness.endpoint()["mirror_traffic"] == {}
    assert sum(users.outcomes.values()) > 20
    assert set(users.outcomes) == {(200, "green")}, users.outcomes


def test_candidate_slow_on_users_traffic_fails_a_step_on_its_deployment_metrics(demo) -> None:
    harness, _ = demo
    steps = [{"traffic": 50}, {"bake": "4s", "check": "health"}, {"traffic": 100}]
    config = harness.config("users-slow", online_code=_wrapper(harness.root, "long-slow"), run_time="3s", steps=steps,
                            health={"users": 2, "deployment_metrics": {"min_requests": 5, "max_error_rate": 0.0,
                                                                       "p95_tolerance": 0.5, "p95_slack_ms": 25}})
    with Users(harness, context_days=100, clients=3) as users:
        result = _release(harness, config)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "health check at step 2" in result.stderr, result.stderr[-3000:]
    record = Record.load(config.parent / "releases/current.json")
    health = record.promotion.steps[1].health
    assert health.synthetic.phase == "Passed", health.synthetic  # the test's own load saw nothing wrong
    metrics = health.deployment_metrics
    assert metrics.verdict.phase == "Failed", metrics.verdict
    assert {r.name for r in metrics.verdict.results if r.phase == "Failed"} == {"metrics_p95_vs_live"}
    assert metrics.candidate.p95_ms > metrics.live.p95_ms + 100
    _green_untouched(harness)
    assert set(users.outcomes) <= {(200, "green"), (200, "blue")}, users.outcomes


def test_concurrent_release_is_refused_and_a_killed_release_resumes(demo, processes) -> None:
    harness, _ = demo
    steps = [{"traffic": 10}, {"bake": "6s", "check": "health"}, {"traffic": 50}, {"bake": "1s", "check": "health"},
             {"traffic": 100}]
    config = harness.config("killed", run_time="2s", steps=steps)
    record_path = config.parent / "releases/current.json"
    command = [sys.executable, "-m", "mlops", "--workspace", harness.uri, "release", "--yes", "--config", str(config)]
    first = processes.start(command, cwd=harness.root, name="release-a")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait for the deploy (the lock is held from then on)
        record = Record.load(record_path)
        if record is not None and record.step_state("deploy") in ("running", "done"):
            break
        assert first.poll() is None, processes.logs()
        time.sleep(0.2)
    # a second release on the same endpoint (another record, another model) is refused
    other = write_config(harness.root / "configs" / "other", model=harness.models / "model-v2", run_time="2s")
    refused = _release(harness, other)
    assert refused.returncode == 1
    assert "held by 'release " in refused.stderr and " since " in refused.stderr, refused.stderr
    # kill -9 during the traffic shift
    while time.monotonic() < deadline:
        record = Record.load(record_path)
        if record is not None and record.promotion.done >= 1:
            break
        assert first.poll() is None, processes.logs()
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert harness.endpoint()["traffic"] == {"blue": 10, "green": 90}
    resumed = _release(harness, config)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr
    endpoint = harness.endpoint()
    assert endpoint["traffic"] == {"blue": 100}
    assert [d["model"] for d in endpoint["deployments"]] == ["tcn-dau:1"]
    # what mlops status says is what the endpoint serves
    key, body = harness.key(), _request_body()
    served = Counter(_post(endpoint["scoring_uri"], key, body) for _ in range(20))
    assert served == Counter({(200, "blue"): 20})


def test_step_commands_one_per_job_pass_state_through_the_record(demo, tmp_path: Path) -> None:
    harness, _ = demo
    # Its own precondition, whatever ran before it in the module: tcn-dau:1 live, so v2 is a release.
    if [d["model"] for d in harness.endpoint()["deployments"]] != ["tcn-dau:1"]:
        assert _release(harness, harness.config("steps-precondition", run_time="2s")).returncode == 0
    config = write_config(harness.root / "configs" / "steps", model=harness.models / "model-v2", run_time="2s")
    record = tmp_path / "record.json"
    outputs, summary = tmp_path / "github_output", tmp_path / "step_summary"
    env = {"GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary), "MLOPS_CONFIG": str(config),
           "MLOPS_RECORD": str(record)}

    def step(*args: str) -> subprocess.CompletedProcess:
        result = harness.cli(*args, env=env)
        assert result.returncode == 0, f"mlops {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result

    registered = json.loads(step("register", "--json").stdout)
    assert registered["model"] == "tcn-dau:2" and registered["model_version"] == "2"
    assert step("environment").stdout.strip() == "tcn-inference:1"
    assert step("deploy").stdout.strip() == "green"
    step("loadtest")
    assert json.loads(step("gate", "--json").stdout)["verdict"] == "Passed"
    step("promote")
    step("batch-refresh")
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert (written["model_version"], written["environment"], written["candidate"], written["verdict"]) == \
        ("2", "tcn-inference:1", "green", "Passed")
    assert written["status"] == "succeeded"
    assert "| Gate | Result | Value | Limit | Detail |" in summary.read_text()
    endpoint = harness.endpoint()
    assert endpoint["traffic"] == {"green": 100}
    batch = next(b for b in harness.status()["batch_endpoints"] if b["name"] == "tcn-dau-batch")
    assert batch["default_deployment"] == "tcn-v2"
    # the previous deployment was deleted after 100%: a rollback now would leave nothing serving
    refused = harness.cli("rollback", env=env)
    assert refused.returncode == 2 and "would leave no deployment taking traffic" in refused.stderr, refused.stderr
    assert harness.endpoint()["traffic"] == {"green": 100}
