"""Client IP resolution behind trusted proxies (X-Forwarded-For)."""

from __future__ import annotations

import pytest

from gateway.clientip import MAX_HOPS, ClientIPResolver, rate_limit_key

PROXIES = ["10.0.0.0/8", "192.168.1.10", "fd00::/8", "::1"]


@pytest.fixture
def resolver() -> ClientIPResolver:
    return ClientIPResolver(PROXIES)


def test_untrusted_peer_xff_is_ignored(resolver: ClientIPResolver) -> None:
    # a client talking to us directly cannot choose its own rate-limit key
    assert resolver.resolve("203.0.113.9", "1.2.3.4") == "203.0.113.9"
    assert resolver.resolve("203.0.113.9", "10.0.0.1") == "203.0.113.9"
    assert resolver.resolve("2001:db8::9", "1.2.3.4") == "2001:db8::9"


def test_no_proxies_configured_never_reads_xff() -> None:
    resolver = ClientIPResolver()
    assert resolver.resolve("10.0.0.1", "1.2.3.4") == "10.0.0.1"


def test_trusted_peer_single_hop(resolver: ClientIPResolver) -> None:
    assert resolver.resolve("10.1.2.3", "198.51.100.7") == "198.51.100.7"
    assert resolver.resolve("192.168.1.10", " 198.51.100.7 ") == "198.51.100.7"
    assert resolver.resolve("192.168.1.11", "198.51.100.7") == "192.168.1.11"  # not a proxy


def test_trusted_peer_without_xff(resolver: ClientIPResolver) -> None:
    assert resolver.resolve("10.1.2.3", None) == "10.1.2.3"
    assert resolver.resolve("10.1.2.3", "") == "10.1.2.3"


def test_chain_walks_from_the_right_skipping_our_proxies(resolver: ClientIPResolver) -> None:
    # client-forged left part, then the real client, then two of our proxies
    xff = "6.6.6.6, 1.1.1.1, 198.51.100.7, 10.0.0.5, 192.168.1.10"
    assert resolver.resolve("10.0.0.1", xff) == "198.51.100.7"
    # a forged "trusted" address on the left does not let the client hide
    assert resolver.resolve("10.0.0.1", "10.9.9.9, 198.51.100.7") == "198.51.100.7"


def test_all_hops_trusted_returns_the_origin(resolver: ClientIPResolver) -> None:
    assert resolver.resolve("10.0.0.1", "10.0.0.7, 10.0.0.5") == "10.0.0.7"


@pytest.mark.parametrize(
    "xff",
    [
        "garbage",
        "198.51.100.7, not-an-ip",
        "198.51.100.7,,10.0.0.5",
        "unknown",
        "999.1.1.1",
        "1.2.3.4.5",
        "[2001:db8::1",
        "[2001:db8::1]x",
        ",",
        "_hidden, 10.0.0.5",
    ],
)
def test_malformed_chain_falls_back_to_the_peer(resolver: ClientIPResolver, xff: str) -> None:
    assert resolver.resolve("10.0.0.1", xff) == "10.0.0.1"


def test_garbage_left_of_the_client_is_irrelevant(resolver: ClientIPResolver) -> None:
    assert resolver.resolve("10.0.0.1", "garbage, 198.51.100.7") == "198.51.100.7"


def test_ipv6(resolver: ClientIPResolver) -> None:
    assert resolver.resolve("fd00::1", "2001:db8::42") == "2001:db8::42"
    assert resolver.resolve("::1", "2001:DB8:0:0::42, fd12::9") == "2001:db8::42"
    assert resolver.resolve("::1", "[2001:db8::42]:443") == "2001:db8::42"
    assert resolver.resolve("fd00::1", "198.51.100.7") == "198.51.100.7"
    assert resolver.resolve("2001:0db8::1", None) == "2001:db8::1"  # canonical form


def test_ports_and_mapped_addresses(resolver: ClientIPResolver) -> None:
    assert resolver.resolve("10.0.0.1", "198.51.100.7:51234") == "198.51.100.7"
    # dual-stack listeners report IPv4 peers as IPv4-mapped IPv6
    assert resolver.resolve("::ffff:10.0.0.1", "198.51.100.7") == "198.51.100.7"
    assert resolver.resolve("::ffff:203.0.113.9", "1.2.3.4") == "203.0.113.9"
    assert resolver.resolve("10.0.0.1", "::ffff:198.51.100.7") == "198.51.100.7"
    mapped_proxy = ClientIPResolver(["::ffff:10.0.0.0/104"])
    assert mapped_proxy.resolve("10.0.0.1", "198.51.100.7") == "198.51.100.7"


def test_unparsable_peer_is_returned_as_is(resolver: ClientIPResolver) -> None:
    assert resolver.resolve("unix:/run/gw.sock", "1.2.3.4") == "unix:/run/gw.sock"


def test_huge_headers_are_bounded(resolver: ClientIPResolver) -> None:
    forged = ", ".join(["198.51.100.1"] * 10_000 + ["198.51.100.7"])
    assert resolver.resolve("10.0.0.1", forged) == "198.51.100.7"
    ours = ", ".join(["10.0.0.9"] * (MAX_HOPS + 5))
    assert resolver.resolve("10.0.0.1", ours) == "10.0.0.1"  # origin cut off: use the peer


def test_bad_proxy_config_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="trusted proxy 'nginx'"):
        ClientIPResolver(["nginx"])


def test_rate_limit_key_groups_ipv6_by_64() -> None:
    assert rate_limit_key("198.51.100.7") == "198.51.100.7"
    assert rate_limit_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert rate_limit_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert rate_limit_key("2001:db8:1:2::1", ipv6_prefix=128) == "2001:db8:1:2::1"
    assert rate_limit_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert rate_limit_key("nonsense") == "nonsense"
