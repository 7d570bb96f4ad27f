"""The credential the adapter signs in with: a fresh GitHub OIDC token in Actions, else ``DefaultAzureCredential``.

Why not ``DefaultAzureCredential`` in Actions: after ``azure/login`` with OIDC it falls through to
the Azure CLI, which holds the one GitHub ID token it was given. That token is valid for about 5
minutes; the Azure ML scope (batch invoke, run history: ``jobs.list``, ``jobs.download``) and the
storage scope are first asked for *later* (after a deployment's long-running operation), and
Microsoft Entra ID refuses the stale assertion with AADSTS700024 ("client assertion is not within
its valid time range") - issue 13.

So when GitHub's ID-token request variables are present (a job with ``permissions: id-token:
write`` sets ``ACTIONS_ID_TOKEN_REQUEST_URL`` and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``) together with
``AZURE_CLIENT_ID`` and ``AZURE_TENANT_ID``, the credential is azure-identity's
``ClientAssertionCredential``: its ``func`` "will be called every time it acquires a new token"
(azure-identity's docstring), and ours asks GitHub for a new ID token each time. The request is the
one ``@actions/core``'s ``getIDToken`` makes (actions/toolkit ``packages/core/src/oidc-utils.ts``):
``GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<url-encoded audience>`` with
``Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN``, answered ``{"value": "<jwt>"}``; the
audience is ``api://AzureADTokenExchange``, the one Entra ID's federated credentials expect (and
azure/login's default). Access tokens are still cached per scope by the credential (about an hour).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from mlops.errors import AuthError

GITHUB_AUDIENCE = "api://AzureADTokenExchange"
"""The audience of the GitHub ID token Entra ID exchanges (federated credential default)."""

REQUEST_URL_ENV = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN_ENV = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
CLIENT_ID_ENV = "AZURE_CLIENT_ID"
TENANT_ID_ENV = "AZURE_TENANT_ID"
ACTIONS_VARIABLES = (REQUEST_URL_ENV, REQUEST_TOKEN_ENV, CLIENT_ID_ENV, TENANT_ID_ENV)

HttpGet = Callable[[str, Mapping[str, str], float], tuple[int, bytes]]
"""``(url, headers, timeout) -> (status, body)``: how the callback reaches GitHub's token endpoint."""


def _urllib_get(url: str, headers: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=dict(headers), method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - GitHub's https URL
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def in_github_actions_with_oidc(environ: Mapping[str, str]) -> bool:
    """All four variables present and non-empty: GitHub can mint ID tokens for an app registration."""
    return all(environ.get(name, "").strip() for name in ACTIONS_VARIABLES)


def id_token_url(request_url: str, audience: str = GITHUB_AUDIENCE) -> str:
    """``ACTIONS_ID_TOKEN_REQUEST_URL`` already carries a query (``?api-version=...``): append ``&audience=``."""
    joiner = "&" if "?" in request_url else "?"
    return f"{request_url}{joiner}audience={urllib.parse.quote(audience, safe='')}"


def github_assertion(environ: Mapping[str, str], *, http_get: HttpGet = _urllib_get,
                     audience: str = GITHUB_AUDIENCE, timeout: float = 30.0) -> Callable[[], str]:
    """The ``func`` of ``ClientAssertionCredential``: each call fetches a fresh GitHub ID token."""
    url = id_token_url(environ[REQUEST_URL_ENV].strip(), audience)
    headers = {"Authorization": f"Bearer {environ[REQUEST_TOKEN_ENV].strip()}", "Accept": "application/json"}

    def fetch() -> str:
        try:
            status, body = http_get(url, headers, timeout)
        except OSError as exc:
            raise AuthError(f"cannot reach GitHub's ID-token endpoint ({REQUEST_URL_ENV}) to sign in to Azure: "
                            f"{exc}") from exc
        if status != 200:
            raise AuthError(f"GitHub refused an ID token (HTTP {status}): give the job 'permissions: id-token: "
                            f"write'. GitHub said: {body.decode('utf-8', 'replace')[:300]}")
        try:
            value = json.loads(body)["value"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError("GitHub's ID-token endpoint answered without a token ('value')") from exc
        if not isinstance(value, str) or not value:
            raise AuthError("GitHub's ID-token endpoint answered with an empty token")
        return value

    return fetch


def make_credential(environ: Mapping[str, str] | None = None, *, http_get: HttpGet = _urllib_get,
                    **options: Any) -> Any:
    """``ClientAssertionCredential`` with a fresh-GitHub-token callback in Actions (see the module
    docstring), else ``DefaultAzureCredential`` (``az login`` on a laptop, a managed identity, or
    ``AZURE_CLIENT_SECRET``). ``options`` go to the credential (e.g. ``authority`` for another cloud).
    No token is requested here."""
    environ = os.environ if environ is None else environ
    if in_github_actions_with_oidc(environ):
        from azure.identity import ClientAssertionCredential

        return ClientAssertionCredential(environ[TENANT_ID_ENV].strip(), environ[CLIENT_ID_ENV].strip(),
                                         github_assertion(environ, http_get=http_get), **options)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(**options)
