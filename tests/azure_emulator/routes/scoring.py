"""The scoring host of online endpoints: ``POST /_scoring/{endpoint}/score`` (each endpoint's
``scoringUri``; Azure's is ``https://{endpoint}.{region}.inference.ml.azure.com/score``).

The front end's rules (DESIGN.md section 3, from
https://learn.microsoft.com/azure/machine-learning/how-to-safely-rollout-online-endpoints and
https://learn.microsoft.com/azure/machine-learning/how-to-authenticate-online-endpoint):

* auth by the endpoint's mode: ``Key`` - ``Authorization: Bearer <primary or secondary key>``;
  ``AMLToken`` - a token from the endpoint's ``/token``, unexpired; ``AADToken`` - an Entra token
  for ``https://ml.azure.com``, unexpired. Anything else is 401 and never reaches a deployment;
* ``azureml-model-deployment: NAME`` targets that deployment whatever its traffic (404 if none) and
  is never mirrored; otherwise a deployment is drawn by the live ``traffic`` weights (no traffic:
  503 "no healthy upstream" is what the front end answers); ``mirrorTraffic`` copies that share of
  untargeted requests to the mirror deployment, whose answer is discarded;
* a deployment that has never started (``Creating``) or ``Failed`` answers 503;
* every answer names the serving deployment in ``azureml-model-deployment``.

What a deployment answers is played in-process from its model version's ``Behaviour``
(``tests.release.fakes``: extra latency, failures, bias; ``emulator.settings["scoring.behaviours"]``
maps model version -> ``Behaviour``), with the same forecast function as the in-memory release fake.
That is the one part not run for real here: a real ``azureml-inference-server-http`` process per
deployment (as the local workspace runs) would cost seconds per deployment and is exercised by the
local workspace's own tests. ``emulator.store("scoring")["served"]`` counts what was served.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

from tests.azure_emulator.messages import Call, Reply
from tests.azure_emulator.routes import route
from tests.azure_emulator.routes.online import deployments, endpoints
from tests.azure_emulator.tokens import InvalidToken

HEADER = "azureml-model-deployment"
SERVING = ("Succeeded", "Updating", "Scaling")
"""A deployment being updated or scaled keeps serving on its current instances (rolling update)."""


def _served(emu: Any) -> dict[str, Counter]:
    store = emu.store("scoring")
    for key in ("targeted", "untargeted", "mirrored", "refused"):
        store.setdefault(key, Counter())
    store.setdefault("random", random.Random(7))
    return store


def _answer(status: int, payload: Any, deployment: str = "") -> Reply:
    headers = {HEADER: deployment} if deployment else {}
    return Reply(status, json.dumps(payload).encode(), {**headers, "Content-Type": "application/json"})


def _authorized(emu: Any, ep: dict[str, Any], authorization: str) -> bool:
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential:
        return False
    mode = ep["live"]["authMode"]
    if mode == "Key":
        return credential in ep["keys"]
    try:
        claims = emu.mint.read(credential)
    except InvalidToken:
        return False
    if claims.get("exp", 0) <= emu.clock.now():
        return False
    if mode == "AMLToken":
        return claims.get("kind") == "amltoken" and claims.get("aud") == emu.scoring_uri(ep["name"])
    return str(claims.get("aud", "")).rstrip("/") == "https://ml.azure.com"


def _version(model_id: str) -> str:
    return model_id.rsplit("/versions/", 1)[-1] if "/versions/" in model_id else model_id.rsplit(":", 1)[-1]


@route("POST", "/_scoring/{endpoint}/score", audience=None, locked=False)
def score(call: Call) -> Reply:
    emu = call.emulator
    with emu.lock:
        decided = _route(emu, call)
    if isinstance(decided, Reply):
        return decided
    dep, behaviour, target = decided
    return _serve(call, dep, behaviour, target)


def _route(emu: Any, call: Call) -> Any:
    from tests.release.fakes import Behaviour

    served = _served(emu)
    ep = endpoints(emu).get(call.params["endpoint"].lower())
    if ep is None or ep["state"] in ("Creating", "Deleting"):
        served["refused"][404] += 1
        return _answer(404, {"message": f"endpoint {call.params['endpoint']} not found"})
    if not _authorized(emu, ep, call.headers.get("authorization", "")):
        served["refused"][401] += 1
        return _answer(401, {"message": "Unauthorized"})
    held = deployments(emu, ep["name"])
    target = call.headers.get(HEADER) or None
    rng = served["random"]
    if target:
        dep = held.get(target.lower())
        if dep is None:
            served["refused"][404] += 1
            return _answer(404, {"message": f"deployment {target} not found on endpoint {ep['name']}"})
    else:
        weights = [(n, v) for n, v in sorted(ep["live"]["traffic"].items()) if int(v) > 0]
        if not weights:
            served["refused"][503] += 1
            return _answer(503, {"message": "no healthy upstream"})
        chosen = rng.choices([n for n, _ in weights], weights=[v for _, v in weights])[0]
        dep = held.get(chosen.lower())
        for shadow, share in ep["live"]["mirrorTraffic"].items():
            if int(share) > 0 and rng.random() < int(share) / 100:
                served["mirrored"][(ep["name"], shadow)] += 1
    if dep is None or dep["state"] not in SERVING:
        served["refused"][503] += 1
        return _answer(503, {"message": "the deployment is not ready"}, dep["name"] if dep else "")
    behaviour = emu.setting("scoring.behaviours", {}).get(_version(str(dep["spec"].get("model", ""))), Behaviour())
    (served["targeted"] if target else served["untargeted"])[(ep["name"], dep["name"])] += 1
    return dep, behaviour, target


def _serve(call: Call, dep: dict[str, Any], behaviour: Any, target: str | None) -> Reply:
    from tests.release.fakes import _forecast

    rng = _served(call.emulator)["random"]
    if behaviour.delay_ms:
        time.sleep(behaviour.delay_ms / 1000)
    if (behaviour.fail_untargeted and not target) or rng.random() < behaviour.fail_rate:
        return _answer(500, {"error": "injected failure"}, dep["name"])
    try:
        payload = _forecast(call.body, behaviour.bias)
    except (ValueError, KeyError, TypeError) as error:
        return _answer(400, {"error": str(error)}, dep["name"])
    return _answer(200, payload, dep["name"])
