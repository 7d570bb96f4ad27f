"""The endpoint's listener: one HTTP server per endpoint on 127.0.0.1, routing to deployments.

Every request is decided by the pure functions of ``routing.py`` against a *snapshot* - an
immutable ``RoutingTable`` plus the deployment supervisors it points at - read once when the request
arrives. ``swap`` replaces the snapshot in one assignment, so traffic, mirror and key changes are
atomic and a request in flight finishes on the deployment that took it.

Per request: key check (401, never forwarded) -> route (header target or weighted traffic, plus an
optional mirror copy) -> a slot on the least busy ready instance (429 when the deployment is at
``max_concurrent_requests_per_instance x ready instances``) -> forward with the client's headers
(minus ``Authorization`` and hop-by-hop ones) and body -> the instance's status, headers and body
back unchanged, plus ``azureml-model-deployment: <served by>``. ``request_timeout_ms`` bounds the
whole hop (408). A connection the instance refuses or drops without answering is retried once on
another ready instance of the same deployment, so an instance killed under load costs no request
when there is a second one. Mirrored copies run in the background and their responses are dropped.

``GET /`` answers a small JSON health document without a key (no traffic or key details).

Every answer a deployment gave (or the router gave for it: 408, 429, 502) is recorded in
``metrics`` (``traffic_metrics.TrafficMetrics``) with its kind - routed by the split, targeted by
the header, or a mirrored copy - its status and the time from arrival to response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping

from aiohttp import web
from aiohttp.web_request import BaseRequest

from mlops.workspace.local.online import upstream
from mlops.workspace.local.online.routing import (
    DEPLOYMENT_HEADER,
    Dealer,
    Refusal,
    RoutingTable,
    authorize,
    choose_route,
    forwarded_headers,
)
from mlops.workspace.local.online.supervisor import LOOPBACK, DeploymentSupervisor, Instance
from mlops.workspace.local.online.traffic_metrics import MIRRORED, ROUTED, TARGETED, TrafficMetrics

log = logging.getLogger("mlops.host.router")

MAX_BODY_BYTES = 64 * 2**20
"""Request bodies are read whole before they are forwarded (and copied to a mirror)."""

_RESPONSE_SKIP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date",
                            DEPLOYMENT_HEADER})


def _refusal(refusal: Refusal, served_by: str = "") -> web.Response:
    headers = {DEPLOYMENT_HEADER: served_by} if served_by else None
    return web.Response(status=refusal.status, text=json.dumps({"message": refusal.message}),
                        content_type="application/json", headers=headers)


class EndpointRouter:
    """The listener of one endpoint. Created, swapped and closed by the host."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        empty = RoutingTable(name, "key", ())
        self._snapshot: tuple[RoutingTable, Mapping[str, DeploymentSupervisor], Dealer] = (
            empty, {}, Dealer.for_table(empty))
        self._server: asyncio.base_events.Server | None = None
        self._web: web.Server | None = None
        self._background: set[asyncio.Task] = set()
        self.mirrored = 0
        self.metrics = TrafficMetrics(name)

    def swap(self, table: RoutingTable, deployments: Mapping[str, DeploymentSupervisor]) -> None:
        """Atomically replace what the endpoint serves (one assignment; the event loop is single-threaded)."""
        self._snapshot = (table, dict(deployments), Dealer.for_table(table))

    async def listen(self, port: int) -> None:
        """Bind ``127.0.0.1:port`` (loopback only; the port is the endpoint's stable scoring URI)."""
        loop = asyncio.get_running_loop()
        self._web = web.Server(self._handle, access_log=None, handler_cancellation=True,
                               request_factory=self._make_request)
        self._server = await loop.create_server(self._web, LOOPBACK, port, reuse_address=True, backlog=1024)
        self.port = port

    @staticmethod
    def _make_request(message, payload, protocol, writer, task) -> BaseRequest:  # noqa: ANN001 - aiohttp's factory
        """aiohttp's default request, with a larger body limit than its 1 MiB."""
        return BaseRequest(message, payload, protocol, writer, task, asyncio.get_running_loop(),
                           client_max_size=MAX_BODY_BYTES)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            if self._web is not None:
                await self._web.shutdown(1.0)
            await self._server.wait_closed()
            self._server = None
        for task in list(self._background):
            task.cancel()

    async def _handle(self, request: BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        arrived = time.time()
        table, deployments, dealer = self._snapshot
        if request.method == "GET" and request.path == "/":
            return web.json_response({"endpoint": self.name, "status": "Healthy",
                                      "ready_deployments": sorted(name for name, sup in deployments.items()
                                                                  if sup.can_serve())})
        refusal = authorize(table, request.headers.get("Authorization"))
        if refusal is not None:
            return _refusal(refusal)
        target = request.headers.get(DEPLOYMENT_HEADER)
        route = choose_route(
            table,
            target,
            lambda name: name in deployments and deployments[name].can_serve(),
            lambda name: name in deployments,
            dealer,
        )
        if isinstance(route, Refusal):
            return _refusal(route)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _refusal(Refusal(413, f"request body larger than {MAX_BODY_BYTES // 2**20} MiB"))
        headers = forwarded_headers(list(request.headers.items()))
        if route.mirror is not None:
            self._mirror(deployments[route.mirror], request.method, request.path_qs, headers, body, arrived)
        response = await self._forward(deployments[route.deployment], request.method, request.path_qs, headers, body)
        self.metrics.record(route.deployment, TARGETED if target else ROUTED, response.status,
                            time.perf_counter() - started, arrived)
        return response

    async def _forward(self, sup: DeploymentSupervisor, method: str, target: str,
                       headers: list[tuple[str, str]], body: bytes) -> web.Response:
        inst = sup.acquire()
        if inst is None:
            return _refusal(Refusal(429, f"deployment '{sup.name}' of endpoint '{self.name}' is at its limit of "
                                         f"{sup.limit()} concurrent requests (max_concurrent_requests_per_instance "
                                         f"x ready instances); retry later"), sup.name)
        held: list[Instance | None] = [inst]
        try:
            async with asyncio.timeout(sup.request_timeout):
                answer = await self._send_with_retry(sup, held, method, target, headers, body)
        except TimeoutError:
            return _refusal(Refusal(408, f"deployment '{sup.name}' did not answer within request_timeout_ms="
                                         f"{sup.runtime.request_settings.request_timeout_ms}"), sup.name)
        except upstream.UpstreamError as exc:
            log.warning("%s/%s: %s", self.name, sup.name, exc)
            return _refusal(Refusal(502, f"deployment '{sup.name}' failed to answer: {exc}"), sup.name)
        finally:
            if held[0] is not None:
                sup.release(held[0])
        response = web.Response(status=answer.status, reason=answer.reason or None, body=answer.body)
        out = response.headers
        for name, value in answer.headers:
            if name.lower() not in _RESPONSE_SKIP:
                out.add(name, value)
        out[DEPLOYMENT_HEADER] = sup.name
        return response

    async def _send_with_retry(self, sup: DeploymentSupervisor, held: list[Instance | None], method: str,
                               target: str, headers: list[tuple[str, str]], body: bytes
                               ) -> upstream.UpstreamResponse:
        """Send on ``held[0]``; if it refuses or drops the connection without answering, once more on another
        ready instance. ``held[0]`` is always the instance whose slot the caller must release."""
        first = held[0]
        assert first is not None
        try:
            return await upstream.request(LOOPBACK, first.port, method, target, headers, body,
                                          unix_socket=first.socket_path or None)
        except upstream.UpstreamError:
            sup.connection_failed(first)
            sup.release(first)
            held[0] = other = sup.acquire(exclude=first)
            if other is None:
                raise
        return await upstream.request(LOOPBACK, other.port, method, target, headers, body,
                                      unix_socket=other.socket_path or None)

    def _mirror(self, sup: DeploymentSupervisor, method: str, target: str, headers: list[tuple[str, str]],
                body: bytes, arrived: float) -> None:
        """Send a copy in the background; the response is discarded, a full mirror drops the copy."""
        inst = sup.acquire()
        if inst is None:
            self.metrics.mirror_dropped(sup.name)
            return
        self.mirrored += 1
        task = asyncio.get_running_loop().create_task(
            self._mirror_send(sup, inst, method, target, headers, body, arrived))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _mirror_send(self, sup: DeploymentSupervisor, inst: Instance, method: str, target: str,
                           headers: list[tuple[str, str]], body: bytes, arrived: float) -> None:
        started = time.perf_counter()
        status = 502
        cancelled = False
        try:
            async with asyncio.timeout(sup.request_timeout):
                answer = await upstream.request(LOOPBACK, inst.port, method, target, headers, body,
                                                unix_socket=inst.socket_path or None)
            status = answer.status
        except TimeoutError as exc:
            status = 408
            log.debug("mirror copy to %s/%s timed out: %s", self.name, sup.name, exc)
        except upstream.UpstreamError as exc:
            log.debug("mirror copy to %s/%s failed: %s", self.name, sup.name, exc)
        except asyncio.CancelledError:
            cancelled = True  # the endpoint is closing: not an answer of the deployment
            raise
        finally:
            sup.release(inst)
            if not cancelled:
                self.metrics.record(sup.name, MIRRORED, status, time.perf_counter() - started, arrived)
