"""The emulator's HTTPS server: one loopback listener (port 0) for every host the SDK talks to.

Azure spreads the surface over hosts (the resource manager, ``login.microsoftonline.com``, the
endpoint's ``{name}.{region}.inference.ml.azure.com``); the SDK follows absolute URLs it is handed
(the polling header, ``scoringUri``) and builds the rest from the cloud's metadata, so one listener
serves them all by path:

* ARM: ``/subscriptions/...`` (the cloud's ``resource_manager`` is this listener's root);
* Entra ID: ``/{tenant}/oauth2/v2.0/token`` (the credential's ``authority`` is this listener);
* GitHub's ID-token service: ``/_github/idtoken`` (``ACTIONS_ID_TOKEN_REQUEST_URL``);
* scoring hosts: ``/_scoring/{endpoint}/score`` (each endpoint's ``scoringUri``).

Before a route with an ``audience`` runs, the bearer token is checked as ARM and the ML front end
do: present (else 401 ``AuthenticationFailed``), issued by this emulator, not expired on the virtual
clock (401 ``ExpiredAuthenticationToken``), for the right audience (401
``InvalidAuthenticationTokenAudience``), with a ``WWW-Authenticate: Bearer`` challenge - the error
codes ARM documents (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/
error-invalid-authentication-token? and the codes azure-core's ARM challenge policy reads).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.azure_emulator.clock import VirtualClock
from tests.azure_emulator.lro import Operations
from tests.azure_emulator.messages import Call, Refusal, Reply, arm_error
from tests.azure_emulator.routes import RouteTable, load_all
from tests.azure_emulator.tls import TestCA
from tests.azure_emulator.tokens import InvalidToken, TokenMint, scope_resource
from tests.loopback import LoopbackServer

log = logging.getLogger("azure_emulator")

ML_AUDIENCE = "https://ml.azure.com"
STORAGE_AUDIENCE = "https://storage.azure.com"


@dataclass
class Exchange:
    """One request as the emulator saw it (for assertions): what the SDK really sent."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    body: Any
    audience: str | None = None
    at: float = 0.0


@dataclass
class Workspace:
    subscription_id: str = "00000000-0000-0000-0000-000000000000"
    resource_group: str = "rg-mlops"
    name: str = "mlw-mlops"
    location: str = "eastus"
    tenant_id: str = "72f988bf-0000-0000-0000-000000000000"
    workspace_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def arm_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}")


