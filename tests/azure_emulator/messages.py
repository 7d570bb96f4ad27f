"""A request as route handlers see it (``Call``), what they answer (``Reply``), and Azure's error shapes.

ARM errors: ``{"error": {"code", "message", "details", "additionalInfo"}}`` (the shape every recorded
4xx in ``shared/azure-recordings`` carries, e.g. the 404 after a DELETE in
``online_endpoint_e2e.jsonl``). Entra ID errors: ``{"error", "error_description", "error_codes", ...}``
(https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Reply:
    status: int
    body: Any = None
    """JSON-able (sent as ``application/json``), ``bytes`` (sent as is) or None (an empty body)."""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if self.body is None and self.status in (202, 204) and "null" not in self.headers.get("X-Body", ""):
            return b"", "application/json"
        return json.dumps(self.body).encode(), "application/json; charset=utf-8"


class Refusal(Exception):
    """Raised by a handler (or a rule it calls) to answer with ``reply``."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"HTTP {reply.status}: {reply.body}")
        self.reply = reply


def arm_error(status: int, code: str, message: str, headers: dict[str, str] | None = None, *,
              details: list[dict[str, Any]] | None = None) -> Refusal:
    return Refusal(Reply(status, {"error": {"code": code, "message": message, "details": list(details or []),
                                            "additionalInfo": []}}, dict(headers or {})))


def not_found_detail(code: str, message: str) -> Refusal:
    """The asset 404 as recorded (``model_archive_restore.jsonl`` line 0): a generic message, the
    specific code (``ModelNotFound``) in ``details``."""
    return arm_error(404, "UserError", "The specified resource was not found.",
                     details=[{"code": code, "message": message, "details": [], "additionalInfo": []}])


def user_error(status: int, message: str) -> Refusal:
    """The ML resource provider's own 4xx: ``code: UserError`` (recorded 400s/409s carry it)."""
    return arm_error(status, "UserError", message)


def not_found(kind: str, name: str) -> Refusal:
    return arm_error(404, "UserError", f"{kind} {name} not found.")


def aad_error(status: int, error: str, code: int, description: str, now_iso: str) -> Refusal:
    trace, correlation = uuid.uuid4(), uuid.uuid4()
    return Refusal(Reply(status, {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} "
                             f"Timestamp: {now_iso}",
        "error_codes": [code], "timestamp": now_iso, "trace_id": str(trace), "correlation_id": str(correlation),
        "error_uri": f"https://login.microsoftonline.com/error?code={code}"}))


@dataclass
class Call:
    """One request: ``emulator`` (the running ``Emulator``), the path ``params`` of the matched
    template, ``query`` (first value per key, keys as sent), headers, body."""

    emulator: Any
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes
    claims: dict[str, Any] | None = None
    """The verified bearer token's claims (routes with an audience)."""

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except json.JSONDecodeError:
            raise user_error(400, "The request body is not valid JSON.") from None

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")
