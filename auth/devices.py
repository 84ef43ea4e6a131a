"""Coarse, non-identifying descriptions of where and on what a session was opened.

Shown to the agent in "my sessions" so a stranger's login stands out, without turning the
list into a tracking record: the place is the network prefix only (IPv4 /24, IPv6 /48),
and the device is "browser / system" from a short, hand-written table (a full user-agent
database would be a large dependency for four words; unknown agents read "other").
"""

from __future__ import annotations

import ipaddress

__all__ = ["coarse_place", "device_label"]

_BROWSERS = (  # order matters: Edge and Opera also say "Chrome", Chrome also says "Safari"
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python", "Python"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def coarse_place(ip: str) -> str:
    """The network prefix of ``ip`` (``203.0.113.0/24``, ``2001:db8:1::/48``); ``""`` when
    it is not an address."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def device_label(user_agent: str) -> str:
    """``"Chrome / Windows"`` (language-neutral: shown as is in every UI language);
    ``"other"`` for a part it does not recognise."""
    ua = (user_agent or "")[:512]
    browser = next((name for marker, name in _BROWSERS if marker in ua), "other")
    system = next((name for marker, name in _SYSTEMS if marker in ua), "other")
    return f"{browser} / {system}"
