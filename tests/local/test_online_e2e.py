"""``LocalWorkspace`` end to end with the real host: real ``azmlinfsrv`` processes on loopback.

One workspace per module (starting deployments costs seconds); the tests run in file order and each
leaves the endpoint as the next one expects (blue serving 100%). The ``kill -9`` test runs last.
Deployments use a tiny scoring script and ``tests/local/serving-env`` (only the inference server).
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.errors import DeploymentFailedError, RuleViolation, WorkspaceError
from mlops.workspace.local import LocalWorkspace
from mlops.workspace.local.online.client import LocalHostClient
from mlops.workspace.port import (
    AssetRef,
    EnvironmentSpec,
    OnlineDeploymentSpec,
    OnlineEndpointSpec,
    ProbeSettings,
)
from tests.conftest import run_cli
from tests.local.conftest import SCORE_BROKEN_INIT, write_code, write_model

pytestmark = pytest.mark.slow

FAST_PROBE = ProbeSettings(initial_delay=0, period=1, timeout=2, failure_threshold=15)
ENDPOINT = "tcn-online"


class World:
    def __init__(self, root: Path, ws: LocalWorkspace, env: AssetRef, model: AssetRef) -> None:
        self.root, self.ws, self.env, self.model = root, ws, env, model

    def spec(self, name: str, score: str | None = None) -> OnlineDeploymentSpec:
        code = write_code(self.root / f"code-{name}", score) if score else write_code(self.root / "code")
        return OnlineDeploymentSpec(ENDPOINT, name, self.model, self.env, code, "score.py",
                                    environment_variables={"DEPLOYMENT_LABEL": name},
                                    readiness_probe=FAST_PROBE, liveness_probe=FAST_PROBE)

    def cli(self, *args: str):
        return run_cli("--workspace", self.ws.uri, *args, timeout=180)

    def logs(self) -> str:
        host_log = self.ws.dir / "logs" / "host.log"
        return host_log.read_text(errors="replace")[-6000:] if host_log.exists() else "(no host log)"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, serving_env_spec: EnvironmentSpec) -> Iterator[World]:
    root = tmp_path_factory.mktemp("e2e")
    ws = LocalWorkspace(root / "ws")
    env = ws.ensure_environment(serving_env_spec)  # machine-wide cache: built once per machine
    model = ws.register_model("tcn", write_model(root / "model"))
    ws.ensure_online_endpoint(OnlineEndpointSpec(ENDPOINT))
    world = World(root, ws, env.ref, model.ref)
    try:
        ws.create_online_deployment(world.spec("blue"))
        ws.set_traffic(ENDPOINT, {"blue": 100})
        yield world
    except BaseException:
        print(world.logs())
        raise
    finally:
        LocalHostClient(ws.dir).stop()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_deployment_serves_with_its_model_through_the_key(world: World) -> None:
    answer = json.loads(world.ws.invoke(ENDPOINT, b'{"x": 1}'))
    assert answer == {"served_by": "blue", "echo": {"x": 1}, "model_files": ["model.pt"]}
    endpoint = world.ws.get_online_endpoint(ENDPOINT)
    status, _, _ = post(endpoint.scoring_uri, b"{}", {"Authorization": "Bearer wrong"})
    assert status == 401
    secondary = world.ws.get_keys(ENDPOINT).secondary_key
    status, headers, _ = post(endpoint.scoring_uri, b"{}", {"Authorization": f"Bearer {secondary}"})
    assert status == 200 and headers.get("azureml-model-deployment") == "blue"
    regenerated = world.cli("keys", ENDPOINT, "--regenerate", "secondary", "--json")
    assert regenerated.returncode == 0, regenerated.stderr
    new_secondary = json.loads(regenerated.stdout)["secondary_key"]
    assert new_secondary != secondary
    assert post(endpoint.scoring_uri, b"{}", {"Authorization": f"Bearer {secondary}"})[0] == 401
    assert post(endpoint.scoring_uri, b"{}", {"Authorization": f"Bearer {new_secondary}"})[0] == 200
    logs = world.cli("logs", ENDPOINT, "blue", "--lines", "200")
    assert logs.returncode == 0 and "init done" in logs.stdout, logs.stderr


def test_a_deployment_whose_init_raises_ends_failed_with_its_log_tail_and_takes_no_traffic(world: World) -> None:
    started = time.monotonic()
    with pytest.raises(DeploymentFailedError, match="'broken'") as info:
        world.ws.create_online_deployment(world.spec("broken", SCORE_BROKEN_INIT))
    assert time.monotonic() - started < 60
    assert "model.pt is corrupt: cannot load weights" in info.value.log_tail, str(info.value)
    broken = world.ws.get_online_deployment(ENDPOINT, "broken")
    assert broken.state == "Failed" and "model.pt is corrupt" in broken.error
    assert dict(world.ws.get_online_endpoint(ENDPOINT).traffic) == {"blue": 100}
    assert "broken" not in world.ws.host.status()[ENDPOINT]  # not restarted forever
    with pytest.raises(RuleViolation, match="is Failed and cannot take traffic"):
        world.ws.set_traffic(ENDPOINT, {"blue": 50, "broken": 50})
    for _ in range(5):  # every request is still served by blue
        assert json.loads(world.ws.invoke(ENDPOINT, b"{}"))["served_by"] == "blue"
    logs = world.cli("logs", ENDPOINT, "broken", "--lines", "80")
    assert logs.returncode == 0, logs.stderr
    assert "model.pt is corrupt" in logs.stdout
    world.ws.delete_online_deployment(ENDPOINT, "broken")


def test_rule_violations_leave_what_serves_unchanged(world: World) -> None:
    world.ws.create_online_deployment(world.spec("green"))
    before = world.cli("status", "--json").stdout
    for traffic, mirror in (({"blue": 60, "green": 30}, None), ({"blue": 100}, {"green": 60}),
                            ({"blue": 50, "green": 50}, {"green": 10}), ({"blue": 50, "purple": 50}, None)):
        with pytest.raises(RuleViolation):
            world.ws.set_traffic(ENDPOINT, traffic, mirror)
    refused = world.cli("status", "--json")
    assert refused.stdout == before
    for _ in range(10):
        assert json.loads(world.ws.invoke(ENDPOINT, b"{}"))["served_by"] == "blue"
    assert json.loads(world.ws.invoke(ENDPOINT, b"{}", deployment_name="green"))["served_by"] == "green"


def test_status_keys_invoke_and_local_status_through_the_cli(world: World) -> None:
    status = world.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert set(document) == {"workspace", "online_endpoints", "batch_endpoints"}
    assert document["workspace"] == world.ws.uri
    (endpoint,) = document["online_endpoints"]
    assert set(endpoint) == {"name", "scoring_uri", "traffic", "mirror_traffic", "deployments"}
    assert endpoint["name"] == ENDPOINT and endpoint["scoring_uri"] == world.ws.get_online_endpoint(ENDPOINT).scoring_uri
    assert endpoint["traffic"] == {"blue": 100, "green": 0} and endpoint["mirror_traffic"] == {}
    assert endpoint["deployments"] == [
        {"name": "blue", "model": str(world.model), "environment": str(world.env), "state": "Succeeded"},
        {"name": "green", "model": str(world.model), "environment": str(world.env), "state": "Succeeded"},
    ]
    assert document["batch_endpoints"] == []

    text = world.cli("status")
    assert text.returncode == 0
    assert f"online endpoint {ENDPOINT}  {endpoint['scoring_uri']}" in text.stdout
    assert "blue        tcn:1  test-serving:1  Succeeded  100%" in text.stdout

    keys = world.cli("keys", ENDPOINT, "--json")
    assert json.loads(keys.stdout) == {"primary_key": world.ws.get_keys(ENDPOINT).primary_key,
                                       "secondary_key": world.ws.get_keys(ENDPOINT).secondary_key}
    request = world.root / "request.json"
    request.write_text('{"hello": "world"}')
    invoked = world.cli("invoke", ENDPOINT, "--request", str(request), "--deployment", "green")
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout)["echo"] == {"hello": "world"}
    assert json.loads(invoked.stdout)["served_by"] == "green"

    local = world.cli("local", "status", "--json")
    assert json.loads(local.stdout)["endpoints"] == {ENDPOINT: {"blue": "Succeeded", "green": "Succeeded"}}
    secrets = world.ws.get_keys(ENDPOINT)
    for result in (status, text, invoked, local):  # keys appear only in `mlops keys`
        assert secrets.primary_key not in result.stdout + result.stderr
        assert secrets.secondary_key not in result.stdout + result.stderr
    for log in (world.ws.dir / "logs").rglob("*.log"):
        assert secrets.primary_key not in log.read_text(errors="replace"), log


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc), to clean up what a killed host leaves behind."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.fixture
def orphans() -> Iterator[set[int]]:
    """Pids a test saw under a host it killed; any still alive at the end are killed (by pid)."""
    pids: set[int] = set()
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_kill_9_of_the_host_is_repaired_by_the_next_command_with_the_same_uri_and_keys(
        world: World, orphans: set[int]) -> None:
    before = world.ws.get_online_endpoint(ENDPOINT)
    keys = world.ws.get_keys(ENDPOINT)
    host = LocalHostClient(world.ws.dir)
    pid = host.host_pid()
    assert pid is not None
    orphans.update(descendants(pid))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while host.is_running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not host.is_running()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(before.scoring_uri, timeout=2)  # noqa: S310 - nothing listens any more

    status = world.cli("status", "--json")  # the next command, a new process
    assert status.returncode == 0, status.stderr + world.logs()
    (endpoint,) = json.loads(status.stdout)["online_endpoints"]
    assert endpoint["scoring_uri"] == before.scoring_uri
    assert host.host_pid() not in (None, pid)
    code, headers, body = post(before.scoring_uri, b'{"after": "crash"}', {"Authorization": f"Bearer {keys.primary_key}"})
    assert code == 200, body
    assert json.loads(body)["served_by"] == "blue"
    assert world.ws.get_keys(ENDPOINT) == keys


def test_invoking_a_missing_endpoint_is_a_clear_error(world: World) -> None:
    with pytest.raises(WorkspaceError, match="online endpoint 'nope' does not exist"):
        world.ws.invoke("nope", b"{}")
    result = world.cli("invoke", "nope", "--request", "-")
    assert result.returncode == 1 and "online endpoint 'nope' does not exist" in result.stderr
