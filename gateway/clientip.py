"""The client's IP address, as far as it can be trusted.

Per-IP limits are only as good as the address they key on. ``X-Forwarded-For`` is a
header anyone can send, so it is read only when the TCP peer is a proxy the operator
configured (nginx, a load balancer). Each proxy *appends* the address it received the
connection from, so the only entries that can be trusted are the right-most ones added by
our own proxies: walk from the right, skip addresses of trusted proxies, and the first
other address is the client. Everything left of it may be forged by the client and is
ignored. An unparsable entry before a client address is found means the chain cannot be
interpreted; the resolver then falls back to the peer (all such requests share the
proxy's budget — safe, since it never lets a client pick its own key).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

__all__ = ["ClientIPResolver", "rate_limit_key"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Longest X-Forwarded-For chain examined; bounds work on hostile, huge headers.
MAX_HOPS = 32

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _parse_ip(text: str) -> IPAddress | None:
    """Parse one address; IPv4-mapped IPv6 (``::ffff:a.b.c.d``) becomes plain IPv4.

    Tolerates the ``host:port`` and ``[v6]:port`` forms some proxies write into XFF.
    """
    text = text.strip()
    if not text:
        return None
    if text.startswith("["):  # [2001:db8::1] or [2001:db8::1]:443
        end = text.find("]")
        if end < 0 or (end + 1 < len(text) and not text[end + 1 :].startswith(":")):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # 203.0.113.7:51234
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class ClientIPResolver:
    """Resolve the client address from the peer address and ``X-Forwarded-For``.

    ``trusted_proxies`` are addresses or CIDRs (``"10.0.0.0/8"``, ``"::1"``). With none
    configured (the default deployment without a proxy) XFF is never read.
    """

    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        networks: list[IPNetwork] = []
        for entry in trusted_proxies:
            try:
                net = ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted proxy {entry!r} is not an IP address or CIDR") from exc
            # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d and _parse_ip maps
            # those back to IPv4; do the same with a mapped network so that both match.
            if (
                isinstance(net, ipaddress.IPv6Network)
                and net.subnet_of(_MAPPED)
                and net.prefixlen >= 96
            ):
                net = ipaddress.IPv4Network(
                    (int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96)
                )
            networks.append(net)
        self._networks: tuple[IPNetwork, ...] = tuple(networks)

    def is_trusted(self, ip: IPAddress) -> bool:
        """Whether ``ip`` belongs to a configured proxy."""
        return any(ip in net for net in self._networks)

    def resolve(self, peer_ip: str, x_forwarded_for: str | None) -> str:
        """The client address as a canonical string.

        ``x_forwarded_for`` is the header value; when a request carries the header several
        times, join the values with ``","`` in order (that is what they mean, RFC 9110
        §5.3). Returns ``peer_ip`` (canonicalised when parsable) whenever XFF must not or
        cannot be used.
        """
        peer = _parse_ip(peer_ip)
        if peer is None:
            return peer_ip  # unix socket or odd transport: nothing better to key on
        if not x_forwarded_for or not self._networks or not self.is_trusted(peer):
            return str(peer)
        entries = x_forwarded_for.split(",")
        if len(entries) > MAX_HOPS:
            entries = entries[-MAX_HOPS:]
            truncated = True
        else:
            truncated = False
        candidate = peer
        for raw in reversed(entries):
            ip = _parse_ip(raw)
            if ip is None:
                return str(peer)
            candidate = ip
            if not self.is_trusted(ip):
                return str(ip)
        # Every hop was one of ours (e.g. an internal health check): the left-most is the
        # origin — unless the chain was cut, in which case the origin is unknown.
        return str(peer) if truncated else str(candidate)


@functools.lru_cache(maxsize=65_536)  # called per message on the hot path
def rate_limit_key(ip: str, ipv6_prefix: int = 64) -> str:
    """The per-IP rate-limit key for ``ip``: the address for IPv4, its /64 for IPv6.

    One IPv6 subscriber usually holds a whole /64 (often much more), so limiting single
    /128 addresses would give an attacker 2**64 fresh budgets. Unparsable input is
    returned unchanged.
    """
    addr = _parse_ip(ip)
    if addr is None:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and ipv6_prefix < 128:
        net = ipaddress.IPv6Network(
            (int(addr) >> (128 - ipv6_prefix) << (128 - ipv6_prefix), ipv6_prefix)
        )
        return str(net)
    return str(addr)
