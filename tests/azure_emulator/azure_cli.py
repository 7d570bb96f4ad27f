"""``azure/login`` with OIDC, then the Azure CLI: what ``DefaultAzureCredential`` falls through to in
a GitHub job (issue 13), emulated at the one layer azure-identity sees - the ``az`` executable.

``azure/login`` runs ``az login --service-principal --username $CLIENT_ID --tenant $TENANT_ID
--federated-token $ID_TOKEN`` once, with the one GitHub ID token it fetched; the CLI keeps that
token and presents it as the client assertion for every later token it asks Entra ID for. Once the
ID token is past its ``exp`` (about 5 minutes), every new scope fails with AADSTS700024 and the CLI
prints Entra's message, then its "az login" hint (the output quoted in
kata-containers/kata-containers#11758 and Azure/login#180).

``install_azure_cli(folder, emulator)`` writes an ``az`` that does exactly that for
``az account get-access-token --output json --resource R`` (the command ``AzureCliCredential``
runs: azure-identity ``_credentials/azure_cli.py`` ``COMMAND_LINE``), answering the CLI's JSON
(``accessToken``, ``expiresOn``, ``expires_on``, ``subscription``, ``tenant``, ``tokenType``), and
returns the folder to put first on ``PATH``. The token endpoint it calls is the emulator's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.azure_emulator.routes.identity import DEFAULT_CLIENT_ID

_SCRIPT = r'''#!{python}
import base64, json, sys, urllib.error, urllib.parse, urllib.request
from datetime import datetime
state = json.load(open({state!r}))
args = sys.argv[1:]
if args[:2] != ["account", "get-access-token"] or "--resource" not in args:
    print("ERROR: this az knows only 'account get-access-token --resource'", file=sys.stderr)
    sys.exit(2)
resource = args[args.index("--resource") + 1].rstrip("/")
form = urllib.parse.urlencode({{"grant_type": "client_credentials", "client_id": state["client_id"],
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    "client_assertion": state["federated_token"], "scope": resource + "/.default"}}).encode()
try:
    with urllib.request.urlopen(urllib.request.Request(state["token_url"], data=form), timeout=30) as response:
        answer = json.loads(response.read())
except urllib.error.HTTPError as error:
    body = json.loads(error.read() or b"{{}}")
    print("ERROR: " + body.get("error_description", "token request failed"), file=sys.stderr)
    print("Run the command below to authenticate interactively; additional arguments may be added as needed:",
          file=sys.stderr)
    print("az logout\naz login", file=sys.stderr)
    sys.exit(1)
payload = answer["access_token"].split(".")[1]
expires_on = int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])
print(json.dumps({{"accessToken": answer["access_token"], "expires_on": expires_on,
    "expiresOn": datetime.fromtimestamp(expires_on).strftime("%Y-%m-%d %H:%M:%S.%f"),
    "subscription": state["subscription"], "tenant": state["tenant"], "tokenType": "Bearer"}}))
'''


def install_azure_cli(folder: Path, emulator: Any) -> Path:
    """``az login --federated-token`` now (one GitHub ID token, kept); returns the folder holding ``az``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ws = emulator.workspace
    state = folder / "az-state.json"
    state.write_text(json.dumps({"token_url": f"{emulator.authority}/{ws.tenant_id}/oauth2/v2.0/token",
                                 "client_id": DEFAULT_CLIENT_ID, "federated_token": emulator.github_id_token(),
                                 "subscription": ws.subscription_id, "tenant": ws.tenant_id}))
    script = folder / "az"
    script.write_text(_SCRIPT.format(python=sys.executable, state=str(state)))
    script.chmod(0o755)
    return folder
