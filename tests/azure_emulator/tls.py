"""A throw-away certificate authority for the emulator (``trustme``).

azure-core refuses to send a bearer token over plain HTTP (``BearerTokenCredentialPolicy`` ->
``ServiceRequestError: Bearer token authentication is not permitted for non-TLS protected (non-https)
URLs``), and MSAL/azure-identity want an ``https`` authority: the emulator must speak TLS. The
client side trusts the CA through ``REQUESTS_CA_BUNDLE`` (requests, which azure-core's transport and
azure-identity use, read it when ``verify`` is left ``True``) and ``SSL_CERT_FILE`` (``ssl``'s
default context, which the adapter's ``urllib`` invoke uses).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class TestCA:
    ca_bundle: Path
    """PEM file of the CA certificate to trust."""
    server_context: ssl.SSLContext

    __test__ = False  # not a pytest class


def make_ca(folder: Path) -> TestCA:
    ca = trustme.CA()
    leaf = ca.issue_cert(*HOSTS)
    bundle = Path(folder) / "emulator-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return TestCA(ca_bundle=bundle, server_context=context)
