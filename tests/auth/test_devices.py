"""Coarse place and device labels shown in "my sessions"."""

from __future__ import annotations

import pytest

from auth.devices import coarse_place, device_label


@pytest.mark.parametrize(
    ("ip", "place"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::/48"),
        ("not-an-ip", ""),
        ("", ""),
    ],
)
def test_place_is_the_network_prefix_only(ip, place):
    assert coarse_place(ip) == place


@pytest.mark.parametrize(
    ("ua", "label"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0 Safari/537.36 Edg/120.0",
            "Edge / Windows",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/120.0 Safari/537.36",
            "Chrome / Linux",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Safari / iOS",
        ),
        ("Python/3.12 aiohttp/3.9", "other / other"),
        ("", "other / other"),
    ],
)
def test_device_label(ua, label):
    assert device_label(ua) == label
