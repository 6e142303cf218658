"""Issue 13, finding 8: every address that is not globally routable is refused as a webhook
target, the IPv6 forms that embed an internal IPv4 address included (no network needed)."""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest

from riverwatch.alerts.addresses import UnsafeURL, address_problem, check_url, embedded_ipv4, post
from riverwatch.alerts.signing import new_secret

# Every row is an address a webhook must never reach.
INTERNAL = [
    # IPv4: loopback, private, link-local and metadata, CGNAT, "this network", multicast,
    # broadcast, reserved, IETF protocol assignments, documentation and benchmarking.
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.254",
    "169.254.0.1",
    "169.254.169.254",
    "100.100.100.200",
    "100.64.0.1",
    "100.127.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    # IPv6: loopback, unspecified, ULA, link-local (with a zone), site-local, multicast,
    # documentation, discard, Teredo, the AWS metadata address.
    "::1",
    "::",
    "fc00::1",
    "fd00::1",
    "fd12:3456:789a::1",
    "fd00:ec2::254",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "feff:ffff::1",
    "ff02::1",
    "ff05::1:3",
    "ff0e::1",
    "2001:db8::1",
    "100::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    # IPv4-mapped ::ffff:a.b.c.d
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:100.64.0.1",
    # IPv4-compatible (deprecated) ::a.b.c.d
    "::127.0.0.1",
    "::10.0.0.1",
    "::169.254.169.254",
    "::192.168.1.1",
    "::100.64.0.1",
    # SIIT / IPv4-translated ::ffff:0:a.b.c.d
    "::ffff:0:127.0.0.1",
    "::ffff:0:10.0.0.1",
    "::ffff:0:169.254.169.254",
    "::ffff:0:192.168.1.1",
    # NAT64 well-known prefix 64:ff9b::/96
    "64:ff9b::127.0.0.1",
    "64:ff9b::10.0.0.1",
    "64:ff9b::169.254.169.254",
    "64:ff9b::192.168.1.1",
    "64:ff9b::100.64.0.1",
    "64:ff9b::224.0.0.1",
    # NAT64 local-use prefix 64:ff9b:1::/48 (RFC 8215: for private domains, wholly refused)
    "64:ff9b:1::a00:1",
    "64:ff9b:1:7f00:1::",
    "64:ff9b:1::8.8.8.8",
    # 6to4 2002::/16 (the IPv4 address is bits 16-47)
    "2002:7f00:1::1",
    "2002:a00:1::",
    "2002:a9fe:a9fe::1",
    "2002:c0a8:101::",
    "2002:6440:1::",
    "2002:e000:1::",
]

OWN_LOOPBACK = {"127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1"}

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "172.32.0.1",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "64:ff9b::8.8.8.8",  # what DNS64 answers for a public IPv4-only host in a NAT64 network
    "2002:808:808::1",  # 6to4 of a public address
]


def test_the_table_covers_at_least_the_59_internal_forms_of_the_issue() -> None:
    assert len(INTERNAL) >= 59 and len(set(INTERNAL)) == len(INTERNAL)


@pytest.mark.parametrize("ip", INTERNAL)
def test_every_internal_form_is_refused(ip: str) -> None:
    assert address_problem(ip) is not None
    # Allowing loopback (development) lets exactly this host's own loopback through.
    assert (address_problem(ip, allow_loopback=True) is None) == (ip in OWN_LOOPBACK)


@pytest.mark.parametrize("ip", INTERNAL)
def test_every_internal_form_is_refused_as_a_url_and_on_delivery(ip: str) -> None:
    host = ip.split("%", 1)[0]
    literal = f"[{host}]" if ":" in host else host
    with pytest.raises(UnsafeURL):
        check_url(f"http://{literal}:8080/hook")
    # A name that resolves to it (DNS rebinding after registration) is refused too.
    with pytest.raises(UnsafeURL, match="resolves to"):
        check_url("https://hooks.example/in", resolve=lambda _h, _p: ["93.184.215.14", ip])


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_accepted(ip: str) -> None:
    assert address_problem(ip) is None
    assert check_url("https://hooks.example/in", resolve=lambda _h, _p: [ip]).addresses == (ip,)


@pytest.mark.parametrize(
    ("ip", "inner", "why"),
    [
        ("64:ff9b::a00:1", "10.0.0.1", "private via NAT64"),
        ("2002:a9fe:a9fe::1", "169.254.169.254", "cloud metadata via 6to4"),
        ("::7f00:1", "127.0.0.1", "loopback via IPv4-compatible"),
        ("::ffff:0:c0a8:101", "192.168.1.1", "private via SIIT"),
    ],
)
def test_the_reason_names_the_embedded_address(ip: str, inner: str, why: str) -> None:
    addr = ipaddress.IPv6Address(ip)
    assert str(embedded_ipv4(addr)[0]) == inner
    assert address_problem(ip) == why
    # An embedded loopback is not "our" loopback: allowing loopback does not let it through.
    assert address_problem(ip, allow_loopback=True) == why


def test_delivery_checks_the_embedded_forms_again() -> None:
    async def attempt() -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            await post(client, "http://[64:ff9b::a00:9]/h", new_secret(), "a1", b"{}", True, 1.0)

    with pytest.raises(UnsafeURL, match=r"64:ff9b::a00:9 \(private via NAT64\)"):
        asyncio.run(attempt())
