"""Master-key rotation keeps governance verifiable: the audit root and the tenants' sealed
alert-channel secrets are moved to the new key, so a gateway restarted with ONLY the new
key still verifies every audit row and still opens the webhook secret."""

from __future__ import annotations

from crypto.envelope import Keyring
from gateway.datadir import MASTER_KEY_FILE
from gateway.governance.auditchain import verify_chain
from gateway.governance.wiring import governance_of
from gateway.keyrotation import rotate
from tests.gateway.helpers import FakeClock, make_agent, start_gateway


async def test_rotation_then_retiring_the_old_key(tmp_path):
    clock = FakeClock()
    runner, _, svc = await start_gateway(tmp_path, clock=clock)
    try:
        await make_agent(svc, "ann@example.com")
        tenant = await svc.store.get_tenant("demo")
        notify = governance_of(svc).notifier.build_settings(
            "demo",
            {},
            {"webhook": {"url": "https://hooks.example.com/x", "secret": "s3cret-s3cret-s3cret"}},
        )
        tenant.settings = {**tenant.settings, "notify": notify}
        await svc.store.update_tenant(tenant)
        report = await rotate(svc)
        assert report.audit_keys == 1 and report.notify_secrets == 1
    finally:
        await runner.cleanup()
    key_file = tmp_path / "data" / MASTER_KEY_FILE
    ring = Keyring.from_file_content(key_file.read_bytes())
    key_file.write_text(ring.current.to_b64() + "\n")  # the old key is retired
    runner, _, svc = await start_gateway(tmp_path, clock=clock)
    try:
        keys = svc.audit_keys
        report = await verify_chain(svc.store, keys, svc.identity, "demo")
        assert report.ok and report.rows == 1, report.as_dict()  # agent.created
        installation = await verify_chain(svc.store, keys, svc.identity, "")
        assert installation.ok and installation.rows == 1  # keys.rotated
        tenant = await svc.store.get_tenant("demo")
        [channel] = governance_of(svc).notifier.channels("demo", tenant.settings)
        assert channel.name == "webhook"
    finally:
        await runner.cleanup()
