"""A loopback HTTP server that answers like the Azure ML online endpoints held by a ``FakeAzure``.

The release pipeline's load test (locust in a subprocess) and health checks make real HTTP
requests to an endpoint's scoring URI, and its quality gate goes through ``AzureWorkspace.invoke``.
To run the pipeline over the Azure adapter offline, ``ScoringRouter`` serves
``http://127.0.0.1:<port>/<endpoint>/score`` (``FakeAzure.scoring_uri`` points there) and routes
every request from the fake's *current* state, as Azure's front end does:

* key auth with the endpoint's keys as ``online_endpoints.get_keys`` reports them (401 otherwise,
  never reaching a deployment);
* ``azureml-model-deployment: NAME`` targets that deployment whatever its traffic (404 when it
  does not exist); without it a deployment is drawn by the endpoint's live traffic weights (503
  when nothing takes traffic); the response names the serving deployment in the same header;
* ``mirror_traffic`` copies that share of the *untargeted* requests to the mirror deployment
  (counted in ``served.mirrored``; the copy's answer is discarded, as Azure does);
* a deployment that ended ``Failed`` answers 503;
* the body is a forecast in the shape ``endpoints/online/score.py`` answers, computed by the same
  function the in-memory release fake uses (``tests.release.fakes._forecast``), and each model
  *version* behaves as its ``Behaviour`` says (extra latency, failures, failing only when not
  header-targeted, forecast bias) - so a "slow candidate" is just a model version served slowly.

``batch_output`` plays the batch scoring script for ``FakeAzure.batch_scorer``: the
``date forecast_origin predicted count file`` rows ``endpoints/batch/score.py`` returns, written as
Azure ML's ``append_row`` writes them (no header, space-separated), from a seasonal-naive forecast
scaled by the deployment's model-version bias.
"""

from __future__ import annotations

import csv
import io
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.azure.fake_mlclient import FakeAzure
from tests.loopback import LoopbackServer
from tests.release.fakes import HEADER, Behaviour, JsonHandler, _forecast

__all__ = ["Behaviour", "ScoringRouter", "Served"]


def _version(reference: Any) -> str:
    """``azureml:tcn-dau:2`` (or an ARM id ending in ``/versions/2``) -> ``"2"``."""
    text = str(reference or "")
    if "/versions/" in text:
        return text.rsplit("/versions/", 1)[1]
    return text.rsplit(":", 1)[-1]


@dataclass
class Served:
    """What the router answered, for assertions: (endpoint, deployment) -> count."""

    targeted: Counter = field(default_factory=Counter)
    untargeted: Counter = field(default_factory=Counter)
    mirrored: Counter = field(default_factory=Counter)
    """Copies of live requests the mirror deployment received (their responses are discarded)."""
    refused: Counter = field(default_factory=Counter)
    """HTTP status -> count of requests that reached no deployment (401, 404, 503)."""

    def total(self) -> int:
        return sum(self.targeted.values()) + sum(self.untargeted.values()) + sum(self.refused.values())


