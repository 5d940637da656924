"""T1: how a rental is told to serve TLS with its own certificate (the create request)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from warmpool.operator.adapters import machine_tls
from warmpool.operator.decisions import channel

IDENTITY = machine_tls.new_identity("pool-abc12")


def test_the_pair_travels_in_chunks_vast_ai_accepts() -> None:
    env = channel.tls_env(IDENTITY.cert_pem, IDENTITY.key_pem)
    assert env["ENABLE_HTTPS"] == "true"
    assert all(len(value) <= 256 for value in env.values())  # Vast.ai's limit per value
    assert channel.decode_env(env, channel.CERT_PREFIX) == IDENTITY.cert_pem
    assert channel.decode_env(env, channel.KEY_PREFIX) == IDENTITY.key_pem
    assert "BEGIN" not in "".join(env.values())  # base64 only, no PEM armour in clear


def test_the_tls_line_comes_first_and_keeps_the_users_onstart() -> None:
    assert channel.with_tls(None) == channel.TLS_BOOTSTRAP
    assert channel.with_tls("echo hi").split("\n") == [channel.TLS_BOOTSTRAP, "echo hi"]
    assert channel.TLS_BOOTSTRAP.endswith("# warmpool tls")
    assert "BEGIN" not in channel.TLS_BOOTSTRAP and len(channel.TLS_BOOTSTRAP) < 400


def test_the_line_writes_the_pair_where_the_portal_reads_it(tmp_path: Path) -> None:
    env = {**channel.tls_env(IDENTITY.cert_pem, IDENTITY.key_pem),
           "WARMPOOL_TLS_DIR": str(tmp_path / "etc"), "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run(["bash", "-c", channel.TLS_BOOTSTRAP], env=env, check=False,
                          capture_output=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "etc" / "instance.crt").read_text() == IDENTITY.cert_pem
    key = tmp_path / "etc" / "instance.key"
    assert key.read_text() == IDENTITY.key_pem
    assert key.stat().st_mode & 0o077 == 0  # the key is readable by its owner only


def test_each_instance_gets_its_own_certificate_and_the_repr_hides_the_key() -> None:
    other = machine_tls.new_identity("pool-abc12")
    assert machine_tls.fingerprint(other.cert_pem) != machine_tls.fingerprint(IDENTITY.cert_pem)
    assert "PRIVATE" not in repr(IDENTITY) and IDENTITY.key_pem not in repr(IDENTITY)
