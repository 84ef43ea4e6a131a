"""Plugin targets are public internet addresses only (issue 11, finding 5): the address
classifier on every special-purpose range, the connect-time check (names, IP literals,
DNS answers, redirects), config-time refusals, and the operator's allowance. No traffic
leaves loopback: refused connections are refused before a socket exists."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp import web

from plugins._http import plugin_session, request_json
from plugins.api import ConfigError, PermanentError
from plugins.netguard import check_target_url, classify, guarded_socket_factory, is_public
from plugins.registry import default_registry
from plugins.webhook import WebhookPlugin
from tests.plugins.fakes import WebhookReceiver, msg_event

BLOCKED = {
    # IPv4
    "0.0.0.0": "unspecified/this-network",
    "0.1.2.3": "unspecified/this-network",
    "10.0.0.1": "private (RFC 1918)",
    "10.255.255.255": "private (RFC 1918)",
    "100.64.0.1": "carrier-grade NAT (RFC 6598)",
    "100.127.255.254": "carrier-grade NAT (RFC 6598)",
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "169.254.169.254": "link-local (cloud metadata)",
    "169.254.0.1": "link-local (cloud metadata)",
    "172.16.0.1": "private (RFC 1918)",
    "172.31.255.255": "private (RFC 1918)",
    "192.0.0.8": "IETF protocol assignments",
    "192.0.2.10": "documentation (TEST-NET-1)",
    "192.88.99.1": "6to4 relay anycast",
    "192.168.1.1": "private (RFC 1918)",
    "198.18.0.1": "benchmarking (RFC 2544)",
    "198.19.255.255": "benchmarking (RFC 2544)",
    "198.51.100.7": "documentation (TEST-NET-2)",
    "203.0.113.9": "documentation (TEST-NET-3)",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    # IPv6
    "::": "unspecified",
    "::1": "loopback",
    "100::1": "discard-only (RFC 6666)",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation",
    "fc00::1": "unique local (ULA)",
    "fd12:3456:789a::1": "unique local (ULA)",
    "fe80::1": "link-local",
    "fec0::1": "site-local (deprecated)",
    "ff02::1": "multicast",
    # IPv6 forms embedding a blocked IPv4 address
    "::ffff:127.0.0.1": "loopback (embedded in IPv6)",
    "::ffff:169.254.169.254": "link-local (cloud metadata) (embedded in IPv6)",
    "::ffff:10.1.2.3": "private (RFC 1918) (embedded in IPv6)",
    "64:ff9b::a9fe:a9fe": "link-local (cloud metadata) (embedded in IPv6)",  # NAT64
    "2002:7f00:1::": "loopback (embedded in IPv6)",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::": "private (RFC 1918) (embedded in IPv6)",  # 6to4 of 192.168.1.1
}
PUBLIC = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.1",
    "172.15.255.255",
    "172.32.0.1",
    "169.253.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
]


@pytest.mark.parametrize(("address", "label"), sorted(BLOCKED.items()))
def test_blocked_ranges_are_named(address, label):
    assert classify(address) == label
    assert not is_public(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert classify(address) is None and is_public(address)


def test_scoped_and_garbage_addresses_are_refused():
    assert classify("fe80::1%eth0") is not None
    assert classify("not-an-ip") == "not an IP address"


def test_socket_factory_refuses_before_a_socket_exists():
    info = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))
    with pytest.raises(OSError, match="target address not allowed: link-local"):
        guarded_socket_factory(info)
    info6 = (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:127.0.0.1", 80, 0, 0))
    with pytest.raises(OSError, match="loopback"):
        guarded_socket_factory(info6)


@pytest.mark.parametrize(
    ("url", "allowed", "problem"),
    [
        ("https://hooks.example.com/x", False, None),
        ("https://93.184.216.34/x", False, None),
        ("http://hooks.example.com/x", False, "must be an https URL"),
        ("https://127.0.0.1/x", False, "target address not allowed: loopback"),
        ("https://[::1]/x", False, "target address not allowed: loopback"),
        ("https://169.254.169.254/latest", False, "link-local"),
        ("https://10.0.0.5/x", False, "private (RFC 1918)"),
        ("https://[::ffff:192.168.0.1]/x", False, "embedded in IPv6"),
        ("https://localhost/x", False, "loopback targets need the operator's allowance"),
        ("https://api.localhost./x", False, "loopback targets"),
        ("https://user:pw@hooks.example.com/x", False, "credentials in the URL"),
        ("ftp://hooks.example.com/x", False, "expected an http(s) URL"),
        ("http://127.0.0.1:8080/x", True, None),
        ("http://user:pw@127.0.0.1/x", True, "credentials in the URL"),
    ],
)
def test_config_time_url_check(url, allowed, problem):
    found = check_target_url(url, allow_private=allowed)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_registry_refuses_private_targets_without_the_allowance():
    reg = default_registry(discover=False)
    for url in ("http://127.0.0.1:9/hook", "https://169.254.169.254/", "https://[fd00::1]/"):
        with pytest.raises(ConfigError) as info:
            reg.validate("webhook", {"url": url, "secret": "s3cret-value"})
        assert info.value.field == "url"
    config, _ = reg.validate(
        "webhook", {"url": "http://127.0.0.1:9/hook", "secret": "s"}, allow_private=True
    )
    assert config["url"] == "http://127.0.0.1:9/hook"


async def _receiver() -> WebhookReceiver:
    return await WebhookReceiver().start()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_guarded_session_refuses_loopback_at_connect_time(host):
    """A name that resolves to loopback (DNS rebinding stands in: 'localhost') and an IP
    literal are both refused when the socket would connect; the receiver sees nothing."""
    receiver = await _receiver()
    port = receiver.url.rsplit(":", 1)[1]
    try:
        async with plugin_session(allow_private=False) as http:
            plugin = WebhookPlugin(
                {"url": f"http://{host}:{port}/hook"}, {"secret": receiver.secret}, http
            )
            with pytest.raises(PermanentError) as info:
                await plugin.deliver(msg_event())
        assert str(info.value).startswith("webhook: target address not allowed: loopback")
        assert receiver.requests == []
        # the same plugin with the operator's allowance reaches it
        async with plugin_session(allow_private=True) as http:
            plugin = WebhookPlugin(
                {"url": f"http://{host}:{port}/hook"}, {"secret": receiver.secret}, http
            )
            await plugin.deliver(msg_event())
        assert len(receiver.requests) == 1
    finally:
        await receiver.close()


async def test_closed_and_open_ports_look_the_same():
    """The dead-letter text cannot be used as a port scanner: an open and a closed
    loopback port give the identical refusal."""
    receiver = await _receiver()
    try:
        errors = []
        async with plugin_session(allow_private=False) as http:
            for url in (receiver.url + "/hook", "http://127.0.0.1:9/hook"):
                with pytest.raises(PermanentError) as info:
                    await request_json(http, "webhook", "POST", url, data=b"{}")
                errors.append(str(info.value))
        assert errors[0] == errors[1] == "webhook: target address not allowed: loopback"
    finally:
        await receiver.close()


async def test_redirects_are_not_followed_and_bodies_never_surface():
    """A target answering 302 to an internal address, or an error whose body echoes
    secrets, gives a status-only error (plus an identifier-shaped vendor code)."""

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def leaky(request: web.Request) -> web.Response:
        return web.json_response(
            {"code": "bad_thing", "message": "internal host db-7 says password=hunter2"}, status=400
        )

    async def leaky_code(request: web.Request) -> web.Response:
        return web.json_response({"code": "password=hunter2 at db-7"}, status=400)

    app = web.Application()
    app.router.add_post("/redirect", redirect)
    app.router.add_post("/leaky", leaky)
    app.router.add_post("/leaky-code", leaky_code)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with plugin_session(allow_private=True) as http:
            base = f"http://127.0.0.1:{port}"
            with pytest.raises(PermanentError) as info:
                await request_json(http, "webhook", "POST", base + "/redirect", data=b"{}")
            assert str(info.value) == "webhook: HTTP 302 redirect not followed"
            with pytest.raises(PermanentError) as info:
                await request_json(http, "webhook", "POST", base + "/leaky", data=b"{}")
            assert str(info.value) == "webhook: HTTP 400 bad request [bad_thing]"
            with pytest.raises(PermanentError) as info:
                await request_json(http, "webhook", "POST", base + "/leaky-code", data=b"{}")
            assert str(info.value) == "webhook: HTTP 400 bad request"
    finally:
        await runner.cleanup()


async def test_plugin_sessions_keep_no_cookies():
    """A cookie one tenant's vendor sets is never sent with another request."""
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        resp = web.json_response({})
        resp.set_cookie("session", "tenant-a-secret")
        return resp

    app = web.Application()
    app.router.add_get("/x", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with plugin_session(allow_private=True) as http:
            assert isinstance(http.cookie_jar, aiohttp.DummyCookieJar)
            for _ in range(2):
                await request_json(http, "t", "GET", f"http://127.0.0.1:{port}/x")
        assert seen == [None, None]
    finally:
        await runner.cleanup()
