"""Not collected by the suite (no ``test_`` prefix): run by ``test_suite_exit.py`` as a
test that fails after starting a gateway and never cleans it up."""

from tests.gateway.helpers import start_gateway


async def test_fails_with_a_gateway_left_running(tmp_path):
    await start_gateway(tmp_path)
    raise AssertionError("failure after start_gateway, before any clean-up")