class Emulator:
    """State and rules shared by the route modules; the HTTP listener calls ``handle``."""

    def __init__(self, ca: TestCA, *, clock: VirtualClock | None = None, workspace: Workspace | None = None,
                 routes: RouteTable | None = None) -> None:
        self.ca = ca
        self.clock = clock or VirtualClock()
        self.workspace = workspace or Workspace()
        self.routes = routes or load_all()
        self.mint = TokenMint.new()
        self.operations = Operations(self.clock)
        self.lock = threading.RLock()
        """Held while a handler runs: handlers read and write the state without races."""
        self.stores: dict[str, dict[str, Any]] = {}
        self.exchanges: list[Exchange] = []
        self.settings: dict[str, Any] = {}
        """Knobs route modules read (durations, injected failures); see each module's ``SETTINGS``."""
        self._http = LoopbackServer(_handler_class(self), name="azure-emulator",
                                    wrap=lambda sock: self.ca.server_context.wrap_socket(sock, server_side=True),
                                    poll_interval=0.05)

    # the state of one route module ----------------------------------------------------------
    def store(self, name: str) -> dict[str, Any]:
        """A route module's own state (a dict it fills as it likes), created on first use."""
        return self.stores.setdefault(name, {})

    def setting(self, key: str, default: Any) -> Any:
        return self.settings.get(key, default)

    # addresses ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._http.port

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def arm_url(self) -> str:
        """The cloud's ``resource_manager`` endpoint (ARM tokens have this audience)."""
        return self.base_url + "/"

    @property
    def arm_audience(self) -> str:
        return self.base_url

    @property
    def authority(self) -> str:
        """Entra ID's authority host for azure-identity (``authority=`` / ``AZURE_AUTHORITY_HOST``)."""
        return self.base_url

    @property
    def id_token_request_url(self) -> str:
        """``ACTIONS_ID_TOKEN_REQUEST_URL`` (the runner's own, which already carries a query)."""
        return f"{self.base_url}/_github/idtoken?api-version=2.0"

    def scoring_uri(self, endpoint: str) -> str:
        return f"{self.base_url}/_scoring/{endpoint}/score"

    def url(self, path: str) -> str:
        return self.base_url + path

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> Emulator:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    # dispatch -------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        split = urlsplit(target)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        matched = self.routes.match(method, split.path)
        audience = None
        if matched is None or matched == "method":
            reply = (arm_error(404, "NoRegisteredProviderFound" if matched is None else "MethodNotAllowed",
                               f"the emulator serves no {method} {split.path}").reply)
        else:
            route, params = matched
            audience = route.audience
            call = Call(self, method, split.path, params, query, headers, body)
            try:
                with self.lock:
                    self.operations.settle()
                    if audience is not None:
                        call.claims = self.check_bearer(headers.get("authorization", ""), audience)
                    if route.locked:
                        reply = route.handler(call)
                if not route.locked:
                    reply = route.handler(call)
            except Refusal as refusal:
                reply = refusal.reply
        reply.headers.setdefault("Date", self.clock.http_date())
        reply.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        try:
            shown = json.loads(body) if body and headers.get("content-type", "").startswith("application/json") else None
        except json.JSONDecodeError:
            shown = None
        with self.lock:
            self.exchanges.append(Exchange(method, split.path, query, reply.status, shown, audience, self.clock.now()))
        return reply

    # identity -------------------------------------------------------------------------------
    def audience_url(self, audience: str) -> str:
        return {"arm": self.arm_audience, "ml": ML_AUDIENCE, "storage": STORAGE_AUDIENCE}[audience]

    def check_bearer(self, authorization: str, audience: str) -> dict[str, Any]:
        challenge = {"WWW-Authenticate": f'Bearer authorization_uri="{self.authority}/{self.workspace.tenant_id}", '
                                         'error="invalid_token", error_description="The authentication failed"'}
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise arm_error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                                                         "missing.", challenge)
        try:
            claims = self.mint.read(token)
        except InvalidToken:
            raise arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.", challenge) from None
        now = self.clock.now()
        if claims.get("exp", 0) <= now:
            raise arm_error(401, "ExpiredAuthenticationToken",
                            f"The access token expiry UTC time '{self.clock.iso(claims.get('exp', 0))}' is earlier "
                            f"than current UTC time '{self.clock.iso(now)}'.", challenge)
        wanted = self.audience_url(audience)
        if scope_resource(str(claims.get("aud", ""))) != wanted.rstrip("/"):
            raise arm_error(401, "InvalidAuthenticationTokenAudience",
                            f"The access token has been obtained for wrong audience or resource "
                            f"'{claims.get('aud')}'. It should exactly match with one of the allowed audiences "
                            f"'{wanted}/','{wanted}'.", challenge)
        return claims

    def requests_to(self, fragment: str, method: str | None = None) -> list[Exchange]:
        with self.lock:
            return [e for e in self.exchanges if fragment.lower() in e.path.lower()
                    and (method is None or e.method == method)]


def _handler_class(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        """Headers and body go out in two writes: with Nagle's algorithm and the client's delayed ACK
        every keep-alive request would wait ~40 ms for the second one."""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            log.debug("%s " + format, self.address_string(), *args)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                reply = emulator.handle(self.command, self.path, headers, body)
            except Exception as exc:  # a bug in a route: answer 500 like a broken service, and say why
                log.exception("emulator route failed")
                reply = arm_error(500, "InternalServerError", f"emulator route failed: {exc!r}").reply
            payload, content_type = reply.encoded()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                if name.lower() != "content-type":
                    self.send_header(name, value)
            self.send_header("Content-Type", reply.headers.get("Content-Type", content_type))
            self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve  # noqa: N815

    return Handler


__all__ = ["Emulator", "Exchange", "Path", "Workspace"]
