"""Microsoft Entra ID's token endpoint and GitHub Actions' ID-token service.

* ``GET /_github/idtoken?api-version=2.0&audience=...`` with ``Authorization: bearer
  $ACTIONS_ID_TOKEN_REQUEST_TOKEN`` -> ``{"value": "<jwt>"}``, as the runner answers
  (https://docs.github.com/actions/security-for-github-actions/security-hardening-your-deployments/
  about-security-hardening-with-openid-connect#updating-your-actions-for-oidc; the curl there is
  ``"$ACTIONS_ID_TOKEN_REQUEST_URL&audience=api://AzureADTokenExchange"``). The token's ``exp`` is
  5 minutes after issue (the AADSTS700024 reports of Azure/login#180 and
  kata-containers/kata-containers#11758 show a 5-minute assertion window).
* ``POST /{tenant}/oauth2/v2.0/token`` (azure-identity's ``AadClient._get_token_url``) - the
  client-credentials grant with a federated ``client_assertion`` (what ``ClientAssertionCredential``
  and ``az login --federated-token`` send) or a ``client_secret``. An assertion past its ``exp``
  (virtual clock) gets Entra's 400 ``invalid_client`` / AADSTS700024 with the message format of
  kata-containers#11758 ("Client assertion is not within its valid time range. Current time: ...,
  assertion valid from ..., expiry time of assertion ..."). Success: ``token_type``, ``expires_in``,
  ``ext_expires_in``, ``access_token`` (the v2 grant's answer), the token's ``aud`` being the scope's
  resource.

Settings (``emulator.settings``): ``github.request_token`` (what ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``
must be), ``aad.client_id``, ``aad.client_secret`` (None: secrets refused), ``aad.subject`` (the
federated credential's subject).
"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.azure_emulator.messages import Call, Reply, aad_error, arm_error
from tests.azure_emulator.routes import route
from tests.azure_emulator.tokens import (
    ACCESS_TOKEN_LIFETIME,
    GITHUB_AUDIENCE,
    GITHUB_ISSUER,
    ID_TOKEN_LIFETIME,
    InvalidToken,
    scope_resource,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_CLIENT_ID = "11111111-2222-3333-4444-555555555555"
DEFAULT_SUBJECT = "repo:example/mlops:environment:production"
DEFAULT_REQUEST_TOKEN = "actions-runtime-request-token"


def _z(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-6] + "0000000Z"


@route("GET", "/_github/idtoken", audience=None)
def github_id_token(call: Call) -> Reply:
    emu = call.emulator
    wanted = emu.setting("github.request_token", DEFAULT_REQUEST_TOKEN)
    scheme, _, token = call.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token != wanted:
        return Reply(401, {"message": "Unauthorized: the request token is not valid for this run"})
    now = emu.clock.now()
    claims = {"iss": GITHUB_ISSUER, "aud": call.query.get("audience") or "https://github.com/example",
              "sub": emu.setting("aad.subject", DEFAULT_SUBJECT), "iat": int(now), "nbf": int(now),
              "exp": int(now + ID_TOKEN_LIFETIME), "jti": f"gh-{len(emu.requests_to('/_github/idtoken'))}"}
    emu.store("identity").setdefault("id_tokens", []).append(claims)
    return Reply(200, {"count": 1, "value": emu.mint.issue(claims)})


@route("POST", "/{tenant}/oauth2/v2.0/token", audience=None)
def token(call: Call) -> Reply:
    emu = call.emulator
    now = emu.clock.now()
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    form = call.form()
    client_id = form.get("client_id", "")
    if call.params["tenant"] != emu.workspace.tenant_id:
        raise aad_error(400, "invalid_request", 90002, f"Tenant '{call.params['tenant']}' not found.", stamp)
    if form.get("grant_type") != "client_credentials":
        raise aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.", stamp)
    if client_id != emu.setting("aad.client_id", DEFAULT_CLIENT_ID):
        raise aad_error(400, "unauthorized_client", 700016,
                        f"Application with identifier '{client_id}' was not found in the directory.", stamp)
    if "client_assertion" in form:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise aad_error(400, "invalid_request", 50027, "Invalid JWT token.", stamp)
        try:
            assertion = emu.mint.read(form["client_assertion"])
        except InvalidToken:
            raise aad_error(400, "invalid_client", 50027, "Invalid JWT token. Token format not valid.", stamp) from None
        if not (assertion.get("nbf", 0) <= now < assertion.get("exp", 0)):
            raise aad_error(
                400, "invalid_client", 700024,
                f"Client assertion is not within its valid time range. Current time: {_z(now)}, assertion valid "
                f"from {_z(assertion.get('nbf', 0))}, expiry time of assertion {_z(assertion.get('exp', 0))}. "
                "Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                stamp)
        if (assertion.get("iss"), assertion.get("aud")) != (GITHUB_ISSUER, GITHUB_AUDIENCE) or \
                assertion.get("sub") != emu.setting("aad.subject", DEFAULT_SUBJECT):
            raise aad_error(400, "invalid_client", 70021,
                            "No matching federated identity record found for presented assertion. Assertion "
                            f"Issuer: '{assertion.get('iss')}'. Assertion Subject: '{assertion.get('sub')}'. "
                            f"Assertion Audience: '{assertion.get('aud')}'.", stamp)
    elif form.get("client_secret") is not None:
        if form["client_secret"] != emu.setting("aad.client_secret", None):
            raise aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.", stamp)
    else:
        raise aad_error(400, "invalid_client", 7000218, "The request body must contain the following parameter: "
                        "'client_assertion' or 'client_secret'.", stamp)
    resource = scope_resource(form.get("scope", ""))
    known = {emu.audience_url(a).rstrip("/") for a in ("arm", "ml", "storage")}
    if resource not in known:
        raise aad_error(400, "invalid_resource", 500011,
                        f"The resource principal named {resource} was not found in the tenant.", stamp)
    claims = {"aud": resource, "iss": f"https://sts.windows.net/{emu.workspace.tenant_id}/", "appid": client_id,
              "tid": emu.workspace.tenant_id, "iat": int(now), "nbf": int(now),
              "exp": int(now + ACCESS_TOKEN_LIFETIME)}
    emu.store("identity").setdefault("access_tokens", []).append(claims)
    return Reply(200, {"token_type": "Bearer", "expires_in": ACCESS_TOKEN_LIFETIME,
                       "ext_expires_in": ACCESS_TOKEN_LIFETIME, "access_token": emu.mint.issue(claims)})


@route("GET", "/{tenant}/v2.0/.well-known/openid-configuration", audience=None)
def openid_configuration(call: Call) -> Reply:
    """MSAL-based credentials read this before their first token (``msal.authority``)."""
    base, tenant = call.emulator.authority, call.params["tenant"]
    if tenant != call.emulator.workspace.tenant_id:
        raise arm_error(400, "invalid_tenant", f"Tenant '{tenant}' not found.")
    return Reply(200, {"token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                       "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                       "issuer": f"{base}/{tenant}/v2.0", "device_authorization_endpoint":
                       f"{base}/{tenant}/oauth2/v2.0/devicecode"})
