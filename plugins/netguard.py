"""Where plugins may send requests: public internet addresses only, checked when the socket
connects.

Why at connect time: a tenant admin configures a plugin's URL (webhook receiver, helpdesk
base URL). Checking the host name once at configuration is not enough — DNS can answer a
public address then and ``127.0.0.1`` a minute later (DNS rebinding), a redirect can point
anywhere, and an IP literal never reaches a resolver. :func:`guarded_socket_factory` runs
on the exact address aiohttp is about to connect to (aiohttp's ``socket_factory`` hook), so
every one of those paths ends in the same check.

The classifier (:func:`classify`) is written out range by range (RFC 6890 special-purpose
registries) rather than relying only on ``ipaddress.is_global``, so each refused range has
a name in errors and a unit test; ``is_global`` stays as the catch-all for anything the
table does not name. IPv6 forms that embed an IPv4 address (IPv4-mapped, 6to4, NAT64,
Teredo) are judged by the embedded address too.

Loopback and private targets are for the installation operator only: the gateway config
``plugins.allow_private_targets`` or ``cipherdesk plugins enable … --allow-private-network``
(never the admin API) selects a session without this check (:func:`plugins._http.plugin_session`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Refused ranges with the name used in error messages (RFC 6890 and successors).
BLOCKED_RANGES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified/this-network"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique local (ULA)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
_NETWORKS = tuple((ipaddress.ip_network(net), label) for net, label in BLOCKED_RANGES)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedTarget(OSError):
    """A plugin request would reach a non-public address. The message names the range,
    never the address itself beyond what the admin configured."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify(address: str | IPAddress) -> str | None:
    """None for a public unicast address; otherwise the name of the range that makes it
    unfit as a plugin target ("loopback", "private (RFC 1918)", ...)."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped (zone id)"
        inner = _embedded_v4(ip)
        if inner is not None:
            found = classify(inner)
            if found is not None:
                return f"{found} (embedded in IPv6)"
    for network, label in _NETWORKS:
        if ip.version == network.version and ip in network:
            return label
    if not ip.is_global:
        return "non-public"
    return None


def is_public(address: str | IPAddress) -> bool:
    """Whether plugins may connect to ``address`` without the operator's allowance."""
    return classify(address) is None


def guarded_socket_factory(addr_info: tuple[Any, ...]) -> socket.socket:
    """aiohttp ``socket_factory``: refuse to create a socket for a non-public address.

    ``addr_info`` is ``(family, type, proto, canonname, sockaddr)`` as from
    ``getaddrinfo``; ``sockaddr[0]`` is the address about to be connected.
    """
    family, type_, proto, _, sockaddr = addr_info
    reason = classify(str(sockaddr[0]).split("%", 1)[0])
    if reason is not None:
        raise BlockedTarget(f"target address not allowed: {reason}")
    return socket.socket(family=family, type=type_, proto=proto)


def check_target_url(url: str, *, allow_private: bool) -> str | None:
    """Configuration-time check of a plugin target URL; None when acceptable, else why not.

    Without the operator's allowance only ``https`` URLs whose host is a name or a public
    IP literal pass (a name is checked again on every connect). ``localhost`` names are
    refused up front, as are credentials in the URL.
    """
    try:  # urlsplit raises ValueError on e.g. "http://[::1" (found by tests/fuzz)
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return "expected an http(s) URL"
    if parts.scheme not in ("http", "https") or not hostname:
        return "expected an http(s) URL"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed (use the secret fields)"
    if allow_private:
        return None
    if parts.scheme != "https":
        return "must be an https URL"
    host = hostname.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback targets need the operator's allowance"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    reason = classify(ip)
    if reason is not None:
        return f"target address not allowed: {reason}"
    return None


SocketFactory = Callable[[tuple[Any, ...]], socket.socket]

__all__ = [
    "BLOCKED_RANGES",
    "BlockedTarget",
    "check_target_url",
    "classify",
    "guarded_socket_factory",
    "is_public",
]