class ScoringRouter:
    """The online endpoints of ``azure`` over real HTTP on 127.0.0.1 (port 0). Use as a context
    manager, or ``start()`` / ``close()``; ``start`` also points ``azure.scoring_uri`` and
    ``azure.batch_scorer`` here, so start it before the endpoints are created."""

    def __init__(self, azure: FakeAzure, behaviours: Mapping[str, Behaviour] | None = None, *, seed: int = 7) -> None:
        self.azure = azure
        self.behaviours: dict[str, Behaviour] = dict(behaviours or {})
        """Model version -> how deployments of that version behave (default: ``Behaviour()``)."""
        self.served = Served()
        self.traffic_log: list[Any] | None = None
        """When set (a ``FakeLogsQueryClient``'s ``rows``), every answer a deployment gave is appended
        as an ``AmlOnlineEndpointTrafficLog`` row, as Azure Monitor would ingest it."""
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._http = LoopbackServer(_handler(self), name="azure-scoring-router")

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> ScoringRouter:
        self._http.start()
        self.azure.scoring_uri = self.scoring_uri
        self.azure.batch_scorer = self.batch_output
        return self

    def close(self) -> None:
        self._http.stop()

    def __enter__(self) -> ScoringRouter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._http.port

    def scoring_uri(self, endpoint: str) -> str:
        return f"http://127.0.0.1:{self.port}/{endpoint}/score"

    # decisions from the fake's state -----------------------------------------------------------
    def behaviour_of(self, model: Any) -> Behaviour:
        return self.behaviours.get(_version(model), Behaviour())

    def route(self, endpoint: str, key: str, target: str | None) -> tuple[int, str, Any]:
        """``(status, deployment name, deployment REST object)``; status 200 means "serve it"."""
        azure = self.azure
        if endpoint not in azure.online_endpoints:
            return 404, "", None
        if key not in azure.keys.get(endpoint, []):
            return 401, "", None
        if target:
            rest = azure.online_deployments.get((endpoint, target))
            if rest is None:
                return 404, "", None
            name = target
        else:
            weights = [(n, share) for n, share in sorted(azure.traffic(endpoint).items()) if share > 0]
            if not weights:
                return 503, "", None
            with self._lock:
                name = self._random.choices([n for n, _ in weights], weights=[s for _, s in weights])[0]
                for shadow, share in azure.mirror(endpoint).items():  # never for header-targeted requests
                    if self._random.random() < share / 100:
                        self.served.mirrored[(endpoint, shadow)] += 1
            rest = azure.online_deployments.get((endpoint, name))
            if rest is None:
                return 503, "", None
        state = rest.properties.provisioning_state
        if str(getattr(state, "value", state)).lower() != "succeeded":  # a str enum once serialized
            return 503, name, None
        return 200, name, rest

    def batch_output(self, endpoint: str, deployment: str, input_dir: Path) -> bytes:
        """The ``append_row`` output of ``endpoints/batch/score.py`` over every CSV of ``input_dir``
        as Azure ML writes it: the DataFrame's rows (``date forecast_origin predicted count file``)
        without a header, separated by spaces. The forecast is one-step rolling seasonal naive (last
        week's value) x the model version's bias."""
        rest = self.azure.batch_deployments[(endpoint, deployment)]
        bias = self.behaviour_of(rest.properties.model).bias
        out = io.StringIO()
        writer = csv.writer(out, delimiter=" ", lineterminator="\n")
        for file in sorted(Path(input_dir).rglob("*.csv")):
            rows = list(csv.DictReader(io.StringIO(file.read_text())))
            for index in range(7, len(rows)):
                writer.writerow([rows[index]["date"], rows[index - 1]["date"],
                                 round(float(rows[index - 7]["count"]) * bias, 3), rows[index]["count"], file.name])
        return out.getvalue().encode()


def _handler(router: ScoringRouter) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        arrived = 0.0
        started = 0.0
        endpoint = ""

        def _send(self, status: int, payload: Any, deployment: str = "") -> None:
            super()._send(status, payload, deployment)
            if deployment and router.traffic_log is not None:
                from tests.azure.fake_monitor import LogRow

                with router._lock:
                    router.traffic_log.append(LogRow(self.arrived, self.endpoint, deployment, status,
                                                     round((time.perf_counter() - self.started) * 1000)))

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.arrived, self.started = time.time(), time.perf_counter()
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            parts = self.path.strip("/").split("/")
            endpoint = parts[0] if len(parts) == 2 and parts[1] == "score" else ""
            self.endpoint = endpoint
            key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            target = self.headers.get(HEADER) or None
            status, name, rest = router.route(endpoint, key, target)
            if status != 200:
                with router._lock:
                    router.served.refused[status] += 1
                message = {401: "unauthorized", 404: f"no endpoint or deployment for {self.path} {target or ''}",
                           503: "no deployment can take the request"}[status]
                self._send(status, {"message": message}, name)
                return
            behaviour = router.behaviour_of(rest.properties.model)
            with router._lock:
                (router.served.targeted if target else router.served.untargeted)[(endpoint, name)] += 1
                unlucky = router._random.random() < behaviour.fail_rate
            if behaviour.delay_ms:
                time.sleep(behaviour.delay_ms / 1000)
            if (behaviour.fail_untargeted and not target) or unlucky:
                self._send(500, {"error": "injected failure"}, name)
                return
            try:
                payload = _forecast(body, behaviour.bias)
            except (ValueError, KeyError, TypeError) as error:
                self._send(400, {"error": str(error)}, name)
                return
            self._send(200, payload, name)

    return Handler
