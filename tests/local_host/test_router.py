"""The router with real ``azmlinfsrv`` instances on loopback: traffic, header, mirror, keys, limits."""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.error
import urllib.request

import pytest

from tests.local_host.conftest import PRIMARY, SECONDARY, Setup, auth, load, settled

pytestmark = pytest.mark.slow


def post(url: str, body: bytes = b'{"x": 1}', headers: dict[str, str] | None = None,
         timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=auth() if headers is None else headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_traffic_70_30_split_header_targeting_and_passthrough(setup: Setup):
    blue, green, idle = (setup.deployment(n) for n in ("blue", "green", "idle"))
    statuses = setup.host.apply(setup.endpoint((blue, green, idle), {"blue": 70, "green": 30, "idle": 0}), timeout=120)
    assert {n: s.state for n, s in statuses.items()} == {"blue": "Succeeded", "green": "Succeeded", "idle": "Succeeded"}

    result = load(setup.url, count=2000, concurrency=4)
    assert result.statuses == {200: 2000}, result.failures[:5]
    share = result.served_by.count("blue") / 2000
    assert abs(share - 0.70) <= 0.03, share
    assert set(result.served_by) == {"blue", "green"}
    assert setup.received("blue") + setup.received("green") == 2000 and setup.received("idle") == 0

    # header targeting reaches the 0% deployment, which sees the header; the key never reaches it
    status, headers, body = post(setup.url, headers=auth(**{"azureml-model-deployment": "idle"}))
    answer = json.loads(body)
    assert status == 200 and headers["azureml-model-deployment"] == "idle"
    assert answer["dep"] == "idle" and answer["target_header"] == "idle" and answer["authorization"] is None
    status, _, body = post(setup.url, headers=auth(**{"azureml-model-deployment": "nope"}))
    assert status == 404 and "'nope' not found" in json.loads(body)["message"]

    # a 400 from score.py reaches the client unchanged (status, body, content type)
    status, headers, body = post(setup.url, body=b'{"status": 400}')
    assert status == 400 and json.loads(body) == {"reason": "asked for 400"}
    assert headers["Content-Type"] == "application/json" and headers["azureml-model-deployment"] in {"blue", "green"}

    # bodies larger than aiohttp's default 1 MiB limit pass through whole
    big = json.dumps({"x": "a" * 3_000_000}).encode()
    status, _, body = post(setup.url, body=big, headers=auth(**{"azureml-model-deployment": "idle"}))
    assert status == 200 and json.loads(body)["dep"] == "idle"
    assert (setup.record_dir / "idle.log").read_text().splitlines()[-1] == big.decode()

    # any path is forwarded (the server's swagger document here), with the serving deployment named
    request = urllib.request.Request(f"http://127.0.0.1:{setup.port}/swagger.json", headers=auth())
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        assert json.loads(response.read())["swagger"] == "2.0"
        assert response.headers["azureml-model-deployment"] in {"blue", "green"}

    # the endpoint root answers a small health document without a key
    with urllib.request.urlopen(f"http://127.0.0.1:{setup.port}/", timeout=10) as response:  # noqa: S310
        assert json.loads(response.read())["ready_deployments"] == ["blue", "green", "idle"]


def test_mirror_20_percent_reaches_the_mirror_and_never_the_client(setup: Setup):
    blue, shadow = setup.deployment("blue"), setup.deployment("shadow")
    setup.host.apply(setup.endpoint((blue, shadow), {"blue": 100, "shadow": 0}, mirror={"shadow": 20}), timeout=120)
    result = load(setup.url, count=1500, concurrency=3)
    assert result.statuses == {200: 1500}, result.failures[:5]
    assert set(result.served_by) == {"blue"}  # the client only ever sees the live deployment's answer
    mirrored = settled(lambda: setup.received("shadow"))  # mirrored copies finish in the background
    assert abs(mirrored / 1500 - 0.20) <= 0.04, mirrored
    assert setup.received("blue") == 1500

    # header-targeted requests are never mirrored
    targeted = load(setup.url, count=200, concurrency=2, headers=auth(**{"azureml-model-deployment": "blue"}))
    assert targeted.statuses == {200: 200}
    assert settled(lambda: setup.received("shadow")) == mirrored


def test_keys_401_never_reach_a_deployment_and_regenerated_keys_apply(setup: Setup):
    blue = setup.deployment("blue")
    setup.host.apply(setup.endpoint((blue,), {"blue": 100}), timeout=120)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": PRIMARY}, {"Authorization": "Basic x"}):
        status, _, body = post(setup.url, headers=headers)
        assert status == 401 and PRIMARY not in body.decode(), (headers, body)
    assert setup.received("blue") == 0

    assert post(setup.url, headers=auth(PRIMARY))[0] == 200
    assert post(setup.url, headers=auth(SECONDARY))[0] == 200

    # regenerate the primary key: the workspace re-applies; the old key stops working at once
    before = setup.host.instances("ep-test")[0]["pid"]
    setup.host.apply(setup.endpoint((blue,), {"blue": 100}, primary="new-primary"), timeout=120)
    assert post(setup.url, headers=auth(PRIMARY))[0] == 401
    assert post(setup.url, headers=auth("new-primary"))[0] == 200
    assert post(setup.url, headers=auth(SECONDARY))[0] == 200
    assert setup.host.instances("ep-test")[0]["pid"] == before  # a key change restarts nothing
    logs = setup.logs()
    assert "host.log" in logs and "blue.log" in logs
    for key in (PRIMARY, SECONDARY, "new-primary"):
        assert key not in logs  # keys are never logged


def test_request_timeout_408_and_concurrency_429(setup: Setup):
    slow = setup.deployment("slow", max_concurrent=1, timeout_ms=600)
    setup.host.apply(setup.endpoint((slow,), {"slow": 100}), timeout=120)

    started = time.monotonic()
    status, headers, body = post(setup.url, body=b'{"sleep": 2}')
    elapsed = time.monotonic() - started
    assert status == 408 and headers["azureml-model-deployment"] == "slow", body
    assert 0.5 <= elapsed < 1.5, elapsed
    # the abandoned request holds the slot until the instance finishes it (2 s): until then 429
    settled(lambda: post(setup.url)[0], done=lambda status: status == 200, quiet=0.0)

    # one slow request holds the only slot; the others are refused fast with 429
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        received = setup.received("slow")
        first = pool.submit(post, setup.url, b'{"sleep": 0.4}')
        settled(lambda: setup.received("slow"), done=lambda n: n == received + 1, quiet=0.0)  # it holds the slot
        started = time.monotonic()
        others = [pool.submit(post, setup.url) for _ in range(5)]
        refused = [f.result() for f in others]
        refused_after = time.monotonic() - started
        assert first.result()[0] == 200
    assert [r[0] for r in refused] == [429] * 5, refused
    assert "limit of 1 concurrent requests" in json.loads(refused[0][2])["message"]
    assert refused_after < 0.25, refused_after
    assert post(setup.url)[0] == 200  # capacity is back once the slow one finished


def test_init_raising_ends_failed_with_log_tail_and_takes_no_traffic(setup: Setup):
    good, bad = setup.deployment("good"), setup.deployment("bad", env={"FAIL_INIT": "1"})
    started = time.monotonic()
    statuses = setup.host.apply(setup.endpoint((good, bad), {"good": 50, "bad": 50}), timeout=120)
    assert time.monotonic() - started < 20
    assert statuses["good"].state == "Succeeded"
    assert statuses["bad"].state == "Failed" and statuses["bad"].ready_instances == 0
    assert "init failed on purpose" in statuses["bad"].error
    assert "init failed on purpose" in setup.host.logs("ep-test", "bad", lines=200)
    assert setup.host.status()["ep-test"]["bad"].state == "Failed"

    result = load(setup.url, count=200, concurrency=2)
    assert result.statuses == {200: 200} and set(result.served_by) == {"good"}
    status, _, body = post(setup.url, headers=auth(**{"azureml-model-deployment": "bad"}))
    assert status == 404 and "no ready instance" in json.loads(body)["message"]
