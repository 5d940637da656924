"""How a rental is told to serve its ComfyUI port over TLS with its pinned certificate.

Pure: :func:`tls_env` and :func:`with_tls` take the certificate and key (PEM text made by
:mod:`warmpool.operator.adapters.machine_tls`) and return what the create request carries.

Delivery, within Vast.ai's limits (256 characters per environment value, 4096 for
``onstart``): the PEM texts travel base64-encoded in ``WARMPOOL_TLS_CERT_000``, ``_001``...
and ``WARMPOOL_TLS_KEY_000``..., with ``ENABLE_HTTPS=true`` (the switch of Vast.ai's
Instance Portal). The first line of ``onstart`` (:data:`TLS_BOOTSTRAP`) writes them to
``$WARMPOOL_TLS_DIR/instance.crt`` and ``instance.key`` (default ``/etc``: the files the
portal's Caddy serves) and, there, restarts that Caddy under supervisor, so the port the operator
probes answers TLS with exactly the certificate it pinned. An image without the portal
must do the same with those files (any TLS proxy in front of ComfyUI that also checks
the bearer token works).
"""

from __future__ import annotations

import base64

#: Environment variable prefixes of the certificate and of the key (base64 PEM chunks).
CERT_PREFIX = "WARMPOOL_TLS_CERT_"
KEY_PREFIX = "WARMPOOL_TLS_KEY_"
#: Each chunk stays under Vast.ai's 256 characters per environment value.
CHUNK = 252
#: The onstart line that installs the pair where the Instance Portal's Caddy reads it.
TLS_BOOTSTRAP = (
    'd="${WARMPOOL_TLS_DIR:-/etc}";mkdir -p "$d";'
    f'for v in ${{!{CERT_PREFIX}*}};do printf %s "${{!v}}";done|base64 -d>"$d/instance.crt";'
    f'(umask 077;for v in ${{!{KEY_PREFIX}*}};do printf %s "${{!v}}";done|base64 -d'
    '>"$d/instance.key");[ -n "${WARMPOOL_TLS_DIR:-}" ]||supervisorctl restart caddy'
    " >/dev/null 2>&1;true # warmpool tls"
)


def _chunks(prefix: str, text: str) -> dict[str, str]:
    encoded = base64.b64encode(text.encode()).decode()
    parts = [encoded[i : i + CHUNK] for i in range(0, len(encoded), CHUNK)]
    return {f"{prefix}{n:03d}": part for n, part in enumerate(parts)}


def tls_env(cert_pem: str, key_pem: str) -> dict[str, str]:
    """The environment that carries the pair (the key is a secret: never log it)."""
    pair = {**_chunks(CERT_PREFIX, cert_pem), **_chunks(KEY_PREFIX, key_pem)}
    return {"ENABLE_HTTPS": "true", **pair}


def with_tls(onstart: str | None) -> str:
    """``onstart`` with the TLS bootstrap as its first line."""
    return f"{TLS_BOOTSTRAP}\n{onstart}" if onstart else TLS_BOOTSTRAP


def decode_env(env: dict[str, str], prefix: str) -> str:
    """The text carried in ``prefix*`` chunks (the reverse of :func:`tls_env`), for tests."""
    joined = "".join(env[k] for k in sorted(env) if k.startswith(prefix))
    return base64.b64decode(joined).decode()
