"""Which machine addresses the operator may contact (with its Bearer token).

Pure. A rented host reports its own ``public_ipaddr``; a hostile one can report
``169.254.169.254`` (the cloud metadata service), ``10.0.0.7`` (a pod of the cluster)
or ``127.0.0.1`` (the operator itself), and the operator would then send its requests,
token included, into its own network. Only globally routable unicast addresses are
accepted, IPv4-mapped IPv6 addresses judged by the IPv4 address they carry.

``allowed`` (CIDRs; a setting, empty in production) lets the simulators work: they run
every machine on 127.0.0.1, so the dev stack and the tests allow ``127.0.0.0/8``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["refused_address"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _kind(address: Address) -> str | None:
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def refused_address(value: str, *, allowed: Iterable[str] = ()) -> str | None:
    """Why ``value`` must not be contacted, or None when it may be."""
    text = value.strip().removeprefix("[").removesuffix("]")
    try:
        address: Address = ipaddress.ip_address(text)
    except ValueError:
        return f"public_ipaddr {value[:64]!r} is not an IP address"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for cidr in allowed:
        if address in ipaddress.ip_network(cidr, strict=False):
            return None
    kind = _kind(address)
    if kind is None:
        return None
    return f"public_ipaddr {text} is {kind}: the operator does not contact it"
