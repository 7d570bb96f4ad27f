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
    authority: trustme.CA
    """The CA itself: ``authority.issue_cert("*.blob.localhost", ...)`` gives another loopback server
    (Azurite) a certificate every client of the emulator already trusts."""

    __test__ = False  # not a pytest class

    def issue_pem(self, folder: Path, *hosts: str) -> tuple[Path, Path]:
        """``(cert chain, private key)`` PEM files for ``hosts`` (e.g. Azurite's ``--cert``/``--key``)."""
        leaf = self.authority.issue_cert(*hosts)
        cert, key = Path(folder) / "leaf-cert.pem", Path(folder) / "leaf-key.pem"
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        return cert, key


def make_ca(folder: Path) -> TestCA:
    ca = trustme.CA()
    leaf = ca.issue_cert(*HOSTS)
    bundle = Path(folder) / "emulator-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return TestCA(ca_bundle=bundle, server_context=context, authority=ca)
