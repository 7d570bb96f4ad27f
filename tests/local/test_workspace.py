"""``LocalWorkspace`` against an in-memory host: the store, the rules, failures and repair.

The real host is exercised end to end in ``test_online_e2e.py``; here every test runs in well under
a second once the tiny environment (``six`` only) is built.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.errors import ConflictError, DeploymentFailedError, NotFoundError, RuleViolation, UsageError
from mlops.specs.environment import load_environment_spec
from mlops.workspace.local import LocalWorkspace
from mlops.workspace.local.registry.environments import VenvCache, default_venv_cache
from mlops.workspace.port import (
    AssetRef,
    BatchDeploymentSpec,
    BatchEndpointSpec,
    EnvironmentSpec,
    OnlineDeploymentSpec,
    OnlineEndpointSpec,
    Workspace,
)
from tests.local.conftest import FakeHost, write_code, write_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def host() -> FakeHost:
    return FakeHost(fail=("broken",))


@pytest.fixture
def ws(tmp_path: Path, host: FakeHost, tiny_venv_cache: Path, tiny_env_spec: EnvironmentSpec) -> LocalWorkspace:
    workspace = LocalWorkspace(tmp_path / "ws", host=host, venv_cache=tiny_venv_cache)
    workspace.ensure_environment(tiny_env_spec)
    workspace.register_model("tcn", write_model(tmp_path / "model"))
    workspace.ensure_online_endpoint(OnlineEndpointSpec("tcn-online"))
    return workspace


def spec(tmp_path: Path, name: str, **overrides: object) -> OnlineDeploymentSpec:
    code = tmp_path / "code"
    if not code.exists():
        write_code(code)
    values: dict[str, object] = {"endpoint_name": "tcn-online", "name": name, "model": AssetRef("tcn", "1"),
                                 "environment": AssetRef("tiny", "1"), "code_path": code, "scoring_script": "score.py"}
    values.update(overrides)
    return OnlineDeploymentSpec(**values)  # type: ignore[arg-type]


def snapshot(ws: LocalWorkspace) -> str:
    endpoints = [(e.name, e.scoring_uri, dict(e.traffic), dict(e.mirror_traffic)) for e in ws.list_online_endpoints()]
    deployments = [(d.name, d.state) for e in ws.list_online_endpoints() for d in ws.list_online_deployments(e.name)]
    return json.dumps([endpoints, deployments])


def test_it_implements_the_port(ws: LocalWorkspace) -> None:
    assert isinstance(ws, Workspace)
    assert ws.uri == f"local:{ws.dir}"


def test_endpoint_port_and_keys_are_made_once(ws: LocalWorkspace, host: FakeHost) -> None:
    endpoint = ws.get_online_endpoint("tcn-online")
    assert endpoint is not None
    assert endpoint.scoring_uri.startswith("http://127.0.0.1:") and endpoint.scoring_uri.endswith("/score")
    keys = ws.get_keys("tcn-online")
    assert len(keys.primary_key) >= 40 and keys.primary_key != keys.secondary_key
    assert "***" in repr(keys) and keys.primary_key not in repr(keys)
    pushed = host.endpoints["tcn-online"]
    assert (pushed.port, pushed.primary_key) == (int(endpoint.scoring_uri.split(":")[2].split("/")[0]), keys.primary_key)
    assert keys.primary_key not in repr(pushed)
    again = ws.ensure_online_endpoint(OnlineEndpointSpec("tcn-online"))
    assert again == endpoint and ws.get_keys("tcn-online") == keys
    other = ws.ensure_online_endpoint(OnlineEndpointSpec("other-online"))
    assert other.scoring_uri != endpoint.scoring_uri
    with pytest.raises(UsageError, match="auth_mode 'aml_token' is not supported"):
        ws.ensure_online_endpoint(OnlineEndpointSpec("token-online", auth_mode="aml_token"))


def test_a_deployment_runs_copies_of_its_model_code_and_environment(ws: LocalWorkspace, host: FakeHost,
                                                                    tmp_path: Path, tiny_venv_cache: Path) -> None:
    blue = ws.create_online_deployment(spec(tmp_path, "blue", environment_variables={"A": "1"}, instance_count=2))
    assert (blue.state, str(blue.model), str(blue.environment), blue.instance_count) == ("Succeeded", "tcn:1", "tiny:1", 2)
    assert ws.get_online_endpoint("tcn-online").traffic.get("blue", 0) == 0  # a new deployment gets 0%
    runtime = host.endpoints["tcn-online"].deployments[0]
    env = ws.get_environment("tiny", "1")
    assert runtime.python == str(VenvCache(tiny_venv_cache).python(env.content_hash))
    assert runtime.model_dir == ws.get_model("tcn", "1").path
    assert Path(runtime.code_dir).is_relative_to(ws.dir / "artifacts")
    assert (runtime.scoring_script, dict(runtime.environment_variables), runtime.instance_count) == ("score.py", {"A": "1"}, 2)
    # editing the source tree later does not change what runs
    (tmp_path / "code" / "score.py").write_text("raise SystemExit('edited')")
    assert "edited" not in (Path(runtime.code_dir) / "score.py").read_text()
    # an update is a new generation (the host restarts it), with the new code
    ws.create_online_deployment(spec(tmp_path, "blue"))
    updated = host.endpoints["tcn-online"].deployments[0]
    assert int(updated.generation) == int(runtime.generation) + 1
    assert "edited" in (Path(updated.code_dir) / "score.py").read_text()


def test_a_deployment_whose_init_fails_is_failed_with_its_log_tail_and_takes_no_traffic(
        ws: LocalWorkspace, host: FakeHost, tmp_path: Path) -> None:
    ws.create_online_deployment(spec(tmp_path, "blue"))
    ws.set_traffic("tcn-online", {"blue": 100})
    with pytest.raises(DeploymentFailedError, match=r"deployment 'broken' on endpoint 'tcn-online' failed to start: init\(\) raised") as info:
        ws.create_online_deployment(spec(tmp_path, "broken"))
    assert "model.pt is corrupt" in info.value.log_tail
    broken = ws.get_online_deployment("tcn-online", "broken")
    assert broken.state == "Failed" and "model.pt is corrupt" in broken.error
    assert ws.get_online_endpoint("tcn-online").traffic == {"blue": 100}
    assert [d.name for d in host.endpoints["tcn-online"].deployments] == ["blue"]  # no longer run by the host
    assert "model.pt is corrupt" in ws.get_logs("tcn-online", "broken")
    with pytest.raises(RuleViolation, match="'broken' on endpoint 'tcn-online' is Failed and cannot take traffic"):
        ws.set_traffic("tcn-online", {"blue": 50, "broken": 50})
    ws.delete_online_deployment("tcn-online", "broken")
    assert ws.get_online_deployment("tcn-online", "broken") is None


def test_a_failed_update_gives_its_traffic_to_the_others(ws: LocalWorkspace, host: FakeHost, tmp_path: Path) -> None:
    ws.create_online_deployment(spec(tmp_path, "blue"))
    ws.create_online_deployment(spec(tmp_path, "green"))
    ws.set_traffic("tcn-online", {"blue": 60, "green": 40})
    host.fail.add("green")
    with pytest.raises(DeploymentFailedError):
        ws.create_online_deployment(spec(tmp_path, "green"))
    assert ws.get_online_endpoint("tcn-online").traffic == {"blue": 100, "green": 0}
    assert host.endpoints["tcn-online"].traffic == {"blue": 100}


@pytest.mark.parametrize(
    ("traffic", "mirror", "message"),
    [
        ({"blue": 60, "green": 30}, None, "sums to 90"),
        ({"blue": 100}, {"green": 60}, "at most 50% may be mirrored"),
        ({"blue": 50, "green": 50}, {"green": 10}, "cannot take live traffic .* and mirrored traffic"),
        ({"blue": 50, "purple": 50}, None, "'purple', which does not exist on endpoint 'tcn-online'"),
    ],
)
def test_traffic_violations_leave_the_state_unchanged(ws: LocalWorkspace, host: FakeHost, tmp_path: Path,
                                                      traffic: dict[str, int], mirror: dict[str, int] | None,
                                                      message: str) -> None:
    ws.create_online_deployment(spec(tmp_path, "blue"))
    ws.create_online_deployment(spec(tmp_path, "green"))
    ws.set_traffic("tcn-online", {"blue": 100, "green": 0}, {"green": 20})
    before, pushes = snapshot(ws), len(host.applied)
    with pytest.raises(RuleViolation, match=message):
        ws.set_traffic("tcn-online", traffic, mirror)
    assert snapshot(ws) == before
    assert len(host.applied) == pushes  # nothing reached the host either


def test_traffic_and_mirror_changes(ws: LocalWorkspace, host: FakeHost, tmp_path: Path) -> None:
    ws.create_online_deployment(spec(tmp_path, "blue"))
    ws.create_online_deployment(spec(tmp_path, "green"))
    ws.set_traffic("tcn-online", {"blue": 100, "green": 0}, {"green": 20})
    endpoint = ws.set_traffic("tcn-online", {"blue": 100})  # None keeps the mirror
    assert (dict(endpoint.traffic), dict(endpoint.mirror_traffic)) == ({"blue": 100}, {"green": 20})
    assert host.endpoints["tcn-online"].mirror_traffic == {"green": 20}
    ws.set_traffic("tcn-online", {"blue": 70, "green": 30}, {})
    assert host.endpoints["tcn-online"].traffic == {"blue": 70, "green": 30}
    assert host.endpoints["tcn-online"].mirror_traffic == {}


def test_deletions_are_refused_while_a_deployment_takes_traffic(ws: LocalWorkspace, host: FakeHost, tmp_path: Path) -> None:
    ws.create_online_deployment(spec(tmp_path, "blue"))
    ws.create_online_deployment(spec(tmp_path, "green"))
    ws.set_traffic("tcn-online", {"blue": 100, "green": 0}, {"green": 20})
    before = snapshot(ws)
    with pytest.raises(RuleViolation, match="'blue' on endpoint 'tcn-online' has 100% live traffic and cannot be deleted"):
        ws.delete_online_deployment("tcn-online", "blue")
    with pytest.raises(RuleViolation, match="'green' on endpoint 'tcn-online' receives 20% mirrored traffic"):
        ws.delete_online_deployment("tcn-online", "green")
    assert snapshot(ws) == before
    ws.set_traffic("tcn-online", {"blue": 100}, {})
    ws.delete_online_deployment("tcn-online", "green")
    assert [d.name for d in ws.list_online_deployments("tcn-online")] == ["blue"]
    assert [d.name for d in host.endpoints["tcn-online"].deployments] == ["blue"]
    with pytest.raises(NotFoundError, match="deployment 'green' does not exist on online endpoint 'tcn-online'"):
        ws.delete_online_deployment("tcn-online", "green")


def test_bad_names_and_a_21st_deployment_are_refused(ws: LocalWorkspace, tmp_path: Path) -> None:
    with pytest.raises(RuleViolation, match="endpoint name 'x' is invalid"):
        ws.ensure_online_endpoint(OnlineEndpointSpec("x"))
    with pytest.raises(RuleViolation, match="deployment name 'Blue_1' on endpoint 'tcn-online' is invalid"):
        ws.create_online_deployment(spec(tmp_path, "Blue_1"))
    for i in range(20):
        ws.create_online_deployment(spec(tmp_path, f"dep{i:02d}"))
    before = snapshot(ws)
    with pytest.raises(RuleViolation, match="'tcn-online' already has 20 deployments: Azure ML allows at most 20"):
        ws.create_online_deployment(spec(tmp_path, "dep20"))
    assert snapshot(ws) == before
    assert [e.name for e in ws.list_online_endpoints()] == ["tcn-online"]


def test_missing_things_are_named(ws: LocalWorkspace, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="model tcn:7 is not registered"):
        ws.create_online_deployment(spec(tmp_path, "blue", model=AssetRef("tcn", "7")))
    with pytest.raises(NotFoundError, match="environment tiny:9 does not exist"):
        ws.create_online_deployment(spec(tmp_path, "blue", environment=AssetRef("tiny", "9")))
    with pytest.raises(NotFoundError, match="online endpoint 'nope' does not exist"):
        ws.create_online_deployment(spec(tmp_path, "blue", endpoint_name="nope"))
    with pytest.raises(Exception, match="scoring script 'missing.py' not found"):
        ws.create_online_deployment(spec(tmp_path, "blue", scoring_script="missing.py"))
    assert ws.list_online_deployments("tcn-online") == []


def test_a_crashed_host_is_repaired_by_the_next_workspace_with_the_same_ports_and_keys(
        ws: LocalWorkspace, host: FakeHost, tmp_path: Path) -> None:
    ws.create_online_deployment(spec(tmp_path, "blue"))
    ws.set_traffic("tcn-online", {"blue": 100})
    ws.ensure_online_endpoint(OnlineEndpointSpec("second-online"))
    served = dict(host.endpoints)
    host.crash()
    # a later command (a new process in real life) finds the host gone and pushes everything back
    later = LocalWorkspace(ws.dir, host=host, venv_cache=ws.venvs.root)
    assert later.sync_host() == ["second-online", "tcn-online"]
    assert host.endpoints == served  # the same ports, keys, traffic and deployments
    assert later.sync_host() == []  # nothing missing any more
    host.crash()
    starts = host.starts
    assert [e.name for e in later.list_online_endpoints()] == ["second-online", "tcn-online"]  # e.g. `mlops status`
    assert host.starts == starts + 1 and host.endpoints == served


def test_keys_regenerate_one_at_a_time(ws: LocalWorkspace, host: FakeHost) -> None:
    before = ws.get_keys("tcn-online")
    after = ws.regenerate_key("tcn-online", "secondary")
    assert after.primary_key == before.primary_key and after.secondary_key != before.secondary_key
    assert host.endpoints["tcn-online"].secondary_key == after.secondary_key
    assert ws.regenerate_key("tcn-online", "primary").primary_key != before.primary_key


def test_deleting_an_endpoint(ws: LocalWorkspace, host: FakeHost, tmp_path: Path) -> None:
    ws.create_online_deployment(spec(tmp_path, "blue"))
    ws.delete_online_endpoint("tcn-online")
    assert ws.get_online_endpoint("tcn-online") is None and "tcn-online" not in host.endpoints
    with pytest.raises(NotFoundError):
        ws.list_online_deployments("tcn-online")


def test_release_locks(ws: LocalWorkspace) -> None:
    lock = ws.acquire_release_lock("tcn-online", "run-1")
    assert ws.get_release_lock("tcn-online") == lock
    assert ws.acquire_release_lock("tcn-online", "run-1") == lock  # a resumed release
    with pytest.raises(ConflictError, match=f"held by 'run-1' since {lock.acquired_at}"):
        ws.acquire_release_lock("tcn-online", "run-2")
    ws.release_release_lock("tcn-online", "run-1")
    assert ws.get_release_lock("tcn-online") is None
    # a holder whose process died is stale: the next release takes over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with ws.store.transaction() as conn:
        conn.execute("INSERT INTO release_locks VALUES ('tcn-online', 'crashed-run', ?, ?, '2026-01-01T00:00:00Z')",
                     (int(dead.stdout), __import__("socket").gethostname()))
    assert ws.get_release_lock("tcn-online") is None, "a stale lock is not in force"
    assert ws.acquire_release_lock("tcn-online", "run-3").holder == "run-3"


def test_batch_endpoints_deployments_and_defaults(ws: LocalWorkspace, tmp_path: Path) -> None:
    ws.ensure_batch_endpoint(BatchEndpointSpec("tcn-batch"))
    code = write_code(tmp_path / "batch-code", "def init():\n    pass\n\ndef run(mini_batch):\n    return [f'{p}' for p in mini_batch]\n")

    def batch_spec(name: str) -> BatchDeploymentSpec:
        return BatchDeploymentSpec("tcn-batch", name, AssetRef("tcn", "1"), AssetRef("tiny", "1"), code, "score.py")

    first = ws.create_batch_deployment(batch_spec("batch-v1"))
    assert (first.state, str(first.model)) == ("Succeeded", "tcn:1")
    assert ws.get_batch_endpoint("tcn-batch").default_deployment == "batch-v1"  # the first one is the default
    ws.create_batch_deployment(batch_spec("batch-v2"))
    assert ws.get_batch_endpoint("tcn-batch").default_deployment == "batch-v1"
    with pytest.raises(RuleViolation, match="'batch-v1' is the default of batch endpoint 'tcn-batch'"):
        ws.delete_batch_deployment("tcn-batch", "batch-v1")
    assert ws.set_batch_default("tcn-batch", "batch-v2").default_deployment == "batch-v2"
    ws.delete_batch_deployment("tcn-batch", "batch-v1")
    assert [d.name for d in ws.list_batch_deployments("tcn-batch")] == ["batch-v2"]
    with pytest.raises(NotFoundError, match="'nope' does not exist on batch endpoint"):
        ws.set_batch_default("tcn-batch", "nope")
    with pytest.raises(NotFoundError, match="batch job 'nope' does not exist"):
        ws.get_batch_job("nope")


BATCH_SCORE = '''
import os

def init():
    global MODEL
    MODEL = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pt")).read()

def run(mini_batch):
    return [f"{os.path.basename(path)},{MODEL},{len(open(path).read().splitlines())}" for path in mini_batch]
'''


def _batch_inputs(tmp_path: Path) -> Path:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i in range(5):
        (inputs / f"day{i}.csv").write_text("date,count\n" * (i + 1))
    return inputs


def test_a_batch_job_in_an_environment_without_azureml_core_fails_like_azures(
        ws: LocalWorkspace, tmp_path: Path, tiny_venv_cache: Path) -> None:
    """Azure's docs: a batch deployment's environment needs azureml-core and
    azureml-dataset-runtime[fuse] (``batch.plan.BATCH_REQUIRED_PACKAGES``); the tiny one has neither."""
    ws.ensure_batch_endpoint(BatchEndpointSpec("tcn-batch"))
    code = write_code(tmp_path / "batch-code", BATCH_SCORE)
    ws.create_batch_deployment(BatchDeploymentSpec("tcn-batch", "batch-v1", AssetRef("tcn", "1"), AssetRef("tiny", "1"),
                                                   code, "score.py"))
    result = subprocess.run(  # noqa: S603 - the CLI, as a user runs it
        [sys.executable, "-m", "mlops", "--workspace", ws.uri, "batch", "invoke", "tcn-batch", "--input",
         str(_batch_inputs(tmp_path)), "--wait", "--json"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "MLOPS_VENV_CACHE": str(tiny_venv_cache)})
    assert result.returncode != 0
    assert "lacks azureml-core, azureml-dataset-runtime" in result.stdout + result.stderr
    assert "azureml-dataset-runtime[fuse] to the 'pip:' section" in result.stdout + result.stderr


def test_a_batch_job_runs_the_default_deployment_and_its_output_downloads(
        host: FakeHost, tmp_path: Path) -> None:
    """On the shipped environment (which holds what Azure requires), in the machine-wide venv
    cache that the local releases share: built once per machine."""
    ws = LocalWorkspace(tmp_path / "ws", host=host, venv_cache=default_venv_cache())
    shipped = ws.ensure_environment(load_environment_spec(REPO / "environments" / "tcn-inference" / "environment.yml"))
    ws.register_model("tcn", write_model(tmp_path / "model"))
    ws.ensure_batch_endpoint(BatchEndpointSpec("tcn-batch"))
    code = write_code(tmp_path / "batch-code", BATCH_SCORE)
    ws.create_batch_deployment(BatchDeploymentSpec("tcn-batch", "batch-v1", AssetRef("tcn", "1"), shipped.ref,
                                                   code, "score.py", mini_batch_size=2, max_concurrency_per_instance=2,
                                                   output_file_name="scores.csv"))
    inputs = _batch_inputs(tmp_path)
    environ = {k: v for k, v in os.environ.items() if k != "MLOPS_VENV_CACHE"}
    result = subprocess.run(  # noqa: S603 - the CLI, as a user runs it
        [sys.executable, "-m", "mlops", "--workspace", ws.uri, "batch", "invoke", "tcn-batch", "--input", str(inputs),
         "--wait", "--json"], capture_output=True, text=True, timeout=120, env=environ)
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert (job["status"], job["deployment"], job["mini_batches_total"], job["mini_batches_done"]) == \
        ("Completed", "batch-v1", 3, 3), job
    assert "started batch job" in result.stderr
    assert ws.get_batch_job(job["name"]).status == "Completed"
    output = ws.download_batch_output(job["name"], tmp_path / "download")
    assert output.name == "scores.csv"
    rows = [row[0] for row in csv.reader(output.read_text().splitlines())]  # run() returned a list: one field a row
    assert sorted(rows) == [f"day{i}.csv,weights,{i + 1}" for i in range(5)], rows
    assert (ws.dir / "jobs" / job["name"]).is_dir()
    status = subprocess.run([sys.executable, "-m", "mlops", "--workspace", ws.uri, "batch", "status", job["name"],  # noqa: S603
                             "--logs", "20"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"job {job['name']} (tcn-batch/batch-v1): Completed, 3/3 mini-batches done")
