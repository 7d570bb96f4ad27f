"""The host's lifecycle with real processes: traffic moves under load, restarts, crashes, stop()."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from mlops.workspace.local.online.client import LocalHostClient
from mlops.workspace.port import ProbeSettings
from tests.local_host.conftest import BackgroundLoad, Setup, load

pytestmark = pytest.mark.slow


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_traffic_moves_blue_to_green_under_load_with_zero_failed_requests(setup: Setup):
    blue, green = setup.deployment("blue"), setup.deployment("green")
    setup.host.apply(setup.endpoint((blue,), {"blue": 100}), timeout=120)
    with BackgroundLoad(setup.url, concurrency=3) as running:
        running.wait_for(300)
        # the candidate joins with 0% (a new deployment starts while blue serves everything)
        statuses = setup.host.apply(setup.endpoint((blue, green), {"blue": 100, "green": 0}), timeout=120)
        assert statuses["green"].state == "Succeeded"
        running.wait_for(running.result.total + 700)
        setup.host.apply(setup.endpoint((blue, green), {"blue": 50, "green": 50}), timeout=120)
        running.wait_for(running.result.total + 1000)
        setup.host.apply(setup.endpoint((blue, green), {"blue": 0, "green": 100}), timeout=120)
        running.wait_for(running.result.total + 700)
        blue_pid = next(i["pid"] for i in setup.host.instances("ep-test") if i["deployment"] == "blue")
        setup.host.apply(setup.endpoint((green,), {"green": 100}), timeout=120)  # blue deleted
        mark = len(running.result.served_by)
        running.wait_for(running.result.total + 300)
    result = running.result
    assert result.total >= 3000
    assert result.statuses == {200: result.total}, result.failures[:5]
    assert set(result.served_by[mark + 50:]) == {"green"}
    assert {"blue", "green"} <= set(result.served_by)
    assert list(setup.host.status()["ep-test"]) == ["green"]
    _wait(lambda: _dead(blue_pid), 10, "the deleted deployment's instance to exit")


def test_changed_generation_restarts_instances_without_failed_requests(setup: Setup):
    blue = setup.deployment("blue", generation="1")
    setup.host.apply(setup.endpoint((blue,), {"blue": 100}), timeout=120)
    old_pid = setup.host.instances("ep-test")[0]["pid"]
    with BackgroundLoad(setup.url, concurrency=2) as running, concurrent.futures.ThreadPoolExecutor(1) as pool:
        running.wait_for(200)
        update = pool.submit(setup.host.apply, setup.endpoint((setup.deployment("blue", generation="2"),),
                                                              {"blue": 100}), timeout=120)
        _wait(lambda: setup.host.status()["ep-test"]["blue"].state == "Updating", 10, "the update to show")
        assert update.result()["blue"].state == "Succeeded"
        assert setup.host.status()["ep-test"]["blue"].state == "Succeeded"
        running.wait_for(running.result.total + 200)
    assert running.result.statuses == {200: running.result.total}, running.result.failures[:5]
    new_pid = setup.host.instances("ep-test")[0]["pid"]
    assert new_pid != old_pid
    _wait(lambda: _dead(old_pid), 10, "the old generation's instance to exit")


def test_kill_9_of_an_instance_under_load_restarts_it_without_failed_requests(setup: Setup):
    blue = setup.deployment("blue", instance_count=2, max_concurrent=2)
    statuses = setup.host.apply(setup.endpoint((blue,), {"blue": 100}), timeout=120)
    assert statuses["blue"].ready_instances == 2
    victim = setup.host.instances("ep-test")[0]
    with BackgroundLoad(setup.url, concurrency=2) as running:
        running.wait_for(300)
        os.kill(victim["pid"], signal.SIGKILL)
        running.wait_for(running.result.total + 300)
        _wait(lambda: setup.host.status()["ep-test"]["blue"].ready_instances == 2, 30, "the instance to come back")
        running.wait_for(running.result.total + 300)
    assert running.result.statuses == {200: running.result.total}, running.result.failures[:5]
    status = setup.host.status()["ep-test"]["blue"]
    assert status.state == "Succeeded" and status.restarts >= 1
    instances = setup.host.instances("ep-test")
    assert victim["pid"] not in {i["pid"] for i in instances} and all(i["ready"] for i in instances)
    assert f"(pid {victim['pid']}) exited with code -9" in setup.host.logs("ep-test", "blue", lines=100_000)
    # both instances share the load again
    after = load(setup.url, count=200, concurrency=2)
    assert after.statuses == {200: 200} and len(after.worker_pids) == 2


def test_never_ready_ends_failed_after_the_readiness_budget(setup: Setup):
    sleepy = setup.deployment("sleepy", env={"INIT_SLEEP": "60"},
                              readiness=ProbeSettings(initial_delay=0, period=1, timeout=1, failure_threshold=2))
    started = time.monotonic()
    statuses = setup.host.apply(setup.endpoint((sleepy,), {"sleepy": 100}), timeout=120)
    elapsed = time.monotonic() - started
    assert statuses["sleepy"].state == "Failed" and "not ready after 2s" in statuses["sleepy"].error, statuses
    assert "Invoking user's init function" in statuses["sleepy"].error  # the log tail comes with it
    assert 2 <= elapsed < 10, elapsed
    assert load(setup.url, count=5, concurrency=1).statuses == {503: 5}  # it takes no traffic


def test_an_instance_that_stops_answering_is_restarted_by_the_liveness_probe(setup: Setup):
    blue = setup.deployment("blue", liveness=ProbeSettings(initial_delay=0, period=1, timeout=1, failure_threshold=2))
    setup.host.apply(setup.endpoint((blue,), {"blue": 100}), timeout=120)
    (worker,) = load(setup.url, count=5, concurrency=1).worker_pids
    master = setup.host.instances("ep-test")[0]["pid"]
    os.kill(worker, signal.SIGSTOP)  # alive but hung: only the liveness probe can tell
    try:
        _wait(lambda: setup.host.status()["ep-test"]["blue"].restarts >= 1, 20, "the liveness probe to restart it")
        _wait(lambda: setup.host.status()["ep-test"]["blue"].ready_instances == 1, 20, "the new instance")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGCONT)
    after = load(setup.url, count=5, concurrency=1)
    assert after.statuses == {200: 5} and worker not in after.worker_pids
    assert setup.host.instances("ep-test")[0]["pid"] != master
    assert "failed 2 liveness probes; restarting" in setup.host.logs("ep-test", "blue", lines=100_000)


def test_kill_9_of_the_host_then_ensure_running_and_reapply_restore_the_endpoint(setup: Setup):
    blue = setup.deployment("blue")
    endpoint = setup.endpoint((blue,), {"blue": 100})
    setup.host.apply(endpoint, timeout=120)
    assert load(setup.url, count=20).statuses == {200: 20}
    host_pid = setup.host.host_pid()
    instance_pid = setup.host.instances("ep-test")[0]["pid"]
    worker_pids = load(setup.url, count=20).worker_pids
    assert host_pid is not None and len(worker_pids) == 1

    os.kill(host_pid, signal.SIGKILL)
    _wait(lambda: not setup.host.is_running(), 10, "the host to be gone")
    for pid in (instance_pid, *worker_pids):  # the server and its worker die with the host
        _wait(lambda pid=pid: _dead(pid), 10, f"orphaned instance process {pid} to die with its host")
    assert setup.host.status() == {}

    other_client = LocalHostClient(setup.root / "ws")  # a later CLI command
    other_client.ensure_running()
    assert other_client.host_pid() not in (None, host_pid)
    statuses = other_client.apply(endpoint, timeout=120)  # the workspace re-applies from its store
    assert statuses["blue"].state == "Succeeded"
    assert load(setup.url, count=20).statuses == {200: 20}  # same port, same keys


def test_one_host_per_workspace_and_stop_ends_every_process(setup: Setup):
    setup.host.apply(setup.endpoint((setup.deployment("blue", instance_count=2),), {"blue": 100}), timeout=120)
    host_pid = setup.host.host_pid()
    pids = [i["pid"] for i in setup.host.instances("ep-test")]
    second = LocalHostClient(setup.root / "ws")
    second.ensure_running()  # finds the running host instead of starting another
    assert second.host_pid() == host_pid
    info = (setup.root / "ws" / "host.json")
    assert info.stat().st_mode & 0o777 == 0o600
    before = info.read_text()
    # a second host process for the same folder gives way at once (fcntl lock)
    rival = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "mlops.workspace.local.online.host", "--workspace", str(setup.root / "ws")],
        capture_output=True, text=True, timeout=30)
    assert rival.returncode == 0 and "another host already serves" in rival.stderr
    assert info.read_text() == before and setup.host.host_pid() == host_pid

    setup.host.stop()
    assert not setup.host.is_running()
    for pid in [host_pid, *pids]:
        _wait(lambda pid=pid: _dead(pid), 10, f"process {pid} to exit")
    assert not info.exists()
