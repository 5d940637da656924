"""Machine addresses the operator must not send its Bearer token to (T1, issue 15)."""

from __future__ import annotations

import pytest

from warmpool.operator.decisions import addresses

REFUSED = {
    "loopback": "127.0.0.1",
    "loopback-other": "127.8.9.10",
    "private-10": "10.0.0.7",
    "private-172": "172.16.5.4",
    "private-192": "192.168.1.1",
    "link-local-metadata": "169.254.169.254",
    "cgnat": "100.64.0.1",
    "unspecified": "0.0.0.0",
    "broadcast": "255.255.255.255",
    "multicast": "224.0.0.1",
    "documentation": "192.0.2.1",
    "v6-loopback": "::1",
    "v6-unique-local": "fd00::1",
    "v6-link-local": "fe80::1",
    "v6-mapped-private": "::ffff:10.0.0.1",
    "v6-mapped-loopback": "::ffff:127.0.0.1",
    "v6-bracketed-loopback": "[::1]",
    "hostname": "metadata.google.internal",
    "empty": "",
    "garbage": "1.2.3",
}
ACCEPTED = {
    "public-v4": "203.0.114.9",
    "public-v4-2": "8.8.8.8",
    "public-v4-spaces": " 93.184.216.34 ",
    "public-v6": "2606:4700:4700::1111",
    "v6-mapped-public": "::ffff:8.8.8.8",
}


@pytest.mark.parametrize("value", REFUSED.values(), ids=REFUSED.keys())
def test_refused(value: str) -> None:
    reason = addresses.refused_address(value)
    assert reason is not None
    assert reason  # a sentence for the event/condition


@pytest.mark.parametrize("value", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(value: str) -> None:
    assert addresses.refused_address(value) is None


def test_allowed_networks_let_the_simulators_work() -> None:
    """The simulators run machines on 127.0.0.1: the dev stack and the tests allow it
    explicitly (a setting holding CIDRs), production allows nothing."""
    assert addresses.refused_address("127.0.0.1", allowed=["127.0.0.0/8"]) is None
    assert addresses.refused_address("10.0.0.1", allowed=["127.0.0.0/8"]) is not None
    assert addresses.refused_address("::1", allowed=["::1/128"]) is None
    assert addresses.refused_address("::ffff:127.0.0.1", allowed=["127.0.0.0/8"]) is None
