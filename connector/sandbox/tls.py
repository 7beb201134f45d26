"""A throw-away TLS identity for the Salesforce stand-in on 127.0.0.1.

simple-salesforce builds ``https://`` URLs to the instance whatever it is given, so the
stand-in must speak TLS. Its certificate is self-signed, made per run, and trusted only by the
server the demo starts, through a CA bundle (the usual public roots plus this certificate)
named in that server's ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = ipaddress.ip_address("127.0.0.1")


def write_identity(directory: Path) -> tuple[Path, Path]:
    """Write ``sandbox-cert.pem`` and ``sandbox-key.pem`` (0600) for 127.0.0.1; their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "leadrelay sandbox (not Salesforce)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1"),
        ]
    )
    now = datetime.now(UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        # A self-signed certificate that is its own trust anchor: strict verifiers want it
        # marked as a CA and carrying key identifiers.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(LOOPBACK), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "sandbox-cert.pem", directory / "sandbox-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def write_ca_bundle(directory: Path, cert_path: Path, trusted: str | None = None) -> Path:
    """The roots trusted so far (``trusted``, the caller's own bundle, else certifi's public
    roots) plus the sandbox certificate, for ``REQUESTS_CA_BUNDLE``: a webhook to a real
    HTTPS host still verifies as usual."""
    bundle = directory / "ca-bundle.pem"
    # A bundle may also be a directory of certificates (requests allows it): then start
    # from the public roots.
    source = Path(trusted) if trusted and Path(trusted).is_file() else Path(certifi.where())
    roots = source.read_text()
    bundle.write_text(roots + "\n" + cert_path.read_text())
    return bundle


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """The stand-in's TLS context."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context
