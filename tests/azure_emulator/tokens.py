"""Tokens the emulator issues and checks: JWT-shaped (``header.payload.signature``, HS256 with a
per-emulator secret), so a client that peeks at ``exp`` (as azure-identity does with an assertion,
or a user with jwt.ms) finds the claims where Microsoft Entra ID puts them.

Lifetimes (on the emulator's virtual clock):

* GitHub's Actions ID token: ``exp`` 5 minutes after issue - the limit issue 13 is about (GitHub's
  OIDC docs: the token is short-lived; azure/login's docs warn the CLI cannot refresh it).
* Entra access tokens: 60-90 minutes (``expires_in`` 3599 here, as the client-credentials grant
  answers: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "api://AzureADTokenExchange"
"""The audience azure/login asks GitHub for (the default of Entra's federated credentials)."""
ID_TOKEN_LIFETIME = 300.0
ACCESS_TOKEN_LIFETIME = 3599


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class InvalidToken(ValueError):
    pass


@dataclass
class TokenMint:
    secret: bytes

    @classmethod
    def new(cls) -> TokenMint:
        return cls(secrets.token_bytes(32))

    def issue(self, claims: dict[str, Any]) -> str:
        header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        payload = _b64(json.dumps(claims, sort_keys=True).encode())
        signature = hmac.new(self.secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def read(self, token: str) -> dict[str, Any]:
        """The claims of a token this mint issued (signature checked), else ``InvalidToken``."""
        try:
            header, payload, signature = token.split(".")
        except ValueError:
            raise InvalidToken("not a JWT") from None
        expected = hmac.new(self.secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        try:
            valid = hmac.compare_digest(expected, _unb64(signature))
            claims = json.loads(_unb64(payload))
        except (ValueError, json.JSONDecodeError):
            raise InvalidToken("malformed JWT") from None
        if not valid:
            raise InvalidToken("signature does not verify")
        return claims


def scope_resource(scope: str) -> str:
    """``https://ml.azure.com/.default`` -> ``https://ml.azure.com``; the client-credentials grant
    takes exactly one resource's ``/.default`` scope."""
    resource = scope.strip().split(" ")[0]
    return resource.removesuffix("/.default").rstrip("/")
