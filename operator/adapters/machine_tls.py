"""The per-instance TLS identity of a machine's ComfyUI channel, and the pinned client side.

Why: the ComfyUI port of a rented machine is reached across the internet; over plain HTTP
the bearer token, the prompts and the outputs travel in clear text and anyone on the path
can read or change them. Vast.ai's base images run Caddy as their "Instance Portal" in
front of ComfyUI and serve TLS with ``/etc/instance.crt`` and ``/etc/instance.key`` when
``ENABLE_HTTPS=true``; the certificate Vast.ai puts there is signed by Vast.ai's own CA and
shared by the whole platform, so trusting that CA would accept any Vast.ai machine.

What the operator does instead: at rent time it makes a fresh key pair and a self-signed
certificate for that one instance (:func:`new_identity`), keeps both in the instance's
Secret, sends them in the create request's environment (``WARMPOOL_TLS_CERT_*`` /
``WARMPOOL_TLS_KEY_*``, see :mod:`warmpool.operator.decisions.channel`), whose onstart
line writes them over ``/etc/instance.{crt,key}`` and restarts the portal's Caddy. The
client then trusts exactly that certificate and nothing else (:func:`pinned_context`): no
system CA, no Vast.ai CA. The host name is not checked (the machine's address is not
known when the certificate is made); the pin is the certificate itself, whose key exists
only on that machine, in its Secret and in Vast.ai's copy of the request.

Not protected: the host itself (it runs the container and can read the key, the token and
every prompt), and Vast.ai (it stores the create request).
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: How long a machine certificate is valid (a rental rarely lives a month).
VALIDITY = timedelta(days=90)
_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False, crl_sign=False,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class Identity:
    """A machine's certificate and private key, PEM text (the key is a secret)."""

    cert_pem: str
    key_pem: str

    def __repr__(self) -> str:  # never the key
        return f"Identity(sha256={fingerprint(self.cert_pem)})"


def new_identity(name: str, *, now: datetime | None = None) -> Identity:
    """A fresh P-256 key and a self-signed certificate for the instance ``name``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"warmpool {name}"[:64])])
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)  # clock skew of the host
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        # Its own trust anchor: a CA of path length 0 that signs nothing but itself.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_KEY_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Identity(
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def fingerprint(cert_pem: str) -> str:
    """The certificate's SHA-256 fingerprint (hex), for status and logs."""
    der = x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def pinned_context(cert_pem: str) -> ssl.SSLContext:
    """A client context that trusts this one certificate only (TLS 1.2+, verification on,
    host name not checked: the pin is the certificate)."""
    context = ssl.create_default_context(cadata=cert_pem)
    context.check_hostname = False  # the address is unknown when the certificate is made
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
