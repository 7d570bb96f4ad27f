"""Load test of the online endpoint: realistic forecast requests, candidate and live side by side.

Run by ``mlops loadtest`` (``mlops.release.loadtest``) as ``locust --headless -f load_tests/locustfile.py``
in a subprocess - never imported by the mlops package, because locust monkey-patches the stdlib
with gevent at import. It needs only locust and the standard library.

Inputs come from environment variables (the key never appears on a command line or in a log):

``MLOPS_SCORING_URI``       the endpoint's scoring URI (``--host`` is its scheme and host)
``MLOPS_ENDPOINT_KEY``      the endpoint key, sent as ``Authorization: Bearer ...``
``MLOPS_LOADTEST_TARGETS``  comma-separated deployment names; users are dealt to them in turn and
                            each user keeps its target (``azureml-model-deployment`` header), so
                            every target has the same number of closed-loop clients at the same
                            time. (Alternating targets per request would let a slower deployment
                            hoard waiting clients and amplify any difference.) Empty: no header,
                            the endpoint's traffic split decides (the promotion's health check).
``MLOPS_LOADTEST_DATA``     a CSV (``date,count,day_of_week,month_of_year,holiday``) that requests
                            are cut from: ``CONTEXT_DAYS`` rows with ``count`` then ``HORIZON`` rows
                            without it (the dates to forecast), in AutoML's ``{"Inputs": {"data": [...]}}``
``MLOPS_LOADTEST_CONTEXT_DAYS`` / ``MLOPS_LOADTEST_HORIZON``
``MLOPS_LOADTEST_SAMPLES``  a file that receives one CSV line per request:
                            ``time,target,served_by,latency_ms,ok,status``; the release computes its
                            percentiles, rank test and attribution from it.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import time
from urllib.parse import urlsplit

from locust import FastHttpUser, constant, events, task

DEPLOYMENT_HEADER = "azureml-model-deployment"
_SCORING_URI = os.environ.get("MLOPS_SCORING_URI", "http://127.0.0.1:8080/score")
_PATH = urlsplit(_SCORING_URI).path or "/score"
_TARGETS = [name for name in os.environ.get("MLOPS_LOADTEST_TARGETS", "").split(",") if name]
_CYCLE = itertools.cycle(_TARGETS or [""])
_SAMPLES = None


def _payloads() -> list[bytes]:
    """Request bodies cut from the series; a fixed seed keeps runs comparable."""
    path = os.environ.get("MLOPS_LOADTEST_DATA", "")
    context = int(os.environ.get("MLOPS_LOADTEST_CONTEXT_DAYS", "28"))
    horizon = int(os.environ.get("MLOPS_LOADTEST_HORIZON", "7"))
    if not path:
        return [json.dumps({"Inputs": {"data": [{"date": "2017-01-02"}]}}).encode()]
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    bodies = []
    rng = random.Random(7)
    starts = list(range(0, max(1, len(rows) - context - horizon + 1)))
    for start in rng.sample(starts, min(50, len(starts))):
        window = rows[start:start + context + horizon]
        data = []
        for index, row in enumerate(window):
            item = {"date": row["date"]}
            for column in ("day_of_week", "month_of_year", "holiday"):
                if column in row and row[column] != "":
                    item[column] = float(row[column])
            if index < context:
                item["count"] = float(row["count"])
            data.append(item)
        bodies.append(json.dumps({"Inputs": {"data": data}}).encode())
    return bodies


_BODIES = _payloads()


@events.init.add_listener
def _open_samples(environment, **_kwargs) -> None:
    global _SAMPLES
    path = os.environ.get("MLOPS_LOADTEST_SAMPLES")
    if path:
        _SAMPLES = open(path, "a", buffering=1)  # noqa: SIM115 - closed at quit


@events.quitting.add_listener
def _close_samples(environment, **_kwargs) -> None:
    if _SAMPLES is not None:
        _SAMPLES.flush()
        _SAMPLES.close()


@events.request.add_listener
def _record(request_type, name, response_time, response_length, response=None, context=None,
            exception=None, **_kwargs) -> None:
    if _SAMPLES is None or _SAMPLES.closed:
        return
    target = (context or {}).get("target", "")
    served_by = ""
    status = 0
    if response is not None:
        status = getattr(response, "status_code", 0) or 0
        headers = getattr(response, "headers", None) or {}
        served_by = headers.get(DEPLOYMENT_HEADER, "") or ""
    ok = 0 if exception else 1
    _SAMPLES.write(f"{time.time():.3f},{target},{served_by},{response_time:.3f},{ok},{status}\n")


class ForecastUser(FastHttpUser):
    """One client: posts forecast requests to its target deployment, back to back."""

    wait_time = constant(0)
    host = "{0.scheme}://{0.netloc}".format(urlsplit(_SCORING_URI))

    def on_start(self) -> None:
        self._target = next(_CYCLE)
        self._auth = {"Authorization": f"Bearer {os.environ.get('MLOPS_ENDPOINT_KEY', '')}",
                      "Content-Type": "application/json"}

    @task
    def forecast(self) -> None:
        target = self._target
        headers = dict(self._auth)
        if target:
            headers[DEPLOYMENT_HEADER] = target
        body = random.choice(_BODIES)
        with self.client.post(_PATH, data=body, headers=headers, name=target or "endpoint",
                              context={"target": target}, catch_response=True) as response:
            served_by = response.headers.get(DEPLOYMENT_HEADER, "") if response.headers else ""
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
            elif target and served_by and served_by != target:
                response.failure(f"asked for {target}, served by {served_by}")
            elif b"forecast" not in (response.content or b""):
                response.failure("no forecast in the response")
            else:
                response.success()
