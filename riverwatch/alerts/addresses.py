"""The address check that keeps webhooks off internal hosts, and the POST to the checked address.

Safety: a webhook URL must resolve only to public addresses. Loopback, private, link-local,
cloud-metadata and other non-global addresses are refused (loopback only when allowed, for
local development), IPv6 forms that embed an IPv4 address (NAT64, 6to4, SIIT, mapped,
compatible) are judged by that address, and the request then goes to the very address that
was checked (:func:`pinned`), so a DNS answer that changes between check and connect cannot
redirect it.

>>> address_problem("10.1.2.3"), address_problem("8.8.8.8")
('private', None)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from riverwatch.alerts.signing import signed_headers
from riverwatch.core.errors import RiverwatchError

# Cloud metadata endpoints (AWS, GCP and Azure share 169.254.169.254; AWS IPv6; Alibaba;
# Oracle). Named first so the refusal says why, not just "link-local".
METADATA_IPS = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog"})
# IPv6 ranges that carry an IPv4 address (RFC 6052, 7915, 3056, 4291) or are for private use.
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
SIIT = ipaddress.IPv6Network("::ffff:0:0:0/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
Resolver = Callable[[str, int], list[str]]


class UnsafeURL(RiverwatchError, ValueError):
    """A webhook URL that must not be called; the message says why."""


def embedded_ipv4(addr: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 transition form carries, with the form's name; else None.

    IPv4-mapped ``::ffff:a.b.c.d``, SIIT ``::ffff:0:a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d``,
    6to4 ``2002:AABB:CCDD::`` and the deprecated IPv4-compatible ``::a.b.c.d``: each reaches
    (or is translated to) that IPv4 host, so it is judged by that host.

    >>> embedded_ipv4(ipaddress.IPv6Address("64:ff9b::a00:1"))
    (IPv4Address('10.0.0.1'), 'NAT64')
    """
    low32 = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped, "IPv4-mapped"
    if addr in SIIT:
        return low32, "SIIT"
    if addr in NAT64_WELL_KNOWN:
        return low32, "NAT64"
    if addr.sixtofour is not None:
        return addr.sixtofour, "6to4"
    if addr in IPV4_COMPATIBLE and int(addr) > 1:  # :: and ::1 are themselves
        return low32, "IPv4-compatible"
    return None


def _own_problem(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    v6 = isinstance(addr, ipaddress.IPv6Address)
    site_local = isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local
    checks = (
        (addr in METADATA_IPS, "cloud metadata"),
        (addr.is_loopback, "loopback"),
        (addr.is_unspecified, "unspecified"),
        (addr.is_link_local, "link-local"),
        (site_local, "site-local"),  # deprecated, yet routed inside some sites
        (v6 and addr in NAT64_LOCAL_USE, "local-use NAT64"),  # RFC 8215: private domains only
        (addr.is_multicast, "multicast"),
        (addr.is_private, "private"),
        (addr.is_reserved, "reserved"),
        (not addr.is_global, "not a public address"),
    )
    return next((reason for hit, reason in checks if hit), None)


def address_problem(ip: str, allow_loopback: bool = False) -> str | None:
    """Why a webhook must not go to ``ip`` ("loopback", "private", ...), or None when public.

    An IPv6 form that embeds an IPv4 address is judged by that address ("private via
    NAT64"); allowing loopback lets only this host's own loopback through.

    >>> address_problem("::ffff:127.0.0.1"), address_problem("::1", allow_loopback=True)
    ('loopback', None)
    >>> address_problem("2002:a00:1::"), address_problem("fec0::1")
    ('private via 6to4', 'site-local')
    """
    addr = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone id
    inner = embedded_ipv4(addr) if isinstance(addr, ipaddress.IPv6Address) else None
    if inner is not None and inner[1] == "IPv4-mapped":
        addr, inner = inner[0], None  # ::ffff:10.0.0.1 is 10.0.0.1 on a dual-stack socket
    if inner is not None:  # the prefix itself is a translation range: the host decides
        problem = _own_problem(inner[0])
        return None if problem is None else f"{problem} via {inner[1]}"
    problem = _own_problem(addr)
    return None if problem == "loopback" and allow_loopback else problem


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: the URL, its host and port, and the addresses it resolved to."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


def check_url(url: str, allow_loopback: bool = False, resolve: Resolver = _getaddrinfo) -> Target:
    """Resolve ``url``'s host and return it when every address is safe; else raise UnsafeURL.

    Blocking (DNS): call it from a thread in async code. The message names the reason, e.g.
    ``resolves to 10.0.0.5 (private)``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"the URL must be http or https, not {parts.scheme or 'empty'!r}")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("the URL must not carry credentials; the signature authenticates us")
    host = parts.hostname.rstrip(".").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL(f"the URL's port is invalid: {exc}") from exc
    if host in METADATA_NAMES:
        raise UnsafeURL(f"{host} is a cloud metadata endpoint")
    if (host == "localhost" or host.endswith(".localhost")) and not allow_loopback:
        raise UnsafeURL(f"{host} is loopback (RIVERWATCH_WEBHOOK_ALLOW_LOOPBACK is off)")
    try:
        addresses = tuple(dict.fromkeys(resolve(host, port)))
    except OSError as exc:
        raise UnsafeURL(f"{host} does not resolve: {exc}") from exc
    if not addresses:
        raise UnsafeURL(f"{host} resolves to no address")
    for ip in addresses:
        problem = address_problem(ip, allow_loopback)
        if problem is not None:
            hint = " (RIVERWATCH_WEBHOOK_ALLOW_LOOPBACK is off)" if problem == "loopback" else ""
            raise UnsafeURL(f"{host} resolves to {ip} ({problem}){hint}")
    return Target(url, host, port, addresses)


def pinned(target: Target) -> tuple[str, dict[str, str], dict[str, Any]]:
    """URL, headers and httpx extensions that send a request to the checked address.

    The URL names the IP, ``Host`` keeps the original name, and for https the
    ``sni_hostname`` extension makes TLS present and verify the original name.
    """
    parts = urlsplit(target.url)
    ip = target.addresses[0]
    literal = f"[{ip}]" if ":" in ip else ip
    netloc = f"{literal}:{target.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    ext: dict[str, Any] = {"sni_hostname": target.host} if parts.scheme == "https" else {}
    return url, {"Host": host_header}, ext


async def post(
    client: httpx.AsyncClient,
    url: str,
    secret: str | Sequence[str],
    msg_id: str,
    body: bytes,
    allow_loopback: bool,
    timeout_s: float,
) -> int:
    """Check ``url`` again, then POST the signed ``body`` to the checked address; the status.

    ``secret`` may be several (a rotation's overlap): the POST carries one signature each.

    Raises UnsafeURL when the URL now resolves to a refused address, and httpx.HTTPError,
    TimeoutError or OSError when no answer came within ``timeout_s`` (DNS included). The
    response body is not read. ``client`` must not follow redirects nor use a proxy.
    """
    async with asyncio.timeout(timeout_s):
        target = await asyncio.to_thread(check_url, url, allow_loopback)
        full, headers, ext = pinned(target)
        headers |= signed_headers(secret, msg_id, body)
        async with client.stream("POST", full, content=body, headers=headers, extensions=ext) as r:
            return r.status_code
